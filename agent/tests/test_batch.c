/*
 * test_batch.c
 *    Unit tests of batch.c, a client's extended-protocol batch as one state
 *    machine: the sequences drivers send (pgx-style Parse/Bind/Describe/
 *    Execute/Sync, a Parse-only batch answered by the agent, a batch the
 *    cache serves, one it passes on, a shape check in the middle, an error
 *    then Sync) driven as client.c and the cache drive them, and the
 *    transitions it refuses. Built with NDEBUG, so that a refused event
 *    returns false (and is logged) instead of stopping the program.
 *    Prints TAP; run by t/017_batch_unit.pl.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "pgwire/batch.h"
#include "tap.h"

static FILE *log_file;

/* What the log said since the last call (refused events are logged). */
static bool
logged(const char *needle)
{
	static char text[4096];
	size_t		n;

	fflush(log_file);
	rewind(log_file);
	n = fread(text, 1, sizeof(text) - 1, log_file);
	text[n] = '\0';
	rewind(log_file);
	if (ftruncate(fileno(log_file), 0) != 0)
		return false;
	return strstr(text, needle) != NULL;
}

static bool
in(const HdBatch *b, HdBatchState s, HdBatchWait w)
{
	return hd_batch_state(b) == s && hd_batch_wait(b) == w;
}

/* Apply events in order; false at the first refused one. */
static bool
drive(HdBatch *b, const HdBatchEvent *evs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!hd_batch_event(b, evs[i]))
			return false;
	return true;
}

/*
 * pgx (and libpq's extended mode) without a server: the cache decides the
 * Parse, counts why it passes it on (bypass:*), the batch goes to a server
 * message by message, its Execute is not counted again, Sync ends it.
 */
static void
test_pgx_passed(void)
{
	HdBatch		b;

	hd_batch_init(&b);
	ok(in(&b, HD_BST_IDLE, HD_BWAIT_NONE) && !hd_batch_passed(&b) && !hd_batch_local(&b),
	   "pgx: a new client's batch is IDLE, no wait");
	ok(hd_batch_event(&b, HD_BEV_COUNT) && hd_batch_event(&b, HD_BEV_PASS),
	   "pgx: the cache counts and passes the Parse");
	ok(in(&b, HD_BST_COUNTED, HD_BWAIT_NONE) && hd_batch_passed(&b) && hd_batch_counted(&b),
	   "pgx: COUNTED: passed, its Execute not counted again");
	/* Parse, Bind, Describe P, Execute: each goes to the held server */
	for (int i = 0; i < 4; i++)
		hd_batch_event(&b, HD_BEV_TO_SERVER);
	ok(in(&b, HD_BST_COUNTED, HD_BWAIT_NONE), "pgx: the messages go on; still COUNTED");
	ok(!hd_batch_allows(&b, HD_BEV_COUNT), "pgx: a passed batch is not decided (counted) again");
	ok(hd_batch_event(&b, HD_BEV_TO_SERVER) && hd_batch_event(&b, HD_BEV_SYNC) &&
	   in(&b, HD_BST_IDLE, HD_BWAIT_NONE) && !hd_batch_counted(&b),
	   "pgx: its Sync ends the batch: IDLE");
}

/* A batch the cache passes on without counting (the fill fell back, analysis said forward). */
static void
test_forwarded(void)
{
	HdBatch		b;
	static const HdBatchEvent evs[] = {
		HD_BEV_CACHE_WAIT, HD_BEV_CACHE_DONE, HD_BEV_PASS, HD_BEV_TO_SERVER,
		HD_BEV_PASS,			/* a large Bind streams: passed again, harmless */
		HD_BEV_TO_SERVER, HD_BEV_TO_SERVER
	};

	hd_batch_init(&b);
	ok(drive(&b, evs, sizeof(evs) / sizeof(evs[0])), "forwarded: waits for a fill, falls back");
	ok(in(&b, HD_BST_PASSED, HD_BWAIT_NONE) && hd_batch_passed(&b) && !hd_batch_counted(&b),
	   "forwarded: PASSED, not counted");
	ok(hd_batch_event(&b, HD_BEV_SYNC) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "forwarded: Sync: IDLE");
}

/*
 * Re-preparing known statements without a server (drivers on a new
 * connection, pgbench -M prepared): Parse, Parse, Flush, Sync, all answered
 * by the agent.
 */
static void
test_parse_only_local(void)
{
	HdBatch		b;

	hd_batch_init(&b);
	ok(hd_batch_event(&b, HD_BEV_LOCAL_ANSWER) && in(&b, HD_BST_LOCAL, HD_BWAIT_NONE) &&
	   hd_batch_local(&b), "local: a Parse answered here: LOCAL");
	ok(hd_batch_event(&b, HD_BEV_LOCAL_ANSWER) && hd_batch_local(&b),
	   "local: a second Parse: still LOCAL (its Flush is answered here too)");
	ok(hd_batch_event(&b, HD_BEV_SYNC) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE) &&
	   !hd_batch_local(&b), "local: its Sync (ReadyForQuery from the agent): IDLE");

	/* a Parse answered here, then a Bind that needs a server */
	hd_batch_event(&b, HD_BEV_LOCAL_ANSWER);
	ok(hd_batch_event(&b, HD_BEV_TO_SERVER) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "local: a Bind goes to a server: the server answers the rest (IDLE)");

	/* a Parse the cache passed on is still answered here, inside the passed batch */
	hd_batch_init(&b);
	hd_batch_event(&b, HD_BEV_COUNT);
	hd_batch_event(&b, HD_BEV_PASS);
	ok(hd_batch_event(&b, HD_BEV_LOCAL_ANSWER) && in(&b, HD_BST_LOCAL_COUNTED, HD_BWAIT_NONE) &&
	   hd_batch_local(&b) && hd_batch_counted(&b), "local: inside a passed batch: LOCAL_COUNTED");
	ok(hd_batch_event(&b, HD_BEV_TO_SERVER) && in(&b, HD_BST_COUNTED, HD_BWAIT_NONE),
	   "local: then to a server: COUNTED again");
	hd_batch_init(&b);
	hd_batch_event(&b, HD_BEV_LOCAL_ANSWER);
	ok(hd_batch_event(&b, HD_BEV_PASS) && in(&b, HD_BST_LOCAL_PASSED, HD_BWAIT_NONE),
	   "local: the cache passes the next message: LOCAL_PASSED");
	ok(hd_batch_event(&b, HD_BEV_SYNC) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "local: Sync ends LOCAL_PASSED");
}

/* The cache answers a whole batch (Parse Bind Describe Execute Sync), also after a local Parse. */
static void
test_served(void)
{
	HdBatch		b;

	hd_batch_init(&b);
	ok(hd_batch_event(&b, HD_BEV_SERVED) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "served: a hit leaves the batch IDLE");
	hd_batch_event(&b, HD_BEV_LOCAL_ANSWER);
	ok(hd_batch_event(&b, HD_BEV_SERVED) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "served: after a local Parse, the served Sync ends the local answering");
	/* coalescing: it waits for another client's fill, which serves it */
	ok(hd_batch_event(&b, HD_BEV_CACHE_WAIT) && hd_batch_waiting(&b) &&
	   hd_batch_wait(&b) == HD_BWAIT_CACHE, "served: waits for a fill (CACHE)");
	ok(hd_batch_event(&b, HD_BEV_SERVED) && hd_batch_waiting(&b),
	   "served: the fill's bytes served: the wait is its own event");
	ok(hd_batch_event(&b, HD_BEV_CACHE_DONE) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "served: the wait ends");
}

/* A Parse meets a known text after a schema change: its shape is checked mid-batch. */
static void
test_shape_check(void)
{
	HdBatch		b;

	hd_batch_init(&b);
	hd_batch_event(&b, HD_BEV_COUNT);
	hd_batch_event(&b, HD_BEV_PASS);
	hd_batch_event(&b, HD_BEV_TO_SERVER);
	ok(hd_batch_event(&b, HD_BEV_SHAPE_START) && in(&b, HD_BST_COUNTED, HD_BWAIT_SHAPE) &&
	   hd_batch_waiting(&b), "shape: the check starts: the client waits (SHAPE)");
	ok(!hd_batch_event(&b, HD_BEV_CHECK_START) && in(&b, HD_BST_COUNTED, HD_BWAIT_SHAPE) &&
	   logged("CHECK_START is not legal in state COUNTED (wait SHAPE)"),
	   "shape: a second wait is refused, logged, nothing changed");
	ok(!hd_batch_event(&b, HD_BEV_SHAPE_START), "shape: the same check twice is refused");
	ok(!hd_batch_event(&b, HD_BEV_CACHE_DONE) && hd_batch_wait(&b) == HD_BWAIT_SHAPE,
	   "shape: another wait's end is refused");
	ok(hd_batch_event(&b, HD_BEV_SHAPE_END) && in(&b, HD_BST_COUNTED, HD_BWAIT_NONE),
	   "shape: checked: the batch goes on where it was");
	ok(hd_batch_event(&b, HD_BEV_TO_SERVER) && hd_batch_event(&b, HD_BEV_SYNC) &&
	   in(&b, HD_BST_IDLE, HD_BWAIT_NONE), "shape: the rest, then Sync: IDLE");
}

/*
 * An error mid-batch: the origin skips to the Sync (server.c's expect
 * queue); the client's batch goes on being forwarded and its Sync ends it.
 */
static void
test_error_then_sync(void)
{
	HdBatch		b;
	static const HdBatchEvent evs[] = {
		HD_BEV_PASS, HD_BEV_TO_SERVER,	/* Parse: fails on the origin */
		HD_BEV_TO_SERVER, HD_BEV_TO_SERVER, /* Bind, Execute: skipped there */
		HD_BEV_TO_SERVER, HD_BEV_SYNC	/* Sync: ErrorResponse, ReadyForQuery */
	};

	hd_batch_init(&b);
	ok(drive(&b, evs, sizeof(evs) / sizeof(evs[0])) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "error: the batch ends at its Sync");
	ok(hd_batch_event(&b, HD_BEV_SYNC) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "error: a Sync alone (after a Query) is legal and changes nothing");
}

/* The session-state check: its request waits for it between transactions. */
static void
test_state_check(void)
{
	HdBatch		b;

	hd_batch_init(&b);
	ok(hd_batch_event(&b, HD_BEV_CHECK_START) && hd_batch_wait(&b) == HD_BWAIT_CHECK,
	   "check: the request waits (CHECK)");
	ok(!hd_batch_event(&b, HD_BEV_CACHE_WAIT), "check: no cache wait meanwhile");
	ok(hd_batch_event(&b, HD_BEV_CHECK_END) && in(&b, HD_BST_IDLE, HD_BWAIT_NONE),
	   "check: done: no wait");
	ok(!hd_batch_event(&b, HD_BEV_CHECK_END) && logged("CHECK_END is not legal"),
	   "check: its end again is refused and logged");
}

/* Refusals in the batch part leave the state as it was. */
static void
test_refused(void)
{
	HdBatch		b;

	hd_batch_init(&b);
	hd_batch_event(&b, HD_BEV_PASS);
	ok(!hd_batch_event(&b, HD_BEV_COUNT) && in(&b, HD_BST_PASSED, HD_BWAIT_NONE) &&
	   logged("COUNT is not legal in state PASSED"), "refused: COUNT in a passed batch");
	ok(!hd_batch_event(&b, HD_BEV_CACHE_DONE) && !hd_batch_event(&b, HD_BEV_SHAPE_END),
	   "refused: a wait's end without the wait");
	ok(!hd_batch_event(&b, (HdBatchEvent) HD_BEV_COUNT_) && in(&b, HD_BST_PASSED, HD_BWAIT_NONE),
	   "refused: an unknown event");
}

/* The table and hd_batch_allows() agree everywhere; every event is legal somewhere. */
static void
test_table(void)
{
	bool		agree = true;
	bool		each_legal = true;

	for (int ev = 0; ev < HD_BEV_COUNT_; ev++)
	{
		bool		somewhere = false;

		for (int s = 0; s < HD_BST_COUNT_; s++)
			for (int w = 0; w < HD_BWAIT_COUNT_; w++)
			{
				HdBatch		b = {(uint8_t) s, (uint8_t) w};
				HdBatch		before = b;
				bool		allowed = hd_batch_allows(&b, (HdBatchEvent) ev);
				bool		done = hd_batch_event(&b, (HdBatchEvent) ev);

				if (allowed != done || (!done && memcmp(&b, &before, sizeof(b)) != 0))
					agree = false;
				/* an event moves one part only */
				if (done && b.state != before.state && b.wait != before.wait)
					agree = false;
				somewhere |= allowed;
			}
		if (!somewhere)
			each_legal = false;
	}
	(void) logged("");
	ok(agree, "table: allowed == applied, refusals change nothing, one part per event");
	ok(each_legal, "table: every event is legal in some state");
	ok(strcmp(hd_batch_state_name(HD_BST_LOCAL_COUNTED), "LOCAL_COUNTED") == 0 &&
	   strcmp(hd_batch_event_name(HD_BEV_CHECK_END), "CHECK_END") == 0 &&
	   strcmp(hd_batch_wait_name(HD_BWAIT_SHAPE), "SHAPE") == 0, "names");
}

int
main(void)
{
	log_file = tmpfile();
	if (log_file == NULL)
		return 2;
	hd_log_set_output(log_file);
	hd_log_set_rate_limit(100000, 1.0);
	test_pgx_passed();
	test_forwarded();
	test_parse_only_local();
	test_served();
	test_shape_check();
	test_error_then_sync();
	test_state_check();
	test_refused();
	test_table();
	return tap_done();
}
