/*
 * value_marks.h
 *    The store's put race guard for changes that name values (store.h): a
 *    put whose token predates such a change is refused only when the change
 *    may touch what the put read, not for every change of its relation.
 *
 * A mark says "a change applied at sequence number seq touched these rows":
 *   column mark  (config, relation, column): a change with values of that
 *                column, whatever the values;
 *   value mark   (config, relation, column, value hash): a change with that
 *                value (old or new) of the column.
 * Changes without values (every row) are marked per relation by the store
 * itself, in LMDB, as before; these marks are only for changes with values.
 *
 * Why in memory: a mark can refuse only a put whose token is older than the
 * mark, that is a fill in flight, which lives seconds and never outlives the
 * process; in LMDB they would grow with every value ever changed. They are
 * pruned below the oldest token still in flight (hd_marks_prune()), and
 * bounded: beyond HD_MARKS_MAX value marks, hd_marks_reserve() refuses and
 * the caller marks the whole relation instead (more refusals, never fewer).
 *
 * Contract:
 *   - hd_marks_reserve(m, ndeps, nvalues) before a change's write
 *     transaction: room for the column marks of its ndeps dependencies
 *     with values and their nvalues value marks (false: not within
 *     HD_MARKS_MAX, or out of memory); then hd_marks_note() of each after
 *     the commit, which cannot fail for reserved room. Notes are idempotent
 *     and keep the greatest seq.
 *   - hd_marks_raced(m, cfg, dep, token): a mark above token may touch what
 *     dep reads: for a dep on every row of a relation, any column mark of
 *     it; for a dep on values of column c, a column mark of another column
 *     (not comparable) or a value mark of c with one of dep's values.
 *   - Configs are told apart by a 64-bit hash of their id: a collision
 *     can only refuse a put that could have been stored.
 *   - No I/O, no clock; single-threaded. Tested by agent/tests/test_store.c.
 */
#ifndef HD_CACHE_VALUE_MARKS_H
#define HD_CACHE_VALUE_MARKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/dep.h"

#define HD_MARKS_MAX 65536

typedef struct HdColumnMark
{
	uint64_t	cfg;
	uint64_t	relation;
	uint32_t	column;
	uint64_t	seq;
} HdColumnMark;

typedef struct HdValueMark
{
	uint64_t	cfg;
	uint64_t	relation;
	uint64_t	hash;
	uint32_t	column;
	uint64_t	seq;			/* 0: empty slot */
} HdValueMark;

typedef struct HdMarks
{
	HdColumnMark *columns;
	size_t		ncolumns;
	size_t		capcolumns;
	HdValueMark *slots;			/* open addressing, a power of two of them */
	size_t		capslots;
	size_t		nvalues;
	uint64_t	min_seq;		/* at most the oldest value mark's seq (a lower bound) */
} HdMarks;

extern uint64_t hd_marks_config(const void *cfg, size_t len);
extern void hd_marks_init(HdMarks *m);
extern void hd_marks_free(HdMarks *m);
extern bool hd_marks_reserve(HdMarks *m, size_t ndeps, size_t nvalues);
extern void hd_marks_note(HdMarks *m, uint64_t cfg, const HdDep *dep, uint64_t seq);
extern bool hd_marks_raced(const HdMarks *m, uint64_t cfg, const HdDep *dep, uint64_t token);
extern void hd_marks_prune(HdMarks *m, uint64_t oldest_token);

#endif							/* HD_CACHE_VALUE_MARKS_H */
