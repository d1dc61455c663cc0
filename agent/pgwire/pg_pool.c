/*
 * pg_pool.c
 *    The PostgreSQL side of the pools: HdPgPool (pooler.h), which embeds the
 *    neutral pool (pool/pool.h), and PostgreSQL's ends of the pool's two
 *    tables: the connection operations (server.c's connections) and the
 *    waiter callbacks (client.c's clients).
 *
 * A pool of the config's own user logs in to the origin with the password
 * the config stores, and checks its clients against a SCRAM secret made
 * from it; a pool of another role logs in with what its clients' successful
 * authentication gave (client_auth.c sets it). Logins of a pool's servers
 * go to the login re-check first (auth_recheck.h): a check's own pool is
 * handled there and never reaches the neutral pool's login bookkeeping.
 */
#include "pgwire/pooler.h"
#include "pgwire/pg_origin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "pgwire/auth_recheck.h"


static HdServer *
server_of(HdPoolConn *conn)
{
	return hd_container_of(conn, HdServer, conn);
}

static HdClient *
client_of(HdPoolWaiter *waiter)
{
	return hd_container_of(waiter, HdClient, wait);
}

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
load_own_password(HdPgPool *pg)
{
	char		err[256];

	if (pg->password)
		hd_free_secret(pg->password);
	pg->password = NULL;
	if (hd_config_read_password(pg->agent->settings.state_dir, pg->pool.config.id,
								&pg->password, err, sizeof(err)) < 0)
		hd_warning("config %s: %s", pg->pool.config.name, err);
	pg->has_secret = pg->password && hd_secret_from_password(pg->password, &pg->secret);
}

/* A new pool, not yet listed anywhere: NULL when out of memory. */
static HdPgPool *
pg_pool_new(HdAgent *agent, const HdConfig *config, const char *role)
{
	HdPgPool   *pg = calloc(1, sizeof(HdPgPool));

	if (pg == NULL)
		return NULL;
	if (hd_pool_init(&pg->pool, &agent->pools, agent->loop, &agent->settings, hd_pg_origin.pool,
					 config, role) < 0)
	{
		free(pg);
		return NULL;
	}
	pg->agent = agent;
	hd_auth_recheck_init(&pg->pool);
	return pg;
}

/* The pool of the config's own user (whose password the config holds). */
HdPool *
hd_pg_pool_get(HdAgent *agent, const HdConfig *config, const char *role)
{
	if (strcmp(role, config->user) != 0)
		return NULL;			/* other roles: hd_pg_pool_get_for_role() after a lookup */
	return hd_pg_pool_get_for_role(agent, config, role);
}

/*
 * The pool of a role, created if needed. For a role other than the config's
 * user the caller sets how it logs in to the origin (pass-through keys, md5
 * secret or password) from the client's successful authentication.
 */
HdPool *
hd_pg_pool_get_for_role(HdAgent *agent, const HdConfig *config, const char *role)
{
	HdPool	   *pool = hd_pool_find(&agent->pools, config, role);
	HdPgPool   *pg;

	if (pool)
		return pool;
	if ((pg = pg_pool_new(agent, config, role)) == NULL)
		return NULL;
	if (strcmp(role, config->user) == 0)
		load_own_password(pg);
	hd_list_append(&agent->pools, &pg->pool.link);
	return &pg->pool;
}

/*
 * The pool of a check of owner's login (auth_recheck.h): owner's config,
 * role and password, read afresh; not in agent->pools, so neither listed
 * nor counted in origin_connection_limit.
 */
HdPgPool *
hd_pg_pool_new_check(HdPgPool *owner)
{
	HdPgPool   *pg = pg_pool_new(owner->agent, &owner->pool.config, owner->pool.role);

	if (pg == NULL)
		return NULL;
	load_own_password(pg);
	pg->check_of = owner;
	return pg;
}

void
hd_pg_pool_remember_params(HdPool *pool, const char *name, const char *value)
{
	HdPgPool   *pg = hd_pg_pool(pool);
	HdParam    *params;

	for (int i = 0; i < pg->nparams; i++)
	{
		if (strcmp(pg->params[i].name, name) == 0)
		{
			char	   *copy = strdup(value);

			if (copy)
			{
				free(pg->params[i].value);
				pg->params[i].value = copy;
			}
			return;
		}
	}
	params = realloc(pg->params, sizeof(HdParam) * (pg->nparams + 1));
	if (params == NULL)
		return;
	pg->params = params;
	params[pg->nparams].name = strdup(name);
	params[pg->nparams].value = strdup(value);
	if (params[pg->nparams].name && params[pg->nparams].value)
		pg->nparams++;
	else
	{
		free(params[pg->nparams].name);
		free(params[pg->nparams].value);
	}
}

/* ---------------------------------------------------------------------------
 * Logins of the pool's servers
 */

void
hd_pg_pool_server_ready(HdServer *server)
{
	if (hd_auth_recheck_server_ready(server->pool, server))
		return;					/* a check of the config's login, not a pool connection */
	hd_pool_conn_ready(server->pool, &server->conn);
}

void
hd_pg_pool_server_failed(HdPool *pool, HdServer *server, const char *sqlstate,
						 const char *message)
{
	if (hd_auth_recheck_server_failed(pool, server, sqlstate, message))
		return;					/* a check of the config's login, not a pool connection */
	hd_pool_conn_failed(pool, server ? &server->conn : NULL, sqlstate, message);
}

/* ---------------------------------------------------------------------------
 * HdPoolOps: the pool's servers
 */

static void
pg_open(HdPool *pool)
{
	(void) hd_server_connect(pool);
}

static void
pg_close(HdPoolConn *conn, const char *reason)
{
	hd_server_close(server_of(conn), reason);
}

static bool
pg_released(HdPoolConn *conn)
{
	HdServer   *server = server_of(conn);

	server->client = NULL;
	/*
	 * Reading may be paused for the client that just let go (back-pressure,
	 * server.c): its transaction can end in the very reply that paused it.
	 * Nobody would resume it then, and the next client's replies (or DISCARD
	 * ALL's) would never be read.
	 */
	hd_server_resume_reading(server);
	/* a cancel for it is in flight: nobody gets it before the origin is done with that */
	return !hd_cancel_hold_release(server);
}

static int
pg_reset(HdPoolConn *conn)
{
	HdServer   *server = server_of(conn);
	HdPoolMode	mode = server->pool->config.pool_mode;

	/* DISCARD ALL, as a simple Query */
	static const char discard[] = {'Q', 0, 0, 0, 16, 'D', 'I', 'S', 'C', 'A', 'R', 'D',
	' ', 'A', 'L', 'L', 0};

	if (mode == HD_POOL_TRANSACTION && server->state_dirty)
	{
		/*
		 * Its last client's transaction was not checked (it left, or a cancel
		 * held the check back): the check decides, released or closed
		 * (state_check.c).
		 */
		if (hd_state_check_start(server, false) < 0)
			return -1;
		hd_server_flush(server);
		return 1;
	}
	if (mode == HD_POOL_SESSION)
	{
		/* session state must not reach the next client */
		conn->state = HD_CONN_RESETTING;
		hd_prepare_server_unnamed_lost(server);
		server->state_prepared = false;
		if (hd_iobuf_append(&server->out, discard, sizeof(discard)) < 0)
			return -1;
		hd_server_flush(server);
		return 1;
	}
	return 0;
}

/* The config changed: the password and the login proof follow it. */
static void
pg_config_changed(HdPool *pool)
{
	HdPgPool   *pg = hd_pg_pool(pool);

	if (strcmp(pool->role, pool->config.user) == 0)
		load_own_password(pg);
	hd_auth_recheck_config_changed(pool);
}

static void
pg_free(HdPool *pool)
{
	HdPgPool   *pg = hd_pg_pool(pool);

	hd_auth_recheck_free(pool);
	for (int i = 0; i < pg->nparams; i++)
	{
		free(pg->params[i].name);
		free(pg->params[i].value);
	}
	free(pg->params);
	free(pg->state_sql);
	hd_registry_free(&pg->registry);
	if (pg->password)
		hd_free_secret(pg->password);
	if (pg->md5_secret)
		hd_free_secret(pg->md5_secret);
	memset(pg->client_key, 0, sizeof(pg->client_key));
	memset(&pg->secret, 0, sizeof(pg->secret));
	hd_pool_fini(pool);
	free(pg);
}

const HdPoolOps hd_pg_pool_ops = {
	.open = pg_open,
	.close = pg_close,
	.released = pg_released,
	.reset = pg_reset,
	.config_changed = pg_config_changed,
	.free = pg_free,
};

/* ---------------------------------------------------------------------------
 * HdPoolWaiterOps: the pool's clients
 */

/* The client holds the server now: what a new holder starts with. */
static void
attach(HdServer *server, HdClient *client)
{
	server->client = client;
	hd_expect_clear(&server->expect);
	server->mid_batch = false;
	server->request_sent_at = 0;
	client->server = server;
	client->server_synced = false;
	client->server_taken_at = ev_time();
}

/*
 * A client that waited got its server (or, logging in, the pool's
 * parameters): a login is finished now (in session pooling with its server's
 * key), a query goes on.
 */
static void
pg_waiter_ready(HdPoolWaiter *waiter, HdPoolConn *conn)
{
	HdClient   *client = client_of(waiter);

	if (conn)
	{
		attach(server_of(conn), client);
		hd_debug("client %s got origin connection %u", client->addr,
				 client->server->backend_pid);
	}
	if (client->state == HD_CLIENT_LOGIN)
		hd_client_login_done(client);
	else
		hd_client_server_ready(client);
}

/* Tell a client why it cannot have a server, and let it go. */
static void
pg_waiter_failed(HdPoolWaiter *waiter, const char *sqlstate, const char *message)
{
	HdClient   *client = client_of(waiter);

	if (client->state == HD_CLIENT_LOGIN || client->state == HD_CLIENT_ACTIVE)
		hd_client_fatal(client, sqlstate, message, NULL);
}

static const HdPoolWaiterOps pg_waiter_ops = {
	.ready = pg_waiter_ready,
	.failed = pg_waiter_failed,
};

void
hd_client_request_server(HdClient *client)
{
	HdPoolConn *conn;

	client->wait.ops = &pg_waiter_ops;
	client->wait.login = client->state == HD_CLIENT_LOGIN;
	conn = hd_pool_request(client->pool, &client->wait, client->last_activity);
	if (conn)
		attach(server_of(conn), client);
	else if (client->wait.waiting)
		hd_debug("client %s waits for an origin connection of config %s", client->addr,
				 client->pool->config.name);
}
