/*
 * flight.h
 *    Request coalescing (docs/cache.md): one fill per key in flight; other
 *    sessions asking for the same key wait for it instead of taking an
 *    origin connection, and are answered with its result, or run their own
 *    requests. An analysis in flight is a flight too (keyed by the
 *    analysis's key): its waiters decide again when it ends.
 *
 * The sessions are the protocol side's; the core sees each through the
 * HdCacheWaiter it embeds and acts on it only through HdCacheSessionOps.
 *
 * Contract:
 *   - A flight is led by the session that asked first (hd_flight_join()
 *     returns false) until its job starts: hd_flight_take() detaches the
 *     leader, hd_flight_attach() ties the flight to the job (the job's
 *     field is cleared when the flight ends). A leader that goes before its
 *     job starts ends the flight: its waiters run their own requests.
 *   - hd_flight_end(f, bytes, len, joined_before): with bytes, waiters that
 *     began to wait at a change order below joined_before are served the
 *     bytes (unless the owner's problem() says they may not take a result
 *     now: they run their own), later ones decide again (the result may
 *     miss a change they must see: the first of them leads the key's next
 *     fill); without bytes every waiter runs its own request. Waiters of an
 *     analysis always decide again. In a strict config (flights->strict)
 *     a waiter that arrived after the flight's job was sent (the sent_at of
 *     hd_flight_attach()) decides again instead: the job's result may lack
 *     a commit acknowledged before the waiter arrived ("coalesce-again:strict").
 *   - Waking a waiter may re-enter (join a flight, end one): the flight is
 *     unlinked before its waiters are woken, and lists are read again after
 *     each callback.
 *   - Every reason a waiter does not take a result is counted through the
 *     owner's count(): "coalesce-fallback:<problem>|error|not stored|timeout",
 *     "coalesce-again:raced".
 *   - No I/O and no clock of its own (now is passed in): tests drive it
 *     with fake sessions (agent/tests/test_flight.c).
 */
#ifndef HD_CACHE_FLIGHT_H
#define HD_CACHE_FLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "cache/dep.h"

typedef struct HdFlight HdFlight;

/* What the core keeps in each session (zeroed, then hd_flight_waiter_init()). */
typedef struct HdCacheWaiter
{
	HdFlight   *flight;			/* the flight it leads or waits for; NULL: none */
	bool		leader;			/* it leads that flight (else it waits for it) */
	bool		fresh_wait;		/* it waits for freshness instead (fresh_wait.h) */
	HdList		link;			/* the flight's waiters, or the freshness queue */
	double		arrived;		/* set by the session side: base/clock.h time at or
								 * after its request's bytes were read */
	double		wait_started;	/* when it began to wait */
	uint64_t	wait_order;		/* the config's change order when it began to wait */
	HdPos		ryw_pos;		/* no hit until the changes are applied this far (its writes) */
} HdCacheWaiter;

/*
 * The session side. Every function but schema_changed gets the waiter the
 * session embeds.
 *   active        whether the session still takes answers (not closing).
 *   serve         answer the request at the head of its input with bytes (a
 *                 stored result's), then read on. 0: served; 1: the request
 *                 cannot be read again (it is made to fall back); -1: the
 *                 session was closed.
 *   fall_back     run its request on the origin as it is (never an error).
 *   decide_again  its request is decided again from the start.
 *   schema_changed  (arg: the cache layer's) the config's statements mean
 *                 the new schema from now on (DDL applied).
 * The waiter is unlinked from its flight before serve, fall_back and
 * decide_again are called; none of them is called for a session that is
 * not active.
 */
typedef struct HdCacheSessionOps
{
	bool		(*active) (HdCacheWaiter *waiter);
	int			(*serve) (HdCacheWaiter *waiter, const void *bytes, size_t len);
	void		(*fall_back) (HdCacheWaiter *waiter);
	void		(*decide_again) (HdCacheWaiter *waiter);
	void		(*schema_changed) (void *arg, const char *config_id);
} HdCacheSessionOps;

/* The flights of one config. */
typedef struct HdFlights
{
	HdFlight   *head;
	const HdCacheSessionOps *session;
	void		(*count) (void *owner, const char *reason);
	/* why a waiter may not take a result now (a reason word), or NULL */
	const char *(*problem) (void *owner, const HdCacheWaiter *waiter);
	void	   *owner;
	bool		strict;			/* the config's hits promise strict consistency */
	uint64_t	coalesced;		/* waiters answered with another session's result */
} HdFlights;

extern void hd_flights_init(HdFlights *flights, const HdCacheSessionOps *session,
							void (*count) (void *owner, const char *reason),
							const char *(*problem) (void *owner, const HdCacheWaiter *waiter),
							void *owner);
/* End every flight: their waiters run their own requests. */
extern void hd_flights_end_all(HdFlights *flights);

extern void hd_flight_waiter_init(HdCacheWaiter *waiter);
/* A session goes: it leaves its flight (a leader's flight with no job ends). */
extern void hd_flight_waiter_gone(HdCacheWaiter *waiter);

/* The flight of a key, or NULL. */
extern HdFlight *hd_flight_find(HdFlights *flights, bool analysis, const unsigned char *key,
								size_t keylen);
/* A new flight for a copy of key, with no leader; NULL when out of memory. */
extern HdFlight *hd_flight_new(HdFlights *flights, bool analysis, const unsigned char *key,
							   size_t keylen);

/*
 * The waiter asks for key: true when it waits for the flight in flight
 * (order: the change order now); false when it leads a new one (or none,
 * when out of memory: then it simply runs alone).
 */
extern bool hd_flight_join(HdFlights *flights, HdCacheWaiter *waiter, bool analysis,
						   const unsigned char *key, size_t keylen, uint64_t order, double now);

/* The leader's flight, detached from it (NULL: it leads none). */
extern HdFlight *hd_flight_take(HdCacheWaiter *leader);
extern bool hd_flight_matches(const HdFlight *flight, bool analysis, const unsigned char *key,
							  size_t keylen);
/*
 * The job whose field job_ref is answers the flight now; sent_at (base/
 * clock.h) is taken before the job was sent: what it reads is at least as
 * new as that.
 */
extern void hd_flight_attach(HdFlight *flight, HdFlight **job_ref, double sent_at);

extern void hd_flight_end(HdFlight *flight, const void *bytes, size_t len,
						  uint64_t joined_before);
/* Waiters that waited limit seconds or more (limit > 0) run their own requests. */
extern void hd_flight_timeouts(HdFlights *flights, double now, double limit);

#endif							/* HD_CACHE_FLIGHT_H */
