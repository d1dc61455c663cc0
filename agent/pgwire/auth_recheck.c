/*
 * auth_recheck.c
 *    See auth_recheck.h.
 */
#include "pgwire/auth_recheck.h"

#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "pgwire/pooler.h"

static void check_start(HdPool *pool);

/* The next check in delay seconds, unless one is already due. */
static void
schedule_check(HdPool *pool, double delay)
{
	if (ev_is_active(&pool->check_timer))
		return;
	ev_timer_set(&pool->check_timer, delay > 0 ? delay : 0., 0.);
	ev_timer_start(pool->agent->loop, &pool->check_timer);
}

static bool
own_pool(const HdPool *pool)
{
	return pool->check_of == NULL && strcmp(pool->role, pool->config.user) == 0;
}

/* A refusal of these credentials, rather than an origin that could not be asked. */
static bool
refused(const char *sqlstate)
{
	return strncmp(sqlstate, "28", 2) == 0 || strcmp(sqlstate, "42501") == 0;
}

static bool
proven(const HdPool *pool, ev_tstamp now)
{
	double		interval = pool->agent->settings.auth_recheck_interval_ms / 1000.0;

	return pool->auth_proven_at > 0 && now - pool->auth_proven_at < interval;
}

bool
hd_auth_recheck_wait(HdClient *client)
{
	HdPool	   *pool = client->pool;
	ev_tstamp	now = ev_now(client->agent->loop);

	/* the first login of a pool, and a replication connection's own, prove it themselves */
	if (!own_pool(pool) || client->replication[0] || !pool->params_known || proven(pool, now))
		return false;
	client->auth_step = HD_AUTH_STEP_RECHECK;
	client->waiting = true;
	hd_list_append(&pool->check_waiting, &client->wait_link);
	/* nothing it sends is read before it is in (or refused) */
	ev_io_stop(client->agent->loop, &client->read_watcher);
	hd_debug("client %s waits for a check of config %s's login on the origin", client->addr,
			 pool->config.name);
	if (!pool->check_running)
	{
		if (now >= pool->check_next_at)
			check_start(pool);
		else
			schedule_check(pool, pool->check_next_at - now);	/* the last one failed moments ago */
	}
	return true;
}

/* The check's verdict for every client waiting for it (NULL sqlstate: let in). */
static void
answer_waiters(HdPool *pool, const char *sqlstate, const char *message)
{
	HdList	   *item;

	while ((item = hd_list_first(&pool->check_waiting)) != NULL)
	{
		HdClient   *client = hd_container_of(item, HdClient, wait_link);

		hd_pool_cancel_wait(pool, client);
		if (sqlstate == NULL)
			hd_client_auth_admit(client);
		else
			hd_client_fatal(client, sqlstate, message, NULL);
	}
}

static void
check_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdPool	   *pool = w->data;

	(void) loop;
	(void) revents;
	if (!pool->check_running && !hd_list_empty(&pool->check_waiting))
		check_start(pool);
}

/*
 * A new check in a pool of its own, with the credentials as the config has
 * them now. Its verdict comes back through the two hooks below (at once, if
 * the connection fails to start).
 */
static void
check_start(HdPool *pool)
{
	if (pool->check && pool->check->nservers > 0)
	{
		/* the last one's connection is still closing (its verdict is in) */
		schedule_check(pool, 0.05);
		return;
	}
	if (pool->check)
		hd_pool_free(pool->check);
	pool->check = hd_pool_new_check(pool);
	if (pool->check == NULL)
	{
		answer_waiters(pool, "53200", "out of memory");
		return;
	}
	pool->check->check_gen = pool->config_gen;
	pool->check_running = true;
	hd_debug("config %s: checking on the origin that %s may still log in", pool->config.name,
			 pool->role);
	(void) hd_server_connect(pool->check);
}

bool
hd_auth_recheck_server_ready(HdPool *pool, HdServer *server)
{
	HdPool	   *owner = pool->check_of;

	if (owner == NULL)
	{
		if (own_pool(pool))
			pool->auth_proven_at = ev_now(pool->agent->loop);
		return false;
	}
	hd_server_close(server, "the check of the config's login is done");
	owner->check_running = false;
	if (pool->check_gen != owner->config_gen)
	{
		/* made with credentials the config no longer has: ask again (not from in here) */
		if (!hd_list_empty(&owner->check_waiting))
			schedule_check(owner, 0);
		return true;
	}
	owner->auth_proven_at = ev_now(pool->agent->loop);
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
		hd_server_close(hd_container_of(item, HdServer, idle_link), reason);
}

bool
hd_auth_recheck_server_failed(HdPool *pool, HdServer *server, const char *sqlstate,
							  const char *message)
{
	HdPool	   *owner = pool->check_of;
	ev_tstamp	now = ev_now(pool->agent->loop);

	(void) server;				/* server.c closes it */
	if (owner == NULL)
	{
		if (own_pool(pool) && refused(sqlstate))
			pool->auth_proven_at = 0;
		return false;
	}
	owner->check_running = false;
	if (pool->check_gen != owner->config_gen)
	{
		if (!hd_list_empty(&owner->check_waiting))
			schedule_check(owner, 0);
		return true;
	}
	hd_warning("config %s: the check that %s may still log in to the origin failed: %s "
			   "(SQLSTATE %s); new clients of %s are refused until a check succeeds",
			   owner->config.name, owner->role, message, sqlstate, owner->role);
	owner->auth_proven_at = 0;
	owner->check_next_at = now + pool->agent->settings.server_login_retry_ms / 1000.0;
	if (refused(sqlstate))
		close_idle(owner, message);
	answer_waiters(owner, sqlstate, message);
	return true;
}

void
hd_auth_recheck_config_changed(HdPool *pool)
{
	pool->config_gen++;
	pool->auth_proven_at = 0;
	pool->check_next_at = 0;
}

void
hd_auth_recheck_init(HdPool *pool)
{
	hd_list_init(&pool->check_waiting);
	ev_init(&pool->check_timer, check_timer_cb);
	pool->check_timer.data = pool;
}

void
hd_auth_recheck_free(HdPool *pool)
{
	HdList	   *item;

	ev_timer_stop(pool->agent->loop, &pool->check_timer);
	if (pool->check == NULL)
		return;
	/* at shutdown: its connection, if any, goes now (the reaper has run) */
	while ((item = hd_list_first(&pool->check->servers)) != NULL)
	{
		HdServer   *server = hd_container_of(item, HdServer, link);

		hd_server_close(server, "the agent is stopping");
		hd_server_free(server);
	}
	hd_pool_free(pool->check);
	pool->check = NULL;
}
