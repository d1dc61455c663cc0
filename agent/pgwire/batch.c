/*
 * batch.c
 *    The extended-protocol batch of a client as one state machine (batch.h):
 *    every legal transition is in the two tables below.
 */
#include "pgwire/batch.h"

#include <assert.h>

#include "base/log.h"

#define NO	(-1)				/* not legal in this state */

/*
 * The batch: the state an event leads to from each state. Columns follow
 * HdBatchState: IDLE, LOCAL, PASSED, COUNTED, LOCAL_PASSED, LOCAL_COUNTED.
 */
static const int8_t batch_next[HD_BEV_SYNC + 1][HD_BST_COUNT_] = {
	/* LOCAL_ANSWER: a Parse answered here; inside a passed batch too */
	[HD_BEV_LOCAL_ANSWER] = {HD_BST_LOCAL, HD_BST_LOCAL, HD_BST_LOCAL_PASSED,
	HD_BST_LOCAL_COUNTED, HD_BST_LOCAL_PASSED, HD_BST_LOCAL_COUNTED},
	/* PASS: also again (a large message streams in a passed batch) */
	[HD_BEV_PASS] = {HD_BST_PASSED, HD_BST_LOCAL_PASSED, HD_BST_PASSED,
	HD_BST_COUNTED, HD_BST_LOCAL_PASSED, HD_BST_LOCAL_COUNTED},
	/* COUNT: only where the cache decides, i.e. not in a passed batch */
	[HD_BEV_COUNT] = {HD_BST_COUNTED, HD_BST_LOCAL_COUNTED, NO, NO, NO, NO},
	/* TO_SERVER, SERVED: the server (or the cache) answers the rest */
	[HD_BEV_TO_SERVER] = {HD_BST_IDLE, HD_BST_IDLE, HD_BST_PASSED,
	HD_BST_COUNTED, HD_BST_PASSED, HD_BST_COUNTED},
	[HD_BEV_SERVED] = {HD_BST_IDLE, HD_BST_IDLE, HD_BST_PASSED,
	HD_BST_COUNTED, HD_BST_PASSED, HD_BST_COUNTED},
	/* SYNC: the batch is over whatever it was (a Sync alone is one too) */
	[HD_BEV_SYNC] = {HD_BST_IDLE, HD_BST_IDLE, HD_BST_IDLE,
	HD_BST_IDLE, HD_BST_IDLE, HD_BST_IDLE},
};

/* The wait: each event's one legal "from" and its "to". */
static const struct
{
	uint8_t		from;
	uint8_t		to;
}			wait_step[HD_BEV_COUNT_] = {
	[HD_BEV_CACHE_WAIT] = {HD_BWAIT_NONE, HD_BWAIT_CACHE},
	[HD_BEV_CACHE_DONE] = {HD_BWAIT_CACHE, HD_BWAIT_NONE},
	[HD_BEV_SHAPE_START] = {HD_BWAIT_NONE, HD_BWAIT_SHAPE},
	[HD_BEV_SHAPE_END] = {HD_BWAIT_SHAPE, HD_BWAIT_NONE},
	[HD_BEV_CHECK_START] = {HD_BWAIT_NONE, HD_BWAIT_CHECK},
	[HD_BEV_CHECK_END] = {HD_BWAIT_CHECK, HD_BWAIT_NONE},
};

static const char *const state_names[HD_BST_COUNT_] = {
	"IDLE", "LOCAL", "PASSED", "COUNTED", "LOCAL_PASSED", "LOCAL_COUNTED"
};
static const char *const wait_names[HD_BWAIT_COUNT_] = {
	"NONE", "CACHE", "SHAPE", "CHECK"
};
static const char *const event_names[HD_BEV_COUNT_] = {
	"LOCAL_ANSWER", "PASS", "COUNT", "TO_SERVER", "SERVED", "SYNC",
	"CACHE_WAIT", "CACHE_DONE", "SHAPE_START", "SHAPE_END", "CHECK_START", "CHECK_END"
};

void
hd_batch_init(HdBatch *b)
{
	b->state = HD_BST_IDLE;
	b->wait = HD_BWAIT_NONE;
}

/* An event moves the batch (through batch_next) or the wait (wait_step). */
static bool
is_batch_event(HdBatchEvent ev)
{
	return ev <= HD_BEV_SYNC;
}

bool
hd_batch_allows(const HdBatch *b, HdBatchEvent ev)
{
	if ((unsigned) ev >= HD_BEV_COUNT_ || b->state >= HD_BST_COUNT_ ||
		b->wait >= HD_BWAIT_COUNT_)
		return false;
	if (is_batch_event(ev))
		return batch_next[ev][b->state] != NO;
	return b->wait == wait_step[ev].from;
}

bool
hd_batch_event(HdBatch *b, HdBatchEvent ev)
{
	if (!hd_batch_allows(b, ev))
	{
		/* a caller broke the protocol's order as the agent sees it: a bug */
		hd_warning("batch: event %s is not legal in state %s (wait %s)",
				   hd_batch_event_name(ev), hd_batch_state_name(b->state),
				   hd_batch_wait_name(b->wait));
		assert(!"illegal batch transition");
		return false;
	}
	if (is_batch_event(ev))
		b->state = (uint8_t) batch_next[ev][b->state];
	else
		b->wait = wait_step[ev].to;
	return true;
}

const char *
hd_batch_state_name(HdBatchState s)
{
	return (unsigned) s < HD_BST_COUNT_ ? state_names[s] : "?";
}

const char *
hd_batch_wait_name(HdBatchWait w)
{
	return (unsigned) w < HD_BWAIT_COUNT_ ? wait_names[w] : "?";
}

const char *
hd_batch_event_name(HdBatchEvent ev)
{
	return (unsigned) ev < HD_BEV_COUNT_ ? event_names[ev] : "?";
}
