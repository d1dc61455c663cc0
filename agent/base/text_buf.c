/*
 * text_buf.c
 *    A growable, NUL-terminated text buffer (see text_buf.h).
 */
#include "base/text_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Make room for len more bytes plus the terminator; false once failed. */
static bool
reserve(HdTextBuf *buf, size_t len)
{
	size_t		need;
	size_t		cap;
	char	   *data;

	if (buf->failed)
		return false;
	if (len > SIZE_MAX / 2 - buf->len - 1)
		goto fail;
	need = buf->len + len + 1;
	if (need <= buf->cap)
		return true;
	cap = buf->cap ? buf->cap : 256;
	while (cap < need)
		cap *= 2;
	data = realloc(buf->data, cap);
	if (data == NULL)
		goto fail;
	buf->data = data;
	buf->cap = cap;
	return true;

fail:
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
	buf->failed = true;
	return false;
}

void
hd_text_buf_append(HdTextBuf *buf, const char *bytes, size_t len)
{
	if (!reserve(buf, len))
		return;
	memcpy(buf->data + buf->len, bytes, len);
	buf->len += len;
	buf->data[buf->len] = '\0';
}

void
hd_text_buf_puts(HdTextBuf *buf, const char *str)
{
	hd_text_buf_append(buf, str, strlen(str));
}

void
hd_text_buf_putc(HdTextBuf *buf, char c)
{
	hd_text_buf_append(buf, &c, 1);
}

void
hd_text_buf_printf(HdTextBuf *buf, const char *fmt,...)
{
	char		small[128];
	va_list		ap;
	int			n;

	/* everything we format is short; fall back to a second pass if not */
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
	{
		reserve(buf, SIZE_MAX);	/* marks the buffer failed */
		return;
	}
	if ((size_t) n < sizeof(small))
	{
		hd_text_buf_append(buf, small, (size_t) n);
		return;
	}
	if (!reserve(buf, (size_t) n))
		return;
	va_start(ap, fmt);
	vsnprintf(buf->data + buf->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	buf->len += (size_t) n;
}

char *
hd_text_buf_finish(HdTextBuf *buf)
{
	char	   *data;

	/* an empty, never-failed buffer still yields "" */
	if (!reserve(buf, 0))
		return NULL;
	buf->data[buf->len] = '\0';
	data = buf->data;
	buf->data = NULL;
	buf->len = buf->cap = 0;
	return data;
}
