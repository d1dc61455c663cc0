/*
 * pool.c
 *    Pools: per (config, role), the origin connections and the clients
 *    waiting for one. See pool.h for the contract.
 *
 * The config's origin_connection_limit caps the connections of all its
 * pools together. A client that needs a connection gets an idle one, or a
 * new one if the config is under its limit, or waits in its pool's FIFO
 * queue (query_wait_timeout bounds the wait: hd_pool_janitor()). When a
 * connection attempt fails, the clients waiting for it get the origin's
 * error at once (08001 when it cannot be reached), so that they do not pile
 * up while the origin is down. While the last attempt failed, a pool makes
 * one attempt at a time, at most one per server_login_retry: clients that
 * arrive meanwhile wait for the next attempt (not the last error, which may
 * be stale by then), and an origin that is back is used within
 * server_login_retry, however long it was gone.
 *
 * In session pooling a client takes its connection at login, before it is
 * told its cancel key (the backend's own, for PostgreSQL), so logins wait in
 * the queue for a connection like queries do; in transaction pooling a login
 * waits only for the pool's first connection (what its login brings: the
 * origin's parameters).
 */
#include "pool/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/sqlstate.h"

static void serve_waiters(HdPool *pool, HdPoolConn *conn);
static void maybe_connect(HdPool *pool);
static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents);
static int	connecting_conns(HdPool *pool);

/* A deep copy: a pool keeps its config while reloads replace the list. */
static int
copy_config(HdConfig *dst, const HdConfig *src)
{
	*dst = *src;
	dst->host = src->host ? strdup(src->host) : NULL;
	dst->database = src->database ? strdup(src->database) : NULL;
	dst->user = src->user ? strdup(src->user) : NULL;
	dst->sslrootcert = src->sslrootcert ? strdup(src->sslrootcert) : NULL;
	if ((src->host && !dst->host) || (src->database && !dst->database) ||
		(src->user && !dst->user) || (src->sslrootcert && !dst->sslrootcert))
		return -1;
	return 0;
}

/*
 * What every pool starts with: config (copied), role, empty lists, timers.
 * -1 when out of memory: nothing to undo but the caller's allocation. The
 * caller links it into *all (or not: a pool of its own).
 */
/* Whether a pool of the config in all is paused: PAUSE holds the config until RESUME. */
static bool
config_paused(HdList *all, const char *config_id)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, all)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);

		if (pool->paused && strcmp(pool->config.id, config_id) == 0)
			return true;
	}
	return false;
}

int
hd_pool_init(HdPool *pool, HdList *all, struct ev_loop *loop, const HdSettings *settings,
			 const HdPoolOps *ops, const HdConfig *config, const char *role)
{
	pool->all = all;
	pool->loop = loop;
	pool->settings = settings;
	pool->ops = ops;
	if (copy_config(&pool->config, config) < 0)
	{
		hd_config_free(&pool->config);
		return -1;
	}
	snprintf(pool->role, sizeof(pool->role), "%s", role);
	hd_list_init(&pool->link);
	hd_list_init(&pool->conns);
	hd_list_init(&pool->idle);
	hd_list_init(&pool->waiting);
	ev_init(&pool->retry_timer, retry_cb);
	pool->retry_timer.data = pool;
	pool->paused = config_paused(all, config->id);
	return 0;
}

void
hd_pool_fini(HdPool *pool)
{
	ev_timer_stop(pool->loop, &pool->retry_timer);
	hd_list_del(&pool->link);
	free(pool->last_error);
	pool->last_error = NULL;
	hd_config_free(&pool->config);
}

/* The protocol's pool is more than this one: it frees the whole. */
void
hd_pool_free(HdPool *pool)
{
	pool->ops->free(pool);
}

HdPool *
hd_pool_find(HdList *all, const HdConfig *config, const char *role)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, all)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);

		if (!pool->stale && strcmp(pool->config.id, config->id) == 0 &&
			strcmp(pool->role, role) == 0)
			return pool;
	}
	return NULL;
}

/*
 * The config changed (origin, password, name): take the new values; current
 * connections finish their transactions and close; the next ones use these.
 */
void
hd_pool_update_config(HdPool *pool, const HdConfig *config)
{
	HdConfig	fresh;
	HdList	   *item;
	HdList	   *tmp;

	if (copy_config(&fresh, config) < 0)
	{
		hd_config_free(&fresh);
		hd_warning("config %s: out of memory applying a change", config->name);
		return;
	}
	hd_config_free(&pool->config);
	pool->config = fresh;
	pool->config_gen++;
	pool->ops->config_changed(pool);
	/*
	 * A fresh start: no retry delay left over from the old settings, and the
	 * next client's login waits for a connection made with the new ones, so
	 * that a wrong new password is reported at login, as before the change.
	 */
	pool->next_connect_at = 0;
	pool->params_known = false;
	hd_list_foreach_safe(item, tmp, &pool->conns)
		hd_container_of(item, HdPoolConn, link)->close_on_release = true;
	hd_list_foreach_safe(item, tmp, &pool->idle)
		pool->ops->close(hd_container_of(item, HdPoolConn, idle_link), "its config changed");
	if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

int
hd_pool_config_conns(HdList *all, const char *config_id)
{
	HdList	   *item;
	HdList	   *tmp;
	int			n = 0;

	hd_list_foreach_safe(item, tmp, all)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);

		if (strcmp(pool->config.id, config_id) == 0)
			n += pool->nconns;
	}
	return n;
}

void
hd_pools_close_all(HdList *all, const char *reason)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, all)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		HdList	   *c;
		HdList	   *ctmp;

		hd_list_foreach_safe(c, ctmp, &pool->conns)
			pool->ops->close(hd_container_of(c, HdPoolConn, link), reason);
	}
}

/* An idle connection leaves the idle list, held by someone. */
static void
hold(HdPoolConn *conn)
{
	hd_list_del(&conn->idle_link);
	conn->state = HD_CONN_ACTIVE;
}

/* The waiter holds the connection now; the protocol links the two (ready()'s caller). */
static void
take(HdPool *pool, HdPoolConn *conn, HdPoolWaiter *waiter)
{
	hold(conn);
	if (waiter->waiting || waiter->since > 0)
		hd_histogram_observe(&pool->stats.wait_latency, ev_time() - waiter->since);
	waiter->since = 0;
}

/*
 * The config is at its limit, and this pool (role) has none to spare: an
 * idle connection of another role of the same config makes room. Returns
 * true if one was closed.
 */
static bool
close_idle_of_other_role(HdPool *pool)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, pool->all)
	{
		HdPool	   *other = hd_container_of(item, HdPool, link);
		HdList	   *idle;

		if (other == pool || strcmp(other->config.id, pool->config.id) != 0 ||
			(idle = hd_list_first(&other->idle)) == NULL)
			continue;
		other->ops->close(hd_container_of(idle, HdPoolConn, idle_link),
						  "its config's connections are needed by another role");
		return true;
	}
	return false;
}

/* Open a connection if the config is under its limit and not backing off. */
static void
maybe_connect(HdPool *pool)
{
	ev_tstamp	now = ev_now(pool->loop);

	if (pool->stale || pool->paused || now < pool->next_connect_at)
		return;
	if (hd_pool_config_conns(pool->all, pool->config.id) >= pool->config.origin_connection_limit &&
		!close_idle_of_other_role(pool))
		return;
	/* the oldest attempt in flight: a failure of any of them started no sooner */
	if (connecting_conns(pool) == 0)
		pool->attempt_started_at = now;
	pool->ops->open(pool);
}

/* Connections connecting now, in this pool. */
static int
connecting_conns(HdPool *pool)
{
	HdList	   *item;
	HdList	   *tmp;
	int			n = 0;

	hd_list_foreach_safe(item, tmp, &pool->conns)
	{
		HdPoolConn *conn = hd_container_of(item, HdPoolConn, link);

		if (conn->state == HD_CONN_CONNECTING || conn->state == HD_CONN_LOGIN)
			n++;
	}
	return n;
}

bool
hd_pool_server_at_login(const HdPool *pool)
{
	return pool->config.pool_mode == HD_POOL_SESSION;
}

/* Whether a waiter is waiting for a connection (else for the pool's first login). */
static bool
wants_conn(const HdPool *pool, const HdPoolWaiter *waiter)
{
	return !waiter->login || (hd_pool_server_at_login(pool) && pool->params_known);
}

/* Try again at next_connect_at for the clients that wait (unless a try is due already). */
static void
arm_retry(HdPool *pool, ev_tstamp now)
{
	if (ev_is_active(&pool->retry_timer))
		return;
	ev_timer_set(&pool->retry_timer, pool->next_connect_at - now, 0.);
	ev_timer_start(pool->loop, &pool->retry_timer);
}

/*
 * Connections for the waiting clients, one per client beyond those coming,
 * within the limits. While the last attempt failed, one attempt at a time.
 */
static void
connect_for_waiters(HdPool *pool)
{
	int			connecting = connecting_conns(pool);
	int			waiting = 0;
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &pool->waiting)
		waiting++;
	while (waiting > connecting && connecting < (int) pool->config.origin_connection_limit &&
		   !(pool->last_error && connecting > 0))
	{
		int			before = pool->nconns;

		maybe_connect(pool);
		if (pool->nconns == before)
			return;				/* at a limit, backing off, paused, or it failed at once */
		connecting++;
	}
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void) loop;
	(void) revents;
	connect_for_waiters(w->data);
}

/*
 * A waiter needs a connection: an idle one now, or a place in the queue. A
 * login needs only the pool's first login (what it brings), or in session
 * pooling a connection of its own.
 */
HdPoolConn *
hd_pool_request(HdPool *pool, HdPoolWaiter *waiter, ev_tstamp asked_at)
{
	HdList	   *first;
	ev_tstamp	now = ev_now(pool->loop);

	if (wants_conn(pool, waiter) && !pool->paused &&
		(first = hd_list_first(&pool->idle)) != NULL)
	{
		HdPoolConn *conn = hd_container_of(first, HdPoolConn, idle_link);

		take(pool, conn, waiter);
		return conn;
	}
	if (pool->last_error && asked_at <= pool->failed_attempt_at)
	{
		/*
		 * Its request came before the attempt that failed started (it waited
		 * for another client's analysis or fill, say): that failure is a
		 * fresh answer for it. Waiting for the next attempt would have such
		 * clients answered one per attempt.
		 */
		waiter->ops->failed(waiter, pool->last_sqlstate, pool->last_error);
		return NULL;
	}
	waiter->waiting = true;
	waiter->since = now;
	hd_list_append(&pool->waiting, &waiter->link);
	/* the last attempt failed moments ago: this client waits for the next one */
	if (now < pool->next_connect_at)
		arm_retry(pool, now);
	/*
	 * One new connection per waiting client, beyond those already coming.
	 * This runs for every queued request of a busy pool: count the
	 * connections once, and the waiters only as far as needed.
	 */
	{
		int			connecting = connecting_conns(pool);
		int			waiting = 0;
		HdList	   *item;
		HdList	   *tmp;

		if (connecting >= (int) pool->config.origin_connection_limit)
			return NULL;
		/* the last attempt failed: one at a time, not one per client of a flood */
		if (pool->last_error && connecting > 0)
			return NULL;
		hd_list_foreach_safe(item, tmp, &pool->waiting)
		{
			if (++waiting > connecting)
			{
				maybe_connect(pool);
				break;
			}
		}
	}
	return NULL;
}

/*
 * PAUSE: hand out no connection; clients that need one wait
 * (query_wait_timeout still applies). Transactions in progress finish.
 * RESUME undoes it.
 */
void
hd_pool_pause(HdPool *pool)
{
	pool->paused = true;
}

void
hd_pool_resume(HdPool *pool)
{
	HdList	   *first;

	pool->paused = false;
	if ((first = hd_list_first(&pool->idle)) != NULL)
		serve_waiters(pool, hd_container_of(first, HdPoolConn, idle_link));
	else if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

void
hd_pool_cancel_wait(HdPool *pool, HdPoolWaiter *waiter)
{
	(void) pool;
	hd_list_del(&waiter->link);
	waiter->waiting = false;
}

/* The first waiter that needs a connection (not one waiting for the first login). */
static HdPoolWaiter *
first_conn_waiter(HdPool *pool)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &pool->waiting)
	{
		HdPoolWaiter *waiter = hd_container_of(item, HdPoolWaiter, link);

		if (wants_conn(pool, waiter))
			return waiter;
	}
	return NULL;
}

/*
 * Let in the logins that waited only for the pool's first login. They are
 * moved to a list of their own first: each ready() may change the queue.
 */
static void
admit_logins(HdPool *pool)
{
	HdList	   *item;
	HdList	   *tmp;
	HdList		admitted;
	HdPoolWaiter *waiter;

	hd_list_init(&admitted);
	hd_list_foreach_safe(item, tmp, &pool->waiting)
	{
		waiter = hd_container_of(item, HdPoolWaiter, link);
		if (waiter->login)
		{
			hd_list_del(&waiter->link);
			waiter->waiting = false;
			hd_list_append(&admitted, &waiter->link);
		}
	}
	while ((item = hd_list_first(&admitted)) != NULL)
	{
		waiter = hd_container_of(item, HdPoolWaiter, link);
		hd_list_del(&waiter->link);
		waiter->ops->ready(waiter, NULL);
	}
}

/*
 * Park a ready connection as idle, let in the logins that only waited for
 * the pool's first login, and hand idle connections to waiting clients.
 * Callbacks from here can re-enter the pool (a client may take or release a
 * connection at once), so every step re-reads the lists.
 */
static void
serve_waiters(HdPool *pool, HdPoolConn *conn)
{
	HdList	   *item;
	HdPoolWaiter *waiter;

	conn->state = HD_CONN_IDLE;
	conn->idle_since = ev_now(pool->loop);
	hd_list_del(&conn->idle_link);
	/*
	 * Last in, first out: the next client gets the connection used last
	 * (the most likely to be cache-warm), and under a light load the ones at
	 * the tail go idle for real, so that server_idle_timeout can close them;
	 * first in, first out kept every connection in use. PgBouncer does the
	 * same (server_round_robin = 0).
	 */
	hd_list_prepend(&pool->idle, &conn->idle_link);

	if (pool->params_known && !hd_pool_server_at_login(pool))
		admit_logins(pool);

	while (!pool->paused && (item = hd_list_first(&pool->idle)) != NULL &&
		   (waiter = first_conn_waiter(pool)) != NULL)
	{
		HdPoolConn *next = hd_container_of(item, HdPoolConn, idle_link);

		hd_pool_cancel_wait(pool, waiter);
		take(pool, next, waiter);
		waiter->ops->ready(waiter, next);
	}
}

/* A connection logged in: the origin is back, if it was gone. */
void
hd_pool_conn_ready(HdPool *pool, HdPoolConn *conn)
{
	bool		recovered = pool->last_error != NULL;

	pool->params_known = true;
	pool->next_connect_at = 0;
	free(pool->last_error);
	pool->last_error = NULL;
	serve_waiters(pool, conn);
	/* the clients that waited while the origin failed were allowed one attempt */
	if (recovered)
		connect_for_waiters(pool);
}

/* Close a connection that cannot be reused, and replace it for any waiters. */
static void
retire(HdPool *pool, HdPoolConn *conn, const char *reason)
{
	pool->ops->close(conn, reason);
	if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

HdPoolConn *
hd_pool_take_idle(HdPool *pool, bool (*fits) (HdPoolConn *conn, void *arg), void *arg)
{
	HdList	   *item;
	HdList	   *tmp;

	if (pool->paused || pool->stale)
		return NULL;
	hd_list_foreach_safe(item, tmp, &pool->idle)
	{
		HdPoolConn *conn = hd_container_of(item, HdPoolConn, idle_link);

		if (conn->state != HD_CONN_IDLE || conn->close_on_release || !fits(conn, arg))
			continue;
		hold(conn);
		return conn;
	}
	return NULL;
}

/* A connection is done with its client (transaction end, or client gone). */
void
hd_pool_release(HdPool *pool, HdPoolConn *conn)
{
	ev_tstamp	now = ev_now(pool->loop);
	double		lifetime = pool->settings->server_lifetime_ms / 1000.0;
	int			reset;

	/* the protocol's part: unlink its client; it may keep it a while (a cancel in flight) */
	if (!pool->ops->released(conn))
		return;
	if (pool->stale)
		retire(pool, conn, "its config changed");
	else if (conn->close_on_release)
		retire(pool, conn, "it must not be reused (its config changed, or its last client "
			   "changed it for good)");
	else if (lifetime > 0 && now - conn->connected_at > lifetime)
		retire(pool, conn, "server_lifetime reached");
	/* a client held it: what that client left must not reach the next one */
	else if (conn->state == HD_CONN_ACTIVE && (reset = pool->ops->reset(conn)) != 0)
	{
		if (reset < 0)
			retire(pool, conn, "out of memory");
	}
	else
		serve_waiters(pool, conn);
}

/*
 * A connection attempt or login failed: tell the waiters, and make the next
 * attempt no sooner than server_login_retry. Not longer either (no doubling):
 * attempts are made only for waiting clients, at most one per interval, so
 * they cannot hammer the origin, and an origin that is back must be found
 * within the interval.
 */
void
hd_pool_conn_failed(HdPool *pool, HdPoolConn *conn, const char *sqlstate, const char *message)
{
	HdList	   *item;
	HdList	   *tmp;
	ev_tstamp	now = ev_now(pool->loop);
	double		retry = pool->settings->server_login_retry_ms / 1000.0;

	pool->stats.connect_failures++;
	pool->next_connect_at = now + retry;
	pool->failed_attempt_at = conn ? pool->attempt_started_at : now;
	free(pool->last_error);
	pool->last_error = strdup(message);
	snprintf(pool->last_sqlstate, sizeof(pool->last_sqlstate), "%s", sqlstate);
	hd_warning("config %s: origin connection as %s failed: %s (retrying in %.1f s)",
			   pool->config.name, pool->role, message, retry);

	/* with nothing else coming, the waiting clients would wait in vain */
	if (connecting_conns(pool) > (conn ? 1 : 0) || !hd_list_empty(&pool->idle))
		return;
	hd_list_foreach_safe(item, tmp, &pool->waiting)
	{
		HdPoolWaiter *waiter = hd_container_of(item, HdPoolWaiter, link);

		hd_pool_cancel_wait(pool, waiter);
		waiter->ops->failed(waiter, sqlstate, message);
	}
}

/* A connection the protocol opened: connecting, counted against the limits. */
void
hd_pool_conn_add(HdPool *pool, HdPoolConn *conn)
{
	conn->state = HD_CONN_CONNECTING;
	hd_list_init(&conn->idle_link);
	hd_list_append(&pool->conns, &conn->link);
	pool->nconns++;
}

/* A connection closed: forget it, and replace it if clients are waiting. */
void
hd_pool_conn_gone(HdPool *pool, HdPoolConn *conn)
{
	hd_list_del(&conn->idle_link);
	hd_list_del(&conn->link);
	pool->nconns--;
	if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

/* Once a second: wait timeouts, idle and lifetime limits. */
void
hd_pool_janitor(HdPool *pool, ev_tstamp now)
{
	const HdSettings *settings = pool->settings;
	double		wait_limit = settings->query_wait_timeout_ms / 1000.0;
	double		idle_limit = settings->server_idle_timeout_ms / 1000.0;
	double		lifetime = settings->server_lifetime_ms / 1000.0;
	HdList	   *item;
	HdList	   *tmp;

	if (wait_limit > 0)
	{
		hd_list_foreach_safe(item, tmp, &pool->waiting)
		{
			HdPoolWaiter *waiter = hd_container_of(item, HdPoolWaiter, link);
			char		message[256];

			if (now - waiter->since < wait_limit)
				continue;
			pool->stats.wait_timeouts++;
			snprintf(message, sizeof(message),
					 "timed out after %.0f s waiting for a connection to the origin (query_wait_timeout); "
					 "all %d of config \"%s\" are in use",
					 wait_limit, pool->config.origin_connection_limit, pool->config.name);
			hd_pool_cancel_wait(pool, waiter);
			waiter->ops->failed(waiter, HD_SQLSTATE_TOO_MANY_CONNECTIONS, message);
		}
	}
	hd_list_foreach_safe(item, tmp, &pool->idle)
	{
		HdPoolConn *conn = hd_container_of(item, HdPoolConn, idle_link);

		/* the limit was lowered: idle connections above it go first */
		if (hd_pool_config_conns(pool->all, pool->config.id) >
			pool->config.origin_connection_limit)
			pool->ops->close(conn, "origin_connection_limit lowered");
		else if (idle_limit > 0 && now - conn->idle_since > idle_limit)
			pool->ops->close(conn, "server_idle_timeout reached");
		else if (lifetime > 0 && now - conn->connected_at > lifetime)
			pool->ops->close(conn, "server_lifetime reached");
	}
	/* a retry (after server_login_retry) for clients still waiting */
	if (!hd_list_empty(&pool->waiting) && connecting_conns(pool) == 0)
		maybe_connect(pool);
}
