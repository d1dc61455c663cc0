/*
 * test_pool.c
 *    Unit tests of the protocol-neutral pool (agent/pool/pool.c), without
 *    servers or sockets: fake connections (HdPoolOps) and fake waiters
 *    (HdPoolWaiterOps), an ev loop that only runs the pool's retry timer.
 *    The test plays the protocol: it says when a connection logged in,
 *    failed or was released, and records what the pool asked of it.
 */
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "pool/pool.h"
#include "tests/tap.h"

#define MAX_CONNS 16

typedef struct FakeConn
{
	HdPoolConn	conn;
	int			id;				/* 1, 2, ... in the order opened */
	bool		closed;
	char		close_reason[128];
} FakeConn;

typedef struct FakePool
{
	HdPool		pool;
	FakeConn   *conns[MAX_CONNS];
	int			opened;
	int			closed;
	int			resets;
	int			reset_result;	/* what reset() answers */
	bool		keep_on_release;	/* released() answers false */
	int			config_changes;
} FakePool;

typedef struct FakeWaiter
{
	HdPoolWaiter wait;
	const char *name;
	HdPoolConn *got;			/* ready() handed it this */
	bool		ready;
	bool		failed;
	char		sqlstate[6];
	int			order;			/* when it was answered: 1, 2, ... */
} FakeWaiter;

static int	answers;			/* ready()/failed() calls so far */
static struct ev_loop *loop;
static HdSettings settings;
static HdList all_pools;

static FakePool *
fake_of(HdPool *pool)
{
	return hd_container_of(pool, FakePool, pool);
}

static FakeConn *
conn_of(HdPoolConn *conn)
{
	return hd_container_of(conn, FakeConn, conn);
}

/* ---------------------------------------------------------------------------
 * HdPoolOps, as a protocol would implement them
 */

static void
fake_open(HdPool *pool)
{
	FakePool   *fp = fake_of(pool);
	FakeConn   *fc = calloc(1, sizeof(FakeConn));

	if (fc == NULL || fp->opened >= MAX_CONNS)
	{
		free(fc);
		hd_pool_conn_failed(pool, NULL, "53200", "out of memory");
		return;
	}
	fc->id = ++fp->opened;
	fp->conns[fc->id - 1] = fc;
	hd_pool_conn_add(pool, &fc->conn);
	fc->conn.connected_at = ev_now(loop);
}

static void
fake_close(HdPoolConn *conn, const char *reason)
{
	FakeConn   *fc = conn_of(conn);

	if (conn->state == HD_CONN_CLOSED)
		return;
	conn->state = HD_CONN_CLOSED;
	fc->closed = true;
	snprintf(fc->close_reason, sizeof(fc->close_reason), "%s", reason);
	/* the test owns the FakeConn (conns[]): not freed until the pool is */
	for (HdList *item = all_pools.next; item != &all_pools; item = item->next)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		FakePool   *fp = fake_of(pool);

		for (int i = 0; i < fp->opened; i++)
			if (fp->conns[i] == fc)
			{
				fp->closed++;
				hd_pool_conn_gone(pool, conn);
				return;
			}
	}
}

static bool
fake_released(HdPoolConn *conn)
{
	(void) conn;
	for (HdList *item = all_pools.next; item != &all_pools; item = item->next)
	{
		FakePool   *fp = fake_of(hd_container_of(item, HdPool, link));

		for (int i = 0; i < fp->opened; i++)
			if (fp->conns[i] == conn_of(conn))
				return !fp->keep_on_release;
	}
	return true;
}

static int
fake_reset(HdPoolConn *conn)
{
	for (HdList *item = all_pools.next; item != &all_pools; item = item->next)
	{
		FakePool   *fp = fake_of(hd_container_of(item, HdPool, link));

		for (int i = 0; i < fp->opened; i++)
			if (fp->conns[i] == conn_of(conn))
			{
				fp->resets++;
				if (fp->reset_result > 0)
					conn->state = HD_CONN_RESETTING;
				return fp->reset_result;
			}
	}
	return 0;
}

static void
fake_config_changed(HdPool *pool)
{
	fake_of(pool)->config_changes++;
}

static void
fake_free(HdPool *pool)
{
	FakePool   *fp = fake_of(pool);

	hd_pool_fini(pool);
	for (int i = 0; i < fp->opened; i++)
		free(fp->conns[i]);
	free(fp);
}

static const HdPoolOps fake_ops = {
	.open = fake_open,
	.close = fake_close,
	.released = fake_released,
	.reset = fake_reset,
	.config_changed = fake_config_changed,
	.free = fake_free,
};

/* ---------------------------------------------------------------------------
 * HdPoolWaiterOps
 */

static void
waiter_ready(HdPoolWaiter *waiter, HdPoolConn *conn)
{
	FakeWaiter *fw = hd_container_of(waiter, FakeWaiter, wait);

	fw->ready = true;
	fw->got = conn;
	fw->order = ++answers;
}

static void
waiter_failed(HdPoolWaiter *waiter, const char *sqlstate, const char *message)
{
	FakeWaiter *fw = hd_container_of(waiter, FakeWaiter, wait);

	(void) message;
	fw->failed = true;
	snprintf(fw->sqlstate, sizeof(fw->sqlstate), "%s", sqlstate);
	fw->order = ++answers;
}

static const HdPoolWaiterOps waiter_ops = {
	.ready = waiter_ready,
	.failed = waiter_failed,
};

static void
waiter_init(FakeWaiter *fw, const char *name, bool login)
{
	memset(fw, 0, sizeof(*fw));
	fw->name = name;
	hd_list_init(&fw->wait.link);
	fw->wait.ops = &waiter_ops;
	fw->wait.login = login;
}

/* A request made now: its connection if it got one at once. */
static HdPoolConn *
request(FakePool *fp, FakeWaiter *fw)
{
	return hd_pool_request(&fp->pool, &fw->wait, ev_now(loop));
}

/* ---------------------------------------------------------------------------
 * Pools
 */

static HdConfig
make_config(const char *id, int limit, HdPoolMode mode)
{
	HdConfig	c;

	hd_config_init(&c);
	snprintf(c.id, sizeof(c.id), "%s", id);
	snprintf(c.name, sizeof(c.name), "cfg-%s", id);
	c.user = "owner";
	c.origin_connection_limit = limit;
	c.pool_mode = mode;
	return c;
}

static FakePool *
new_pool(const char *id, const char *role, int limit, HdPoolMode mode)
{
	FakePool   *fp = calloc(1, sizeof(FakePool));
	HdConfig	c = make_config(id, limit, mode);

	if (fp == NULL ||
		hd_pool_init(&fp->pool, &all_pools, loop, &settings, &fake_ops, &c, role) < 0)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	hd_list_append(&all_pools, &fp->pool.link);
	return fp;
}

static void
free_pools(void)
{
	HdList	   *item;

	while ((item = hd_list_first(&all_pools)) != NULL)
		hd_pool_free(hd_container_of(item, HdPool, link));
}

/* ---------------------------------------------------------------------------
 * Tests
 */

/* First come, first served; the config's limit holds; releases serve the queue. */
static void
test_fifo_and_limit(void)
{
	FakePool   *fp = new_pool("a", "owner", 2, HD_POOL_TRANSACTION);
	FakeWaiter	w1,
				w2,
				w3;

	waiter_init(&w1, "w1", false);
	waiter_init(&w2, "w2", false);
	waiter_init(&w3, "w3", false);
	ok(request(fp, &w1) == NULL && w1.wait.waiting, "fifo: no idle connection: the first client waits");
	ok(request(fp, &w2) == NULL && request(fp, &w3) == NULL, "fifo: so do the next two");
	ok(fp->opened == 2, "fifo: one connection per waiter, up to origin_connection_limit (2)");
	ok(hd_pool_config_conns(&all_pools, "a") == 2, "fifo: the config counts both");

	/* the second connection logs in first: still the first client gets it */
	hd_pool_conn_ready(&fp->pool, &fp->conns[1]->conn);
	ok(w1.ready && w1.got == &fp->conns[1]->conn && !w2.ready && !w3.ready,
	   "fifo: the first waiter gets the first connection ready");
	ok(fp->conns[1]->conn.state == HD_CONN_ACTIVE && !w1.wait.waiting,
	   "fifo: it is held, and the waiter left the queue");
	hd_pool_conn_ready(&fp->pool, &fp->conns[0]->conn);
	ok(w2.ready && w2.got == &fp->conns[0]->conn && !w3.ready, "fifo: the second gets the next");

	/* a release hands the connection to the one still waiting */
	hd_pool_release(&fp->pool, &fp->conns[1]->conn);
	ok(w3.ready && w3.got == &fp->conns[1]->conn && w3.order == 3,
	   "fifo: a released connection goes to the third waiter");
	ok(fp->opened == 2, "fifo: no connection beyond the limit was opened");
	ok(fp->pool.stats.wait_latency.count == 3,
	   "fifo: the three waits are in the wait latency histogram");

	/* released with nobody waiting: idle, and the next request gets it at once */
	hd_pool_release(&fp->pool, &fp->conns[1]->conn);
	ok(fp->conns[1]->conn.state == HD_CONN_IDLE, "fifo: released with nobody waiting: idle");
	waiter_init(&w1, "w1 again", false);
	ok(request(fp, &w1) == &fp->conns[1]->conn && !w1.ready,
	   "fifo: an idle connection is handed out at once, without a callback");
	free_pools();
}

/* A pool at its config's limit makes room by closing another role's idle connection. */
static void
test_limit_across_roles(void)
{
	FakePool   *owner = new_pool("b", "owner", 1, HD_POOL_TRANSACTION);
	FakePool   *other = new_pool("b", "other", 1, HD_POOL_TRANSACTION);
	FakeWaiter	w1,
				w2;

	waiter_init(&w1, "w1", false);
	waiter_init(&w2, "w2", false);
	(void) request(owner, &w1);
	hd_pool_conn_ready(&owner->pool, &owner->conns[0]->conn);
	hd_pool_release(&owner->pool, &owner->conns[0]->conn);
	ok(owner->conns[0]->conn.state == HD_CONN_IDLE, "roles: the owner's connection is idle");
	ok(request(other, &w2) == NULL && other->opened == 1,
	   "roles: another role's request opens a connection of its own");
	ok(owner->conns[0]->closed && hd_pool_config_conns(&all_pools, "b") == 1,
	   "roles: the idle one of the owner was closed to stay within the limit");
	free_pools();
}

/* A failed attempt answers every waiter; the next attempt waits for server_login_retry. */
static void
test_failure_and_retry(void)
{
	FakePool   *fp = new_pool("c", "owner", 1, HD_POOL_TRANSACTION);
	FakeWaiter	w[3];
	FakeWaiter	late,
				early;
	int			all_failed = 1;

	for (int i = 0; i < 3; i++)
	{
		waiter_init(&w[i], "w", false);
		(void) request(fp, &w[i]);
	}
	ok(fp->opened == 1, "failure: one attempt for three waiters (limit 1)");
	hd_pool_conn_failed(&fp->pool, &fp->conns[0]->conn, "28P01", "password authentication failed");
	fake_close(&fp->conns[0]->conn, "login failed");
	for (int i = 0; i < 3; i++)
		all_failed &= w[i].failed && strcmp(w[i].sqlstate, "28P01") == 0 && !w[i].wait.waiting;
	ok(all_failed, "failure: every waiter gets the origin's error");
	ok(w[0].order < w[1].order && w[1].order < w[2].order, "failure: in the order they came");
	ok(hd_list_empty(&fp->pool.waiting) && fp->pool.stats.connect_failures == 1,
	   "failure: nobody waits; the failure is counted");

	/* a request made before that attempt started: the failure is its answer */
	waiter_init(&early, "early", false);
	ok(hd_pool_request(&fp->pool, &early.wait, fp->pool.failed_attempt_at - 1) == NULL &&
	   early.failed && !early.wait.waiting, "failure: an older request gets the error at once");

	/* one made since waits for the next attempt, server_login_retry later */
	waiter_init(&late, "late", false);
	ok(hd_pool_request(&fp->pool, &late.wait, ev_now(loop) + 0.001) == NULL &&
	   late.wait.waiting && fp->opened == 1, "retry: a newer request waits; no attempt yet");
	ok(ev_is_active(&fp->pool.retry_timer), "retry: the retry timer is armed");
	ev_run(loop, 0);			/* returns once the timer has fired */
	ok(fp->opened == 2, "retry: the timer made the next attempt");
	hd_pool_conn_ready(&fp->pool, &fp->conns[1]->conn);
	ok(late.ready && late.got == &fp->conns[1]->conn && fp->pool.last_error == NULL,
	   "retry: the waiter gets it; the origin is back");
	free_pools();
}

/* PAUSE keeps idle connections from waiters; RESUME hands them out. */
static void
test_pause_resume(void)
{
	FakePool   *fp = new_pool("d", "owner", 2, HD_POOL_TRANSACTION);
	FakeWaiter	w1,
				w2;

	waiter_init(&w1, "w1", false);
	waiter_init(&w2, "w2", false);
	(void) request(fp, &w1);
	hd_pool_conn_ready(&fp->pool, &fp->conns[0]->conn);
	hd_pool_release(&fp->pool, &fp->conns[0]->conn);
	hd_pool_pause(&fp->pool);
	ok(request(fp, &w2) == NULL && w2.wait.waiting && !w2.ready,
	   "pause: an idle connection is not handed out");
	ok(fp->opened == 1, "pause: nor is a new one opened");
	hd_pool_resume(&fp->pool);
	ok(w2.ready && w2.got == &fp->conns[0]->conn, "resume: the waiter gets the idle connection");
	free_pools();
}

/* A pool made while another of its config is paused starts paused; RESUME of it does not leak. */
static void
test_pause_new_pool(void)
{
	FakePool   *a = new_pool("p", "owner", 2, HD_POOL_TRANSACTION);
	FakePool   *other = new_pool("q", "owner", 2, HD_POOL_TRANSACTION);
	FakePool   *b;
	FakePool   *c;

	hd_pool_pause(&a->pool);
	b = new_pool("p", "reader", 2, HD_POOL_TRANSACTION);
	ok(b->pool.paused, "pause: a new pool of the paused config starts paused");
	c = new_pool("q", "reader", 2, HD_POOL_TRANSACTION);
	ok(!c->pool.paused && !other->pool.paused, "pause: another config's new pool does not");
	hd_pool_resume(&a->pool);
	hd_pool_resume(&b->pool);
	ok(!new_pool("p", "writer", 2, HD_POOL_TRANSACTION)->pool.paused,
	   "resume: after RESUME a new pool starts unpaused");
	free_pools();
}

/* Logins wait for the pool's first login; in session pooling they take a connection. */
static void
test_logins(void)
{
	FakePool   *tx = new_pool("e", "owner", 2, HD_POOL_TRANSACTION);
	FakePool   *session = new_pool("f", "owner", 2, HD_POOL_SESSION);
	FakeWaiter	l1,
				l2,
				q;

	waiter_init(&l1, "l1", true);
	waiter_init(&q, "q", false);
	(void) request(tx, &l1);
	(void) request(tx, &q);
	hd_pool_conn_ready(&tx->pool, &tx->conns[0]->conn);
	ok(l1.ready && l1.got == NULL, "logins: transaction pooling: let in without a connection");
	ok(q.ready && q.got == &tx->conns[0]->conn, "logins: the query behind it gets the connection");
	ok(tx->pool.params_known, "logins: the pool's first login is known");

	waiter_init(&l2, "l2", true);
	(void) request(session, &l2);
	hd_pool_conn_ready(&session->pool, &session->conns[0]->conn);
	ok(l2.ready && l2.got == &session->conns[0]->conn,
	   "logins: session pooling: the login takes its connection");
	free_pools();
}

/* The janitor: query_wait_timeout, server_idle_timeout. */
static void
test_janitor(void)
{
	FakePool   *fp = new_pool("g", "owner", 1, HD_POOL_TRANSACTION);
	FakeWaiter	w1,
				w2;
	ev_tstamp	now = ev_now(loop);

	waiter_init(&w1, "w1", false);
	waiter_init(&w2, "w2", false);
	(void) request(fp, &w1);
	(void) request(fp, &w2);
	hd_pool_janitor(&fp->pool, now + 1);
	ok(!w1.failed && !w2.failed, "janitor: within query_wait_timeout nobody is failed");
	hd_pool_janitor(&fp->pool, now + 10);
	ok(w1.failed && w2.failed && strcmp(w1.sqlstate, "53300") == 0 &&
	   fp->pool.stats.wait_timeouts == 2, "janitor: after it both get 53300, counted");

	waiter_init(&w1, "w1", false);
	(void) request(fp, &w1);
	hd_pool_conn_ready(&fp->pool, &fp->conns[0]->conn);
	hd_pool_release(&fp->pool, &fp->conns[0]->conn);
	hd_pool_janitor(&fp->pool, now + 1);
	ok(!fp->conns[0]->closed, "janitor: a fresh idle connection stays");
	hd_pool_janitor(&fp->pool, now + 100);
	ok(fp->conns[0]->closed &&
	   strcmp(fp->conns[0]->close_reason, "server_idle_timeout reached") == 0,
	   "janitor: past server_idle_timeout it is closed");
	free_pools();
}

/* Release: the protocol may keep it, reset it first, or fail to. */
static void
test_release(void)
{
	FakePool   *fp = new_pool("h", "owner", 3, HD_POOL_SESSION);
	FakeWaiter	w1,
				w2;
	HdConfig	changed = make_config("h", 3, HD_POOL_SESSION);

	waiter_init(&w1, "w1", false);
	waiter_init(&w2, "w2", false);
	(void) request(fp, &w1);
	hd_pool_conn_ready(&fp->pool, &fp->conns[0]->conn);
	ok(w1.got == &fp->conns[0]->conn, "release: w1 holds the connection");
	(void) request(fp, &w2);	/* waits; opens a second connection */

	fp->keep_on_release = true;
	hd_pool_release(&fp->pool, &fp->conns[0]->conn);
	ok(!w2.ready && fp->resets == 0, "release: kept by the protocol: nothing happens");

	fp->keep_on_release = false;
	fp->reset_result = 1;
	hd_pool_release(&fp->pool, &fp->conns[0]->conn);
	ok(fp->resets == 1 && !w2.ready && fp->conns[0]->conn.state == HD_CONN_RESETTING,
	   "release: a held connection is reset before anyone gets it");
	/* the reset is done: the protocol releases it again */
	fp->conns[0]->conn.state = HD_CONN_IDLE;
	hd_pool_release(&fp->pool, &fp->conns[0]->conn);
	ok(fp->resets == 1 && w2.ready && w2.got == &fp->conns[0]->conn,
	   "release: once reset, the waiter gets it");

	fp->reset_result = -1;
	hd_pool_release(&fp->pool, &fp->conns[0]->conn);
	ok(fp->conns[0]->closed && strcmp(fp->conns[0]->close_reason, "out of memory") == 0,
	   "release: a reset that fails closes it");

	/* a config change: the connection logging in is not reused; the idle one closes */
	hd_pool_conn_ready(&fp->pool, &fp->conns[1]->conn);
	hd_pool_update_config(&fp->pool, &changed);
	ok(fp->config_changes == 1 && fp->pool.config_gen == 1 && fp->conns[1]->closed,
	   "config change: the protocol is told, the generation bumped, idle ones closed");
	free_pools();
}

int
main(void)
{
	loop = ev_default_loop(0);
	hd_list_init(&all_pools);
	settings.query_wait_timeout_ms = 5000;
	settings.server_idle_timeout_ms = 60000;
	settings.server_login_retry_ms = 20;
	hd_log_set_level(HD_LOG_ERROR);	/* the pool warns of failed attempts: expected here */

	test_fifo_and_limit();
	test_limit_across_roles();
	test_failure_and_retry();
	test_pause_resume();
	test_pause_new_pool();
	test_logins();
	test_janitor();
	test_release();
	return tap_done();
}
