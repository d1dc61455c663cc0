/*
 * test_conn.c
 *    Unit tests of conn.c, the connection's operations table, with its plain
 *    operations over a socketpair: what read and write return (bytes, would
 *    block, end of stream, error with its text), the write watcher after a
 *    partial write, the handshake a plain connection does not have, close
 *    and free. No server, no TLS (t/050_tls.pl covers the TLS operations).
 *    Prints TAP; run by t/014_conn_unit.pl.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/conn.h"
#include "tap.h"

static void
noop_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void) loop;
	(void) w;
	(void) revents;
}

typedef struct Pair
{
	struct ev_loop *loop;
	ev_io		read_watcher;
	ev_io		write_watcher;
	HdConn		conn;			/* on sv[0] */
	int			peer;			/* sv[1], blocking: the test's side */
} Pair;

static void
set_nonblocking(int fd)
{
	int			flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
	{
		perror("fcntl");
		exit(2);
	}
}

static void
pair_open(Pair *p, struct ev_loop *loop)
{
	int			sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
	{
		perror("socketpair");
		exit(2);
	}
	set_nonblocking(sv[0]);
	p->loop = loop;
	p->peer = sv[1];
	ev_io_init(&p->read_watcher, noop_cb, sv[0], EV_READ);
	ev_io_init(&p->write_watcher, noop_cb, sv[0], EV_WRITE);
	hd_conn_init(&p->conn, loop, sv[0], &p->read_watcher, &p->write_watcher);
}

static void
pair_close(Pair *p)
{
	hd_conn_close(&p->conn);
	hd_conn_free(&p->conn);
	if (p->peer >= 0)
		close(p->peer);
	p->peer = -1;
}

static void
test_init(struct ev_loop *loop)
{
	Pair		p;

	pair_open(&p, loop);
	ok(p.conn.ops == &hd_conn_plain_ops && strcmp(p.conn.ops->name, "plain") == 0,
	   "init: the plain operations");
	ok(p.conn.fd == p.read_watcher.fd && p.conn.tls == NULL, "init: the socket, no TLS state");
	ok(!hd_conn_negotiating(&p.conn), "plain: never negotiating");
	ok(hd_conn_handshake(&p.conn) == HD_CONN_READY, "plain: the handshake is ready at once");
	pair_close(&p);
}

static void
test_read(struct ev_loop *loop)
{
	Pair		p;
	HdIoBuf		in = {0};
	long		n;

	pair_open(&p, loop);
	n = hd_conn_read(&p.conn, &in, 65536);
	ok(n == -2 && hd_iobuf_live(&in) == 0, "read: nothing there is -2 (would block)");

	if (write(p.peer, "hello", 5) != 5)
		exit(2);
	n = hd_conn_read(&p.conn, &in, 65536);
	ok(n == 5 && hd_iobuf_live(&in) == 5 && memcmp(hd_iobuf_head(&in), "hello", 5) == 0,
	   "read: the bytes, into an unallocated buffer");

	if (write(p.peer, " world", 6) != 6)
		exit(2);
	n = hd_conn_read(&p.conn, &in, 3);
	ok(n == 3 && hd_iobuf_live(&in) == 8 && memcmp(hd_iobuf_head(&in), "hello wo", 8) == 0,
	   "read: appended in place, at most max bytes");
	n = hd_conn_read(&p.conn, &in, 65536);
	ok(n == 3 && memcmp(hd_iobuf_head(&in), "hello world", 11) == 0, "read: the rest");

	close(p.peer);
	p.peer = -1;
	n = hd_conn_read(&p.conn, &in, 65536);
	ok(n == 0, "read: the peer closed is 0 (end of stream)");
	ok(hd_iobuf_live(&in) == 11, "read: the end leaves the buffer as it was");
	hd_iobuf_free(&in);
	pair_close(&p);
}

static void
test_read_error(struct ev_loop *loop)
{
	Pair		p;
	HdIoBuf		in = {0};
	HdIoBuf		out = {0};
	long		n;
	int			saved_errno;

	/* the peer closes with our bytes unread: the next read(2) fails (ECONNRESET) */
	pair_open(&p, loop);
	hd_iobuf_append(&out, "unread", 6);
	if (hd_conn_write(&p.conn, &out) != 0)
		exit(2);
	close(p.peer);
	p.peer = -1;
	errno = 0;
	n = hd_conn_read(&p.conn, &in, 65536);
	saved_errno = errno;
	ok(n == -1 && saved_errno == ECONNRESET, "read: an error is -1 with errno");
	ok(strcmp(hd_conn_error(&p.conn, saved_errno), strerror(ECONNRESET)) == 0,
	   "error: the plain text is strerror(errno)");
	ok(p.conn.fd >= 0, "read: an error does not close the connection: the owner decides");
	hd_iobuf_free(&in);
	hd_iobuf_free(&out);
	pair_close(&p);
}

static void
test_write(struct ev_loop *loop)
{
	Pair		p;
	HdIoBuf		out = {0};
	char		got[16];
	size_t		big = 8 * 1024 * 1024;
	char	   *junk = calloc(1, big);
	int			rc;
	int			saved_errno;

	pair_open(&p, loop);
	hd_iobuf_append(&out, "ping", 4);
	rc = hd_conn_write(&p.conn, &out);
	ok(rc == 0 && hd_iobuf_live(&out) == 0, "write: all written is 0");
	ok(read(p.peer, got, sizeof(got)) == 4 && memcmp(got, "ping", 4) == 0,
	   "write: the peer has the bytes");

	/* more than the socket buffers take: the rest stays */
	if (junk == NULL || hd_iobuf_append(&out, junk, big) < 0)
		exit(2);
	rc = hd_conn_write(&p.conn, &out);
	ok(rc == 1 && hd_iobuf_live(&out) > 0 && hd_iobuf_live(&out) < big,
	   "write: some left is 1, the rest still buffered");
	ok(!ev_is_active(&p.write_watcher), "write: the write watcher is the owner's to start");
	hd_conn_wait_writable(&p.conn);
	ok(ev_is_active(&p.write_watcher), "wait_writable: plain starts the write watcher");

	close(p.peer);
	p.peer = -1;
	errno = 0;
	rc = hd_conn_write(&p.conn, &out);
	saved_errno = errno;
	ok(rc == -1 && saved_errno == EPIPE, "write: the peer gone is -1 with errno (EPIPE)");
	ok(strcmp(hd_conn_error(&p.conn, saved_errno), strerror(EPIPE)) == 0,
	   "error: its text is strerror(errno)");
	ok(p.conn.fd >= 0, "write: an error does not close the connection either");

	hd_iobuf_free(&out);
	free(junk);
	pair_close(&p);
	ok(!ev_is_active(&p.write_watcher), "close: the write watcher is stopped");
}

static void
test_write_clear_and_send_now(struct ev_loop *loop)
{
	Pair		p;
	HdIoBuf		out = {0};
	char		got[16];

	pair_open(&p, loop);
	hd_iobuf_append(&out, "S", 1);
	ok(hd_conn_write_clear(&p.conn, &out) == 0 && read(p.peer, got, 1) == 1 && got[0] == 'S',
	   "write_clear: in the clear");
	hd_conn_send_now(&p.conn, "X\0\0\0\4", 5);
	ok(read(p.peer, got, sizeof(got)) == 5 && got[0] == 'X' && got[4] == 4,
	   "send_now: the bytes go out at once");
	hd_iobuf_free(&out);
	pair_close(&p);
}

static void
test_close(struct ev_loop *loop)
{
	Pair		p;
	char		got[4];
	int			fd;

	pair_open(&p, loop);
	fd = p.conn.fd;
	ev_io_start(loop, &p.read_watcher);
	ev_io_start(loop, &p.write_watcher);
	hd_conn_resume_reading(&p.conn);
	ok(ev_is_active(&p.read_watcher) && !ev_is_pending(&p.read_watcher),
	   "resume_reading: plain feeds nothing (the socket watcher sees all)");

	hd_conn_close(&p.conn);
	ok(p.conn.fd == -1, "close: fd is -1");
	ok(!ev_is_active(&p.read_watcher) && !ev_is_active(&p.write_watcher),
	   "close: the owner's watchers are stopped");
	ok(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "close: the socket is closed");
	ok(read(p.peer, got, sizeof(got)) == 0, "close: the peer sees the end of stream");
	hd_conn_close(&p.conn);
	ok(p.conn.fd == -1, "close: a second close does nothing");
	hd_conn_free(&p.conn);
	ok(p.conn.ops == &hd_conn_plain_ops && p.conn.tls == NULL, "free: plain, no TLS state");
	close(p.peer);
}

int
main(void)
{
	struct ev_loop *loop = ev_default_loop(0);

	/* as the agent: a peer that went away is EPIPE, not a signal */
	signal(SIGPIPE, SIG_IGN);
	test_init(loop);
	test_read(loop);
	test_read_error(loop);
	test_write(loop);
	test_write_clear_and_send_now(loop);
	test_close(loop);
	return tap_done();
}
