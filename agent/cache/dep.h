/*
 * dep.h
 *    What a cached result depends on, and where a change source stands: the
 *    two words every part of the cache speaks, whatever the origin.
 *
 * A dependency (HdDep) names one relation of the origin and which of its
 * rows a result read: all of them (nvalues == 0), or only the rows whose
 * column `column` holds one of `values` (hashes of the values, computed by
 * the origin with the column type's own hash function, docs/cache.md).
 * A change names the relations it touched in the same terms: an entry
 * depends on a change when they name the same relation and either side
 * says "all rows", or both name the same column and share a value hash.
 * A hash collision can only make an entry look dependent when it is not
 * (an extra invalidation), never the reverse.
 *
 * Contract:
 *   - relation is an opaque 64-bit id, compared for equality only. For
 *     PostgreSQL it is the relation's OID; for MySQL it will be a table's
 *     id in the agent's own map. 0 is not a relation.
 *   - A position (HdPos) is an opaque 64-bit value of one change source,
 *     ordered: a later change has a greater position (PostgreSQL: the LSN
 *     of the end of its commit record; a binlog: file number and offset).
 *     HD_POS_NONE (0) is "no position". Nothing but the change source
 *     interprets a position.
 *   - values points into memory owned by whoever built the HdDep; the
 *     store copies what it keeps.
 *   - Producers: a fill names values (cache.c, from its analysis's
 *     bindings) only for a column its change source names rows by
 *     (change.h watch(): at most one per relation), so that every change
 *     with values of a relation is of the column the entries are bound to;
 *     a change of another column, or without values, overlaps.
 */
#ifndef HD_CACHE_DEP_H
#define HD_CACHE_DEP_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t HdPos;

#define HD_POS_NONE ((HdPos) 0)

typedef struct HdDep
{
	uint64_t	relation;		/* opaque relation id (PostgreSQL: the OID) */
	uint32_t	column;			/* with values: which column they are of */
	uint32_t	nvalues;		/* 0: every row of the relation */
	const uint64_t *values;		/* nvalues hashes of the column's values */
} HdDep;

/*
 * A binding, as an analysis finds it (docs/cache-analysis.md, "bindings"):
 * the result reads only those rows of `relation` whose column `column`
 * holds one of the values: the hashes known at analysis (constants), and
 * those of parameters, known per execution (params: 1-based numbers). A
 * relation may have several bindings: each one alone restricts the rows.
 */
typedef struct HdBinding
{
	uint64_t	relation;
	uint32_t	column;
	uint32_t	nhashes;
	const uint64_t *hashes;
	uint32_t	nparams;
	const uint16_t *params;
} HdBinding;

/*
 * One parameter's value hashes for one execution: known false when it was
 * not hashed (NULL, no origin answer): a binding that names it binds
 * nothing (its relation is read whole). An array parameter (= ANY($n)) has
 * one hash per non-NULL element.
 */
typedef struct HdParamHashes
{
	bool		known;
	uint32_t	nhashes;
	const uint64_t *hashes;
} HdParamHashes;

/* A dependency on every row of a relation. */
static inline HdDep
hd_dep_relation(uint64_t relation)
{
	HdDep		d = {relation, 0, 0, 0};

	return d;
}

/* True when a change described by `change` may alter a result that read `entry`. */
static inline bool
hd_dep_overlaps(const HdDep *entry, const HdDep *change)
{
	if (entry->relation != change->relation)
		return false;
	if (entry->nvalues == 0 || change->nvalues == 0 || entry->column != change->column)
		return true;
	for (uint32_t i = 0; i < entry->nvalues; i++)
		for (uint32_t j = 0; j < change->nvalues; j++)
			if (entry->values[i] == change->values[j])
				return true;
	return false;
}

#endif							/* HD_CACHE_DEP_H */
