/*
 * tls_negotiate.c
 *    PostgreSQL's SSLRequest, both ways, around net/'s TLS handshakes. See
 *    tls_negotiate.h.
 */
#include "pgwire/pooler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/sqlstate.h"
#include "net/tls.h"
#include "pgwire/proto.h"
#include "pgwire/tls_negotiate.h"

/* ---------------------------------------------------------------------------
 * Clients
 */

bool
hd_client_ssl_request(HdClient *client)
{
	HdAgent    *agent = client->agent;
	char		reason[256];

	if (hd_tls_active(&client->sock))
	{
		/* inside TLS already: PostgreSQL reads it as a protocol version */
		hd_client_fatal(client, HD_SQLSTATE_FEATURE_NOT_SUPPORTED,
						"unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0",
						NULL);
		return true;
	}
	/* not on the Unix-domain socket, as PostgreSQL: 'N' */
	if (agent->tls_ctx == NULL || client->local_socket)
		return false;
	if (hd_iobuf_live(&client->in) > 0)
	{
		/* sent before our answer: not encrypted, maybe injected (CVE-2021-23214) */
		hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "received unencrypted data after SSL request",
						"This could be either a client-software bug or evidence of an "
						"attempted man-in-the-middle attack.");
		return true;
	}
	if (hd_tls_accept_start(&client->sock, agent->tls_ctx, reason, sizeof(reason)) < 0)
	{
		hd_warning("client %s: could not start TLS: %s", client->addr, reason);
		hd_client_close(client);
		return true;
	}
	/* 'S' goes out in the clear, after anything queued before it */
	if (hd_iobuf_append(&client->out, "S", 1) < 0 ||
		hd_conn_write_clear(&client->sock, &client->out) != 0)
	{
		hd_debug("client %s: could not send 'S': %s", client->addr, strerror(errno));
		hd_client_close(client);
		return true;
	}
	return true;
}

bool
hd_client_tls_handshake(HdClient *client)
{
	char		desc[128];

	if (client->close_after_flush)
	{
		/* a fatal error before TLS was up: it cannot be sent */
		hd_client_close(client);
		return false;
	}
	switch (hd_conn_handshake(&client->sock))
	{
		case HD_CONN_READY:
			hd_debug("client %s: TLS established (%s)", client->addr,
					 hd_tls_describe(&client->sock, desc, sizeof(desc)));
			return true;
		case HD_CONN_WAIT:
			return false;
		case HD_CONN_FAILED:
			break;
	}
	hd_info("client %s: could not accept SSL connection: %s", client->addr,
			hd_conn_error(&client->sock, 0));
	hd_client_close(client);
	return false;
}

/* ---------------------------------------------------------------------------
 * Origin connections
 */

bool
hd_origin_tls_negotiating(const HdServer *server)
{
	return server->ssl_requested || hd_conn_negotiating(&server->sock);
}

/* What the origin answered to the SSLRequest: its first byte and what follows. */
static HdConnStep
origin_response(HdServer *server, char *sqlstate, char *err, size_t errlen)
{
	const HdConfig *config = &server->pool->config;
	const char *head = hd_iobuf_head(&server->in);
	size_t		live = hd_iobuf_live(&server->in);
	char		answer = head[0];

	if (answer == 'S' || answer == 'N')
	{
		if (live > 1)
		{
			/* an attacker in the middle could inject these (CVE-2021-23222) */
			snprintf(sqlstate, 6, HD_SQLSTATE_PROTOCOL_VIOLATION);
			snprintf(err, errlen, "received unencrypted data after SSL response");
			return HD_CONN_FAILED;
		}
		hd_iobuf_consume(&server->in, 1);
		server->ssl_requested = false;
		if (answer == 'N')
		{
			if (config->sslmode >= HD_SSL_REQUIRE)
			{
				snprintf(err, errlen, "server does not support SSL, but SSL was required");
				return HD_CONN_FAILED;
			}
			/* prefer: on in the clear */
			return HD_CONN_READY;
		}
		switch (hd_tls_connect_start(&server->sock, config, err, errlen))
		{
			case 0:
				break;
			case -2:
				snprintf(sqlstate, 6, HD_SQLSTATE_OUT_OF_MEMORY);
				return HD_CONN_FAILED;
			default:
				return HD_CONN_FAILED;
		}
		return HD_CONN_WAIT;	/* the caller goes on with the handshake */
	}
	if (head[0] == 'E')
	{
		/* e.g. too many connections: an ErrorResponse in the clear */
		uint32_t	len;
		const char *message;
		const char *code;

		if (live < 5)
			return HD_CONN_WAIT;
		len = hd_get_u32(head + 1);
		if (len < 4 || len > 30000)
		{
			snprintf(sqlstate, 6, HD_SQLSTATE_PROTOCOL_VIOLATION);
			snprintf(err, errlen, "received invalid response to SSL negotiation: %c", 'E');
			return HD_CONN_FAILED;
		}
		if (live < (size_t) len + 1)
			return HD_CONN_WAIT;
		message = hd_error_field(head + 5, len - 4, 'M');
		code = hd_error_field(head + 5, len - 4, 'C');
		if (code && strlen(code) == 5)
			snprintf(sqlstate, 6, "%s", code);
		snprintf(err, errlen, "%s", message ? message : "the origin refused the SSL request");
		return HD_CONN_FAILED;
	}
	snprintf(sqlstate, 6, HD_SQLSTATE_PROTOCOL_VIOLATION);
	if (head[0] >= 0x20 && head[0] < 0x7f)
		snprintf(err, errlen, "received invalid response to SSL negotiation: %c", head[0]);
	else
		snprintf(err, errlen, "received invalid response to SSL negotiation: 0x%02x",
				 (unsigned char) head[0]);
	return HD_CONN_FAILED;
}

/* The SSLRequest in server->out; false when it did not fit (out of memory). */
static bool
queue_ssl_request(HdServer *server)
{
	HdMsg		msg;

	hd_msg_begin(&msg, &server->out, 0);
	hd_msg_put_u32(&msg, HD_SSL_REQUEST_CODE);
	return hd_msg_end(&msg) == 0;
}

/* Send the SSLRequest, then read the answer (in the clear). */
static HdConnStep
ssl_request_step(HdServer *server, char *sqlstate, char *err, size_t errlen)
{
	struct ev_loop *loop = server->agent->loop;
	int			rc;
	long		n;

	rc = hd_conn_write(&server->sock, &server->out);
	if (rc < 0)
	{
		snprintf(err, errlen, "could not send SSL negotiation packet: %s", strerror(errno));
		return HD_CONN_FAILED;
	}
	if (rc > 0)
	{
		hd_conn_wait_writable(&server->sock);
		return HD_CONN_WAIT;
	}
	ev_io_stop(loop, &server->write_watcher);
	ev_io_start(loop, &server->read_watcher);
	n = hd_conn_read(&server->sock, &server->in, HD_READ_CHUNK);
	if (n == 0)
	{
		snprintf(err, errlen, "server closed the connection unexpectedly");
		return HD_CONN_FAILED;
	}
	if (n == -1)
	{
		snprintf(err, errlen, "could not receive data from server: %s", strerror(errno));
		return HD_CONN_FAILED;
	}
	if (hd_iobuf_live(&server->in) == 0)
		return HD_CONN_WAIT;
	return origin_response(server, sqlstate, err, errlen);
}

HdConnStep
hd_origin_tls_step(HdServer *server, char sqlstate[6], char *err, size_t errlen)
{
	const HdConfig *config = &server->pool->config;
	char		desc[128];

	snprintf(sqlstate, 6, HD_SQLSTATE_UNABLE_TO_CONNECT);
	if (!hd_origin_tls_negotiating(server))
	{
		/* allow: libpq tries in the clear first, and so do we (only) */
		if (config->sslmode <= HD_SSL_ALLOW)
			return HD_CONN_READY;
		if (!queue_ssl_request(server))
		{
			snprintf(sqlstate, 6, HD_SQLSTATE_OUT_OF_MEMORY);
			snprintf(err, errlen, "out of memory");
			return HD_CONN_FAILED;
		}
		server->ssl_requested = true;
	}
	if (server->ssl_requested)
	{
		HdConnStep	step = ssl_request_step(server, sqlstate, err, errlen);

		if (step != HD_CONN_WAIT || server->ssl_requested)
			return step;
		/* 'S': the handshake starts now */
	}
	switch (hd_conn_handshake(&server->sock))
	{
		case HD_CONN_READY:
			hd_debug("origin connection to %s:%d (config %s): TLS established (%s)",
					 config->host, config->port, config->name,
					 hd_tls_describe(&server->sock, desc, sizeof(desc)));
			return HD_CONN_READY;
		case HD_CONN_WAIT:
			return HD_CONN_WAIT;
		case HD_CONN_FAILED:
			break;
	}
	snprintf(err, errlen, "%s", hd_conn_error(&server->sock, 0));
	return HD_CONN_FAILED;
}
