/*
 * my_ops.c
 *    What the admin console and the metrics endpoint (ops/) see of the
 *    MySQL wing: its pools, its sessions and origin connections as neutral
 *    rows, its counters, and KILL of a config's sessions (mywire.h).
 *
 * ops/ includes no my_int.h: the rows carry only what SHOW and /metrics
 * print, copied or pointed to for the length of one callback, so that the
 * wing's structures stay its own.
 */
#include "mywire/my_int.h"

#include <string.h>

/* ER_CONNECTION_KILLED: what MariaDB sends a connection KILL closes. */
#define ER_CONNECTION_KILLED 1927

HdList *
hd_my_agent_pools(HdMyAgent *my)
{
	return &my->pools;
}

/* The names SHOW CLIENTS gives the PostgreSQL side's states (ops/metrics.c). */
static const char *
session_state(const HdMyClient *client)
{
	if (client->state != HD_MY_CLIENT_ACTIVE)
		return "login";
	if (client->server)
		return "active";
	return client->wait.waiting ? "waiting" : "idle";
}

/* The config's name: the pool's copy once it has one, else the current list's. */
static const char *
session_config(const HdMyClient *client)
{
	const HdConfigList *configs = client->my->configs;

	if (client->pool)
		return client->pool->pool.config.name;
	if (client->config_id[0] == '\0')
		return NULL;
	for (size_t i = 0; i < configs->count; i++)
		if (strcmp(configs->items[i].id, client->config_id) == 0)
			return configs->items[i].name;
	return NULL;
}

void
hd_my_agent_sessions(HdMyAgent *my, void (*fn) (void *arg, const HdMySessionRow *row), void *arg)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &my->clients)
	{
		const HdMyClient *client = hd_container_of(item, HdMyClient, link);
		HdMySessionRow row;

		if (client->state == HD_MY_CLIENT_CLOSED)
			continue;
		row.addr = client->addr;
		row.user = client->user;
		row.config = session_config(client);
		row.pool = client->pool ? &client->pool->pool : NULL;
		row.state = session_state(client);
		row.origin_id = client->server ? client->server->thread_id : 0;
		row.pinned = client->pinned;
		row.connected_at = client->connected_at;
		fn(arg, &row);
	}
}

void
hd_my_agent_servers(HdMyAgent *my, void (*fn) (void *arg, const HdMyServerRow *row), void *arg)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &my->pools)
	{
		const HdPool *pool = hd_container_of(item, HdPool, link);
		const HdList *s;

		for (s = pool->conns.next; s != &pool->conns; s = s->next)
		{
			const HdMyServer *server = hd_container_of(s, HdMyServer, conn.link);
			HdMyServerRow row;

			row.pool = pool;
			row.conn = &server->conn;
			row.origin_id = server->thread_id;
			row.handouts = server->uses;
			fn(arg, &row);
		}
	}
}

void
hd_my_agent_counters(const HdMyAgent *my, HdMyCounters *out)
{
	out->pins = my->pins;
	out->diagnostics_refused = my->diagnostics_refused;
}

/*
 * KILL config: its sessions get their error first (a session's server is
 * still attached, so closing the server below tells it nothing twice:
 * hd_my_client_fatal() ignores a session already closing), then every
 * origin connection of its pools closes, held or idle.
 */
void
hd_my_agent_kill_config(HdMyAgent *my, const char *config_id)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &my->clients)
	{
		HdMyClient *client = hd_container_of(item, HdMyClient, link);

		if (client->pool && strcmp(client->pool->pool.config.id, config_id) == 0)
			hd_my_client_fatal(client, ER_CONNECTION_KILLED, "70100",
							   "Connection was killed by the administrator (KILL in the admin console)");
	}
	hd_list_foreach_safe(item, tmp, &my->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		HdList	   *s;
		HdList	   *stmp;

		if (strcmp(pool->config.id, config_id) != 0)
			continue;
		hd_list_foreach_safe(s, stmp, &pool->conns)
			hd_my_server_close(hd_container_of(s, HdMyServer, conn.link),
							   "KILL from the admin console");
	}
}
