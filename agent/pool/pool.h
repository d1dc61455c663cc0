/*
 * pool.h
 *    The pool: per (config, role), the origin connections and the clients
 *    waiting for one, whatever the protocol they speak.
 *
 * A pool holds, for one role of one config: its connections (HdPoolConn,
 * embedded in the protocol's connection), the idle ones among them, and the
 * FIFO queue of waiters (HdPoolWaiter, embedded in the protocol's client).
 * It enforces the limits: the config's origin_connection_limit caps the
 * connections of all its pools together (a pool at the limit closes an idle
 * connection of another role of the same config to make room). It decides
 * when a connection is opened, handed out, reset, kept or closed:
 * server_idle_timeout, server_lifetime, query_wait_timeout (the janitor,
 * once a second), PAUSE/RESUME, a config that changed (close_on_release) or
 * went away (stale: drain). After a failed connection attempt or login it
 * makes one attempt at a time, at most one per server_login_retry; the
 * retry timer makes that attempt for clients that wait. It keeps the
 * counters of SHOW POOLS/STATS and /metrics (stats).
 *
 * The pool knows no protocol. It reaches the protocol only through two
 * tables:
 *   - HdPoolOps (per pool, set by whoever creates it: pgwire/pg_pool.c for
 *     PostgreSQL): open a connection, close one, take one back from its
 *     holder, reset one before its next holder, a config change, free.
 *   - HdPoolWaiterOps (per waiter): ready(waiter, conn) hands a connection
 *     to a client that waited for it (conn NULL: a login that waited only
 *     for the pool's first login is let in without one); failed(waiter,
 *     sqlstate, message) tells it why it gets none (it has left the queue).
 *     A request answered at once returns the connection instead (no
 *     callback).
 * The protocol reports back with hd_pool_conn_add() (a connection it
 * opened), hd_pool_conn_ready() (logged in: ready for a client),
 * hd_pool_conn_failed() (an attempt or login failed; conn NULL when none
 * was made), hd_pool_release() (its holder is done with it, or the reset
 * the pool asked for is done) and hd_pool_conn_gone() (closed: the last
 * call before it is freed).
 *
 * The protocol's own per-pool data (PostgreSQL: prepared statements, the
 * origin's parameters, login secrets, the session-state query, the login
 * re-check) lives in a struct of its own that embeds HdPool; the protocol
 * gets from one to the other with hd_container_of(). One allocation per
 * pool, and the fields the pool does not know about stay out of this file.
 * pool.c never allocates or frees an HdPool: hd_pool_init() and
 * hd_pool_fini() set up and tear down the neutral part; hd_pool_free() asks
 * the protocol (ops->free) to free the whole.
 *
 * Callbacks can re-enter the pool (a client handed a connection may release
 * it at once): pool.c re-reads its lists after every callback.
 *
 * In session pooling (config pool_mode) a waiter that logs in takes its
 * connection at login and keeps it; in transaction pooling a login waits
 * only for the pool's first login since its config changed (params_known).
 */
#ifndef HD_POOL_H
#define HD_POOL_H

#include <ev.h>
#include <stdbool.h>

#include "base/list.h"
#include "base/stats.h"
#include "config/configs.h"
#include "config/settings.h"

typedef struct HdPool HdPool;
typedef struct HdPoolConn HdPoolConn;
typedef struct HdPoolWaiter HdPoolWaiter;

typedef enum HdPoolConnState
{
	HD_CONN_CONNECTING,			/* transport connect in progress */
	HD_CONN_LOGIN,				/* the protocol's startup / authentication */
	HD_CONN_IDLE,				/* logged in, in the pool */
	HD_CONN_ACTIVE,				/* held by a client */
	HD_CONN_RESETTING,			/* being reset for the next client (session pooling) */
	HD_CONN_CLOSED
} HdPoolConnState;

/* An origin connection, as far as the pool needs it. */
struct HdPoolConn
{
	HdList		link;			/* pool->conns (once closed: the protocol's) */
	HdList		idle_link;		/* pool->idle */
	HdPoolConnState state;
	bool		close_on_release;	/* config changed, or its client changed it for good: do not reuse */
	ev_tstamp	connected_at;	/* when its transport connected */
	ev_tstamp	idle_since;
};

typedef struct HdPoolWaiterOps
{
	/* Handed a connection (now held by it), or NULL: a login let in without one. */
	void		(*ready) (HdPoolWaiter *waiter, HdPoolConn *conn);
	/* No connection for it (no longer queued). */
	void		(*failed) (HdPoolWaiter *waiter, const char *sqlstate, const char *message);
} HdPoolWaiterOps;

/*
 * A client waiting for a connection, as far as the pool needs it. The
 * protocol initializes link once, and sets ops and login before each
 * hd_pool_request(); the pool keeps the rest.
 */
struct HdPoolWaiter
{
	HdList		link;			/* pool->waiting while queued */
	ev_tstamp	since;			/* when it began to wait (0: it did not) */
	const HdPoolWaiterOps *ops;
	bool		waiting;		/* queued */
	bool		login;			/* logging in (see the top of this file) */
};

typedef struct HdPoolOps
{
	/* Start a connection: hd_pool_conn_add() it, or hd_pool_conn_failed(pool, NULL, ...). */
	void		(*open) (HdPool *pool);
	/* Close it (idempotent); ends with hd_pool_conn_gone(). */
	void		(*close) (HdPoolConn *conn, const char *reason);
	/* Its holder let go. false: the protocol keeps it for now and releases it again later. */
	bool		(*released) (HdPoolConn *conn);
	/*
	 * A connection a client held, before anyone else gets it: 0 nothing to
	 * do; 1 started (hd_pool_release() once done); -1 failed (the pool
	 * closes it).
	 */
	int			(*reset) (HdPoolConn *conn);
	/* hd_pool_update_config() copied in a new config. */
	void		(*config_changed) (HdPool *pool);
	/* Free the pool (the protocol's part, hd_pool_fini(), the allocation). */
	void		(*free) (HdPool *pool);
} HdPoolOps;

struct HdPool
{
	HdList		link;			/* *all, unless a pool of its own (a login check's) */
	HdList	   *all;			/* the program's pools: a config's limit spans them */
	struct ev_loop *loop;
	const HdSettings *settings; /* the program's, as reloads change them */
	const HdPoolOps *ops;
	HdConfig	config;			/* a copy: reloads replace it */
	char		role[64];
	HdList		conns;			/* every connection of this pool */
	HdList		idle;			/* connections ready for a client, last used first */
	HdList		waiting;		/* waiters, first come first served */
	int			nconns;			/* including connecting ones */
	bool		params_known;	/* a connection logged in since the config changed */
	/* after a failed connection or login: no attempt before next_connect_at */
	ev_tstamp	next_connect_at;
	ev_timer	retry_timer;	/* the next attempt, for clients that wait */
	ev_tstamp	attempt_started_at; /* the oldest connection attempt in flight */
	ev_tstamp	failed_attempt_at;	/* when the one that failed last started (or earlier) */
	char	   *last_error;		/* why the last connection attempt failed */
	char		last_sqlstate[6];
	bool		stale;			/* config deleted or changed: drain */
	bool		paused;			/* PAUSE: no connection is handed out */
	HdStats		stats;			/* for SHOW STATS and /metrics */
	unsigned	config_gen;		/* bumped by hd_pool_update_config() */
};

/*
 * Set up / tear down the neutral part (no allocation). init: -1 when out of
 * memory; the pool starts paused when a pool of the same config in all is
 * (PAUSE of a config holds the pools its new clients make, until RESUME).
 */
extern int	hd_pool_init(HdPool *pool, HdList *all, struct ev_loop *loop,
						 const HdSettings *settings, const HdPoolOps *ops,
						 const HdConfig *config, const char *role);
extern void hd_pool_fini(HdPool *pool);
extern void hd_pool_free(HdPool *pool);
/* The live (not stale) pool of (config, role) in all, or NULL. */
extern HdPool *hd_pool_find(HdList *all, const HdConfig *config, const char *role);
extern void hd_pool_update_config(HdPool *pool, const HdConfig *config);
/* Connections of all pools of a config, connecting ones included. */
extern int	hd_pool_config_conns(HdList *all, const char *config_id);
/* Close every connection of every pool in all (the program is stopping). */
extern void hd_pools_close_all(HdList *all, const char *reason);
/* Whether clients take their connection at login and keep it: session pooling. */
extern bool hd_pool_server_at_login(const HdPool *pool);

/*
 * A waiter needs a connection (or, logging in, the pool's first login):
 * returns an idle one, now held by it, or NULL: it is queued (ready() or
 * failed() later), or already failed (failed() called before the return).
 * asked_at: when its request came (a failure since is a fresh answer).
 */
extern HdPoolConn *hd_pool_request(HdPool *pool, HdPoolWaiter *waiter, ev_tstamp asked_at);
extern void hd_pool_cancel_wait(HdPool *pool, HdPoolWaiter *waiter);
/*
 * An idle connection for the agent's own work (a background cache refresh),
 * not for a waiter: the first idle one that fits (fits(conn, arg) true),
 * now held (ACTIVE) until hd_pool_release(); NULL when the pool is paused or
 * draining or none fits. It never opens a connection or queues.
 */
extern HdPoolConn *hd_pool_take_idle(HdPool *pool, bool (*fits) (HdPoolConn *conn, void *arg),
									 void *arg);
extern void hd_pool_release(HdPool *pool, HdPoolConn *conn);
extern void hd_pool_pause(HdPool *pool);
extern void hd_pool_resume(HdPool *pool);

extern void hd_pool_conn_add(HdPool *pool, HdPoolConn *conn);
extern void hd_pool_conn_ready(HdPool *pool, HdPoolConn *conn);
extern void hd_pool_conn_failed(HdPool *pool, HdPoolConn *conn, const char *sqlstate,
								const char *message);
extern void hd_pool_conn_gone(HdPool *pool, HdPoolConn *conn);

/* Once a second: wait timeouts, idle and lifetime limits, retries. */
extern void hd_pool_janitor(HdPool *pool, ev_tstamp now);

#endif							/* HD_POOL_H */
