/*
 * tls.c
 *    TLS with OpenSSL, non-blocking in the libev loop: the TLS operations of
 *    a connection (conn.h) and the contexts they use. See tls.h.
 */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/log.h"

typedef enum HdTlsPhase
{
	HD_TLS_HANDSHAKE,
	HD_TLS_ESTABLISHED
} HdTlsPhase;

struct HdTls
{
	SSL		   *ssl;
	HdConn	   *conn;			/* whose operations these are: loop, fd, watchers */
	ev_io		cross;			/* the opposite event an SSL call waits for */
	int			cross_events;
	HdTlsPhase	phase;
	bool		to_origin;		/* the client side: verification errors as libpq words them */
	bool		read_wants_write;	/* SSL_read needs the socket writable */
	bool		write_wants_read;	/* SSL_write needs the socket readable */
	bool		failed;			/* a fatal TLS error: no more SSL calls but free */
	bool		closed;
	char		error[640];		/* why it failed (the longest libpq-worded reason fits) */
	/* verify-full: the names in the origin's certificate, for the message */
	char		host[256];
	char		first_name[256];
	int			nnames;
};

/* Writes may resume from a moved buffer (HdIoBuf compacts and grows). */
#define HD_TLS_MODES (SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | \
					  SSL_MODE_RELEASE_BUFFERS)

static const HdConnOps tls_ops;

static void cross_cb(struct ev_loop *loop, ev_io *w, int revents);
static void tls_resume_reading(HdConn *conn);

/* OpenSSL's reason for the last failure (the earliest queued), as libpq shows it. */
static const char *
ssl_reason(char *buf, size_t len)
{
	unsigned long code = ERR_get_error();
	const char *reason = code ? ERR_reason_error_string(code) : NULL;

	if (code == 0)
		snprintf(buf, len, "no SSL error reported");
	else if (reason)
		snprintf(buf, len, "%s", reason);
	else
		snprintf(buf, len, "SSL error code %lu", code);
	ERR_clear_error();
	return buf;
}

static HdTls *
tls_new(HdConn *conn)
{
	HdTls	   *tls = calloc(1, sizeof(HdTls));

	if (tls == NULL)
		return NULL;
	tls->conn = conn;
	ev_io_init(&tls->cross, cross_cb, conn->fd, EV_READ);
	tls->cross.data = tls;
	return tls;
}

static void
tls_discard(HdTls *tls)
{
	if (tls == NULL)
		return;
	ev_io_stop(tls->conn->loop, &tls->cross);
	SSL_free(tls->ssl);
	free(tls);
}

/* The handshake starts at the next step: the connection's operations are TLS's. */
static void
tls_attach(HdConn *conn, HdTls *tls)
{
	tls->phase = HD_TLS_HANDSHAKE;
	conn->tls = tls;
	conn->ops = &tls_ops;
}

static void
set_common_options(SSL_CTX *ctx)
{
	(void) SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
						SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, HD_TLS_MODES);
}

/* ---------------------------------------------------------------------------
 * The client-facing context
 */

/* Like PostgreSQL: a key others can read is refused. */
static int
check_key_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0)
	{
		snprintf(err, errlen, "could not load TLS private key file \"%s\": %s", path,
				 strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode))
	{
		snprintf(err, errlen, "TLS private key file \"%s\" is not a regular file", path);
		return -1;
	}
	if ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO))) ||
		(st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))
	{
		snprintf(err, errlen,
				 "TLS private key file \"%s\" has group or world access; it must have "
				 "permissions u=rw (0600) or less if owned by the agent's user, or u=rw,g=r "
				 "(0640) or less if owned by root", path);
		return -1;
	}
	return 0;
}

static SSL_CTX *
server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	char		reason[256];
	SSL_CTX    *ctx;
	FILE	   *f;

	ERR_clear_error();
	/* a clear message for the common case, before OpenSSL's terse one */
	if ((f = fopen(cert_file, "r")) == NULL)
	{
		snprintf(err, errlen, "could not load TLS certificate file \"%s\": %s", cert_file,
				 strerror(errno));
		return NULL;
	}
	fclose(f);
	if (check_key_file(key_file, err, errlen) < 0)
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL)
	{
		snprintf(err, errlen, "could not create a TLS context: %s",
				 ssl_reason(reason, sizeof(reason)));
		return NULL;
	}
	set_common_options(ctx);
	/* no session resumption, as PostgreSQL */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	(void) SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
	{
		snprintf(err, errlen, "could not load TLS certificate file \"%s\": %s", cert_file,
				 ssl_reason(reason, sizeof(reason)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
	{
		/* the key loaded, and belongs to another certificate */
		if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH)
			snprintf(err, errlen,
					 "TLS private key file \"%s\" does not match certificate file \"%s\": %s",
					 key_file, cert_file, ssl_reason(reason, sizeof(reason)));
		else
			snprintf(err, errlen, "could not load TLS private key file \"%s\": %s", key_file,
					 ssl_reason(reason, sizeof(reason)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1)
	{
		snprintf(err, errlen,
				 "TLS private key file \"%s\" does not match certificate file \"%s\": %s",
				 key_file, cert_file, ssl_reason(reason, sizeof(reason)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int
hd_tls_accept_ctx_load(SSL_CTX **ctx, const HdSettings *settings, char *err, size_t errlen)
{
	*ctx = NULL;
	if (settings->tls_cert_file == NULL || settings->tls_key_file == NULL)
		return 0;
	*ctx = server_ctx_new(settings->tls_cert_file, settings->tls_key_file, err, errlen);
	if (*ctx == NULL)
		return -1;
	hd_info("TLS for clients: certificate %s", settings->tls_cert_file);
	return 0;
}

void
hd_tls_accept_ctx_reload(SSL_CTX **ctx, const HdSettings *settings)
{
	char		err[512];
	SSL_CTX    *fresh;

	if (settings->tls_cert_file == NULL || settings->tls_key_file == NULL)
	{
		if (*ctx)
			hd_info("TLS for clients is now off: SSLRequest is answered 'N'");
		SSL_CTX_free(*ctx);
		*ctx = NULL;
		return;
	}
	fresh = server_ctx_new(settings->tls_cert_file, settings->tls_key_file, err, sizeof(err));
	if (fresh == NULL)
	{
		hd_error("reloading TLS failed, %s: %s",
				 *ctx ? "keeping the previous certificate and key" :
				 "TLS for clients stays off", err);
		return;
	}
	/* connections that use the old context hold a reference to it */
	SSL_CTX_free(*ctx);
	*ctx = fresh;
	hd_info("TLS for clients: certificate %s (reloaded)", settings->tls_cert_file);
}

void
hd_tls_ctx_free(SSL_CTX **ctx)
{
	SSL_CTX_free(*ctx);
	*ctx = NULL;
}

/* ---------------------------------------------------------------------------
 * Handshake errors
 */

/* Why a handshake (or other SSL call) failed, from its return value. */
static void
describe_failure(HdTls *tls, int rc, int saved_errno)
{
	int			code = SSL_get_error(tls->ssl, rc);
	char		reason[256];

	tls->failed = true;
	switch (code)
	{
		case SSL_ERROR_ZERO_RETURN:
			snprintf(tls->error, sizeof(tls->error), "SSL connection has been closed unexpectedly");
			break;
		case SSL_ERROR_SYSCALL:
			if (ERR_peek_error() != 0)
				snprintf(tls->error, sizeof(tls->error), "SSL error: %s",
						 ssl_reason(reason, sizeof(reason)));
			else if (saved_errno != 0)
				snprintf(tls->error, sizeof(tls->error), "SSL SYSCALL error: %s",
						 strerror(saved_errno));
			else
				snprintf(tls->error, sizeof(tls->error), "SSL SYSCALL error: EOF detected");
			break;
		default:
			snprintf(tls->error, sizeof(tls->error), "SSL error: %s",
					 ssl_reason(reason, sizeof(reason)));
			break;
	}
	ERR_clear_error();
}

/*
 * One SSL_do_handshake() step, for either side, and the watchers it needs:
 * the read watcher stays on (the peer's next flight comes when it comes), the
 * write watcher is on only while OpenSSL has bytes the socket did not take.
 * HD_CONN_FAILED leaves *rc and *saved_errno for describe_failure().
 */
static HdConnStep
handshake_step(HdTls *tls, int *rc, int *saved_errno)
{
	HdConn	   *conn = tls->conn;

	ERR_clear_error();
	errno = 0;
	*rc = SSL_do_handshake(tls->ssl);
	*saved_errno = errno;
	if (*rc == 1)
	{
		tls->phase = HD_TLS_ESTABLISHED;
		ev_io_stop(conn->loop, conn->write_watcher);
		/* what came with the peer's last flight: read it now, epoll cannot see it */
		tls_resume_reading(conn);
		return HD_CONN_READY;
	}
	switch (SSL_get_error(tls->ssl, *rc))
	{
		case SSL_ERROR_WANT_READ:
			ev_io_stop(conn->loop, conn->write_watcher);
			ev_io_start(conn->loop, conn->read_watcher);
			return HD_CONN_WAIT;
		case SSL_ERROR_WANT_WRITE:
			ev_io_start(conn->loop, conn->write_watcher);
			return HD_CONN_WAIT;
		default:
			return HD_CONN_FAILED;
	}
}

/* ---------------------------------------------------------------------------
 * The server side (clients of the agent)
 */

int
hd_tls_accept_start(HdConn *conn, SSL_CTX *ctx, char *err, size_t errlen)
{
	HdTls	   *tls = tls_new(conn);
	char		reason[256];

	if (tls == NULL || (tls->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(tls->ssl, conn->fd) != 1)
	{
		snprintf(err, errlen, "%s", tls ? ssl_reason(reason, sizeof(reason)) : "out of memory");
		tls_discard(tls);
		return -1;
	}
	SSL_set_accept_state(tls->ssl);
	tls_attach(conn, tls);
	return 0;
}

/* ---------------------------------------------------------------------------
 * The client side (origin connections)
 */

static bool
is_ip_address(const char *host)
{
	unsigned char addr[16];

	return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static void
add_name(HdTls *tls, const char *name)
{
	if (tls->nnames++ == 0)
		snprintf(tls->first_name, sizeof(tls->first_name), "%s", name);
}

/* A name from a certificate, printable characters only. */
static void
add_asn1_name(HdTls *tls, const ASN1_STRING *str)
{
	const unsigned char *data = ASN1_STRING_get0_data(str);
	int			len = ASN1_STRING_length(str);
	char		name[256];
	int			i;

	for (i = 0; i < len && i < (int) sizeof(name) - 1; i++)
		name[i] = (data[i] >= 0x20 && data[i] < 0x7f) ? (char) data[i] : '?';
	name[i] = '\0';
	add_name(tls, name);
}

/* The names libpq would have compared with the host: SANs, else the CN. */
static void
collect_names(HdTls *tls, X509 *cert)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool		has_dns = false;

	tls->nnames = 0;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++)
	{
		const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);

		if (name->type == GEN_DNS)
		{
			has_dns = true;
			add_asn1_name(tls, name->d.dNSName);
		}
		else if (name->type == GEN_IPADD)
		{
			char		text[INET6_ADDRSTRLEN];
			int			len = ASN1_STRING_length(name->d.iPAddress);
			const unsigned char *addr = ASN1_STRING_get0_data(name->d.iPAddress);

			if ((len == 4 && inet_ntop(AF_INET, addr, text, sizeof(text))) ||
				(len == 16 && inet_ntop(AF_INET6, addr, text, sizeof(text))))
				add_name(tls, text);
		}
	}
	GENERAL_NAMES_free(names);
	if (!has_dns)
	{
		X509_NAME  *subject = X509_get_subject_name(cert);
		int			idx = subject ? X509_NAME_get_index_by_NID(subject, NID_commonName, -1) : -1;

		if (idx >= 0)
			add_asn1_name(tls, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
	}
}

static int
verify_cb(int ok, X509_STORE_CTX *store)
{
	int			error = X509_STORE_CTX_get_error(store);

	if (!ok && (error == X509_V_ERR_HOSTNAME_MISMATCH || error == X509_V_ERR_IP_ADDRESS_MISMATCH))
	{
		SSL		   *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
		HdTls	   *tls = ssl ? SSL_get_app_data(ssl) : NULL;
		X509	   *cert = X509_STORE_CTX_get0_cert(store);

		if (tls && cert)
			collect_names(tls, cert);
	}
	return ok;
}

/* The SSL object for an origin connection, per the config. */
static int
origin_ssl_new(const HdConfig *config, HdTls *tls, char *err, size_t errlen)
{
	bool		verify = config->sslmode >= HD_SSL_VERIFY_CA || config->sslrootcert != NULL;
	char		reason[256];
	SSL_CTX    *ctx;

	ERR_clear_error();
	if (verify && config->sslrootcert == NULL)
	{
		snprintf(err, errlen,
				 "sslmode \"%s\" verifies the server certificate, and the config has no "
				 "sslrootcert: set it to a CA file or \"system\" (hyperdrive update %s "
				 "--sslrootcert=...), or change sslmode to disable server certificate "
				 "verification", hd_sslmode_name(config->sslmode), config->name);
		return -1;
	}
	/* like libpq, one context per connection: the CA file is read afresh */
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
	{
		snprintf(err, errlen, "could not create SSL context: %s",
				 ssl_reason(reason, sizeof(reason)));
		return -1;
	}
	set_common_options(ctx);
	if (verify)
	{
		if (strcmp(config->sslrootcert, "system") == 0)
		{
			if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			{
				snprintf(err, errlen, "could not load system root certificate paths: %s",
						 ssl_reason(reason, sizeof(reason)));
				SSL_CTX_free(ctx);
				return -1;
			}
		}
		else if (SSL_CTX_load_verify_locations(ctx, config->sslrootcert, NULL) != 1)
		{
			snprintf(err, errlen, "could not read root certificate file \"%s\": %s",
					 config->sslrootcert, ssl_reason(reason, sizeof(reason)));
			SSL_CTX_free(ctx);
			return -1;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	}
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	tls->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);			/* the SSL holds its own reference */
	if (tls->ssl == NULL || SSL_set_fd(tls->ssl, tls->conn->fd) != 1)
	{
		snprintf(err, errlen, "could not establish SSL connection: %s",
				 ssl_reason(reason, sizeof(reason)));
		return -1;
	}
	SSL_set_app_data(tls->ssl, tls);	/* for verify_cb, during the handshake */
	SSL_set_connect_state(tls->ssl);
	snprintf(tls->host, sizeof(tls->host), "%s", config->host);
	/* SNI, as libpq sends it (not for an address) */
	if (!is_ip_address(config->host) && SSL_set_tlsext_host_name(tls->ssl, config->host) != 1)
		ERR_clear_error();
	if (config->sslmode == HD_SSL_VERIFY_FULL)
	{
		X509_VERIFY_PARAM *param = SSL_get0_param(tls->ssl);
		int			ok;

		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (is_ip_address(config->host))
			ok = X509_VERIFY_PARAM_set1_ip_asc(param, config->host);
		else
			ok = SSL_set1_host(tls->ssl, config->host);
		if (ok != 1)
		{
			snprintf(err, errlen, "could not set the host name to verify: %s",
					 ssl_reason(reason, sizeof(reason)));
			return -1;
		}
	}
	return 0;
}

/* The reason for a failed origin handshake, in libpq's words (tls->error). */
static void
origin_handshake_error(HdTls *tls, int rc, int saved_errno)
{
	long		result = SSL_get_verify_result(tls->ssl);
	char		err[sizeof(tls->error)];
	size_t		errlen = sizeof(err);

	describe_failure(tls, rc, saved_errno);
	if (result == X509_V_ERR_HOSTNAME_MISMATCH || result == X509_V_ERR_IP_ADDRESS_MISMATCH)
	{
		if (tls->nnames > 1)
			snprintf(err, errlen,
					 "server certificate for \"%s\" (and %d other name%s) does not match host name \"%s\"",
					 tls->first_name, tls->nnames - 1, tls->nnames == 2 ? "" : "s", tls->host);
		else if (tls->nnames == 1)
			snprintf(err, errlen, "server certificate for \"%s\" does not match host name \"%s\"",
					 tls->first_name, tls->host);
		else
			snprintf(err, errlen, "could not get server's host name from server certificate");
	}
	else if (result != X509_V_OK)
		snprintf(err, errlen, "SSL error: certificate verify failed: %s",
				 X509_verify_cert_error_string(result));
	else
		snprintf(err, errlen, "%s", tls->error);
	snprintf(tls->error, sizeof(tls->error), "%s", err);
}

int
hd_tls_connect_start(HdConn *conn, const HdConfig *config, char *err, size_t errlen)
{
	HdTls	   *tls = tls_new(conn);

	if (tls == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -2;
	}
	tls->to_origin = true;
	if (origin_ssl_new(config, tls, err, errlen) < 0)
	{
		tls_discard(tls);
		return -1;
	}
	tls_attach(conn, tls);
	return 0;
}

/* ---------------------------------------------------------------------------
 * The TLS operations (conn.h)
 */

static bool
tls_negotiating(const HdConn *conn)
{
	return conn->tls->phase != HD_TLS_ESTABLISHED;
}

/* One handshake step; a failure leaves its reason in tls->error. */
static HdConnStep
tls_handshake(HdConn *conn)
{
	HdTls	   *tls = conn->tls;
	int			rc;
	int			saved_errno;
	HdConnStep	step;

	if (tls->phase == HD_TLS_ESTABLISHED)
		return HD_CONN_READY;
	step = handshake_step(tls, &rc, &saved_errno);
	if (step != HD_CONN_FAILED)
		return step;
	if (tls->to_origin)
		origin_handshake_error(tls, rc, saved_errno);
	else
		describe_failure(tls, rc, saved_errno);
	return HD_CONN_FAILED;
}

/* Watch for the opposite event when an SSL call needs it. */
static void
update_cross(HdTls *tls)
{
	int			events = (tls->read_wants_write ? EV_WRITE : 0) |
		(tls->write_wants_read ? EV_READ : 0);

	if (tls->closed)
		events = 0;
	if (events == tls->cross_events)
		return;
	ev_io_stop(tls->conn->loop, &tls->cross);
	tls->cross_events = events;
	if (events)
	{
		ev_io_set(&tls->cross, tls->conn->fd, events);
		ev_io_start(tls->conn->loop, &tls->cross);
	}
}

static void
cross_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdTls	   *tls = w->data;
	HdConn	   *conn = tls->conn;
	bool		retry_write = tls->write_wants_read && (revents & EV_READ);
	bool		retry_read = tls->read_wants_write && (revents & EV_WRITE);

	if (retry_write)
		tls->write_wants_read = false;
	if (retry_read)
		tls->read_wants_write = false;
	update_cross(tls);
	/* the connection is freed only before the loop blocks: tls stays valid */
	if (retry_write && !tls->closed)
		ev_invoke(loop, conn->write_watcher, EV_WRITE);
	if (retry_read && !tls->closed && ev_is_active(conn->read_watcher))
		ev_invoke(loop, conn->read_watcher, EV_READ);
}

/* A failed SSL_read/SSL_write: 0 for a clean end of stream, else -1 with errno. */
static long
io_failure(HdTls *tls, int rc, int saved_errno)
{
	int			code = SSL_get_error(tls->ssl, rc);

	if (code == SSL_ERROR_ZERO_RETURN ||
		(code == SSL_ERROR_SYSCALL && saved_errno == 0 && ERR_peek_error() == 0))
	{
		ERR_clear_error();
		return 0;
	}
	describe_failure(tls, rc, saved_errno);
	errno = (code == SSL_ERROR_SYSCALL && saved_errno != 0) ? saved_errno : EPROTO;
	return -1;
}

static long
tls_read(HdConn *conn, HdIoBuf *buf, size_t max)
{
	HdTls	   *tls = conn->tls;
	size_t		total = 0;
	long		result = -2;
	bool		ended = false;
	bool		via_scratch = buf->cap == 0;
	char	   *dst = NULL;

	if (tls->phase != HD_TLS_ESTABLISHED || tls->failed || tls->closed)
	{
		errno = tls->failed ? EPROTO : ENOTCONN;
		return -1;
	}
	if (max > INT_MAX)
		max = INT_MAX;
	if (via_scratch)
	{
		/* nothing buffered: decrypt into the shared buffer (iobuf.h) */
		size_t		cap;

		dst = hd_iobuf_scratch(&cap);
		if (max > cap)
			max = cap;
	}
	else if (hd_iobuf_reserve(buf, max) < 0)
	{
		errno = ENOMEM;
		return -1;
	}
	else
		dst = buf->data + buf->len;
	tls->read_wants_write = false;
	while (total < max)
	{
		int			n;
		int			saved_errno;

		ERR_clear_error();
		errno = 0;
		n = SSL_read(tls->ssl, dst + total, (int) (max - total));
		saved_errno = errno;
		if (n > 0)
		{
			if (!via_scratch)
				buf->len += (size_t) n;
			total += (size_t) n;
			continue;
		}
		switch (SSL_get_error(tls->ssl, n))
		{
			case SSL_ERROR_WANT_READ:
				break;
			case SSL_ERROR_WANT_WRITE:
				tls->read_wants_write = true;
				break;
			default:
				/* what was read comes first; the end or the error next time */
				if (total == 0)
					result = io_failure(tls, n, saved_errno);
				else if (SSL_get_error(tls->ssl, n) != SSL_ERROR_ZERO_RETURN)
					(void) io_failure(tls, n, saved_errno);
				ended = total > 0;
				break;
		}
		break;
	}
	/*
	 * More decrypted or buffered in OpenSSL, or an end or error to report
	 * after the data: epoll cannot see either (the peer may send nothing more).
	 */
	if ((total >= max && SSL_has_pending(tls->ssl)) || ended)
		ev_feed_event(conn->loop, conn->read_watcher, EV_READ);
	if (tls->write_wants_read)
	{
		/*
		 * SSL_write waits for the peer, and SSL_read may just have taken what
		 * it waits for off the socket, where the cross watcher would never see
		 * it: let the write callback try again.
		 */
		tls->write_wants_read = false;
		ev_io_start(conn->loop, conn->write_watcher);
	}
	update_cross(tls);
	if (via_scratch && total > 0 && hd_iobuf_append(buf, dst, total) < 0)
	{
		errno = ENOMEM;
		return -1;
	}
	return total > 0 ? (long) total : result;
}

static int
tls_write(HdConn *conn, HdIoBuf *buf)
{
	HdTls	   *tls = conn->tls;

	if (tls->phase != HD_TLS_ESTABLISHED)
	{
		/*
		 * Sent after the handshake, which owns the write watcher meanwhile: 1
		 * keeps the caller from stopping it under a handshake that waits for
		 * it (a spurious write callback only runs one more handshake step).
		 */
		return 1;
	}
	if (tls->failed || tls->closed)
	{
		errno = tls->failed ? EPROTO : ENOTCONN;
		return -1;
	}
	tls->write_wants_read = false;
	while (hd_iobuf_live(buf) > 0)
	{
		size_t		live = hd_iobuf_live(buf);
		int			n;
		int			saved_errno;

		ERR_clear_error();
		errno = 0;
		n = SSL_write(tls->ssl, hd_iobuf_head(buf), live > INT_MAX ? INT_MAX : (int) live);
		saved_errno = errno;
		if (n > 0)
		{
			hd_iobuf_consume(buf, (size_t) n);
			continue;
		}
		switch (SSL_get_error(tls->ssl, n))
		{
			case SSL_ERROR_WANT_WRITE:
				update_cross(tls);
				return 1;
			case SSL_ERROR_WANT_READ:
				tls->write_wants_read = true;
				update_cross(tls);
				return 1;
			default:
				if (io_failure(tls, n, saved_errno) == 0)
				{
					snprintf(tls->error, sizeof(tls->error), "SSL connection has been closed");
					tls->failed = true;
					errno = EPIPE;
				}
				update_cross(tls);
				return -1;
		}
	}
	update_cross(tls);
	return 0;
}

static void
tls_wait_writable(HdConn *conn)
{
	if (conn->tls->write_wants_read)
		ev_io_stop(conn->loop, conn->write_watcher);	/* the cross watcher calls it back */
	else
		ev_io_start(conn->loop, conn->write_watcher);
}

static void
tls_resume_reading(HdConn *conn)
{
	HdTls	   *tls = conn->tls;

	/* bytes OpenSSL holds, or an end or error tls_read() has yet to report */
	if (tls->phase == HD_TLS_ESTABLISHED && !tls->closed && ev_is_active(conn->read_watcher) &&
		(SSL_has_pending(tls->ssl) || tls->failed ||
		 (SSL_get_shutdown(tls->ssl) & SSL_RECEIVED_SHUTDOWN)))
		ev_feed_event(conn->loop, conn->read_watcher, EV_READ);
}

static const char *
tls_error(const HdConn *conn, int errnum)
{
	if (conn->tls->error[0] != '\0')
		return conn->tls->error;
	return strerror(errnum);
}

static void
tls_send_now(HdConn *conn, const void *bytes, size_t n)
{
	HdTls	   *tls = conn->tls;

	if (tls->phase != HD_TLS_ESTABLISHED || tls->failed || tls->closed)
		return;
	ERR_clear_error();
	(void) SSL_write(tls->ssl, bytes, (int) n);
	ERR_clear_error();
}

static void
tls_close(HdConn *conn)
{
	HdTls	   *tls = conn->tls;

	tls->closed = true;
	ev_io_stop(conn->loop, &tls->cross);
	tls->cross_events = 0;
	if (tls->phase == HD_TLS_ESTABLISHED && !tls->failed)
	{
		/* close_notify, best effort: the socket closes next */
		ERR_clear_error();
		(void) SSL_shutdown(tls->ssl);
		ERR_clear_error();
	}
	hd_conn_plain_ops.close(conn);
}

static void
tls_free(HdConn *conn)
{
	tls_discard(conn->tls);
	conn->tls = NULL;
}

static const HdConnOps tls_ops = {
	.name = "tls",
	.read = tls_read,
	.write = tls_write,
	.wait_writable = tls_wait_writable,
	.resume_reading = tls_resume_reading,
	.negotiating = tls_negotiating,
	.handshake = tls_handshake,
	.send_now = tls_send_now,
	.error = tls_error,
	.close = tls_close,
	.free = tls_free,
};

bool
hd_tls_active(const HdConn *conn)
{
	return conn->tls != NULL;
}

const char *
hd_tls_describe(const HdConn *conn, char *buf, size_t len)
{
	const HdTls *tls = conn->tls;

	if (tls == NULL || tls->phase != HD_TLS_ESTABLISHED)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, "%s %s", SSL_get_version(tls->ssl), SSL_get_cipher_name(tls->ssl));
	return buf;
}
