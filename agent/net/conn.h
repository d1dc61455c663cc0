/*
 * conn.h
 *    A connection's transport: one non-blocking socket, plain or TLS, behind
 *    a table of operations (as PgBouncer's SBufIO or Redis's ConnectionType).
 *
 * An HdConn is embedded in its owner (a client, an origin connection), which
 * keeps its own read and write watchers on the socket and hands them over at
 * hd_conn_init(). The connection starts plain: its operations are read(2)
 * and write(2) through hd_iobuf_read_fd()/hd_iobuf_write_fd(). TLS (tls.h)
 * puts its own table in place when a handshake starts, and the owner's calls
 * stay the same.
 *
 * Contract:
 *   - The connection knows no protocol and no owner. It reports what
 *     happened and never closes on its own: the owner decides, and closes
 *     with hd_conn_close().
 *   - hd_conn_read() returns what hd_iobuf_read_fd() does: >0 bytes read, 0
 *     end of stream, -1 error (errno; hd_conn_error() says more), -2 would
 *     block. hd_conn_write() returns what hd_iobuf_write_fd() does: 0 all
 *     written, 1 some left, -1 error (errno; hd_conn_error()). After 1 the
 *     owner calls hd_conn_wait_writable() instead of starting its write
 *     watcher itself (TLS may need the socket readable first).
 *   - While hd_conn_negotiating(), the owner's callbacks call
 *     hd_conn_handshake() instead of reading or writing: HD_CONN_WAIT (the
 *     watchers are set), HD_CONN_READY (read and write from now on), or
 *     HD_CONN_FAILED (hd_conn_error() says why). A plain connection is never
 *     negotiating; its handshake is READY at once.
 *   - The connection starts, stops and invokes the owner's watchers for its
 *     own needs (TLS does: tls.h). The owner still stops and starts its read
 *     watcher as it likes (back-pressure), and calls hd_conn_resume_reading()
 *     after starting it again: a transport may hold bytes the socket's
 *     watcher cannot see.
 *   - hd_conn_close(): the owner's watchers stopped, TLS close_notify (best
 *     effort, never blocks), then the socket; fd is -1 afterwards, and a
 *     second close does nothing. hd_conn_free() when the owner is freed, not
 *     sooner (a callback may still look at the connection); after it the
 *     connection is plain and closed.
 */
#ifndef HD_CONN_H
#define HD_CONN_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/iobuf.h"

typedef struct HdConn HdConn;

typedef enum HdConnStep
{
	HD_CONN_WAIT,				/* waiting for the socket: the watchers are set */
	HD_CONN_READY,				/* the handshake is done (or there is none) */
	HD_CONN_FAILED				/* hd_conn_error() says why */
} HdConnStep;

/* One kind of transport: what hd_conn_*() call (see the contract above). */
typedef struct HdConnOps
{
	const char *name;			/* "plain", "tls" */
	long		(*read) (HdConn *conn, HdIoBuf *buf, size_t max);
	int			(*write) (HdConn *conn, HdIoBuf *buf);
	void		(*wait_writable) (HdConn *conn);
	/* the read watcher was (re)started: have it called for what is held */
	void		(*resume_reading) (HdConn *conn);
	bool		(*negotiating) (const HdConn *conn);
	HdConnStep	(*handshake) (HdConn *conn);
	/* best effort, never blocks, failures ignored (a Terminate before closing) */
	void		(*send_now) (HdConn *conn, const void *bytes, size_t n);
	const char *(*error) (const HdConn *conn, int errnum);
	/* the transport's goodbye, then the socket: fd is -1 after it */
	void		(*close) (HdConn *conn);
	/* what the transport allocated; the connection is plain after it */
	void		(*free) (HdConn *conn);
} HdConnOps;

struct HdConn
{
	const HdConnOps *ops;
	int			fd;				/* -1 once closed */
	struct ev_loop *loop;
	ev_io	   *read_watcher;	/* the owner's, on fd */
	ev_io	   *write_watcher;
	struct HdTls *tls;			/* the TLS operations' state (tls.c); NULL when plain */
};

/* read(2) and write(2) on the socket. */
extern const HdConnOps hd_conn_plain_ops;

/* A plain connection on fd (non-blocking), with the owner's watchers on it. */
extern void hd_conn_init(HdConn *conn, struct ev_loop *loop, int fd, ev_io *read_watcher,
						 ev_io *write_watcher);

extern long hd_conn_read(HdConn *conn, HdIoBuf *buf, size_t max);
extern int	hd_conn_write(HdConn *conn, HdIoBuf *buf);
/* In the clear whatever the operations are: what goes before a TLS handshake. */
extern int	hd_conn_write_clear(HdConn *conn, HdIoBuf *buf);
extern void hd_conn_wait_writable(HdConn *conn);
/*
 * Write what out holds: 0 all of it (the write watcher stopped, out's memory
 * given back), 1 some is left (the connection waits to be writable), -1 an
 * error (errno; hd_conn_error() says more: the owner closes).
 */
extern int	hd_conn_flush(HdConn *conn, HdIoBuf *out);
extern void hd_conn_resume_reading(HdConn *conn);
extern bool hd_conn_negotiating(const HdConn *conn);
extern HdConnStep hd_conn_handshake(HdConn *conn);
extern void hd_conn_send_now(HdConn *conn, const void *bytes, size_t n);
/* Why the last call failed: the transport's reason if it has one, else strerror(errnum). */
extern const char *hd_conn_error(const HdConn *conn, int errnum);
extern void hd_conn_close(HdConn *conn);
extern void hd_conn_free(HdConn *conn);

#endif							/* HD_CONN_H */
