/*
 * iobuf.c
 *    See iobuf.h.
 */
#include "base/iobuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HD_IOBUF_MIN 8192
/* Empty buffers of HD_IOBUF_MIN bytes kept for reuse (see hd_iobuf_free()). */
#define HD_IOBUF_SPARE_MAX 64
/* What one read takes at most when it goes through the shared buffer. */
#define HD_IOBUF_SCRATCH 65536

static char *spare[HD_IOBUF_SPARE_MAX];
static int	nspare;

/*
 * One read buffer for the whole (single-threaded) agent: a connection with
 * nothing buffered reads here first and keeps only what it read, so that an
 * idle connection holds no buffer at all.
 */
static char scratch[HD_IOBUF_SCRATCH];

/* A new buffer of newcap bytes: a spare one when it is the usual size. */
static char *
buffer_alloc(size_t newcap)
{
	if (newcap == HD_IOBUF_MIN && nspare > 0)
		return spare[--nspare];
	return malloc(newcap);
}

static void
buffer_release(char *data, size_t cap)
{
	if (data != NULL && cap == HD_IOBUF_MIN && nspare < HD_IOBUF_SPARE_MAX)
		spare[nspare++] = data;
	else
		free(data);
}

int
hd_iobuf_reserve(HdIoBuf *buf, size_t extra)
{
	size_t		live = hd_iobuf_live(buf);
	size_t		newcap;
	char	   *data;

	if (buf->cap - buf->len >= extra)
		return 0;
	/* reuse the dead prefix before growing */
	if (buf->off > 0 && buf->cap - live >= extra)
	{
		memmove(buf->data, buf->data + buf->off, live);
		buf->off = 0;
		buf->len = live;
		return 0;
	}
	newcap = buf->cap ? buf->cap : HD_IOBUF_MIN;
	while (newcap - live < extra)
	{
		if (newcap > SIZE_MAX / 2)
			return -1;
		newcap *= 2;
	}
	data = buffer_alloc(newcap);
	if (data == NULL)
		return -1;
	if (live)
		memcpy(data, buf->data + buf->off, live);
	buffer_release(buf->data, buf->cap);
	buf->data = data;
	buf->off = 0;
	buf->len = live;
	buf->cap = newcap;
	return 0;
}

int
hd_iobuf_append(HdIoBuf *buf, const void *bytes, size_t n)
{
	if (hd_iobuf_reserve(buf, n) < 0)
		return -1;
	memcpy(buf->data + buf->len, bytes, n);
	buf->len += n;
	return 0;
}

void
hd_iobuf_consume(HdIoBuf *buf, size_t n)
{
	buf->off += n;
	if (buf->off == buf->len)
		buf->off = buf->len = 0;
}

void
hd_iobuf_reset(HdIoBuf *buf)
{
	buf->off = buf->len = 0;
}

void
hd_iobuf_free(HdIoBuf *buf)
{
	buffer_release(buf->data, buf->cap);
	*buf = (HdIoBuf) {0};
}

void
hd_iobuf_trim(HdIoBuf *buf)
{
	if (buf->cap > 0 && buf->len == buf->off)
		hd_iobuf_free(buf);
}

char *
hd_iobuf_scratch(size_t *cap)
{
	*cap = sizeof(scratch);
	return scratch;
}

long
hd_iobuf_read_fd(HdIoBuf *buf, int fd, size_t max)
{
	ssize_t		n;

	if (buf->cap == 0)
	{
		/* nothing buffered: read into the shared buffer, keep only what came */
		if (max > sizeof(scratch))
			max = sizeof(scratch);
		do
			n = read(fd, scratch, max);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
		if (n > 0 && hd_iobuf_append(buf, scratch, (size_t) n) < 0)
		{
			errno = ENOMEM;
			return -1;
		}
		return (long) n;
	}
	/* a partial message is waiting: read the rest in place */
	if (hd_iobuf_reserve(buf, max) < 0)
	{
		errno = ENOMEM;
		return -1;
	}
	do
		n = read(fd, buf->data + buf->len, max);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
	buf->len += (size_t) n;
	return (long) n;
}

int
hd_iobuf_write_fd(HdIoBuf *buf, int fd)
{
	while (hd_iobuf_live(buf) > 0)
	{
		ssize_t		n = write(fd, hd_iobuf_head(buf), hd_iobuf_live(buf));

		if (n < 0)
		{
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		hd_iobuf_consume(buf, (size_t) n);
	}
	return 0;
}
