/*
 * text_buf.h
 *    A growable, NUL-terminated text buffer.
 *
 * Contract: start from HD_TEXT_BUF_INIT. Appends never fail loudly: when
 * memory runs out the buffer frees its data and remembers the failure, later
 * appends do nothing, and hd_text_buf_finish() returns NULL. So a caller that
 * builds a long text checks for failure once, at the end. The data is always
 * NUL-terminated while it exists.
 */
#ifndef HD_TEXT_BUF_H
#define HD_TEXT_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct HdTextBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		failed;
} HdTextBuf;

#define HD_TEXT_BUF_INIT {NULL, 0, 0, false}

extern void hd_text_buf_append(HdTextBuf *buf, const char *bytes, size_t len);
extern void hd_text_buf_puts(HdTextBuf *buf, const char *str);
extern void hd_text_buf_putc(HdTextBuf *buf, char c);
extern void hd_text_buf_printf(HdTextBuf *buf, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* The text (caller frees), or NULL if an append ran out of memory. */
extern char *hd_text_buf_finish(HdTextBuf *buf);

#endif							/* HD_TEXT_BUF_H */
