/*
 * my_pool.c
 *    The MySQL side of the pools: HdMyPool (my_int.h), which embeds the
 *    neutral pool (pool/pool.h), and MySQL's ends of the pool's two tables:
 *    the connection operations (my_server.c's connections) and the waiter
 *    callbacks (my_client.c's sessions).
 *
 * A pool is per (config, user, variant, collation): the variant is the
 * capabilities that change what the origin does or sends (FOUND_ROWS
 * changes UPDATE's row counts, DEPRECATE_EOF the shape of result sets,
 * MULTI_STATEMENTS what a text may hold, ...), and the collation is the
 * character set the connection was opened with, which COM_RESET_CONNECTION
 * goes back to. Clients share an origin connection only when both are the
 * same, so that no client gets an answer shaped for another. The neutral
 * pool's role string carries all four ("app/000a0202/45"); the config's
 * origin_connection_limit spans every pool of the config.
 *
 * A pool of the config's own user logs in with the config's password; for
 * other users (their hash looked up on the origin, my_lookup.c) the pool
 * holds what their client's login proved last, SHA1(password).
 */
#include "mywire/my_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mysql_auth.h"
#include "base/log.h"

static HdMyServer *
server_of(HdPoolConn *conn)
{
	return hd_container_of(conn, HdMyServer, conn);
}

static HdMyClient *
client_of(HdPoolWaiter *waiter)
{
	return hd_container_of(waiter, HdMyClient, wait);
}

static HdMyPool *
my_pool(HdPool *pool)
{
	return hd_container_of(pool, HdMyPool, pool);
}

/* The config's own user: its password, and SHA1 of it for native logins. */
static void
load_own_password(HdMyPool *pool)
{
	char		err[256];

	if (pool->password)
		hd_free_secret(pool->password);
	pool->password = NULL;
	pool->has_stage1 = false;
	if (hd_config_read_password(pool->my->settings->state_dir, pool->pool.config.id,
								&pool->password, err, sizeof(err)) < 0)
		hd_warning("config %s: %s", pool->pool.config.name, err);
	if (pool->password && pool->password[0])
	{
		hd_my_native_stage1(pool->password, strlen(pool->password), pool->stage1);
		pool->has_stage1 = true;
	}
}

static const HdPoolOps my_pool_ops;

HdMyPool *
hd_my_pool_get(HdMyAgent *my, const HdConfig *config, const char *user, uint32_t variant,
			   uint32_t ext_caps, uint8_t collation)
{
	char		role[64];
	HdPool	   *found;
	HdMyPool   *pool;

	if ((size_t) snprintf(role, sizeof(role), ext_caps ? "%s/%08x/%u/%x" : "%s/%08x/%u", user,
						  variant, collation, ext_caps) >= sizeof(role))
		return NULL;
	if ((found = hd_pool_find(&my->pools, config, role)) != NULL)
		return my_pool(found);
	if ((pool = calloc(1, sizeof(*pool))) == NULL)
		return NULL;
	if (hd_pool_init(&pool->pool, &my->pools, my->loop, my->settings, &my_pool_ops, config, role) < 0)
	{
		free(pool);
		return NULL;
	}
	pool->my = my;
	snprintf(pool->user, sizeof(pool->user), "%s", user);
	pool->variant = variant;
	pool->ext_caps = ext_caps;
	pool->collation = collation;
	hd_list_init(&pool->stmt_defs);
	if (strcmp(user, config->user) == 0)
		load_own_password(pool);
	hd_list_append(&my->pools, &pool->pool.link);
	return pool;
}

void
hd_my_pool_server_ready(HdMyServer *server)
{
	hd_pool_conn_ready(&server->pool->pool, &server->conn);
}

void
hd_my_pool_server_failed(HdMyPool *pool, HdMyServer *server, const char *sqlstate,
						 const char *message)
{
	hd_pool_conn_failed(&pool->pool, server ? &server->conn : NULL, sqlstate, message);
}

static void
my_open(HdPool *pool)
{
	(void) hd_my_server_connect(my_pool(pool));
}

static void
my_close(HdPoolConn *conn, const char *reason)
{
	hd_my_server_close(server_of(conn), reason);
}

static bool
my_released(HdPoolConn *conn)
{
	HdMyServer *server = server_of(conn);

	server->client = NULL;
	hd_my_server_resume_reading(server);
	/* a KILL QUERY for it is on its way: nobody gets it before that has run */
	if (server->kills_pending > 0)
	{
		server->release_deferred = true;
		return false;
	}
	return true;
}

/*
 * Before the next holder: a connection whose last holder left it in a state
 * the next sync cannot undo (a transaction, a pin's user variables or
 * locks, a session pool's client) is reset; one that only differs in
 * carried settings and database is not: the next holder's sync makes it its
 * own (my_client.c), and its prepared statements stay.
 */
static int
my_reset(HdPoolConn *conn)
{
	HdMyServer *server = server_of(conn);

	if (!server->dirty && server->pool->pool.config.pool_mode == HD_POOL_TRANSACTION)
		return 0;
	return hd_my_server_reset(server) == 0 ? 1 : -1;
}

static void
my_config_changed(HdPool *pool)
{
	HdMyPool   *mp = my_pool(pool);

	if (strcmp(mp->user, pool->config.user) == 0)
		load_own_password(mp);
}

static void
my_free(HdPool *pool)
{
	HdMyPool   *mp = my_pool(pool);
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &mp->stmt_defs)
	{
		HdMyStmtDef *def = hd_container_of(item, HdMyStmtDef, link);

		hd_list_del(&def->link);
		free(def->key);
		free(def);
	}
	if (mp->password)
		hd_free_secret(mp->password);
	memset(mp->stage1, 0, sizeof(mp->stage1));
	hd_pool_fini(pool);
	free(mp);
}

static const HdPoolOps my_pool_ops = {
	.open = my_open,
	.close = my_close,
	.released = my_released,
	.reset = my_reset,
	.config_changed = my_config_changed,
	.free = my_free,
};

/* ---------------------------------------------------------------------------
 * HdPoolWaiterOps: the pool's clients
 */

static void
attach(HdMyServer *server, HdMyClient *client)
{
	server->client = client;
	server->uses++;
	client->server = server;
	client->server_taken_at = ev_time();
}

static void
my_waiter_ready(HdPoolWaiter *waiter, HdPoolConn *conn)
{
	HdMyClient *client = client_of(waiter);

	if (conn)
		attach(server_of(conn), client);
	hd_my_client_server_ready(client);
}

static void
my_waiter_failed(HdPoolWaiter *waiter, const char *sqlstate, const char *message)
{
	HdMyClient *client = client_of(waiter);

	hd_my_client_server_failed(client, sqlstate, message);
}

static const HdPoolWaiterOps my_waiter_ops = {
	.ready = my_waiter_ready,
	.failed = my_waiter_failed,
};

/* The previous statement's server, idle and used by nobody since. */
static bool
is_last_server(HdPoolConn *conn, void *arg)
{
	HdMyServer *server = server_of(conn);
	HdMyClient *client = arg;

	return server->thread_id == client->last_thread && server->uses == client->last_uses;
}

/*
 * The server that ran client's previous statement, if it is idle and nobody
 * used it since (its diagnostics are still the client's): true and held.
 */
bool
hd_my_pool_take_last(HdMyClient *client)
{
	HdPoolConn *conn;

	if (client->last_thread == 0)
		return false;
	conn = hd_pool_take_idle(&client->pool->pool, is_last_server, client);
	if (conn == NULL)
		return false;
	attach(server_of(conn), client);
	return true;
}

/*
 * A server for client: its held one, an idle one now (ready at once), or it
 * waits (ready or failed later).
 */
void
hd_my_pool_request(HdMyClient *client)
{
	HdPoolConn *conn;

	if (client->server)
	{
		hd_my_client_server_ready(client);
		return;
	}
	client->wait.ops = &my_waiter_ops;
	client->wait.login = false;
	/* NULL: queued (wait.waiting), or failed() was called already */
	conn = hd_pool_request(&client->pool->pool, &client->wait, client->last_activity);
	if (conn)
	{
		attach(server_of(conn), client);
		hd_my_client_server_ready(client);
	}
}

void
hd_my_pool_release(HdMyClient *client)
{
	HdMyServer *server = client->server;

	if (server == NULL)
		return;
	client->last_thread = server->thread_id;
	client->last_uses = server->uses;
	client->server = NULL;
	hd_histogram_observe(&client->pool->pool.stats.transaction_latency,
						 ev_time() - client->server_taken_at);
	hd_pool_release(&client->pool->pool, &server->conn);
}
