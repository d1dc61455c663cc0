/*
 * tls_negotiate.h
 *    PostgreSQL's SSLRequest, both ways: what the protocol says around a TLS
 *    handshake, over the connections of net/ (conn.h, tls.h).
 *
 * Client-facing: with tls_cert_file and tls_key_file set (settings.h), an
 * SSLRequest is answered 'S' and the handshake runs (hd_conn_handshake()
 * from the client's callbacks); the StartupMessage then comes over TLS.
 * Bytes that arrived after the SSLRequest, before 'S' was sent, are refused
 * (08P01 "received unencrypted data after SSL request", CVE-2021-23214). An
 * SSLRequest inside TLS is an unsupported protocol version, as PostgreSQL
 * has it. Without TLS configured, or on the Unix-domain socket, the caller
 * answers 'N' as before.
 *
 * Origin-facing: the config's sslmode, as libpq does it: disable and allow
 * connect in the clear; prefer, require, verify-ca and verify-full send an
 * SSLRequest first. 'N' is an error from require up; 'S' starts the
 * handshake (tls.h verifies per sslmode and sslrootcert). Bytes after the
 * answer are refused (CVE-2021-23222); an ErrorResponse in the clear is the
 * origin's refusal. Errors use libpq's words and carry a SQLSTATE.
 *
 * Contract: these functions decide and close; the connection only reports.
 */
#ifndef HD_TLS_NEGOTIATE_H
#define HD_TLS_NEGOTIATE_H

#include <stdbool.h>
#include <stddef.h>

#include "net/conn.h"

struct HdClient;
struct HdServer;

/*
 * The client sent an SSLRequest (already consumed from client->in). Returns
 * false if client TLS is off (the caller answers 'N'); true if it was handled:
 * 'S' sent and the handshake started, or the client refused and closing.
 */
extern bool hd_client_ssl_request(struct HdClient *client);
/* One handshake step; true once it is done (the client may be read); closes on failure. */
extern bool hd_client_tls_handshake(struct HdClient *client);

/* Whether the SSLRequest exchange or the handshake with the origin goes on. */
extern bool hd_origin_tls_negotiating(const struct HdServer *server);

/*
 * The SSLRequest exchange and the handshake, per the config's sslmode: call
 * it once connected, then from the read and write callbacks while
 * hd_origin_tls_negotiating(). HD_CONN_READY: send the StartupMessage now
 * (over TLS or not); HD_CONN_FAILED: sqlstate and err say why (the caller
 * closes).
 */
extern HdConnStep hd_origin_tls_step(struct HdServer *server, char sqlstate[6], char *err,
									 size_t errlen);

#endif							/* HD_TLS_NEGOTIATE_H */
