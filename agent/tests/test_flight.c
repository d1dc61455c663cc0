/*
 * test_flight.c
 *    Unit tests of flight.c, request coalescing, with fake sessions: who
 *    leads and who waits, what each waiter gets when a flight ends (the
 *    result, its own request, or deciding again), the reasons counted,
 *    leaders and waiters that go, timeouts, and waiters that re-enter.
 *    Prints TAP; run by t/013_flight_unit.pl.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/flight.h"
#include "tap.h"

typedef struct Fake
{
	HdCacheWaiter w;
	bool		active;
	int			serve_rc;		/* what serve() returns */
	int			served;
	int			fell_back;
	int			decided_again;
	char		got[32];		/* the bytes served */
	bool		rejoin;			/* decide_again() asks for the key again */
} Fake;

/* The owner: counts reasons, may have a problem, knows the flights for rejoining. */
typedef struct Owner
{
	HdFlights	flights;
	char		last[80];
	int			counted;
	const char *problem;
	uint64_t	order;
} Owner;

static Owner owner;

static const unsigned char KEY[] = "key-1";
static const unsigned char OTHER[] = "key-2";

static Fake *
fake_of(HdCacheWaiter *w)
{
	return hd_container_of(w, Fake, w);
}

static bool
fake_active(HdCacheWaiter *w)
{
	return fake_of(w)->active;
}

static int
fake_serve(HdCacheWaiter *w, const void *bytes, size_t len)
{
	Fake	   *f = fake_of(w);

	if (f->serve_rc != 0)
		return f->serve_rc;
	f->served++;
	snprintf(f->got, sizeof(f->got), "%.*s", (int) len, (const char *) bytes);
	return 0;
}

static void
fake_fall_back(HdCacheWaiter *w)
{
	fake_of(w)->fell_back++;
}

static void
fake_decide_again(HdCacheWaiter *w)
{
	Fake	   *f = fake_of(w);

	f->decided_again++;
	if (f->rejoin)
		(void) hd_flight_join(&owner.flights, w, false, KEY, sizeof(KEY), owner.order, 0);
}

static void
fake_schema_changed(void *arg, const char *config_id)
{
	(void) arg;
	(void) config_id;
}

static const HdCacheSessionOps fake_ops = {
	fake_active, fake_serve, fake_fall_back, fake_decide_again, fake_schema_changed
};

static void
owner_count(void *arg, const char *reason)
{
	Owner	   *o = arg;

	o->counted++;
	snprintf(o->last, sizeof(o->last), "%s", reason);
}

static const char *
owner_problem(void *arg, const HdCacheWaiter *w)
{
	(void) w;
	return ((Owner *) arg)->problem;
}

static void
reset(void)
{
	memset(&owner, 0, sizeof(owner));
	hd_flights_init(&owner.flights, &fake_ops, owner_count, owner_problem, &owner);
}

static Fake *
fake_new(void)
{
	Fake	   *f = calloc(1, sizeof(Fake));

	f->active = true;
	hd_flight_waiter_init(&f->w);
	return f;
}

/* A flight for KEY led by a leader, taken for a job, with n waiters at change order 5. */
static HdFlight *
running_flight(Fake **waiters, int n, HdFlight **job_ref)
{
	Fake	   *leader = fake_new();
	HdFlight   *f;

	ok(!hd_flight_join(&owner.flights, &leader->w, false, KEY, sizeof(KEY), 5, 0) &&
	   leader->w.leader, "the first to ask leads");
	for (int i = 0; i < n; i++)
	{
		waiters[i] = fake_new();
		(void) hd_flight_join(&owner.flights, &waiters[i]->w, false, KEY, sizeof(KEY), 5, 0);
	}
	f = hd_flight_take(&leader->w);
	ok(f != NULL && leader->w.flight == NULL && !leader->w.leader, "its flight is taken for its job");
	hd_flight_attach(f, job_ref, 0);
	free(leader);
	return f;
}

static void
test_lead_and_wait(void)
{
	Fake	   *a = fake_new();
	Fake	   *b = fake_new();
	Fake	   *c = fake_new();

	reset();
	ok(!hd_flight_join(&owner.flights, &a->w, false, KEY, sizeof(KEY), 1, 0), "a leads");
	ok(hd_flight_join(&owner.flights, &b->w, false, KEY, sizeof(KEY), 1, 0), "b waits");
	ok(b->w.flight == a->w.flight && !b->w.leader, "for a's flight");
	ok(!hd_flight_join(&owner.flights, &c->w, true, KEY, sizeof(KEY), 1, 0),
	   "an analysis of the same key is another flight");
	ok(hd_flight_find(&owner.flights, false, OTHER, sizeof(OTHER)) == NULL, "another key: none");
	ok(hd_flight_take(&b->w) == NULL, "a waiter leads nothing");
	hd_flights_end_all(&owner.flights);
	ok(b->fell_back == 1 && a->w.flight == NULL && owner.flights.head == NULL,
	   "ending all: waiters run their own, leaders are free");
	free(a);
	free(b);
	free(c);
}

static void
test_served(void)
{
	Fake	   *w[2];
	HdFlight   *job_flight = NULL;
	HdFlight   *f;

	reset();
	f = running_flight(w, 2, &job_flight);
	ok(job_flight == f, "the job points at its flight");
	hd_flight_end(f, "rows", 4, UINT64_MAX);
	ok(w[0]->served == 1 && w[1]->served == 1 && strcmp(w[0]->got, "rows") == 0,
	   "stored: every waiter gets the result");
	ok(owner.flights.coalesced == 2, "counted as coalesced");
	ok(job_flight == NULL, "the job's field is cleared");
	ok(w[0]->w.flight == NULL && owner.flights.head == NULL, "waiters unlinked, flight gone");
	free(w[0]);
	free(w[1]);
}

static void
test_raced(void)
{
	Fake	   *w[2];
	Fake	   *late;
	Fake	   *at;
	HdFlight   *job_flight = NULL;
	HdFlight   *f;

	reset();
	f = running_flight(w, 2, &job_flight);
	late = fake_new();
	at = fake_new();
	(void) hd_flight_join(&owner.flights, &late->w, false, KEY, sizeof(KEY), 9, 0);
	(void) hd_flight_join(&owner.flights, &at->w, false, KEY, sizeof(KEY), 7, 0);
	hd_flight_end(f, "rows", 4, 7);	/* a change at order 7 the result misses */
	ok(w[0]->served == 1 && w[1]->served == 1, "waiters from before the change get the result");
	ok(late->served == 0 && late->decided_again == 1, "a waiter from after it decides again");
	ok(at->served == 0 && at->decided_again == 1,
	   "so does one that began to wait once the change was applied");
	ok(strcmp(owner.last, "coalesce-again:raced") == 0, "counted coalesce-again:raced");
	free(w[0]);
	free(w[1]);
	free(late);
	free(at);
}

static void
test_rejoin(void)
{
	Fake	   *w[2];
	HdFlight   *job_flight = NULL;
	HdFlight   *f;

	reset();
	f = running_flight(w, 2, &job_flight);
	w[0]->rejoin = w[1]->rejoin = true;
	hd_flight_end(f, "rows", 4, 1);	/* both joined after the change */
	ok(w[0]->decided_again == 1 && w[1]->decided_again == 1, "both decide again");
	ok(w[0]->w.leader && w[0]->w.flight != NULL, "the first leads the key's next fill");
	ok(w[1]->w.flight == w[0]->w.flight && !w[1]->w.leader, "the other waits for it");
	hd_flights_end_all(&owner.flights);
	free(w[0]);
	free(w[1]);
}

static void
test_not_stored(void)
{
	Fake	   *w[1];
	HdFlight   *job_flight = NULL;
	HdFlight   *f;

	reset();
	f = running_flight(w, 1, &job_flight);
	hd_flight_end(f, NULL, 0, 0);
	ok(w[0]->fell_back == 1 && w[0]->served == 0, "no result: the waiter runs its own");
	ok(strcmp(owner.last, "coalesce-fallback:not stored") == 0, "counted not stored");
	free(w[0]);
}

static void
test_analysis(void)
{
	Fake	   *a = fake_new();
	Fake	   *b = fake_new();
	HdFlight   *job_flight = NULL;
	HdFlight   *f;

	reset();
	(void) hd_flight_join(&owner.flights, &a->w, true, KEY, sizeof(KEY), 1, 0);
	(void) hd_flight_join(&owner.flights, &b->w, true, KEY, sizeof(KEY), 1, 0);
	f = hd_flight_take(&a->w);
	ok(hd_flight_matches(f, true, KEY, sizeof(KEY)) && !hd_flight_matches(f, false, KEY, sizeof(KEY)),
	   "an analysis flight matches its kind and key");
	hd_flight_attach(f, &job_flight, 0);
	hd_flight_end(f, "ignored", 7, UINT64_MAX);
	ok(b->decided_again == 1 && b->served == 0, "an analysis's waiter decides again");
	free(a);
	free(b);
}

static void
test_problems(void)
{
	Fake	   *w[3];
	HdFlight   *job_flight = NULL;
	HdFlight   *f;

	reset();
	f = running_flight(w, 3, &job_flight);
	w[1]->serve_rc = 1;
	w[2]->active = false;
	owner.problem = NULL;
	hd_flight_end(f, "rows", 4, UINT64_MAX);
	ok(w[0]->served == 1, "a waiter is served");
	ok(w[1]->fell_back == 1 && w[1]->served == 0, "one whose request cannot be read falls back");
	ok(w[2]->served == 0 && w[2]->fell_back == 0 && w[2]->decided_again == 0,
	   "a closing session is left alone");
	ok(owner.flights.coalesced == 1, "only the served one counts as coalesced");
	free(w[0]);					/* the next flight's waiter takes its place */

	reset();
	f = running_flight(w, 1, &job_flight);
	owner.problem = "lagging";
	hd_flight_end(f, "rows", 4, UINT64_MAX);
	ok(w[0]->fell_back == 1 && w[0]->served == 0, "the stream lags: the waiter runs its own");
	ok(strcmp(owner.last, "coalesce-fallback:lagging") == 0, "counted with the problem");
	for (int i = 0; i < 3; i++)
		free(w[i]);
}

static void
test_gone(void)
{
	Fake	   *leader = fake_new();
	Fake	   *w = fake_new();
	Fake	   *w2 = fake_new();
	HdFlight   *job_flight = NULL;
	HdFlight   *f;

	reset();
	(void) hd_flight_join(&owner.flights, &leader->w, false, KEY, sizeof(KEY), 1, 0);
	(void) hd_flight_join(&owner.flights, &w->w, false, KEY, sizeof(KEY), 1, 0);
	hd_flight_waiter_gone(&leader->w);
	ok(w->fell_back == 1 && owner.flights.head == NULL,
	   "a leader gone before its job: the flight ends, waiters run their own");

	reset();
	w->fell_back = 0;
	(void) hd_flight_join(&owner.flights, &leader->w, false, KEY, sizeof(KEY), 1, 0);
	(void) hd_flight_join(&owner.flights, &w->w, false, KEY, sizeof(KEY), 1, 0);
	(void) hd_flight_join(&owner.flights, &w2->w, false, KEY, sizeof(KEY), 1, 0);
	f = hd_flight_take(&leader->w);
	hd_flight_attach(f, &job_flight, 0);
	hd_flight_waiter_gone(&w2->w);
	ok(w2->w.flight == NULL, "a waiter that goes leaves the flight");
	hd_flight_end(f, "x", 1, UINT64_MAX);
	ok(w->served == 1 && w2->served == 0, "and is not answered");
	free(leader);
	free(w);
	free(w2);
}

static void
test_timeouts(void)
{
	Fake	   *leader = fake_new();
	Fake	   *early = fake_new();
	Fake	   *recent = fake_new();

	reset();
	(void) hd_flight_join(&owner.flights, &leader->w, false, KEY, sizeof(KEY), 1, 0.0);
	(void) hd_flight_join(&owner.flights, &early->w, false, KEY, sizeof(KEY), 1, 1.0);
	(void) hd_flight_join(&owner.flights, &recent->w, false, KEY, sizeof(KEY), 1, 4.0);
	hd_flight_timeouts(&owner.flights, 5.0, 0);
	ok(early->fell_back == 0, "no limit: nobody times out");
	hd_flight_timeouts(&owner.flights, 5.0, 3.0);
	ok(early->fell_back == 1 && early->w.flight == NULL, "a waiter past the limit runs its own");
	ok(strcmp(owner.last, "coalesce-fallback:timeout") == 0, "counted timeout");
	ok(recent->fell_back == 0 && recent->w.flight != NULL, "a recent one waits on");
	hd_flights_end_all(&owner.flights);
	free(leader);
	free(early);
	free(recent);
}

/*
 * A strict config: the job's result answers the waiters that arrived before
 * it was sent; one that arrived later decides again (the result may lack a
 * commit acknowledged before it arrived); a bounded config serves both.
 */
static void
test_strict(void)
{
	for (int strict = 0; strict <= 1; strict++)
	{
		Fake	   *leader = fake_new();
		Fake	   *before = fake_new();
		Fake	   *after = fake_new();
		HdFlight   *job_flight = NULL;
		HdFlight   *f;

		reset();
		owner.flights.strict = strict;
		before->w.arrived = 1.0;
		after->w.arrived = 3.0;
		(void) hd_flight_join(&owner.flights, &leader->w, false, KEY, sizeof(KEY), 1, 0);
		(void) hd_flight_join(&owner.flights, &before->w, false, KEY, sizeof(KEY), 1, 0);
		(void) hd_flight_join(&owner.flights, &after->w, false, KEY, sizeof(KEY), 1, 0);
		f = hd_flight_take(&leader->w);
		hd_flight_attach(f, &job_flight, 2.0);
		hd_flight_end(f, "r", 1, UINT64_MAX);
		ok(before->served == 1, strict ? "strict: a waiter that arrived before the job was sent "
		   "is served" : "bounded: a waiter that arrived before the job was sent is served");
		if (strict)
		{
			ok(after->served == 0 && after->decided_again == 1 && after->w.flight == NULL,
			   "strict: one that arrived after it decides again");
			ok(strcmp(owner.last, "coalesce-again:strict") == 0, "counted coalesce-again:strict");
		}
		else
			ok(after->served == 1 && owner.counted == 0, "bounded: so is one that arrived after it");
		free(leader);
		free(before);
		free(after);
	}
}

int
main(void)
{
	test_lead_and_wait();
	test_served();
	test_raced();
	test_rejoin();
	test_not_stored();
	test_analysis();
	test_problems();
	test_gone();
	test_timeouts();
	test_strict();
	return tap_done();
}
