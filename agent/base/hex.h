/*
 * hex.h
 *    The value of one hexadecimal digit, for the parsers that read hex text
 *    (a stream's bytea lines, a URI's percent-encoding).
 *
 * Contract: hd_hex_value() is 0..15 for 0-9, a-f and A-F, else -1. No
 * state.
 */
#ifndef HD_HEX_H
#define HD_HEX_H

static inline int
hd_hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif							/* HD_HEX_H */
