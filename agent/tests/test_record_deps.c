/*
 * test_record_deps.c
 *    A change record's dependencies under the precision columns
 *    (stream/record_deps.h): which relations a record names by values, and
 *    every case that must fall back to every row.
 */
#include <stdlib.h>
#include <string.h>

#include "stream/record_deps.h"
#include "tap.h"

static uint64_t h56[] = {5, 6};

/* A relation entry of oid (ancestor anc, 0: none) with the watched columns w. */
static HdRelation
relation(uint32_t oid, uint32_t anc, HdRelName *ancname, HdWatchedValues *w, uint32_t nw)
{
	HdRelation	r;

	memset(&r, 0, sizeof(r));
	r.rel.oid = oid;
	r.kinds = HD_KIND_UPDATE;
	if (anc)
	{
		ancname->oid = anc;
		r.ancestors = ancname;
		r.nancestors = 1;
	}
	r.watched = w;
	r.nwatched = nw;
	return r;
}

static const HdDep *
dep_on(const HdDep *deps, size_t n, uint64_t rel)
{
	for (size_t i = 0; i < n; i++)
		if (deps[i].relation == rel)
			return &deps[i];
	return NULL;
}

int
main(void)
{
	HdPrecision p = {0};
	HdRecord	rec;
	HdRelName	anc;
	HdWatchedValues w[2];
	HdRelation	rel;
	HdDep	   *deps;
	size_t		n,
				unknown;
	const HdDep *d;

	ok(hd_precision_get(&p, 10) == 0, "no precision column at first");
	ok(hd_precision_set(&p, 20, 3) == 1 && hd_precision_set(&p, 10, 2) == 1 &&
	   hd_precision_set(&p, 15, 1) == 1, "three relations get one");
	ok(hd_precision_set(&p, 20, 4) == 0 && hd_precision_get(&p, 20) == 3,
	   "the first column stays a relation's precision column");
	ok(hd_precision_get(&p, 10) == 2 && hd_precision_get(&p, 15) == 1 &&
	   hd_precision_get(&p, 16) == 0, "lookups by relid (kept sorted)");
	ok(hd_precision_set(&p, 30, 0) == -1, "column 0 is no column");

	/* a leaf (10) of a partitioned parent (20): the parent's column complete, the leaf's not */
	memset(&rec, 0, sizeof(rec));
	w[0] = (HdWatchedValues) {20, 3, HD_VALUES_COMPLETE, 2, h56};
	w[1] = (HdWatchedValues) {10, 2, HD_VALUES_NO_OLD, 0, NULL};
	rel = relation(10, 20, &anc, w, 2);
	rec.relations = &rel;
	rec.nrelations = 1;
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && n == 2, "two dependencies");
	d = dep_on(deps, n, 20);
	ok(d && d->column == 3 && d->nvalues == 2 && d->values[0] == 5 && d->values[1] == 6,
	   "the ancestor is named by the values of its precision column");
	d = dep_on(deps, n, 10);
	ok(d && d->nvalues == 0 && d->column == 0 && unknown == 1,
	   "the leaf, whose values are not complete (no old value), is every row, counted");
	free(deps);

	/* a column watched but not the relation's precision column: every row */
	w[0] = (HdWatchedValues) {20, 4, HD_VALUES_COMPLETE, 2, h56};
	rel = relation(20, 0, &anc, w, 1);
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && n == 1 &&
	   deps[0].nvalues == 0 && unknown == 1, "values of another column than the precision column: every row");
	free(deps);

	/* complete but no value (only NULLs): every row, never "nothing" */
	w[0] = (HdWatchedValues) {20, 3, HD_VALUES_COMPLETE, 0, NULL};
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && n == 1 &&
	   deps[0].nvalues == 0, "complete with no value: every row");
	free(deps);

	/* TRUNCATE and DDL: every row whatever the values say */
	w[0] = (HdWatchedValues) {20, 3, HD_VALUES_COMPLETE, 2, h56};
	rel.kinds = HD_KIND_TRUNCATE;
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && deps[0].nvalues == 0,
	   "TRUNCATE: every row");
	free(deps);
	rel.kinds = HD_KIND_UPDATE | HD_KIND_DDL;
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && deps[0].nvalues == 0,
	   "DDL: every row");
	free(deps);
	rel.kinds = HD_KIND_UPDATE;
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && deps[0].nvalues == 2 &&
	   unknown == 0, "the same UPDATE alone: by values");
	free(deps);

	/* a version 1 record (no watched columns) and a relation without a precision column */
	rel = relation(20, 0, &anc, NULL, 0);
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && deps[0].nvalues == 0 &&
	   unknown == 1, "no values in the record (version 1): every row");
	free(deps);
	rel = relation(99, 0, &anc, w, 1);
	ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && deps[0].nvalues == 0 &&
	   deps[0].relation == 99 && unknown == 0, "a relation without a precision column: every row, not counted");
	free(deps);
	for (uint32_t s = HD_VALUES_CAP; s <= HD_VALUES_LAST; s++)
	{
		w[0] = (HdWatchedValues) {20, 3, (uint8_t) s, 2, h56};
		rel = relation(20, 0, &anc, w, 1);
		ok(hd_pg_record_deps(&rec, &p, &deps, &n, &unknown) == 0 && deps[0].nvalues == 0 &&
		   unknown == 1, "an incomplete state: every row");
		free(deps);
	}
	hd_precision_free(&p);
	return tap_done();
}
