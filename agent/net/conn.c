/*
 * conn.c
 *    The connection's operations table, and its plain operations. See conn.h.
 */
#include "net/conn.h"

#include <string.h>
#include <unistd.h>

static long
plain_read(HdConn *conn, HdIoBuf *buf, size_t max)
{
	return hd_iobuf_read_fd(buf, conn->fd, max);
}

static int
plain_write(HdConn *conn, HdIoBuf *buf)
{
	return hd_iobuf_write_fd(buf, conn->fd);
}

static void
plain_wait_writable(HdConn *conn)
{
	ev_io_start(conn->loop, conn->write_watcher);
}

static void
plain_resume_reading(HdConn *conn)
{
	/* the socket holds everything there is: the read watcher sees it */
	(void) conn;
}

static bool
plain_negotiating(const HdConn *conn)
{
	(void) conn;
	return false;
}

static HdConnStep
plain_handshake(HdConn *conn)
{
	(void) conn;
	return HD_CONN_READY;
}

static void
plain_send_now(HdConn *conn, const void *bytes, size_t n)
{
	ssize_t		rc = write(conn->fd, bytes, n);

	(void) rc;
}

static const char *
plain_error(const HdConn *conn, int errnum)
{
	(void) conn;
	return strerror(errnum);
}

static void
plain_close(HdConn *conn)
{
	close(conn->fd);
	conn->fd = -1;
}

static void
plain_free(HdConn *conn)
{
	(void) conn;
}

const HdConnOps hd_conn_plain_ops = {
	.name = "plain",
	.read = plain_read,
	.write = plain_write,
	.wait_writable = plain_wait_writable,
	.resume_reading = plain_resume_reading,
	.negotiating = plain_negotiating,
	.handshake = plain_handshake,
	.send_now = plain_send_now,
	.error = plain_error,
	.close = plain_close,
	.free = plain_free,
};

void
hd_conn_init(HdConn *conn, struct ev_loop *loop, int fd, ev_io *read_watcher,
			 ev_io *write_watcher)
{
	conn->ops = &hd_conn_plain_ops;
	conn->fd = fd;
	conn->loop = loop;
	conn->read_watcher = read_watcher;
	conn->write_watcher = write_watcher;
	conn->tls = NULL;
}

long
hd_conn_read(HdConn *conn, HdIoBuf *buf, size_t max)
{
	return conn->ops->read(conn, buf, max);
}

int
hd_conn_write(HdConn *conn, HdIoBuf *buf)
{
	return conn->ops->write(conn, buf);
}

int
hd_conn_write_clear(HdConn *conn, HdIoBuf *buf)
{
	return hd_conn_plain_ops.write(conn, buf);
}

void
hd_conn_wait_writable(HdConn *conn)
{
	conn->ops->wait_writable(conn);
}

void
hd_conn_resume_reading(HdConn *conn)
{
	conn->ops->resume_reading(conn);
}

bool
hd_conn_negotiating(const HdConn *conn)
{
	return conn->ops->negotiating(conn);
}

HdConnStep
hd_conn_handshake(HdConn *conn)
{
	return conn->ops->handshake(conn);
}

void
hd_conn_send_now(HdConn *conn, const void *bytes, size_t n)
{
	if (conn->fd >= 0)
		conn->ops->send_now(conn, bytes, n);
}

const char *
hd_conn_error(const HdConn *conn, int errnum)
{
	return conn->ops->error(conn, errnum);
}

void
hd_conn_close(HdConn *conn)
{
	if (conn->fd < 0)
		return;
	/* no callback may run on a socket that is gone (or reused by the next accept) */
	ev_io_stop(conn->loop, conn->read_watcher);
	ev_io_stop(conn->loop, conn->write_watcher);
	conn->ops->close(conn);
}

void
hd_conn_free(HdConn *conn)
{
	if (conn->ops == NULL)
		return;					/* never initialised (its owner failed before) */
	conn->ops->free(conn);
	conn->ops = &hd_conn_plain_ops;
}

int
hd_conn_flush(HdConn *conn, HdIoBuf *out)
{
	int			rc = hd_conn_write(conn, out);

	if (rc < 0)
		return -1;
	if (rc > 0)
	{
		hd_conn_wait_writable(conn);
		return 1;
	}
	ev_io_stop(conn->loop, conn->write_watcher);
	hd_iobuf_trim(out);
	return 0;
}
