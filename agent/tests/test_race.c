/*
 * test_race.c
 *    Unit tests of race.c, the cache's race rule: snapshot visibility,
 *    retained changes against a fill's dependencies, the waiters' bound,
 *    pruning once every fill in flight sees a change, folding when too many
 *    are retained.
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

int
main(void)
{
	test_visibility();
	test_check();
	test_prune();
	test_fold();
	return tap_done();
}
