/*
 * bytes.h — byte fixtures shared by the agent's unit tests of wire formats.
 *
 * Input that stands for the network is put in a heap buffer of exactly its
 * length (no NUL after it), so that AddressSanitizer or valgrind reports any
 * read past its end; fixtures are written as hex strings. Allocation
 * failures abort: a test has no way on without its input.
 */
#ifndef HD_TESTS_BYTES_H
#define HD_TESTS_BYTES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A heap copy of exactly n bytes (freed by the caller). */
static inline uint8_t *
exact(const void *bytes, size_t n)
{
	uint8_t    *copy = malloc(n ? n : 1);

	if (copy == NULL)
		abort();
	memcpy(copy, bytes, n);
	return copy;
}

/* Hex digits into a heap buffer of exactly their bytes; *n its length. */
static inline uint8_t *
unhex(const char *hex, size_t *n)
{
	size_t		len = strlen(hex) / 2;
	uint8_t    *out = malloc(len ? len : 1);

	if (out == NULL)
		abort();
	for (size_t i = 0; i < len; i++)
	{
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			abort();
		out[i] = (uint8_t) b;
	}
	*n = len;
	return out;
}

#endif
