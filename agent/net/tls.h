/*
 * tls.h
 *    TLS (OpenSSL's libssl) for the agent's connections, non-blocking in the
 *    libev loop: the TLS operations of a connection (conn.h).
 *
 * This file knows OpenSSL, not PostgreSQL: the SSLRequest, the 'S' or 'N'
 * answer and what is refused around them are the protocol layer's
 * (pgwire/tls_negotiate.c), which starts a handshake here once the peer
 * agreed, and decides what a failure means for its connection.
 *
 * Client-facing: a context from tls_cert_file and tls_key_file (settings.h),
 * loaded at start and reloaded with the settings; hd_tls_accept_start()
 * makes a connection the server side of a handshake (SSL_accept).
 *
 * Origin-facing: hd_tls_connect_start() makes a connection the client side
 * (SSL_connect) per the config's sslmode and sslrootcert, as libpq does
 * them: certificates are verified against sslrootcert (a file, or "system")
 * for verify-ca and verify-full, and for any mode when sslrootcert is set;
 * the host name (or IP address) for verify-full. A failed handshake's reason
 * (hd_conn_error()) is in libpq's words.
 *
 * Transport: once started, the connection's operations are TLS's. When
 * OpenSSL needs the opposite event (SSL_read waiting for the socket to be
 * writable, SSL_write waiting for it to be readable), an extra watcher of
 * the connection's TLS state waits for that event and then calls the owner's
 * own read or write callback again (a read that may have taken what a
 * waiting SSL_write needed restarts the write watcher). What OpenSSL holds
 * that the socket watcher cannot see (bytes, or an end or error after the
 * bytes already returned) is fed to the read watcher (ev_feed_event) after a
 * read, at the end of the handshake and on hd_conn_resume_reading().
 *
 * Contract (beyond conn.h's):
 *   - The handshake steps (hd_conn_handshake()) set both watchers: the read
 *     watcher stays on, the write watcher is on while OpenSSL waits for the
 *     socket to take bytes. hd_conn_write() returns 1 meanwhile, so that no
 *     caller stops the write watcher under it; hd_conn_read() returns -1
 *     (ENOTCONN).
 *   - hd_conn_close() sends close_notify (best effort) on an established,
 *     unfailed connection before closing the socket; hd_conn_free() frees
 *     the SSL object and the state.
 *   - A context passed to a start function may be freed afterwards: each
 *     connection holds its own reference.
 */
#ifndef HD_TLS_H
#define HD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config/configs.h"
#include "config/settings.h"
#include "net/conn.h"

struct ssl_ctx_st;				/* OpenSSL's SSL_CTX */

typedef struct HdTls HdTls;

/* ---- the client-facing context ---- */

/* At start: *ctx from tls_cert_file/tls_key_file if set, else NULL; -1 with err naming the file. */
extern int	hd_tls_accept_ctx_load(struct ssl_ctx_st **ctx, const HdSettings *settings,
								   char *err, size_t errlen);
/* After a settings reload: a bad pair keeps the previous context, logged. */
extern void hd_tls_accept_ctx_reload(struct ssl_ctx_st **ctx, const HdSettings *settings);
extern void hd_tls_ctx_free(struct ssl_ctx_st **ctx);

/* ---- starting a handshake on a plain connection ---- */

/*
 * The server side (a client of the agent), with ctx. Its operations become
 * TLS's and it negotiates; -1 with err when it could not start (it stays plain).
 */
extern int	hd_tls_accept_start(HdConn *conn, struct ssl_ctx_st *ctx, char *err, size_t errlen);
/*
 * The client side (to the origin), verified per the config; as above, and -2
 * when out of memory (the caller reports that, not a failed connection).
 */
extern int	hd_tls_connect_start(HdConn *conn, const HdConfig *config, char *err, size_t errlen);

/* ---- a connection ---- */

/* Whether its operations are TLS's (negotiating or established). */
extern bool hd_tls_active(const HdConn *conn);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" when not (yet) encrypted. */
extern const char *hd_tls_describe(const HdConn *conn, char *buf, size_t len);

#endif							/* HD_TLS_H */
