/*
 * race.h
 *    The race rule of one config's cache (docs/cache.md): a fill's result
 *    is stored only when the snapshot it read under sees every change
 *    already applied to the store that touches what it read.
 *
 * A change source applies a change (removes the entries it touches) when
 * its commit arrives; a fill that began before that commit became visible
 * to it may have read the old rows, and would store them after the
 * invalidation that was meant to remove them. So each applied change is
 * retained, with its transaction id, until every fill in flight (and every
 * later one) sees it; a fill ends by checking its snapshot against them.
 *
 * Contract:
 *   - Transaction ids and snapshots are the origin's, in neutral form
 *     (HdRaceSnapshot): a transaction is visible to a snapshot when its id
 *     is below xmin, or below xmax and not in xip. A change retained with
 *     xid 0 (unknown) is never visible: it refuses every fill it touches
 *     until it is pruned. What produces the snapshot (PostgreSQL's
 *     pg_current_snapshot() text) is the protocol side's business.
 *   - Fills are numbered (hd_race_fill_begin()); a retained change is
 *     pruned once a fill that ended saw it and no fill numbered before that
 *     one is in flight. A fill that could not be added to the in-flight
 *     list (out of memory) is not protected: changes it misses may be
 *     pruned before it ends (hd_race_fill_done() then returns false).
 *   - "order" ticks at each retained change: a client that began to wait
 *     for a fill at order o may take its result when every change the fill
 *     misses was applied at an order above o (hd_race_check()'s bound).
 *   - Retained dependencies keep their relation, column and value hashes
 *     (dep.h), so that a fill bound to other values of the column than a
 *     change touched is not refused; one with more than HD_RACE_MAX_VALUES
 *     values keeps its relation only (every row): more races, never fewer.
 *     At most HD_RACE_MAX_RETAINED are kept; beyond,
 *     they fold into one "everything" change visible only below every
 *     snapshot's xmin (logged). Out of memory: the newest one becomes
 *     "everything, never visible" (logged): no fill stores until a restart.
 *   - No I/O, no clock: tests drive it directly (agent/tests/test_race.c).
 */
#ifndef HD_CACHE_RACE_H
#define HD_CACHE_RACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/dep.h"

#define HD_RACE_MAX_RETAINED 10000
#define HD_RACE_MAX_VALUES 1024	/* per retained dependency */

/* What a fill's transaction saw: as PostgreSQL's snapshot, xids with epoch. */
typedef struct HdRaceSnapshot
{
	uint64_t	xmin;
	uint64_t	xmax;
	uint64_t   *xip;			/* running at the snapshot: not visible */
	size_t		nxip;
} HdRaceSnapshot;

/* An applied change kept for the check. */
typedef struct HdRetained
{
	uint64_t	xid;			/* with epoch; 0: unknown (never visible) */
	bool		all;			/* every relation */
	bool		xmin_rule;		/* visible only when xid < snapshot xmin */
	HdDep	   *deps;			/* with their values, in the same allocation */
	size_t		ndeps;
	uint64_t	visible_from_seq;	/* fills numbered from here see it; 0: not known */
	uint64_t	applied_order;	/* order when it was applied */
} HdRetained;

typedef struct HdRace
{
	const char *name;			/* the config's, for log lines; the caller's memory */
	HdRetained *ret;
	size_t		nret;
	size_t		capret;
	uint64_t	next_fill_seq;
	uint64_t	order;			/* ticks at each retained change */
	uint64_t   *inflight;		/* seqs of fills in flight */
	size_t		ninflight;
	size_t		capinflight;
} HdRace;

/* 0, or -1 when out of memory (room for the retained changes is made now). */
extern int	hd_race_init(HdRace *race, const char *name);
extern void hd_race_free(HdRace *race);

/* An applied change of transaction xid touching deps (all: everything). */
extern void hd_race_retain(HdRace *race, uint64_t xid, bool all, const HdDep *deps,
						   size_t ndeps);
/* Drop the changes every fill in flight and every later one sees. */
extern void hd_race_prune(HdRace *race);

/* A fill is about to be sent: its number (it is in flight until hd_race_fill_done()). */
extern uint64_t hd_race_fill_begin(HdRace *race);
/* The fill ended (or was abandoned). False when it was not in flight (not protected). */
extern bool hd_race_fill_done(HdRace *race, uint64_t seq);

/*
 * A fill that read deps under snapshot s ended: true when it raced (a
 * retained change touching deps is not visible to s: do not store). Notes
 * which retained changes later fills see. *joined_before: waiters that
 * began to wait at an order below it may take the result (UINT64_MAX:
 * every waiter).
 */
extern bool hd_race_check(HdRace *race, const HdRaceSnapshot *s, const HdDep *deps,
						  size_t ndeps, uint64_t *joined_before);

/* Whether s sees transaction xid (false for xid 0). */
extern bool hd_race_xid_visible(const HdRaceSnapshot *s, uint64_t xid, bool xmin_rule);

#endif							/* HD_CACHE_RACE_H */
