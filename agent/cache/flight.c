/*
 * flight.c
 *    Request coalescing: flights, their leaders and waiters (flight.h).
 */
#include "cache/flight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct HdFlight
{
	HdFlight   *next;
	HdFlights  *flights;
	bool		analysis;		/* an analysis, not a fill */
	unsigned char *key;
	size_t		keylen;
	HdCacheWaiter *leader;		/* until its job starts; NULL after (or a refresh) */
	HdList		waiters;		/* HdCacheWaiter.link */
	HdFlight  **job_ref;		/* the job's field that points here, once it runs */
	double		sent_at;		/* base/clock.h time before the job was sent */
};

void
hd_flights_init(HdFlights *flights, const HdCacheSessionOps *session,
				void (*count) (void *owner, const char *reason),
				const char *(*problem) (void *owner, const HdCacheWaiter *waiter), void *owner)
{
	memset(flights, 0, sizeof(*flights));
	flights->session = session;
	flights->count = count;
	flights->problem = problem;
	flights->owner = owner;
}

void
hd_flights_end_all(HdFlights *flights)
{
	while (flights->head)
		hd_flight_end(flights->head, NULL, 0, 0);
}

void
hd_flight_waiter_init(HdCacheWaiter *waiter)
{
	hd_list_init(&waiter->link);
}

HdFlight *
hd_flight_find(HdFlights *flights, bool analysis, const unsigned char *key, size_t keylen)
{
	for (HdFlight *f = flights->head; f; f = f->next)
		if (hd_flight_matches(f, analysis, key, keylen))
			return f;
	return NULL;
}

bool
hd_flight_matches(const HdFlight *flight, bool analysis, const unsigned char *key, size_t keylen)
{
	return flight->analysis == analysis && flight->keylen == keylen &&
		memcmp(flight->key, key, keylen) == 0;
}

HdFlight *
hd_flight_new(HdFlights *flights, bool analysis, const unsigned char *key, size_t keylen)
{
	HdFlight   *f = calloc(1, sizeof(HdFlight));

	if (f == NULL || (f->key = malloc(keylen ? keylen : 1)) == NULL)
	{
		free(f);
		return NULL;
	}
	memcpy(f->key, key, keylen);
	f->flights = flights;
	f->analysis = analysis;
	f->keylen = keylen;
	hd_list_init(&f->waiters);
	f->next = flights->head;
	flights->head = f;
	return f;
}

static void
waiter_unlink(HdCacheWaiter *w)
{
	hd_list_del(&w->link);
	w->flight = NULL;
}

/* A waiter runs its own request on the origin after all (never an error). */
static void
waiter_fall_back(HdFlights *flights, HdCacheWaiter *w, const char *reason)
{
	waiter_unlink(w);
	flights->count(flights->owner, reason);
	if (flights->session->active(w))
		flights->session->fall_back(w);
}

/* A waiter gets the flight's bytes (a stored result) for its request. */
static void
waiter_serve(HdFlights *flights, HdCacheWaiter *w, const void *bytes, size_t len)
{
	const char *problem;
	char		name[80];
	int			rc;

	if (!flights->session->active(w))
	{
		waiter_unlink(w);
		return;
	}
	/* the conditions for a hit hold now too (the owner's: stream health, lag, its writes) */
	if ((problem = flights->problem(flights->owner, w)) != NULL)
	{
		snprintf(name, sizeof(name), "coalesce-fallback:%s", problem);
		waiter_fall_back(flights, w, name);
		return;
	}
	waiter_unlink(w);
	rc = flights->session->serve(w, bytes, len);
	if (rc == 1)
		waiter_fall_back(flights, w, "coalesce-fallback:error");
	else if (rc == 0)
		flights->coalesced++;
}

/*
 * An analysis it waited for ended, or a fill whose result it may not take:
 * its request is decided again, from the start.
 */
static void
waiter_decide_again(HdFlights *flights, HdCacheWaiter *w)
{
	waiter_unlink(w);
	if (flights->session->active(w))
		flights->session->decide_again(w);
}

/*
 * The flight ends (flight.h). So a key has one fill at a time, and writes
 * during a slow fill cost one more execution, not one per write.
 */
void
hd_flight_end(HdFlight *f, const void *bytes, size_t len, uint64_t joined_before)
{
	HdFlights  *flights = f->flights;
	HdList	   *item;

	for (HdFlight **l = &flights->head; *l; l = &(*l)->next)
		if (*l == f)
		{
			*l = f->next;
			break;
		}
	if (f->leader)
	{
		f->leader->flight = NULL;
		f->leader->leader = false;
		f->leader = NULL;
	}
	if (f->job_ref)
		*f->job_ref = NULL;
	f->job_ref = NULL;
	while ((item = hd_list_first(&f->waiters)) != NULL)
	{
		HdCacheWaiter *w = hd_container_of(item, HdCacheWaiter, link);

		if (f->analysis)
			waiter_decide_again(flights, w);
		else if (bytes && flights->strict && w->arrived > f->sent_at)
		{
			flights->count(flights->owner, "coalesce-again:strict");
			waiter_decide_again(flights, w);
		}
		else if (bytes && w->wait_order < joined_before)
			waiter_serve(flights, w, bytes, len);
		else if (bytes)
		{
			flights->count(flights->owner, "coalesce-again:raced");
			waiter_decide_again(flights, w);
		}
		else
			waiter_fall_back(flights, w, "coalesce-fallback:not stored");
	}
	free(f->key);
	free(f);
}

void
hd_flight_timeouts(HdFlights *flights, double now, double limit)
{
	bool		again = true;

	if (limit <= 0)
		return;
	while (again)
	{
		again = false;
		for (HdFlight *f = flights->head; f && !again; f = f->next)
		{
			HdList	   *item;
			HdList	   *tmp;

			hd_list_foreach_safe(item, tmp, &f->waiters)
			{
				HdCacheWaiter *w = hd_container_of(item, HdCacheWaiter, link);

				if (now - w->wait_started >= limit)
				{
					waiter_fall_back(flights, w, "coalesce-fallback:timeout");
					again = true;	/* callbacks may have changed the lists */
					break;
				}
			}
		}
	}
}

void
hd_flight_waiter_gone(HdCacheWaiter *waiter)
{
	HdFlight   *f = waiter->flight;

	if (f == NULL)
		return;
	if (waiter->leader)
	{
		/* it never started its job: the waiters run their own */
		waiter->flight = NULL;
		waiter->leader = false;
		f->leader = NULL;
		if (f->job_ref == NULL)
			hd_flight_end(f, NULL, 0, 0);
		return;
	}
	waiter_unlink(waiter);
}

bool
hd_flight_join(HdFlights *flights, HdCacheWaiter *waiter, bool analysis,
			   const unsigned char *key, size_t keylen, uint64_t order, double now)
{
	HdFlight   *f = hd_flight_find(flights, analysis, key, keylen);

	if (f != NULL)
	{
		hd_list_append(&f->waiters, &waiter->link);
		waiter->flight = f;
		waiter->leader = false;
		waiter->wait_started = now;
		waiter->wait_order = order;
		return true;
	}
	f = hd_flight_new(flights, analysis, key, keylen);
	if (f != NULL)
	{
		f->leader = waiter;
		waiter->flight = f;
		waiter->leader = true;
	}
	return false;
}

HdFlight *
hd_flight_take(HdCacheWaiter *leader)
{
	HdFlight   *f = leader->flight;

	if (!leader->leader || f == NULL)
		return NULL;
	f->leader = NULL;
	leader->flight = NULL;
	leader->leader = false;
	return f;
}

void
hd_flight_attach(HdFlight *flight, HdFlight **job_ref, double sent_at)
{
	flight->job_ref = job_ref;
	flight->sent_at = sent_at;
	*job_ref = flight;
}
