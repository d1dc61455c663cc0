/*
 * test_race.c
 *    Unit tests of race.c, the cache's race rule: snapshot visibility,
 *    retained changes against a fill's dependencies, the waiters' bound,
 *    pruning once every fill in flight sees a change, folding when too many
 *    are retained, per-value marks.
 *    Prints TAP; run by t/012_race_unit.pl.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/race.h"
#include "tap.h"

/* A snapshot xmin:xmax:xip (n of them). */
static HdRaceSnapshot
snap(uint64_t xmin, uint64_t xmax, uint64_t *xip, size_t n)
{
	HdRaceSnapshot s = {xmin, xmax, xip, n};

	return s;
}

static void
test_visibility(void)
{
	uint64_t	xip[] = {105, 107};
	HdRaceSnapshot s = snap(100, 110, xip, 2);

	ok(hd_race_xid_visible(&s, 99, false), "below xmin: visible");
	ok(!hd_race_xid_visible(&s, 110, false), "at xmax: not visible");
	ok(!hd_race_xid_visible(&s, 200, false), "above xmax: not visible");
	ok(!hd_race_xid_visible(&s, 105, false), "running (in xip): not visible");
	ok(hd_race_xid_visible(&s, 106, false), "between xmin and xmax, not running: visible");
	ok(!hd_race_xid_visible(&s, 0, false), "xid 0 (unknown): never visible");
	ok(!hd_race_xid_visible(&s, 106, true), "xmin rule: visible only below xmin");
	ok(hd_race_xid_visible(&s, 99, true), "xmin rule: below xmin is visible");
}

static void
test_check(void)
{
	HdRace		race;
	HdDep		t1 = hd_dep_relation(16384);
	HdDep		t2 = hd_dep_relation(16390);
	HdDep		both[] = {hd_dep_relation(16390), hd_dep_relation(16384)};
	uint64_t	xip[] = {500};
	HdRaceSnapshot old = snap(500, 501, xip, 1);	/* does not see 500 */
	HdRaceSnapshot newer = snap(600, 600, NULL, 0);	/* sees everything below 600 */
	uint64_t	jb;
	uint64_t	seq;

	ok(hd_race_init(&race, "t") == 0, "init");
	seq = hd_race_fill_begin(&race);
	hd_race_retain(&race, 500, false, &t1, 1);
	ok(race.nret == 1 && race.order == 1, "a change is retained at order 1");
	ok(hd_race_fill_done(&race, seq), "the fill was in flight");
	ok(!hd_race_fill_done(&race, seq), "and is not any more");
	ok(hd_race_check(&race, &old, &t1, 1, &jb),
	   "a snapshot that misses a change of its relation races");
	ok(jb == 1, "waiters that began before the change may take the result (bound 1)");
	ok(!hd_race_check(&race, &old, &t2, 1, &jb), "another relation: no race");
	ok(jb == UINT64_MAX, "every waiter may take it");
	ok(hd_race_check(&race, &old, both, 2, &jb), "one of several relations is enough to race");
	ok(!hd_race_check(&race, &newer, &t1, 1, &jb), "a snapshot that sees the change: no race");

	hd_race_retain(&race, 550, true, NULL, 0);
	ok(race.order == 2, "an 'everything' change at order 2");
	ok(hd_race_check(&race, &old, &t2, 1, &jb) && jb == 2,
	   "'everything' touches any relation; the bound is its order");
	ok(hd_race_check(&race, &old, &t1, 1, &jb) && jb == 1,
	   "the bound is the earliest change missed");
	hd_race_free(&race);
}

static void
test_prune(void)
{
	HdRace		race;
	HdDep		t1 = hd_dep_relation(16384);
	HdRaceSnapshot sees = snap(1000, 1000, NULL, 0);
	uint64_t	jb;
	uint64_t	a;
	uint64_t	b;

	(void) hd_race_init(&race, "t");
	a = hd_race_fill_begin(&race);	/* began before the change became visible */
	hd_race_retain(&race, 900, false, &t1, 1);
	hd_race_prune(&race);
	ok(race.nret == 1, "not pruned: no fill has seen it");
	b = hd_race_fill_begin(&race);
	(void) hd_race_fill_done(&race, b);
	ok(!hd_race_check(&race, &sees, &t1, 1, &jb), "a later fill sees it");
	hd_race_prune(&race);
	ok(race.nret == 1, "not pruned while an earlier fill is in flight");
	(void) hd_race_fill_done(&race, a);
	hd_race_prune(&race);
	ok(race.nret == 0, "pruned once no earlier fill is in flight");

	hd_race_retain(&race, 0, true, NULL, 0);
	(void) hd_race_check(&race, &sees, &t1, 1, &jb);
	hd_race_prune(&race);
	ok(race.nret == 1, "xid 0 is never seen: never pruned");
	hd_race_free(&race);
}

static void
test_fold(void)
{
	HdRace		race;
	HdDep		t1 = hd_dep_relation(16384);
	HdDep		t2 = hd_dep_relation(16390);
	HdRaceSnapshot below = snap(HD_RACE_MAX_RETAINED + 100, HD_RACE_MAX_RETAINED + 100, NULL, 0);
	HdRaceSnapshot within = snap(50, HD_RACE_MAX_RETAINED + 100, NULL, 0);
	uint64_t	jb;

	(void) hd_race_init(&race, "t");
	for (uint64_t x = 1; x <= HD_RACE_MAX_RETAINED; x++)
		hd_race_retain(&race, x, false, &t1, 1);
	ok(race.nret == HD_RACE_MAX_RETAINED, "as many as allowed are retained");
	hd_race_retain(&race, HD_RACE_MAX_RETAINED + 1, false, &t1, 1);
	ok(race.nret == 1 && race.ret[0].all && race.ret[0].xmin_rule,
	   "one more: folded into one 'everything', xmin rule");
	ok(race.ret[0].xid == HD_RACE_MAX_RETAINED + 1, "with the newest xid");
	ok(hd_race_check(&race, &within, &t2, 1, &jb), "a snapshot with an older xmin races");
	ok(jb == 1, "the bound is the first folded change's order");
	ok(!hd_race_check(&race, &below, &t2, 1, &jb), "a snapshot whose xmin is past it does not");
	hd_race_free(&race);
}

/* A dependency on the rows of relation rel whose column col holds one of vals. */
static HdDep
dep_values(uint64_t rel, uint32_t col, const uint64_t *vals, uint32_t n)
{
	HdDep		d = {rel, col, n, vals};

	return d;
}

/* Per-value marks: a fill bound to other values than a change touched is not refused. */
static void
test_values(void)
{
	HdRace		race;
	uint64_t	jb;
	uint64_t	xip[] = {700};
	HdRaceSnapshot blind = snap(700, 701, xip, 1);	/* does not see 700 */
	uint64_t	one[] = {1};
	uint64_t	two[] = {2};
	uint64_t	one_two[] = {1, 2};
	HdDep		fill_1 = dep_values(16384, 2, one, 1);
	HdDep		fill_2 = dep_values(16384, 2, two, 1);
	HdDep		fill_b = dep_values(16384, 3, one, 1);
	HdDep		fill_all = hd_dep_relation(16384);
	HdDep		fill_other = dep_values(16390, 2, one, 1);
	uint64_t   *mine = malloc(2 * sizeof(uint64_t));
	uint64_t   *many = malloc((HD_RACE_MAX_VALUES + 1) * sizeof(uint64_t));
	HdDep		change;

	ok(hd_race_init(&race, "v") == 0 && mine && many, "init");
	/* a change of the rows where column 2 held 1 or 2, values in memory freed at once */
	mine[0] = 1;
	mine[1] = 2;
	change = dep_values(16384, 2, mine, 2);
	hd_race_retain(&race, 700, false, &change, 1);
	mine[0] = mine[1] = 99;
	free(mine);
	ok(race.ret[0].ndeps == 1 && race.ret[0].deps[0].nvalues == 2 &&
	   race.ret[0].deps[0].values[1] == 2, "retained with its values, copied");
	ok(hd_race_check(&race, &blind, &fill_1, 1, &jb), "a fill bound to value 1 races");
	ok(hd_race_check(&race, &blind, &fill_2, 1, &jb), "one bound to value 2 races");
	ok(hd_race_check(&race, &blind, &fill_b, 1, &jb),
	   "one bound on another column of the relation races (not comparable)");
	ok(hd_race_check(&race, &blind, &fill_all, 1, &jb), "one reading every row races");
	ok(!hd_race_check(&race, &blind, &fill_other, 1, &jb), "another relation does not");
	hd_race_free(&race);

	ok(hd_race_init(&race, "v") == 0, "init again");
	change = dep_values(16384, 2, two, 1);
	hd_race_retain(&race, 700, false, &change, 1);
	ok(!hd_race_check(&race, &blind, &fill_1, 1, &jb),
	   "a change of value 2 only: a fill bound to value 1 does not race");
	ok(hd_race_check(&race, &blind, &fill_2, 1, &jb) && jb == 1,
	   "a fill bound to value 2 does, with the change's order as the bound");
	change = dep_values(16384, 0, NULL, 0);
	hd_race_retain(&race, 700, false, &change, 1);
	ok(hd_race_check(&race, &blind, &fill_1, 1, &jb) && jb == 2,
	   "a later change of every row: value 1 races too");
	hd_race_free(&race);

	ok(hd_race_init(&race, "v") == 0, "init again");
	for (uint32_t i = 0; i <= HD_RACE_MAX_VALUES; i++)
		many[i] = 1000 + i;
	change = dep_values(16384, 2, many, HD_RACE_MAX_VALUES + 1);
	hd_race_retain(&race, 700, false, &change, 1);
	ok(race.ret[0].deps[0].nvalues == 0,
	   "more than HD_RACE_MAX_VALUES values: kept as the relation only");
	ok(hd_race_check(&race, &blind, &fill_1, 1, &jb), "and then races with any value");
	change = dep_values(16384, 2, one_two, 2);
	hd_race_retain(&race, 701, false, &change, 1);
	ok(race.ret[1].deps[0].nvalues == 2, "the next change keeps its values again");
	hd_race_free(&race);
	free(many);
}

int
main(void)
{
	test_visibility();
	test_check();
	test_prune();
	test_fold();
	test_values();
	return tap_done();
}
