/*
 * my_agent.c
 *    The MySQL wing as the composition root sees it (mywire.h): its state,
 *    the reaper that frees closed sessions and connections once the loop is
 *    done with them, reloaded configs (mywire.h says what a change does),
 *    the once-a-second janitor (pools' timeouts, login and idle
 *    timeouts, draining), shutdown.
 */
#include "mywire/my_int.h"

#include <stdlib.h>
#include <string.h>

#include "auth/mysql_auth.h"
#include "base/log.h"
#include "mywire/my_lookup.h"

static void
reaper_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	HdMyAgent  *my = w->data;
	HdList	   *item;

	(void) loop;
	(void) revents;
	while ((item = hd_list_first(&my->dead_clients)) != NULL)
		hd_my_client_free(hd_container_of(item, HdMyClient, link));
	while ((item = hd_list_first(&my->dead_servers)) != NULL)
		hd_my_server_free(hd_container_of(item, HdMyServer, conn.link));
}

HdMyAgent *
hd_my_agent_new(struct ev_loop *loop, const HdSettings *settings, const HdConfigList *configs,
				const HdMyRoot *root)
{
	HdMyAgent  *my = calloc(1, sizeof(*my));

	if (my == NULL)
		return NULL;
	my->loop = loop;
	my->settings = settings;
	my->configs = configs;
	my->root = *root;
	hd_list_init(&my->pools);
	hd_list_init(&my->clients);
	hd_list_init(&my->dead_clients);
	hd_list_init(&my->dead_servers);
	ev_prepare_init(&my->reaper, reaper_cb);
	my->reaper.data = my;
	ev_prepare_start(loop, &my->reaper);
	return my;
}

const HdConfig *
hd_my_config_by_id(HdMyAgent *my, const char *id)
{
	for (size_t i = 0; i < my->configs->count; i++)
		if (strcmp(my->configs->items[i].id, id) == 0)
			return &my->configs->items[i];
	return NULL;
}

/* Whether the config's password changed for the pool of its own user (others log in with what their client proved). */
static bool
password_changed(HdMyAgent *my, HdPool *pool, const HdConfig *now)
{
	HdMyPool   *mp = hd_container_of(pool, HdMyPool, pool);

	return strcmp(mp->user, now->user) == 0 &&
		hd_config_password_differs(my->settings->state_dir, now->id, mp->password);
}

void
hd_my_agent_configs_changed(HdMyAgent *my)
{
	HdList	   *pi;
	HdList	   *ptmp;

	hd_list_foreach_safe(pi, ptmp, &my->pools)
	{
		HdPool	   *pool = hd_container_of(pi, HdPool, link);
		const HdConfig *now = hd_my_config_by_id(my, pool->config.id);
		HdList	   *item;
		HdList	   *tmp;

		if (pool->stale)
			continue;
		/*
		 * As for PostgreSQL configs (agent.c): another user, pool mode,
		 * protocol (or here allow_load_local, which the pool's capabilities
		 * were chosen by) and the sessions logged in to something else; any
		 * other change of the origin, its name or password, and the sessions
		 * stay while new connections use the new settings.
		 */
		if (now && strcmp(now->user, pool->config.user) == 0 &&
			now->pool_mode == pool->config.pool_mode && now->protocol == pool->config.protocol &&
			now->allow_load_local == pool->config.allow_load_local)
		{
			/* a new limit alone changes no connection */
			pool->config.origin_connection_limit = now->origin_connection_limit;
			if (!hd_config_same_origin(now, &pool->config) ||
				strcmp(now->name, pool->config.name) != 0 || password_changed(my, pool, now))
				hd_pool_update_config(pool, now);
			continue;
		}
		/* gone, or logged in to something else: its sessions end, its connections close (pools stay, stale) */
		pool->stale = true;
		hd_list_foreach_safe(item, tmp, &my->clients)
		{
			HdMyClient *client = hd_container_of(item, HdMyClient, link);

			if (client->pool && &client->pool->pool == pool)
				hd_my_client_fatal(client, 1053, "08S01",	/* ER_SERVER_SHUTDOWN */
				   
								   "the config was deleted or changed its origin");
		}
		hd_list_foreach_safe(item, tmp, &pool->conns)
			hd_my_server_close(hd_container_of(item, HdMyServer, conn.link),
							   "its config was deleted or changed");
	}
}

bool
hd_my_agent_janitor(HdMyAgent *my, ev_tstamp now, bool draining)
{
	double		client_idle = my->settings->client_idle_timeout_ms / 1000.0;
	double		login_timeout = my->settings->client_login_timeout_ms / 1000.0;
	HdList	   *item;
	HdList	   *tmp;
	bool		busy = false;

	hd_list_foreach_safe(item, tmp, &my->pools)
		hd_pool_janitor(hd_container_of(item, HdPool, link), now);
	hd_list_foreach_safe(item, tmp, &my->clients)
	{
		HdMyClient *client = hd_container_of(item, HdMyClient, link);
		bool		between = hd_my_client_protocol.idle(&client->session);

		if (client->state == HD_MY_CLIENT_CLOSED || client->close_after_flush)
			continue;
		if (login_timeout > 0 && client->state != HD_MY_CLIENT_ACTIVE &&
			now - client->login_started_at > login_timeout)
		{
			hd_my_client_fatal(client, 1158, "08S01",	/* ER_NET_READ_ERROR */
				   
							   "the login took too long (client_login_timeout)");
			continue;
		}
		if (draining && between)
			hd_my_client_protocol.terminate(&client->session, "57P01", "the agent is shutting down");
		else if (client_idle > 0 && between && now - client->last_activity > client_idle)
			hd_my_client_protocol.terminate(&client->session, "57P05",
						 "closing the connection after client_idle_timeout of inactivity");
		else if (draining)
			busy = true;
	}
	return busy;
}

void
hd_my_agent_shutdown(HdMyAgent *my)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &my->clients)
		hd_my_client_close(hd_container_of(item, HdMyClient, link));
	hd_pools_close_all(&my->pools, "the agent is stopping");
	hd_my_lookup_shutdown(my);
	reaper_cb(my->loop, &my->reaper, 0);
}

void
hd_my_agent_free(HdMyAgent *my)
{
	HdList	   *item;

	if (my == NULL)
		return;
	hd_my_lookup_shutdown(my);
	ev_prepare_stop(my->loop, &my->reaper);
	reaper_cb(my->loop, &my->reaper, 0);
	while ((item = hd_list_first(&my->pools)) != NULL)
	{
		hd_list_del(item);
		hd_pool_free(hd_container_of(item, HdPool, link));
	}
	hd_my_rsa_free(my->rsa);
	free(my);
}
