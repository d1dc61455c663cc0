/*
 * tls.h
 *    TLS (OpenSSL's libssl) for the agent, non-blocking in the libev loop.
 *
 * Client-facing: with tls_cert_file and tls_key_file set (settings.h), an
 * SSLRequest is answered 'S' and the handshake runs (SSL_accept driven by
 * the client's watchers); the StartupMessage then comes over TLS. Bytes that
 * arrived after the SSLRequest, before 'S' was sent, are refused (08P01
 * "received unencrypted data after SSL request", CVE-2021-23214). Without
 * TLS configured the agent answers 'N' as before.
 *
 * Origin-facing: the config's sslmode and sslrootcert, as libpq does them:
 * disable and allow connect in the clear; prefer, require, verify-ca and
 * verify-full send an SSLRequest first. 'N' is an error from require up;
 * certificates are verified against sslrootcert (a file, or "system") for
 * verify-ca and verify-full, and for any mode when sslrootcert is set; the
 * host name (or IP address) for verify-full. Errors use libpq's words.
 *
 * Transport: every socket read and write of a client or a server goes
 * through hd_tls_read()/hd_tls_write(); with a NULL HdTls they are
 * hd_iobuf_read_fd()/hd_iobuf_write_fd(). When OpenSSL needs the opposite
 * event (SSL_read waiting for the socket to be writable, SSL_write waiting
 * for it to be readable), an extra watcher of the HdTls waits for that event
 * and then calls the connection's own read or write callback again (a read
 * that may have taken what a waiting SSL_write needed restarts the write
 * watcher). What OpenSSL holds that the socket watcher cannot see (bytes, or
 * an end or error after the bytes already returned) is fed to the read
 * watcher (ev_feed_event) after a read, at the end of the handshake and on
 * hd_tls_resume_reading().
 *
 * Contract:
 *   - An HdTls belongs to one connection (client->tls, server->tls). It is
 *     closed with hd_tls_close() (close_notify, best effort) before the
 *     socket is closed, and freed with hd_tls_free() when the connection is
 *     freed (not sooner: a callback may still look at it).
 *   - hd_tls_read() returns what hd_iobuf_read_fd() does: >0 bytes read, 0
 *     end of stream, -1 error (errno; hd_tls_error() says more), -2 would
 *     block. hd_tls_write() returns what hd_iobuf_write_fd() does: 0 all
 *     written, 1 some left, -1 error. After 1, the caller calls
 *     hd_tls_wait_writable() instead of starting its write watcher itself.
 *   - While a connection negotiates (hd_tls_negotiating()), its callbacks
 *     call the handshake steps below instead of reading or writing. The
 *     steps set both watchers: the read watcher stays on, the write watcher
 *     is on while OpenSSL waits for the socket to take bytes. hd_tls_write()
 *     returns 1 meanwhile, so that no caller stops the write watcher under it.
 */
#ifndef HD_TLS_H
#define HD_TLS_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/iobuf.h"

struct HdAgent;
struct HdClient;
struct HdServer;
struct ssl_ctx_st;				/* OpenSSL's SSL_CTX */

typedef struct HdTls HdTls;

/* ---- the client-facing context (agent->tls_ctx) ---- */

/* At start: load tls_cert_file/tls_key_file if set; -1 with err naming the file. */
extern int	hd_tls_agent_load(struct HdAgent *agent, char *err, size_t errlen);
/* After a settings reload: a bad pair keeps the previous context, logged. */
extern void hd_tls_agent_reload(struct HdAgent *agent);
extern void hd_tls_agent_free(struct HdAgent *agent);

/* ---- clients ---- */

/*
 * The client sent an SSLRequest (already consumed from client->in). Returns
 * false if client TLS is off (the caller answers 'N'); true if it was handled:
 * 'S' sent and the handshake started, or the client refused and closing.
 */
extern bool hd_tls_client_ssl_request(struct HdClient *client);
/* One handshake step; true once the handshake is done (the client may be read). */
extern bool hd_tls_client_handshake(struct HdClient *client);

/* ---- servers (origin connections) ---- */

typedef enum HdTlsStep
{
	HD_TLS_WAIT,				/* waiting for the socket: the watchers are set */
	HD_TLS_READY,				/* send the StartupMessage now (over TLS or not) */
	HD_TLS_FAILED				/* sqlstate and err say why */
} HdTlsStep;

/*
 * The SSLRequest exchange and the handshake, per the config's sslmode: call
 * it once connected, then from the read and write callbacks while
 * hd_tls_negotiating(server->tls). server->tls is set while TLS is tried.
 */
extern HdTlsStep hd_tls_origin_step(struct HdServer *server, char sqlstate[6], char *err,
									size_t errlen);

/* ---- both ---- */

/* Whether the SSLRequest exchange or the handshake is still going on. */
extern bool hd_tls_negotiating(const HdTls *tls);
extern long hd_tls_read(HdTls *tls, HdIoBuf *buf, int fd, size_t max);
extern int	hd_tls_write(HdTls *tls, HdIoBuf *buf, int fd);
/* After hd_tls_write() returned 1: start write_watcher, unless TLS waits to read. */
extern void hd_tls_wait_writable(HdTls *tls, struct ev_loop *loop, ev_io *write_watcher);
/* The read watcher was (re)started: have it called for data OpenSSL holds. */
extern void hd_tls_resume_reading(HdTls *tls);
/* Why the last call failed: the TLS error if there was one, else strerror(errnum). */
extern const char *hd_tls_error(const HdTls *tls, int errnum);
/* Best effort, never blocks: e.g. a Terminate before closing. */
extern void hd_tls_send_now(HdTls *tls, int fd, const void *bytes, size_t n);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" when not (yet) encrypted. */
extern const char *hd_tls_describe(const HdTls *tls, char *buf, size_t len);
extern void hd_tls_close(HdTls *tls);
extern void hd_tls_free(HdTls *tls);

#endif							/* HD_TLS_H */
