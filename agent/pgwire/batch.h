/*
 * batch.h
 *    A client's extended-protocol batch (Parse/Bind/Describe/Execute ...
 *    Sync) and what the client waits for while it runs: one state machine.
 *
 * Contract: the state is changed only by hd_batch_event(), whose table in
 * batch.c lists every legal transition; everything else reads it through the
 * queries below. An event that is not legal in the current state is a
 * programming error: it is logged and caught by an assertion (the agent's
 * builds keep assert() on; with NDEBUG the state is left as it was and
 * hd_batch_event() returns false). No allocation, no I/O, no other state:
 * agent/tests/test_batch.c drives it without servers.
 *
 * The state has two parts that change on different events (each event moves
 * exactly one of them): the batch, between the client's Syncs,
 *
 *                      not local                        local
 *                 +---------------+  LOCAL_ANSWER  +---------------+
 *   not passed    |     IDLE      | -------------> |     LOCAL     |
 *                 +---------------+ <------------- +---------------+
 *                  |     |       TO_SERVER,SERVED      |          |
 *                  | PASS|                         PASS|          |
 *                  |     v                             v          |
 *                  |  +--------+  LOCAL_ANSWER   +--------------+ |
 *   passed         |  | PASSED | --------------> | LOCAL_PASSED | |
 *                  |  +--------+ <-------------- +--------------+ |
 *             COUNT|              TO_SERVER,SERVED           COUNT|
 *                  v                                              v
 *                 +---------------+  LOCAL_ANSWER  +---------------+
 *   passed and    |    COUNTED    | -------------> | LOCAL_COUNTED |
 *   counted       +---------------+ <------------- +---------------+
 *                                   TO_SERVER,SERVED
 *
 *   SYNC: from every state to IDLE. Legal and changing nothing: PASS and
 *   LOCAL_ANSWER where the state already says so (PASS in COUNTED too),
 *   TO_SERVER and SERVED in a state that is not local. COUNT is legal only
 *   where the cache decides (IDLE, LOCAL): a passed batch is not decided
 *   again. Nothing else is legal.
 *
 * and the client's wait (whatever the batch's state):
 *
 *               CACHE_WAIT               SHAPE_START
 *   +-------+ <------------ +------+ ------------> +-------+
 *   | CACHE |               | NONE |               | SHAPE |
 *   +-------+ ------------> +------+ <------------ +-------+
 *               CACHE_DONE   |    ^    SHAPE_END
 *                CHECK_START |    | CHECK_END
 *                            v    |
 *                          +--------+
 *                          | CHECK  |
 *                          +--------+
 *
 *   (each wait starts from NONE and ends to NONE: one wait at a time)
 *
 *   IDLE     no batch is decided: the cache may decide the next request
 *   LOCAL    the agent answered a Parse itself (no server held): it also
 *            answers the batch's Flush, and its Sync with ReadyForQuery
 *   PASSED   the cache passed on this batch: its messages go to the origin
 *            as they are until its Sync (the cache does not decide again)
 *   COUNTED  PASSED, and the pass was counted (bypass:*): its Execute is not
 *            counted again
 *   LOCAL_*  both: Parses answered locally inside a passed batch
 *
 *   The wait (reading stopped until it ends; hd_client_resume_reading()):
 *   CACHE  a cache op runs on its server, or it waits for another client's
 *          fill of the same key (cache_request.c, cache_fill.c, server.c)
 *   SHAPE  a statement's shape is checked on its server (prepare.h)
 *   CHECK  its request waits for the session-state check (state_check.c)
 *   One wait at a time: starting one while another runs is refused.
 *
 * Not batch state, and so not here: the origin connection's own "extended
 * messages sent since the last Sync" (HdServer.mid_batch: a fact about the
 * connection that outlives its client), the marker that resumes a shape
 * check after one particular reply (HdServer.verify_resume: part of the
 * reply stream), back-pressure (paused_for_*), the session settings being
 * applied (awaiting_setup) and the cache's decision for the one request at
 * the head of the input (HdClient.cache_step, cache_request.h), which feeds
 * PASS/COUNT/CACHE_WAIT/SERVED here.
 */
#ifndef HD_BATCH_H
#define HD_BATCH_H

#include <stdbool.h>
#include <stdint.h>

typedef enum HdBatchState
{
	HD_BST_IDLE,
	HD_BST_LOCAL,
	HD_BST_PASSED,
	HD_BST_COUNTED,
	HD_BST_LOCAL_PASSED,
	HD_BST_LOCAL_COUNTED,
	HD_BST_COUNT_
} HdBatchState;

typedef enum HdBatchWait
{
	HD_BWAIT_NONE,
	HD_BWAIT_CACHE,
	HD_BWAIT_SHAPE,
	HD_BWAIT_CHECK,
	HD_BWAIT_COUNT_
} HdBatchWait;

typedef enum HdBatchEvent
{
	/* the batch */
	HD_BEV_LOCAL_ANSWER,		/* the agent answered a Parse itself */
	HD_BEV_PASS,				/* the cache passes on the batch (or it streams) */
	HD_BEV_COUNT,				/* and counted why */
	HD_BEV_TO_SERVER,			/* a message goes to the held server */
	HD_BEV_SERVED,				/* the cache answered the request at the head */
	HD_BEV_SYNC,				/* its Sync answered or forwarded */
	/* the wait */
	HD_BEV_CACHE_WAIT,
	HD_BEV_CACHE_DONE,
	HD_BEV_SHAPE_START,
	HD_BEV_SHAPE_END,
	HD_BEV_CHECK_START,
	HD_BEV_CHECK_END,
	HD_BEV_COUNT_
} HdBatchEvent;

typedef struct HdBatch
{
	uint8_t		state;			/* HdBatchState */
	uint8_t		wait;			/* HdBatchWait */
} HdBatch;

/* A client's batch at login: IDLE, no wait (zeroed memory is that too). */
extern void hd_batch_init(HdBatch *b);

/* Apply an event: true, or false (logged, asserted) if it is not legal now. */
extern bool hd_batch_event(HdBatch *b, HdBatchEvent ev);

/* Whether ev is legal now (changes nothing). */
extern bool hd_batch_allows(const HdBatch *b, HdBatchEvent ev);

extern const char *hd_batch_state_name(HdBatchState s);
extern const char *hd_batch_wait_name(HdBatchWait w);
extern const char *hd_batch_event_name(HdBatchEvent ev);

/* The queries the rest of the agent reads */
static inline HdBatchState
hd_batch_state(const HdBatch *b)
{
	return (HdBatchState) b->state;
}

static inline HdBatchWait
hd_batch_wait(const HdBatch *b)
{
	return (HdBatchWait) b->wait;
}

/* The agent answers this batch's Flush and Sync itself. */
static inline bool
hd_batch_local(const HdBatch *b)
{
	return b->state == HD_BST_LOCAL || b->state == HD_BST_LOCAL_PASSED ||
		b->state == HD_BST_LOCAL_COUNTED;
}

/* The cache passed on this batch: it is not decided again before its Sync. */
static inline bool
hd_batch_passed(const HdBatch *b)
{
	return b->state == HD_BST_PASSED || b->state == HD_BST_COUNTED ||
		b->state == HD_BST_LOCAL_PASSED || b->state == HD_BST_LOCAL_COUNTED;
}

/* ... and counted: its Execute is not counted again. */
static inline bool
hd_batch_counted(const HdBatch *b)
{
	return b->state == HD_BST_COUNTED || b->state == HD_BST_LOCAL_COUNTED;
}

/* The client is stopped until its wait ends. */
static inline bool
hd_batch_waiting(const HdBatch *b)
{
	return b->wait != HD_BWAIT_NONE;
}

#endif							/* HD_BATCH_H */
