/*
 * iobuf.h
 *    A byte buffer for one direction of one socket.
 *
 * Contract: data[off .. len) are the bytes not yet consumed (read side) or
 * not yet written (write side). Appends grow the buffer; hd_iobuf_compact()
 * moves the live bytes to the front when half the buffer is dead. An
 * allocation failure returns -1 and leaves the buffer as it was: the caller
 * closes the connection (the agent never aborts on a full heap).
 *
 * Memory: a connection keeps no buffer while it has nothing to send or to
 * process. hd_iobuf_read_fd() into an unallocated buffer reads into one
 * shared buffer and keeps only the bytes read; hd_iobuf_trim() gives an
 * emptied buffer back. Buffers of the usual size are recycled (a few are
 * kept), so that a busy connection does not go to malloc for each message.
 * Single-threaded: the shared buffer and the spares belong to the agent's loop.
 */
#ifndef HD_IOBUF_H
#define HD_IOBUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* hd_get_u16/u32, hd_put_u32...: the protocol code reads buffers with them. */
#include "base/be.h"

typedef struct HdIoBuf
{
	char	   *data;
	size_t		off;			/* first live byte */
	size_t		len;			/* end of live bytes */
	size_t		cap;
} HdIoBuf;

static inline size_t
hd_iobuf_live(const HdIoBuf *buf)
{
	return buf->len - buf->off;
}

static inline const char *
hd_iobuf_head(const HdIoBuf *buf)
{
	return buf->data + buf->off;
}

extern int	hd_iobuf_reserve(HdIoBuf *buf, size_t extra);
extern int	hd_iobuf_append(HdIoBuf *buf, const void *bytes, size_t n);
extern void hd_iobuf_consume(HdIoBuf *buf, size_t n);
extern void hd_iobuf_reset(HdIoBuf *buf);
extern void hd_iobuf_free(HdIoBuf *buf);
/* Give the memory back if nothing is live (an idle connection keeps none). */
extern void hd_iobuf_trim(HdIoBuf *buf);
/* The shared read buffer (see above); its contents last until the next read. */
extern char *hd_iobuf_scratch(size_t *cap);

/*
 * Read what the socket has (up to a cap): >0 bytes read, 0 EOF, -1 error
 * (errno), -2 would block. Into an unallocated buffer it reads through the
 * shared buffer (at most 64 KiB), so that only what arrived is allocated.
 */
extern long hd_iobuf_read_fd(HdIoBuf *buf, int fd, size_t max);
/* Write what the buffer holds: 0 all written, 1 some left (would block), -1 error (errno). */
extern int	hd_iobuf_write_fd(HdIoBuf *buf, int fd);

/* The NUL-terminated string at body[*pos] (moving *pos past it), or NULL if it runs past len. */
static inline const char *
hd_take_string(const char *body, size_t len, size_t *pos)
{
	const char *str = body + *pos;
	const char *end;

	if (*pos >= len || (end = memchr(str, '\0', len - *pos)) == NULL)
		return NULL;
	*pos = (size_t) (end - body) + 1;
	return str;
}

#endif							/* HD_IOBUF_H */
