/*
 * pool.c
 *    Pools: per (config, role), the origin connections and the clients
 *    waiting for one.
 *
 * The config's origin_connection_limit caps the connections of all its
 * pools together. A client that needs a server gets an idle one, or a new
 * one if the config is under its limit, or waits in its pool's FIFO queue
 * (query_wait_timeout bounds the wait; janitor in agent.c). When a
 * connection attempt fails, the clients waiting for it get the origin's
 * error at once (08001 when it cannot be reached), so that they do not pile
 * up while the origin is down. While the last attempt failed, a pool makes
 * one attempt at a time, at most one per server_login_retry: clients that
 * arrive meanwhile wait for the next attempt (not the last error, which may
 * be stale by then), and an origin that is back is used within
 * server_login_retry, however long it was gone.
 *
 * In session pooling a client takes its server at login, before it is told
 * its BackendKeyData (the backend's own: client.c), so logins wait in the
 * queue for a server like queries do; in transaction pooling a login waits
 * only for the pool's first connection (its ParameterStatus values).
 */
#include "pgwire/pooler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire/auth_recheck.h"
#include "base/log.h"
#include "pgwire/proto.h"

static void serve_waiters(HdPool *pool, HdServer *server);
static void maybe_connect(HdPool *pool);
static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents);
static int	connecting_servers(HdPool *pool);
static HdPool *pool_create(HdAgent *agent, const HdConfig *config, const char *role);
static int	pool_init(HdPool *pool, HdAgent *agent, const HdConfig *config, const char *role);
static void load_own_password(HdPool *pool);

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

/* The pool of the config's own user (whose password the config holds). */
HdPool *
hd_pool_get(HdAgent *agent, const HdConfig *config, const char *role)
{
	if (strcmp(role, config->user) != 0)
		return NULL;			/* other roles: hd_pool_get_for_role() after a lookup */
	return hd_pool_get_for_role(agent, config, role);
}

/*
 * The pool of a role other than the config's user, created if needed. The
 * caller sets how it logs in to the origin (pass-through keys, md5 secret or
 * password) from the client's successful authentication.
 */
/* A SCRAM secret (random salt) that checks clients logging in with password. */
bool
hd_secret_from_password(const char *password, HdScramSecret *secret)
{
	HdAuthError err;
	unsigned char salt[HD_SCRAM_SALT_LEN];

	return hd_random_bytes(salt, sizeof(salt)) &&
		hd_scram_secret_from_password(password, salt, sizeof(salt), HD_SCRAM_ITERATIONS,
									  secret, &err) == HD_AUTH_OK;
}

/*
 * The config's own user: its password from the config store, and the secret
 * its clients (who log in with the same password) are checked against.
 */
static void
load_own_password(HdPool *pool)
{
	char		err[256];

	if (pool->password)
		hd_free_secret(pool->password);
	pool->password = NULL;
	if (hd_config_read_password(pool->agent->settings.state_dir, pool->config.id,
								&pool->password, err, sizeof(err)) < 0)
		hd_warning("config %s: %s", pool->config.name, err);
	pool->has_secret = pool->password && hd_secret_from_password(pool->password, &pool->secret);
}

HdPool *
hd_pool_get_for_role(HdAgent *agent, const HdConfig *config, const char *role)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &agent->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);

		if (!pool->stale && strcmp(pool->config.id, config->id) == 0 &&
			strcmp(pool->role, role) == 0)
			return pool;
	}
	return pool_create(agent, config, role);
}

static HdPool *
pool_create(HdAgent *agent, const HdConfig *config, const char *role)
{
	HdPool	   *pool;

	pool = calloc(1, sizeof(HdPool));
	if (pool == NULL)
		return NULL;
	if (pool_init(pool, agent, config, role) < 0)
	{
		free(pool);
		return NULL;
	}
	if (strcmp(role, config->user) == 0)
		load_own_password(pool);
	hd_list_append(&agent->pools, &pool->link);
	return pool;
}

/*
 * What every pool starts with: config (copied), role, empty lists, timers.
 * -1 when out of memory: nothing to undo but the pool's own allocation.
 */
static int
pool_init(HdPool *pool, HdAgent *agent, const HdConfig *config, const char *role)
{
	pool->agent = agent;
	if (copy_config(&pool->config, config) < 0)
	{
		hd_config_free(&pool->config);
		return -1;
	}
	snprintf(pool->role, sizeof(pool->role), "%s", role);
	hd_list_init(&pool->link);
	hd_list_init(&pool->servers);
	hd_list_init(&pool->idle);
	hd_list_init(&pool->waiting);
	ev_init(&pool->retry_timer, retry_cb);
	pool->retry_timer.data = pool;
	hd_auth_recheck_init(pool);
	return 0;
}

/*
 * The pool of a check of owner's login (auth_recheck.h): owner's config,
 * role and password, read afresh; not in agent->pools, so neither listed
 * nor counted in origin_connection_limit.
 */
HdPool *
hd_pool_new_check(HdPool *owner)
{
	HdPool	   *pool = calloc(1, sizeof(HdPool));

	if (pool == NULL)
		return NULL;
	if (pool_init(pool, owner->agent, &owner->config, owner->role) < 0)
	{
		free(pool);
		return NULL;
	}
	load_own_password(pool);
	pool->check_of = owner;
	return pool;
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
	if (strcmp(pool->role, config->user) == 0)
		load_own_password(pool);
	hd_auth_recheck_config_changed(pool);
	/*
	 * A fresh start: no retry delay left over from the old settings, and the
	 * next client's login waits for a connection made with the new ones, so
	 * that a wrong new password is reported at login, as before the change.
	 */
	pool->next_connect_at = 0;
	pool->params_known = false;
	hd_list_foreach_safe(item, tmp, &pool->servers)
		hd_container_of(item, HdServer, link)->close_on_release = true;
	hd_list_foreach_safe(item, tmp, &pool->idle)
		hd_server_close(hd_container_of(item, HdServer, idle_link), "its config changed");
	if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

/* Servers of all pools of a config, connecting ones included. */
int
hd_pool_config_servers(HdAgent *agent, const char *config_id)
{
	HdList	   *item;
	HdList	   *tmp;
	int			n = 0;

	hd_list_foreach_safe(item, tmp, &agent->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);

		if (strcmp(pool->config.id, config_id) == 0)
			n += pool->nservers;
	}
	return n;
}

static void
assign(HdServer *server, HdClient *client)
{
	hd_list_del(&server->idle_link);
	server->state = HD_SERVER_ACTIVE;
	server->client = client;
	hd_expect_clear(&server->expect);
	server->mid_batch = false;
	server->request_sent_at = 0;
	client->server = server;
	client->server_synced = false;
	client->server_taken_at = ev_time();
	if (client->waiting || client->wait_started > 0)
		hd_histogram_observe(&server->pool->stats.wait_latency,
							 client->server_taken_at - client->wait_started);
	client->wait_started = 0;
}

/* Tell a client why it cannot have a server, and let it go. */
static void
fail_client(HdClient *client, const char *sqlstate, const char *message)
{
	if (client->state == HD_CLIENT_LOGIN || client->state == HD_CLIENT_ACTIVE)
		hd_client_fatal(client, sqlstate, message, NULL);
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

	hd_list_foreach_safe(item, tmp, &pool->agent->pools)
	{
		HdPool	   *other = hd_container_of(item, HdPool, link);
		HdList	   *idle;

		if (other == pool || strcmp(other->config.id, pool->config.id) != 0 ||
			(idle = hd_list_first(&other->idle)) == NULL)
			continue;
		hd_server_close(hd_container_of(idle, HdServer, idle_link),
						"its config's connections are needed by another role");
		return true;
	}
	return false;
}

/* Open a connection if the config is under its limit and not backing off. */
static void
maybe_connect(HdPool *pool)
{
	HdAgent    *agent = pool->agent;
	ev_tstamp	now = ev_now(agent->loop);

	if (pool->stale || pool->paused || now < pool->next_connect_at)
		return;
	if (hd_pool_config_servers(agent, pool->config.id) >= pool->config.origin_connection_limit &&
		!close_idle_of_other_role(pool))
		return;
	/* the oldest attempt in flight: a failure of any of them started no sooner */
	if (connecting_servers(pool) == 0)
		pool->attempt_started_at = now;
	(void) hd_server_connect(pool);
}

/* Servers connecting now, in this pool. */
static int
connecting_servers(HdPool *pool)
{
	HdList	   *item;
	HdList	   *tmp;
	int			n = 0;

	hd_list_foreach_safe(item, tmp, &pool->servers)
	{
		HdServer   *server = hd_container_of(item, HdServer, link);

		if (server->state == HD_SERVER_CONNECTING || server->state == HD_SERVER_LOGIN)
			n++;
	}
	return n;
}

/* Whether the pool's clients get their server at login and keep it: session pooling. */
bool
hd_pool_server_at_login(const HdPool *pool)
{
	return pool->config.pool_mode == HD_POOL_SESSION;
}

/* Whether a waiting client is waiting for a server (else for the pool's parameters). */
static bool
wants_server(const HdPool *pool, const HdClient *client)
{
	return client->state == HD_CLIENT_ACTIVE ||
		(client->state == HD_CLIENT_LOGIN && hd_pool_server_at_login(pool) && pool->params_known);
}

/* Try again at next_connect_at for the clients that wait (unless a try is due already). */
static void
arm_retry(HdPool *pool, ev_tstamp now)
{
	if (ev_is_active(&pool->retry_timer))
		return;
	ev_timer_set(&pool->retry_timer, pool->next_connect_at - now, 0.);
	ev_timer_start(pool->agent->loop, &pool->retry_timer);
}

/*
 * Connections for the waiting clients, one per client beyond those coming,
 * within the limits. While the last attempt failed, one attempt at a time.
 */
static void
connect_for_waiters(HdPool *pool)
{
	int			connecting = connecting_servers(pool);
	int			waiting = 0;
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &pool->waiting)
		waiting++;
	while (waiting > connecting && connecting < (int) pool->config.origin_connection_limit &&
		   !(pool->last_error && connecting > 0))
	{
		int			before = pool->nservers;

		maybe_connect(pool);
		if (pool->nservers == before)
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
 * A client needs a server: an idle one now, or a place in the queue. A
 * client in LOGIN needs only the pool's parameters, which the first
 * connection brings, or in session pooling a server of its own.
 */
void
hd_pool_request_server(HdPool *pool, HdClient *client)
{
	HdList	   *first;
	ev_tstamp	now = ev_now(pool->agent->loop);

	if (wants_server(pool, client) && !pool->paused &&
		(first = hd_list_first(&pool->idle)) != NULL)
	{
		assign(hd_container_of(first, HdServer, idle_link), client);
		return;
	}
	if (pool->last_error && client->last_activity <= pool->failed_attempt_at)
	{
		/*
		 * Its request came before the attempt that failed started (it waited
		 * for another client's analysis or fill, say): that failure is a
		 * fresh answer for it. Waiting for the next attempt would have such
		 * clients answered one per attempt.
		 */
		fail_client(client, pool->last_sqlstate, pool->last_error);
		return;
	}
	client->waiting = true;
	client->wait_started = now;
	hd_list_append(&pool->waiting, &client->wait_link);
	hd_debug("client %s waits for an origin connection of config %s", client->addr,
			 pool->config.name);
	/* the last attempt failed moments ago: this client waits for the next one */
	if (now < pool->next_connect_at)
		arm_retry(pool, now);
	/*
	 * One new connection per waiting client, beyond those already coming.
	 * This runs for every queued request of a busy pool: count the servers
	 * once, and the waiters only as far as needed.
	 */
	{
		int			connecting = connecting_servers(pool);
		int			waiting = 0;
		HdList	   *item;
		HdList	   *tmp;

		if (connecting >= (int) pool->config.origin_connection_limit)
			return;
		/* the last attempt failed: one at a time, not one per client of a flood */
		if (pool->last_error && connecting > 0)
			return;
		hd_list_foreach_safe(item, tmp, &pool->waiting)
		{
			if (++waiting > connecting)
			{
				maybe_connect(pool);
				break;
			}
		}
	}
}

/*
 * PAUSE: hand out no server; clients that need one wait (query_wait_timeout
 * still applies). Transactions in progress finish. RESUME undoes it.
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
		serve_waiters(pool, hd_container_of(first, HdServer, idle_link));
	else if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

void
hd_pool_cancel_wait(HdPool *pool, HdClient *client)
{
	(void) pool;
	hd_list_del(&client->wait_link);
	client->waiting = false;
}

/* The first waiting client that needs a server (not one waiting for the parameters). */
static HdClient *
first_server_waiter(HdPool *pool)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &pool->waiting)
	{
		HdClient   *client = hd_container_of(item, HdClient, wait_link);

		if (wants_server(pool, client))
			return client;
	}
	return NULL;
}

/*
 * Park a ready server as idle, let in the clients that only waited for the
 * pool's parameters, and hand idle servers to waiting clients. Callbacks
 * from here can re-enter the pool (a client may take or release a server at
 * once), so every step re-reads the lists.
 */
static void
serve_waiters(HdPool *pool, HdServer *server)
{
	HdList	   *item;
	HdList	   *tmp;
	HdList		admitted;
	HdClient   *client;

	server->state = HD_SERVER_IDLE;
	server->idle_since = ev_now(pool->agent->loop);
	hd_list_del(&server->idle_link);
	/*
	 * Last in, first out: the next client gets the connection used last
	 * (the most likely to be cache-warm), and under a light load the ones at
	 * the tail go idle for real, so that server_idle_timeout can close them;
	 * first in, first out kept every connection in use. PgBouncer does the
	 * same (server_round_robin = 0).
	 */
	hd_list_prepend(&pool->idle, &server->idle_link);

	if (pool->params_known && !hd_pool_server_at_login(pool))
	{
		hd_list_init(&admitted);
		hd_list_foreach_safe(item, tmp, &pool->waiting)
		{
			client = hd_container_of(item, HdClient, wait_link);
			if (client->state == HD_CLIENT_LOGIN)
			{
				hd_list_del(&client->wait_link);
				client->waiting = false;
				hd_list_append(&admitted, &client->wait_link);
			}
		}
		while ((item = hd_list_first(&admitted)) != NULL)
		{
			client = hd_container_of(item, HdClient, wait_link);
			hd_list_del(&client->wait_link);
			hd_client_login_done(client);
		}
	}

	while (!pool->paused && (item = hd_list_first(&pool->idle)) != NULL &&
		   (client = first_server_waiter(pool)) != NULL)
	{
		hd_pool_cancel_wait(pool, client);
		assign(hd_container_of(item, HdServer, idle_link), client);
		hd_debug("client %s got origin connection %u", client->addr,
				 client->server->backend_pid);
		if (client->state == HD_CLIENT_LOGIN)
			hd_client_login_done(client);	/* session pooling: now it has its key */
		else
			hd_client_server_ready(client);
	}
}

void
hd_pool_server_ready(HdPool *pool, HdServer *server)
{
	bool		recovered = pool->last_error != NULL;

	if (hd_auth_recheck_server_ready(pool, server))
		return;					/* a check of the config's login, not a pool connection */

	pool->params_known = true;
	pool->next_connect_at = 0;
	free(pool->last_error);
	pool->last_error = NULL;
	serve_waiters(pool, server);
	/* the clients that waited while the origin failed were allowed one attempt */
	if (recovered)
		connect_for_waiters(pool);
}

/* Close a server that cannot be reused, and replace it for any waiters. */
static void
retire(HdPool *pool, HdServer *server, const char *reason)
{
	hd_server_close(server, reason);
	if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

/* A server is done with its client (transaction end, or client gone). */
void
hd_pool_release_server(HdPool *pool, HdServer *server)
{
	HdAgent    *agent = pool->agent;
	ev_tstamp	now = ev_now(agent->loop);
	double		lifetime = agent->settings.server_lifetime_ms / 1000.0;
	/* DISCARD ALL, as a simple Query */
	static const char discard[] = {'Q', 0, 0, 0, 16, 'D', 'I', 'S', 'C', 'A', 'R', 'D',
	' ', 'A', 'L', 'L', 0};

	server->client = NULL;
	/*
	 * Reading may be paused for the client that just let go (back-pressure,
	 * server.c): its transaction can end in the very reply that paused it.
	 * Nobody would resume it then, and the next client's replies (or DISCARD
	 * ALL's) would never be read.
	 */
	hd_server_resume_reading(server);
	/* a cancel for it is in flight: nobody gets it before the origin is done with that */
	if (hd_cancel_hold_release(server))
		return;
	if (server->close_on_release || pool->stale)
		retire(pool, server, "its config changed");
	else if (lifetime > 0 && now - server->connected_at > lifetime)
		retire(pool, server, "server_lifetime reached");
	else if (pool->config.pool_mode == HD_POOL_TRANSACTION && server->state_dirty &&
			 server->state == HD_SERVER_ACTIVE)
	{
		/*
		 * Its last client's transaction was not checked (it left, or a cancel
		 * held the check back): the check decides, released or closed
		 * (state_check.c).
		 */
		if (hd_state_check_start(server, false) < 0)
			retire(pool, server, "out of memory");
		else
			hd_server_flush(server);
	}
	else if (pool->config.pool_mode == HD_POOL_SESSION && server->state == HD_SERVER_ACTIVE)
	{
		/* session state must not reach the next client */
		server->state = HD_SERVER_RESETTING;
		hd_prepare_server_unnamed_lost(server);
		server->state_prepared = false;
		if (hd_iobuf_append(&server->out, discard, sizeof(discard)) < 0)
			retire(pool, server, "out of memory");
		else
			hd_server_flush(server);
	}
	else
		serve_waiters(pool, server);
}

/*
 * A connection attempt or login failed: tell the waiters, and make the next
 * attempt no sooner than server_login_retry. Not longer either (no doubling):
 * attempts are made only for waiting clients, at most one per interval, so
 * they cannot hammer the origin, and an origin that is back must be found
 * within the interval.
 */
void
hd_pool_server_failed(HdPool *pool, HdServer *server, const char *sqlstate, const char *message)
{
	HdList	   *item;
	HdList	   *tmp;
	ev_tstamp	now = ev_now(pool->agent->loop);
	double		retry = pool->agent->settings.server_login_retry_ms / 1000.0;

	if (hd_auth_recheck_server_failed(pool, server, sqlstate, message))
		return;					/* a check of the config's login, not a pool connection */
	pool->stats.connect_failures++;
	pool->next_connect_at = now + retry;
	pool->failed_attempt_at = server ? pool->attempt_started_at : now;
	free(pool->last_error);
	pool->last_error = strdup(message);
	snprintf(pool->last_sqlstate, sizeof(pool->last_sqlstate), "%s", sqlstate);
	hd_warning("config %s: origin connection as %s failed: %s (retrying in %.1f s)",
			   pool->config.name, pool->role, message, retry);

	/* with nothing else coming, the waiting clients would wait in vain */
	if (connecting_servers(pool) > (server ? 1 : 0) || !hd_list_empty(&pool->idle))
		return;
	hd_list_foreach_safe(item, tmp, &pool->waiting)
	{
		HdClient   *client = hd_container_of(item, HdClient, wait_link);

		hd_pool_cancel_wait(pool, client);
		fail_client(client, sqlstate, message);
	}
}

/* A server closed: forget it, and replace it if clients are waiting. */
void
hd_pool_server_gone(HdPool *pool, HdServer *server)
{
	(void) server;
	pool->nservers--;
	if (!hd_list_empty(&pool->waiting))
		maybe_connect(pool);
}

void
hd_pool_remember_params(HdPool *pool, const char *name, const char *value)
{
	HdParam    *params;

	for (int i = 0; i < pool->nparams; i++)
	{
		if (strcmp(pool->params[i].name, name) == 0)
		{
			char	   *copy = strdup(value);

			if (copy)
			{
				free(pool->params[i].value);
				pool->params[i].value = copy;
			}
			return;
		}
	}
	params = realloc(pool->params, sizeof(HdParam) * (pool->nparams + 1));
	if (params == NULL)
		return;
	pool->params = params;
	params[pool->nparams].name = strdup(name);
	params[pool->nparams].value = strdup(value);
	if (params[pool->nparams].name && params[pool->nparams].value)
		pool->nparams++;
	else
	{
		free(params[pool->nparams].name);
		free(params[pool->nparams].value);
	}
}

/* Once a second: wait timeouts, idle and lifetime limits. */
void
hd_pool_janitor(HdPool *pool, ev_tstamp now)
{
	const HdSettings *settings = &pool->agent->settings;
	double		wait_limit = settings->query_wait_timeout_ms / 1000.0;
	double		idle_limit = settings->server_idle_timeout_ms / 1000.0;
	double		lifetime = settings->server_lifetime_ms / 1000.0;
	HdList	   *item;
	HdList	   *tmp;

	if (wait_limit > 0)
	{
		hd_list_foreach_safe(item, tmp, &pool->waiting)
		{
			HdClient   *client = hd_container_of(item, HdClient, wait_link);
			char		message[256];

			if (now - client->wait_started < wait_limit)
				continue;
			pool->stats.wait_timeouts++;
			snprintf(message, sizeof(message),
					 "timed out after %.0f s waiting for a connection to the origin (query_wait_timeout); "
					 "all %d of config \"%s\" are in use",
					 wait_limit, pool->config.origin_connection_limit, pool->config.name);
			hd_pool_cancel_wait(pool, client);
			hd_client_fatal(client, "53300", message, NULL);
		}
	}
	hd_list_foreach_safe(item, tmp, &pool->idle)
	{
		HdServer   *server = hd_container_of(item, HdServer, idle_link);

		/* the limit was lowered: idle connections above it go first */
		if (hd_pool_config_servers(pool->agent, pool->config.id) >
			pool->config.origin_connection_limit)
			hd_server_close(server, "origin_connection_limit lowered");
		else if (idle_limit > 0 && now - server->idle_since > idle_limit)
			hd_server_close(server, "server_idle_timeout reached");
		else if (lifetime > 0 && now - server->connected_at > lifetime)
			hd_server_close(server, "server_lifetime reached");
	}
	/* a retry (after server_login_retry) for clients still waiting */
	if (!hd_list_empty(&pool->waiting) && connecting_servers(pool) == 0)
		maybe_connect(pool);
}

void
hd_pool_free(HdPool *pool)
{
	ev_timer_stop(pool->agent->loop, &pool->retry_timer);
	hd_auth_recheck_free(pool);
	hd_list_del(&pool->link);
	for (int i = 0; i < pool->nparams; i++)
	{
		free(pool->params[i].name);
		free(pool->params[i].value);
	}
	free(pool->params);
	free(pool->last_error);
	free(pool->state_sql);
	hd_registry_free(&pool->registry);
	if (pool->password)
		hd_free_secret(pool->password);
	if (pool->md5_secret)
		hd_free_secret(pool->md5_secret);
	memset(pool->client_key, 0, sizeof(pool->client_key));
	memset(&pool->secret, 0, sizeof(pool->secret));
	hd_config_free(&pool->config);
	free(pool);
}
