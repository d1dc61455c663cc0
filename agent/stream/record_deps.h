/*
 * record_deps.h
 *    What a change record of the hyperdrive stream touched, in the cache's
 *    terms (cache/dep.h): the pure half of the PostgreSQL change source
 *    (pg_change_source.c), apart so that it is tested without a server
 *    (agent/tests/test_record_deps.c).
 *
 * Contract:
 *   - A relation has at most one precision column (HdPrecision: relid ->
 *     attnum, the first set wins; at most HD_PRECISION_MAX relations). One
 *     column per relation keeps dep.h's overlap rule exact: values of two
 *     columns would overlap every entry bound to the other one.
 *   - hd_pg_record_deps(): one dependency per relation the record names and
 *     per ancestor of each (docs/stream.md). It names the rows with the
 *     values of that relation's precision column when the relation entry
 *     carries them completely (stream version 2: a watched column of that
 *     relid and attnum in state complete, with at least one hash), and the
 *     entry is no TRUNCATE or DDL; otherwise every row, counted in *unknown
 *     when the relation has a precision column. Values point into the
 *     record: the dependencies live no longer than it. -1: out of memory.
 *   - No I/O, no global state.
 */
#ifndef HD_RECORD_DEPS_H
#define HD_RECORD_DEPS_H

#include <stddef.h>
#include <stdint.h>

#include "cache/dep.h"
#include "stream/stream_record.h"

#define HD_PRECISION_MAX 65536

/* The precision column of each relation that has one, sorted by relid. */
typedef struct HdPrecisionColumn
{
	uint32_t	relid;
	uint16_t	attnum;
} HdPrecisionColumn;

typedef struct HdPrecision
{
	HdPrecisionColumn *cols;
	size_t		n;
	size_t		cap;
} HdPrecision;

/* relid's precision column, 0 if none. */
extern uint16_t hd_precision_get(const HdPrecision *p, uint32_t relid);
/* Set relid's precision column if it has none: 1 set, 0 it had one, -1 no room. */
extern int	hd_precision_set(HdPrecision *p, uint32_t relid, uint16_t attnum);
extern void hd_precision_free(HdPrecision *p);

/*
 * A record's dependencies (malloc'd in *deps, values pointing into rec; -1
 * when out of memory) under the precision columns p; *unknown: how many
 * name every row of a relation with a precision column.
 */
extern int	hd_pg_record_deps(const HdRecord *rec, const HdPrecision *p, HdDep **deps,
							  size_t *n, size_t *unknown);


#endif							/* HD_RECORD_DEPS_H */
