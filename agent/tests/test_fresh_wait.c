/*
 * test_fresh_wait.c
 *    Unit tests of fresh_wait.c, strict consistency's waiting hits, with
 *    fake waiters: the queue's order of arrival, which waiters a freshness
 *    answers, which waited too long, waiters that go while taken out.
 *    Prints TAP; run by t/013_fresh_wait_unit.pl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/fresh_wait.h"
#include "tap.h"

static HdCacheWaiter w[5];

static void
waiter(int i, double arrived)
{
	memset(&w[i], 0, sizeof(w[i]));
	hd_flight_waiter_init(&w[i]);
	w[i].arrived = arrived;
}

/* The indexes of the waiters on out, in order, as "0 2 ..."; out is emptied. */
static const char *
drain(HdList *out)
{
	static char text[64];
	HdCacheWaiter *x;
	size_t		off = 0;

	text[0] = '\0';
	while ((x = hd_fresh_wait_pop(out)) != NULL)
		off += (size_t) snprintf(text + off, sizeof(text) - off, "%s%d", off ? " " : "",
								 (int) (x - w));
	return text;
}

int
main(void)
{
	HdFreshWaits q;
	HdList		out;

	hd_fresh_waits_init(&q);
	hd_list_init(&out);
	ok(hd_fresh_waits_empty(&q) && hd_fresh_waits_latest(&q) == 0, "an empty queue");

	/* added out of order: kept in order of arrival */
	waiter(0, 10);
	waiter(1, 30);
	waiter(2, 20);
	waiter(3, 40);
	hd_fresh_wait_add(&q, &w[0], 100);
	hd_fresh_wait_add(&q, &w[1], 101);
	hd_fresh_wait_add(&q, &w[2], 102);
	hd_fresh_wait_add(&q, &w[3], 103);
	ok(hd_fresh_waits_count(&q) == 4 && hd_fresh_waits_latest(&q) == 40 && w[2].fresh_wait,
	   "four wait; the latest arrival is what a probe must follow");

	hd_fresh_waits_take_answered(&q, 5, &out);
	ok(strcmp(drain(&out), "") == 0, "a freshness before every arrival answers none");
	hd_fresh_waits_take_answered(&q, 20, &out);
	ok(strcmp(drain(&out), "0 2") == 0 && !w[0].fresh_wait && hd_fresh_waits_count(&q) == 2,
	   "one at 20 answers those that arrived at or before 20, in order of arrival");

	/* a waiter taken out goes before it is acted on */
	hd_fresh_waits_take_answered(&q, 100, &out);
	hd_fresh_wait_leave(&w[1]);
	ok(strcmp(drain(&out), "3") == 0 && hd_fresh_waits_empty(&q),
	   "a waiter that goes while taken out is not acted on");
	hd_fresh_wait_leave(&w[1]);
	ok(!w[1].fresh_wait, "going twice is harmless");

	/* timeouts count from when each began to wait */
	waiter(0, 10);
	waiter(1, 11);
	waiter(2, 5);
	hd_fresh_wait_add(&q, &w[0], 100);
	hd_fresh_wait_add(&q, &w[1], 104);
	hd_fresh_wait_add(&q, &w[2], 103);	/* arrived earliest, waits since later (decided again) */
	hd_fresh_waits_take_expired(&q, 105, 0, &out);
	ok(strcmp(drain(&out), "") == 0, "no limit: none expires");
	hd_fresh_waits_take_expired(&q, 105, 2, &out);
	ok(strcmp(drain(&out), "2 0") == 0 && hd_fresh_waits_count(&q) == 1,
	   "those that waited the limit or more expire; a recent one waits on");
	hd_fresh_waits_take_all(&q, &out);
	ok(strcmp(drain(&out), "1") == 0 && hd_fresh_waits_empty(&q), "take_all empties the queue");
	return tap_done();
}
