/*
 * auth_recheck.c
 *    See auth_recheck.h.
 */
#include "pgwire/auth_recheck.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/sqlstate.h"
#include "pgwire/pooler.h"

static void check_start(HdPgPool *pg);

/* The next check in delay seconds, unless one is already due. */
static void
schedule_check(HdPgPool *pg, double delay)
{
	if (ev_is_active(&pg->check_timer))
		return;
	ev_timer_set(&pg->check_timer, delay > 0 ? delay : 0., 0.);
	ev_timer_start(pg->pool.loop, &pg->check_timer);
}

static bool
own_pool(const HdPgPool *pg)
{
	return pg->check_of == NULL && strcmp(pg->pool.role, pg->pool.config.user) == 0;
}

/* A refusal of these credentials, rather than an origin that could not be asked. */
static bool
refused(const char *sqlstate)
{
	return strncmp(sqlstate, "28", 2) == 0 || strcmp(sqlstate, HD_SQLSTATE_INSUFFICIENT_PRIVILEGE) == 0;
}

static bool
proven(const HdPgPool *pg, ev_tstamp now)
{
	double		interval = pg->pool.settings->auth_recheck_interval_ms / 1000.0;

	return pg->auth_proven_at > 0 && now - pg->auth_proven_at < interval;
}

bool
hd_auth_recheck_wait(HdClient *client)
{
	HdPool	   *pool = client->pool;
	HdPgPool   *pg = hd_pg_pool(pool);
	ev_tstamp	now = ev_now(client->agent->loop);

	/* the first login of a pool, and a replication connection's own, prove it themselves */
	if (!own_pool(pg) || client->replication[0] || !pool->params_known || proven(pg, now))
		return false;
	client->auth_step = HD_AUTH_STEP_RECHECK;
	client->wait.waiting = true;
	hd_list_append(&pg->check_waiting, &client->wait.link);
	/* nothing it sends is read before it is in (or refused) */
	ev_io_stop(client->agent->loop, &client->read_watcher);
	hd_debug("client %s waits for a check of config %s's login on the origin", client->addr,
			 pool->config.name);
	if (!pg->check_running)
	{
		if (now >= pg->check_next_at)
			check_start(pg);
		else
			schedule_check(pg, pg->check_next_at - now);	/* the last one failed moments ago */
	}
	return true;
}

/* The check's verdict for every client waiting for it (NULL sqlstate: let in). */
static void
answer_waiters(HdPgPool *pg, const char *sqlstate, const char *message)
{
	HdList	   *item;

	while ((item = hd_list_first(&pg->check_waiting)) != NULL)
	{
		HdClient   *client = hd_container_of(item, HdClient, wait.link);

		hd_pool_cancel_wait(&pg->pool, &client->wait);
		if (sqlstate == NULL)
			hd_client_auth_admit(client);
		else
			hd_client_fatal(client, sqlstate, message, NULL);
	}
}

static void
check_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdPgPool   *pg = w->data;

	(void) loop;
	(void) revents;
	if (!pg->check_running && !hd_list_empty(&pg->check_waiting))
		check_start(pg);
}

/*
 * A new check in a pool of its own, with the credentials as the config has
 * them now. Its verdict comes back through the two hooks below (at once, if
 * the connection fails to start).
 */
static void
check_start(HdPgPool *pg)
{
	if (pg->check && pg->check->pool.nconns > 0)
	{
		/* the last one's connection is still closing (its verdict is in) */
		schedule_check(pg, 0.05);
		return;
	}
	if (pg->check)
		hd_pool_free(&pg->check->pool);
	pg->check = hd_pg_pool_new_check(pg);
	if (pg->check == NULL)
	{
		answer_waiters(pg, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return;
	}
	pg->check->check_gen = pg->pool.config_gen;
	pg->check_running = true;
	hd_debug("config %s: checking on the origin that %s may still log in", pg->pool.config.name,
			 pg->pool.role);
	(void) hd_server_connect(&pg->check->pool);
}

bool
hd_auth_recheck_server_ready(HdPool *pool, HdServer *server)
{
	HdPgPool   *pg = hd_pg_pool(pool);
	HdPgPool   *owner = pg->check_of;

	if (owner == NULL)
	{
		if (own_pool(pg))
			pg->auth_proven_at = ev_now(pool->loop);
		return false;
	}
	hd_server_close(server, "the check of the config's login is done");
	owner->check_running = false;
	if (pg->check_gen != owner->pool.config_gen)
	{
		/* made with credentials the config no longer has: ask again (not from in here) */
		if (!hd_list_empty(&owner->check_waiting))
			schedule_check(owner, 0);
		return true;
	}
	owner->auth_proven_at = ev_now(pool->loop);
	owner->check_next_at = 0;
	answer_waiters(owner, NULL, NULL);
	return true;
}

/* The origin refused the config's credentials: no new login may reuse a connection. */
static void
close_idle(HdPool *pool, const char *message)
{
	HdList	   *item;
	char		reason[512];

	snprintf(reason, sizeof(reason), "the origin refuses the config's login now (%s)", message);
	while ((item = hd_list_first(&pool->idle)) != NULL)
		hd_server_close(hd_container_of(item, HdServer, conn.idle_link), reason);
}

bool
hd_auth_recheck_server_failed(HdPool *pool, HdServer *server, const char *sqlstate,
							  const char *message)
{
	HdPgPool   *pg = hd_pg_pool(pool);
	HdPgPool   *owner = pg->check_of;
	ev_tstamp	now = ev_now(pool->loop);

	(void) server;				/* server.c closes it */
	if (owner == NULL)
	{
		if (own_pool(pg) && refused(sqlstate))
			pg->auth_proven_at = 0;
		return false;
	}
	owner->check_running = false;
	if (pg->check_gen != owner->pool.config_gen)
	{
		if (!hd_list_empty(&owner->check_waiting))
			schedule_check(owner, 0);
		return true;
	}
	hd_warning("config %s: the check that %s may still log in to the origin failed: %s "
			   "(SQLSTATE %s); new clients of %s are refused until a check succeeds",
			   owner->pool.config.name, owner->pool.role, message, sqlstate, owner->pool.role);
	owner->auth_proven_at = 0;
	owner->check_next_at = now + pool->settings->server_login_retry_ms / 1000.0;
	if (refused(sqlstate))
		close_idle(&owner->pool, message);
	answer_waiters(owner, sqlstate, message);
	return true;
}

/* (The pool bumped its config_gen: a check in flight is void.) */
void
hd_auth_recheck_config_changed(HdPool *pool)
{
	HdPgPool   *pg = hd_pg_pool(pool);

	pg->auth_proven_at = 0;
	pg->check_next_at = 0;
}

void
hd_auth_recheck_init(HdPool *pool)
{
	HdPgPool   *pg = hd_pg_pool(pool);

	hd_list_init(&pg->check_waiting);
	ev_init(&pg->check_timer, check_timer_cb);
	pg->check_timer.data = pg;
}

void
hd_auth_recheck_free(HdPool *pool)
{
	HdPgPool   *pg = hd_pg_pool(pool);
	HdList	   *item;

	ev_timer_stop(pool->loop, &pg->check_timer);
	if (pg->check == NULL)
		return;
	/* at shutdown: its connection, if any, goes now (the reaper has run) */
	while ((item = hd_list_first(&pg->check->pool.conns)) != NULL)
	{
		HdServer   *server = hd_container_of(item, HdServer, conn.link);

		hd_server_close(server, "the agent is stopping");
		hd_server_free(server);
	}
	hd_pool_free(&pg->check->pool);
	pg->check = NULL;
}
