/*
 * record_deps.c
 *    A change record's dependencies under the precision columns
 *    (record_deps.h).
 */
#include "stream/record_deps.h"

#include <stdlib.h>
#include <string.h>

static size_t
precision_find(const HdPrecision *p, uint32_t relid)
{
	size_t		lo = 0,
				hi = p->n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (p->cols[mid].relid < relid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint16_t
hd_precision_get(const HdPrecision *p, uint32_t relid)
{
	size_t		i = precision_find(p, relid);

	return i < p->n && p->cols[i].relid == relid ? p->cols[i].attnum : 0;
}

int
hd_precision_set(HdPrecision *p, uint32_t relid, uint16_t attnum)
{
	size_t		i = precision_find(p, relid);

	if (i < p->n && p->cols[i].relid == relid)
		return 0;
	if (p->n == HD_PRECISION_MAX || attnum == 0)
		return -1;
	if (p->n == p->cap)
	{
		size_t		cap = p->cap ? p->cap * 2 : 64;
		HdPrecisionColumn *grown = realloc(p->cols, cap * sizeof(HdPrecisionColumn));

		if (grown == NULL)
			return -1;
		p->cols = grown;
		p->cap = cap;
	}
	memmove(p->cols + i + 1, p->cols + i, (p->n - i) * sizeof(HdPrecisionColumn));
	p->cols[i].relid = relid;
	p->cols[i].attnum = attnum;
	p->n++;
	return 1;
}

void
hd_precision_free(HdPrecision *p)
{
	free(p->cols);
	memset(p, 0, sizeof(*p));
}

/*
 * The dependency of a change to rel on relation relid (rel itself or one of
 * its ancestors): the values of relid's precision column when the record
 * carries them all, else every row.
 */
static HdDep
relation_dep(const HdRelation *rel, uint32_t relid, const HdPrecision *p, size_t *unknown)
{
	uint16_t	attnum = hd_precision_get(p, relid);

	if (attnum == 0)
		return hd_dep_relation(relid);
	if ((rel->kinds & (HD_KIND_TRUNCATE | HD_KIND_DDL)) == 0)
		for (uint32_t i = 0; i < rel->nwatched; i++)
		{
			const HdWatchedValues *w = &rel->watched[i];

			if (w->relid != relid || w->attnum != attnum)
				continue;
			if (w->state != HD_VALUES_COMPLETE || w->nhashes == 0)
				break;
			return (HdDep)
			{
				relid, attnum, w->nhashes, w->hashes
			};
		}
	(*unknown)++;
	return hd_dep_relation(relid);
}

int
hd_pg_record_deps(const HdRecord *rec, const HdPrecision *p, HdDep **deps, size_t *n,
				  size_t *unknown)
{
	size_t		cap = 0;

	*deps = NULL;
	*n = 0;
	*unknown = 0;
	for (uint32_t i = 0; i < rec->nrelations; i++)
		cap += 1 + (size_t) rec->relations[i].nancestors;
	if (cap > 0 && (*deps = malloc(cap * sizeof(HdDep))) == NULL)
		return -1;
	for (uint32_t i = 0; i < rec->nrelations; i++)
	{
		const HdRelation *rel = &rec->relations[i];

		(*deps)[(*n)++] = relation_dep(rel, rel->rel.oid, p, unknown);
		for (uint32_t j = 0; j < rel->nancestors; j++)
			(*deps)[(*n)++] = relation_dep(rel, rel->ancestors[j].oid, p, unknown);
	}
	return 0;
}

