/*
 * fresh_wait.c
 *    Strict consistency's waiting hits (fresh_wait.h).
 */
#include "cache/fresh_wait.h"

void
hd_fresh_waits_init(HdFreshWaits *q)
{
	hd_list_init(&q->waiters);
}

bool
hd_fresh_waits_empty(const HdFreshWaits *q)
{
	return hd_list_empty(&q->waiters);
}

size_t
hd_fresh_waits_count(const HdFreshWaits *q)
{
	size_t		n = 0;

	for (const HdList *item = q->waiters.next; item != &q->waiters; item = item->next)
		n++;
	return n;
}

double
hd_fresh_waits_latest(const HdFreshWaits *q)
{
	if (hd_list_empty(&q->waiters))
		return 0;
	return hd_container_of(q->waiters.prev, HdCacheWaiter, link)->arrived;
}

/*
 * Inserted after the last waiter that arrived no later: requests are read
 * in order, so that is nearly always the tail (a waiter deciding again
 * after a wake may have arrived earlier than the tail).
 */
void
hd_fresh_wait_add(HdFreshWaits *q, HdCacheWaiter *w, double now)
{
	HdList	   *at = q->waiters.prev;

	while (at != &q->waiters && hd_container_of(at, HdCacheWaiter, link)->arrived > w->arrived)
		at = at->prev;
	hd_list_append(at->next, &w->link);	/* before at's successor: after at */
	w->fresh_wait = true;
	w->wait_started = now;
}

/* Move the waiters before stop (exclusive) onto out, in order. */
static void
move_prefix(HdFreshWaits *q, HdList *stop, HdList *out)
{
	HdList	   *item;

	while ((item = hd_list_first(&q->waiters)) != NULL && item != stop)
	{
		hd_list_del(item);
		hd_list_append(out, item);
	}
}

void
hd_fresh_waits_take_answered(HdFreshWaits *q, double fresh_as_of, HdList *out)
{
	HdList	   *item = q->waiters.next;

	while (item != &q->waiters && hd_container_of(item, HdCacheWaiter, link)->arrived <= fresh_as_of)
		item = item->next;
	move_prefix(q, item, out);
}

void
hd_fresh_waits_take_expired(HdFreshWaits *q, double now, double limit, HdList *out)
{
	HdList	   *item;
	HdList	   *tmp;

	if (limit <= 0)
		return;
	hd_list_foreach_safe(item, tmp, &q->waiters)
	{
		if (now - hd_container_of(item, HdCacheWaiter, link)->wait_started >= limit)
		{
			hd_list_del(item);
			hd_list_append(out, item);
		}
	}
}

void
hd_fresh_waits_take_all(HdFreshWaits *q, HdList *out)
{
	move_prefix(q, &q->waiters, out);
}

HdCacheWaiter *
hd_fresh_wait_pop(HdList *out)
{
	HdList	   *item = hd_list_first(out);
	HdCacheWaiter *w;

	if (item == NULL)
		return NULL;
	w = hd_container_of(item, HdCacheWaiter, link);
	hd_fresh_wait_leave(w);
	return w;
}

void
hd_fresh_wait_leave(HdCacheWaiter *w)
{
	if (!w->fresh_wait)
		return;
	hd_list_del(&w->link);
	w->fresh_wait = false;
}
