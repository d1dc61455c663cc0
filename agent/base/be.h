/*
 * be.h
 *    Big-endian (network order) integers in byte buffers: the one set of
 *    readers and writers the agent uses, for the PostgreSQL protocol, the
 *    change stream's compact records and the cache store's LMDB keys.
 *
 * Contract:
 *   - hd_get_uN(p) reads the N-bit unsigned integer stored big-endian at
 *     p[0 .. N/8); hd_put_uN(p, v) stores v there. p needs no alignment and
 *     may point to char or unsigned char. The caller has checked that the
 *     N/8 bytes are there: these functions do no bounds checking.
 *   - A signed field (an Int32 length of -1, a timestamp) is read with the
 *     unsigned reader and converted by the caller: the conversion of a value
 *     above INT32_MAX/INT64_MAX to the signed type is two's complement on
 *     every compiler the agent supports.
 *   - Header-only, no state: usable from any wing and any unit test.
 */
#ifndef HD_BASE_BE_H
#define HD_BASE_BE_H

#include <stdint.h>

static inline uint16_t
hd_get_u16(const void *p)
{
	const unsigned char *u = p;

	return (uint16_t) (((uint16_t) u[0] << 8) | u[1]);
}

static inline uint32_t
hd_get_u32(const void *p)
{
	const unsigned char *u = p;

	return ((uint32_t) u[0] << 24) | ((uint32_t) u[1] << 16) | ((uint32_t) u[2] << 8) | u[3];
}

static inline uint64_t
hd_get_u64(const void *p)
{
	const unsigned char *u = p;

	return ((uint64_t) hd_get_u32(u) << 32) | hd_get_u32(u + 4);
}

static inline void
hd_put_u16(void *p, uint16_t v)
{
	unsigned char *u = p;

	u[0] = (unsigned char) (v >> 8);
	u[1] = (unsigned char) v;
}

static inline void
hd_put_u32(void *p, uint32_t v)
{
	unsigned char *u = p;

	u[0] = (unsigned char) (v >> 24);
	u[1] = (unsigned char) (v >> 16);
	u[2] = (unsigned char) (v >> 8);
	u[3] = (unsigned char) v;
}

static inline void
hd_put_u64(void *p, uint64_t v)
{
	unsigned char *u = p;

	hd_put_u32(u, (uint32_t) (v >> 32));
	hd_put_u32(u + 4, (uint32_t) v);
}

#endif							/* HD_BASE_BE_H */
