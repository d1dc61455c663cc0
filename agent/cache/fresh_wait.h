/*
 * fresh_wait.h
 *    Strict consistency's waiting hits (docs/cache.md, "Consistency"): a
 *    config's queue of sessions whose request found a stored result that
 *    may only be served once the change source has applied every commit the
 *    origin acknowledged before the request arrived (change.h: fresh_as_of
 *    at or past the request's arrival).
 *
 * The waiters are the sessions' HdCacheWaiter (flight.h), linked through
 * the same member as a flight's waiters: a session waits for a flight or
 * for freshness, never both. The core (cache.c) adds a hit that is not
 * fresh enough, asks its change source for a probe sent after the latest
 * arrival (hd_fresh_waits_latest()), and, when fresh_as_of moves or the
 * timer runs, takes out the waiters it answers or that waited too long.
 *
 * Contract:
 *   - hd_fresh_wait_add() keeps the queue in order of arrival, so that one
 *     freshness answers a prefix of it; a waiter must not be in a flight.
 *   - hd_fresh_waits_take_answered() moves every waiter that arrived at or
 *     before fresh_as_of, hd_fresh_waits_take_expired() every one that has
 *     waited limit seconds or more (limit > 0), onto out (initialised by
 *     the caller), in order. The caller then pops them one at a time
 *     (hd_fresh_wait_pop()) and acts on each: a callback may re-enter (add
 *     a waiter, or make one go) without invalidating what is left on out.
 *   - hd_fresh_wait_leave(): the session goes; harmless when it does not
 *     wait (and from out too).
 *   - No I/O and no clock of its own (times are passed in: base/clock.h
 *     seconds); agent/tests/test_fresh_wait.c drives it with fake waiters.
 */
#ifndef HD_CACHE_FRESH_WAIT_H
#define HD_CACHE_FRESH_WAIT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/list.h"
#include "cache/flight.h"

typedef struct HdFreshWaits
{
	HdList		waiters;		/* HdCacheWaiter.link, ascending arrived */
} HdFreshWaits;

extern void hd_fresh_waits_init(HdFreshWaits *q);
extern bool hd_fresh_waits_empty(const HdFreshWaits *q);
extern size_t hd_fresh_waits_count(const HdFreshWaits *q);
/* The latest arrival of a waiter (what a probe must be sent after); 0 when none. */
extern double hd_fresh_waits_latest(const HdFreshWaits *q);

/* w (w->arrived set by the session side) waits from now on. */
extern void hd_fresh_wait_add(HdFreshWaits *q, HdCacheWaiter *w, double now);
extern void hd_fresh_waits_take_answered(HdFreshWaits *q, double fresh_as_of, HdList *out);
extern void hd_fresh_waits_take_expired(HdFreshWaits *q, double now, double limit, HdList *out);
extern void hd_fresh_waits_take_all(HdFreshWaits *q, HdList *out);
/* The first waiter of out, no longer waiting; NULL when out is empty. */
extern HdCacheWaiter *hd_fresh_wait_pop(HdList *out);
extern void hd_fresh_wait_leave(HdCacheWaiter *w);

#endif							/* HD_CACHE_FRESH_WAIT_H */
