/*
 * agent.c
 *    `hyperdrive agent -c FILE`: the event loop and everything global to it.
 *
 * The loop owns: the listening sockets (TCP, and the Unix-domain socket if
 * unix_socket_dir is set: listener.h), the settings, the configs, the pools
 * and the clients. Each listener's clients speak one protocol, whose table
 * (client_protocol.h) accepts them, refuses them over max_client_conn and
 * says which are idle when draining; both speak PostgreSQL's.
 *
 * Signals: SIGHUP reloads the settings and configs (a bad file is logged
 * and the old values stay), SIGTERM drains (stop accepting, let each client
 * finish its transaction, then exit), SIGINT stops at once.
 *
 * systemd (Type=notify): when $NOTIFY_SOCKET is set, the agent says READY=1
 * once it listens, RELOADING=1 then READY=1 around a reload, STOPPING=1
 * when it starts draining (sd_notify(3); without the variable, nothing).
 *
 * The configs directory is checked every second: `hyperdrive create/update/
 * delete` take effect in the running agent within a second, without a
 * restart and without touching the clients of other configs.
 *
 * Open files: at start and on every reload the soft RLIMIT_NOFILE is raised
 * to what the settings and configs may need at once (fd_need()), up to the
 * hard limit; a hard limit below that refuses the start (or the reloaded
 * settings) with the numbers and the setting to lower.
 */
#include "mywire/mywire.h"
#include "pgwire/pooler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sqlstate.h"
#include "net/tls.h"
#include "ops/admin.h"
#include "ops/metrics.h"
#include "pgwire/pg_origin.h"
#include "pgwire/proto.h"

static void
usage(FILE *out)
{
	fprintf(out,
			"Usage: hyperdrive agent [-c FILE]\n"
			"  Runs the agent with the settings in FILE (default: $%s, else ./%s).\n"
			"  Signals: SIGHUP reloads, SIGTERM drains and exits, SIGINT exits at once.\n",
			HD_SETTINGS_ENV, HD_SETTINGS_DEFAULT_FILE);
}

/* How a client's address shows in the log and SHOW CLIENTS. */
static void
format_peer(int fd, const struct sockaddr_storage *addr, char *out, size_t len)
{
	char		host[INET6_ADDRSTRLEN] = "?";
	int			port = 0;

	if (addr->ss_family == AF_UNIX)
	{
		struct ucred cred;
		socklen_t	credlen = sizeof(cred);

		/* the peer's process, as PgBouncer shows it: unix(PID) */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == 0)
			snprintf(out, len, "unix(%d)", (int) cred.pid);
		else
			snprintf(out, len, "unix");
		return;
	}
	if (addr->ss_family == AF_INET)
	{
		const struct sockaddr_in *in = (const struct sockaddr_in *) addr;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	}
	else if (addr->ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, len, "%s:%d", host, port);
}

/*
 * A connection on a client listener (listener.h): a session of the
 * listener's protocol (client_protocol.h). Over max_client_conn it is
 * refused when its protocol lets it say so (hd_agent_refuse_over_limit()).
 */
static void
client_accepted(void *arg, int fd, const struct sockaddr_storage *addr)
{
	HdClientListener *clients = arg;
	char		peer[64];

	format_peer(fd, addr, peer, sizeof(peer));
	if (hd_socket_prepare(fd) < 0)
	{
		close(fd);
		return;
	}
	(void) clients->protocol->accept(clients->agent, fd, peer, addr->ss_family == AF_UNIX);
}

/*
 * max_client_conn counts every protocol's sessions (agent->nclients); the
 * words and the SQLSTATE are the agent's, the bytes the protocol's.
 */
/* HdMyRoot's: the MySQL wing refuses through the same limit */
static bool
refuse_over_limit(void *agent, HdClientSession *session)
{
	return hd_agent_refuse_over_limit(agent, session);
}

bool
hd_agent_refuse_over_limit(HdAgent *agent, HdClientSession *session)
{
	char		message[128];

	if (agent->nclients <= agent->settings.max_client_conn)
		return false;
	snprintf(message, sizeof(message), "sorry, too many clients already (max_client_conn = %d)",
			 agent->settings.max_client_conn);
	session->protocol->terminate(session, HD_SQLSTATE_TOO_MANY_CONNECTIONS, message);
	return true;
}

static void
client_listener_init(HdClientListener *clients, void *agent,
					 const HdClientProtocol *protocol)
{
	hd_listener_init(&clients->listener);
	clients->agent = agent;
	clients->protocol = protocol;
}

static void
close_listeners(HdAgent *agent)
{
	hd_listener_close(&agent->tcp_clients.listener);
	hd_listener_close(&agent->unix_clients.listener);
	hd_listener_close(&agent->mysql_clients.listener);
}

/* ---------------------------------------------------------------------------
 * Open files
 */

/*
 * Beyond clients and origin connections: the listeners, the loop's own
 * descriptors, the cache's files, metrics scrapes and cancel requests in
 * flight; and per config its change stream, freshness probe and control
 * connection.
 */
#define FD_RESERVE 64
#define FD_PER_CONFIG 3

/* The descriptors the settings and configs may need at once; *origins: of which origin connections. */
static rlim_t
fd_need(const HdSettings *settings, const HdConfigList *configs, rlim_t *origins)
{
	*origins = 0;
	for (size_t i = 0; i < configs->count; i++)
		*origins += (rlim_t) configs->items[i].origin_connection_limit;
	return (rlim_t) settings->max_client_conn + *origins + FD_RESERVE +
		FD_PER_CONFIG * (rlim_t) configs->count;
}

/*
 * Raise the soft limit on open files to what the settings need, up to the
 * hard limit. -1 with why in err when the hard limit is too low, naming the
 * setting to lower and the limit to raise.
 */
static int
ensure_fd_limit(const HdSettings *settings, const HdConfigList *configs, char *err,
				size_t errlen)
{
	struct rlimit rl;
	rlim_t		origins;
	rlim_t		need = fd_need(settings, configs, &origins);
	rlim_t		others = need - (rlim_t) settings->max_client_conn;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
	{
		snprintf(err, errlen, "could not read the limit on open files: %s", strerror(errno));
		return -1;
	}
	/* (RLIM_INFINITY is the largest value) */
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need)
	{
		char		lower[160];

		if (rl.rlim_max > others)
			snprintf(lower, sizeof(lower), "lower max_client_conn to %llu or less",
					 (unsigned long long) (rl.rlim_max - others));
		else
			snprintf(lower, sizeof(lower), "lower the configs' origin_connection_limit "
					 "(hyperdrive update NAME --origin-connection-limit N)");
		snprintf(err, errlen, "max_client_conn = %d needs up to %llu open files (%d clients, "
				 "%llu origin connections by the configs' origin_connection_limit, %llu for "
				 "listeners, change streams, control connections and the cache), but the "
				 "hard limit on open files (RLIMIT_NOFILE) is %llu: %s, or raise the limit "
				 "(ulimit -Hn; LimitNOFILE= in a systemd unit)",
				 settings->max_client_conn, (unsigned long long) need,
				 settings->max_client_conn, (unsigned long long) origins,
				 (unsigned long long) (others - origins), (unsigned long long) rl.rlim_max,
				 lower);
		return -1;
	}
	hd_info("raising the limit on open files from %llu to %llu (max_client_conn = %d, "
			"origin connections %llu, reserve %llu)", (unsigned long long) rl.rlim_cur,
			(unsigned long long) need, settings->max_client_conn,
			(unsigned long long) origins, (unsigned long long) (others - origins));
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
	{
		snprintf(err, errlen, "could not raise the limit on open files to %llu: %s",
				 (unsigned long long) need, strerror(errno));
		return -1;
	}
	return 0;
}

const HdConfig *
hd_agent_find_config(HdAgent *agent, const char *name)
{
	return hd_configs_find_name(&agent->configs, name);
}

/*
 * The client a CancelRequest's key names: the key it was given at login,
 * the agent's own or, for a client with its own origin connection (session
 * pooling, replication), that backend's real one (client.c). Either way the
 * cancel goes to the backend that client holds now (cancel.c), never to one
 * it no longer holds.
 */
HdClient *
hd_agent_find_cancel_target(HdAgent *agent, uint32_t pid, uint32_t key)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &agent->clients)
	{
		HdClient   *client = hd_container_of(item, HdClient, link);

		if (client->cancel_pid == pid && client->cancel_key == key &&
			client->state == HD_CLIENT_ACTIVE)
			return client;
	}
	return NULL;
}

/* ---------------------------------------------------------------------------
 * Reloads
 */

/* Close every client and server of a pool whose config is gone. */
static void
drop_pool(HdAgent *agent, HdPool *pool, const char *why)
{
	HdList	   *item;
	HdList	   *tmp;

	pool->stale = true;
	hd_list_foreach_safe(item, tmp, &agent->clients)
	{
		HdClient   *client = hd_container_of(item, HdClient, link);

		if (client->pool == pool)
			hd_client_fatal(client, HD_SQLSTATE_ADMIN_SHUTDOWN, why, NULL);
	}
	hd_list_foreach_safe(item, tmp, &pool->conns)
		hd_server_close(hd_container_of(item, HdServer, conn.link), why);
}

static int
reload_configs(HdAgent *agent, char *err, size_t errlen)
{
	HdConfigList fresh = {0};
	HdList	   *item;
	HdList	   *tmp;

	if (hd_configs_load(agent->settings.state_dir, &fresh, err, errlen) < 0)
	{
		hd_error("reloading configs failed, keeping the previous ones: %s", err);
		return -1;
	}
	hd_list_foreach_safe(item, tmp, &agent->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		const HdConfig *now = hd_configs_find(&fresh, pool->config.id);

		if (pool->stale)
			continue;
		if (now == NULL || !hd_config_same_origin(&pool->config, now))
			hd_lookup_forget_config(agent, pool->config.id);
		if (now == NULL)
		{
			hd_info("config %s was deleted: closing its connections", pool->config.name);
			drop_pool(agent, pool, "the config of this database was deleted");
			continue;
		}
		/* changed origin or credentials: see hd_pool_update_config() */
		{
			bool		changed;
			bool		own_role = strcmp(pool->role, pool->config.user) == 0;

			if (strcmp(pool->config.user, now->user) != 0 || pool->config.pool_mode != now->pool_mode ||
				pool->config.protocol != now->protocol)
			{
				/*
				 * A different user, pool mode or protocol: these clients logged
				 * in to another thing (and speak another protocol than its origin).
				 */
				hd_info("config %s changed its user, pool mode or protocol: closing its connections",
						now->name);
				drop_pool(agent, pool, "the config of this database was changed");
				continue;
			}
			changed = !hd_config_same_origin(&pool->config, now) ||
				strcmp(pool->config.name, now->name) != 0 ||
				(own_role && hd_config_password_differs(agent->settings.state_dir, now->id,
														hd_pg_pool(pool)->password));
			pool->config.origin_connection_limit = now->origin_connection_limit;
			if (!changed)
				continue;
			/*
			 * Same clients, new origin settings: current transactions finish on
			 * their connections, which then close; new ones use the new settings.
			 */
			hd_info("config %s changed: new connections use the new settings", now->name);
			hd_pool_update_config(pool, now);
		}
	}
	hd_configs_free(&agent->configs);
	agent->configs = fresh;
	hd_my_agent_configs_changed(agent->mysql);
	hd_cache_layer_configs(agent->cache);
	/* the configs are taken: a limit too low shows as failed connections */
	if (ensure_fd_limit(&agent->settings, &agent->configs, err, errlen) < 0)
		hd_error("%s", err);
	return 0;
}

/*
 * The admin console's user list named by the settings; a relative path is
 * taken from the settings file's directory. No auth_file: an empty list.
 */
static int
load_auth_file(const HdSettings *settings, const char *settings_path, HdAuthFile *out,
			   char *err, size_t errlen)
{
	const char *slash = strrchr(settings_path, '/');
	char		path[4096];

	memset(out, 0, sizeof(*out));
	if (settings->auth_file == NULL)
		return 0;
	if (settings->auth_file[0] == '/' || slash == NULL)
		snprintf(path, sizeof(path), "%s", settings->auth_file);
	else
		snprintf(path, sizeof(path), "%.*s/%s", (int) (slash - settings_path), settings_path,
				 settings->auth_file);
	return hd_auth_file_load(path, out, err, errlen);
}

static bool
same_string(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

static bool
same_metrics_addr(const HdSettings *a, const HdSettings *b)
{
	if (a->metrics_host == NULL || b->metrics_host == NULL)
		return a->metrics_host == b->metrics_host;
	return strcmp(a->metrics_host, b->metrics_host) == 0 && a->metrics_port == b->metrics_port;
}

static int
reload_settings(HdAgent *agent, char *err, size_t errlen)
{
	HdSettings	fresh;
	HdAuthFile	users;
	char	   *metrics_host = NULL;

	if (hd_settings_load(agent->settings_path, &fresh, err, errlen) < 0)
	{
		hd_error("reload failed, keeping the previous settings: %s", err);
		return -1;
	}
	/* (raising the open files limit needs no undoing if the auth_file is bad) */
	if (ensure_fd_limit(&fresh, &agent->configs, err, errlen) < 0 ||
		load_auth_file(&fresh, agent->settings_path, &users, err, errlen) < 0)
	{
		hd_settings_free(&fresh);
		hd_error("reload failed, keeping the previous settings: %s", err);
		return -1;
	}
	if (strcmp(fresh.listen_addr, agent->settings.listen_addr) != 0 ||
		fresh.listen_port != agent->settings.listen_port ||
		fresh.mysql_listen_port != agent->settings.mysql_listen_port ||
		!same_string(fresh.unix_socket_dir, agent->settings.unix_socket_dir) ||
		strcmp(fresh.state_dir, agent->settings.state_dir) != 0 ||
		!same_metrics_addr(&fresh, &agent->settings))
		hd_warning("listen_addr, listen_port, mysql_listen_port, unix_socket_dir, state_dir "
				   "and metrics_addr take effect only at restart");
	/* keep what cannot change while running */
	free(fresh.listen_addr);
	fresh.listen_addr = strdup(agent->settings.listen_addr);
	fresh.listen_port = agent->settings.listen_port;
	fresh.mysql_listen_port = agent->settings.mysql_listen_port;
	free(fresh.unix_socket_dir);
	fresh.unix_socket_dir = agent->settings.unix_socket_dir ?
		strdup(agent->settings.unix_socket_dir) : NULL;
	free(fresh.state_dir);
	fresh.state_dir = strdup(agent->settings.state_dir);
	if (agent->settings.metrics_host)
		metrics_host = strdup(agent->settings.metrics_host);
	free(fresh.metrics_host);
	fresh.metrics_host = metrics_host;
	fresh.metrics_port = agent->settings.metrics_port;
	if (fresh.listen_addr == NULL || fresh.state_dir == NULL ||
		(agent->settings.metrics_host && metrics_host == NULL) ||
		(agent->settings.unix_socket_dir && fresh.unix_socket_dir == NULL))
	{
		hd_settings_free(&fresh);
		hd_auth_file_free(&users);
		snprintf(err, errlen, "out of memory");
		hd_error("reload failed: out of memory");
		return -1;
	}
	hd_settings_free(&agent->settings);
	agent->settings = fresh;
	hd_auth_file_free(&agent->auth_file);
	agent->auth_file = users;
	hd_log_set_level(agent->settings.log_level);
	/* a bad pair keeps the previous one */
	hd_tls_accept_ctx_reload(&agent->tls_ctx, &agent->settings);
	hd_info("settings reloaded from %s", agent->settings_path);
	return 0;
}

/* RELOAD and SIGHUP: the settings (with the auth_file), then the configs. */
int
hd_agent_reload(HdAgent *agent, char *err, size_t errlen)
{
	int			status;

	(void) sd_notify(0, "RELOADING=1");
	status = reload_settings(agent, err, errlen);
	if (status == 0)
		status = reload_configs(agent, err, errlen);
	/* a failed reload keeps the running settings: still ready */
	(void) sd_notify(0, "READY=1");
	return status;
}

/*
 * Whether the configs directory changed since we last looked. The CLI
 * replaces files by rename, which updates the directory's mtime; comparing
 * it to the nanosecond catches two changes within one second too.
 */
static bool
configs_dir_changed(HdAgent *agent)
{
	struct stat st;

	if (stat(agent->configs_dir, &st) < 0)
		return false;
	if (st.st_mtim.tv_sec == agent->configs_mtime.tv_sec &&
		st.st_mtim.tv_nsec == agent->configs_mtime.tv_nsec)
		return false;
	agent->configs_mtime = st.st_mtim;
	return true;
}

static void
sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	char		err[512];

	(void) loop;
	(void) revents;
	(void) hd_agent_reload(w->data, err, sizeof(err));
}

static void
sigint_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void) w;
	(void) revents;
	hd_info("SIGINT: stopping now");
	ev_break(loop, EVBREAK_ALL);
}

/* SHUTDOWN and SIGTERM: stop accepting; the janitor exits once drained. */
void
hd_agent_drain(HdAgent *agent)
{
	agent->draining = true;
	close_listeners(agent);
	(void) sd_notify(0, "STOPPING=1");
}

static void
sigterm_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void) loop;
	(void) revents;
	hd_info("SIGTERM: no new clients; exiting when the current transactions end");
	hd_agent_drain(w->data);
}

/* ---------------------------------------------------------------------------
 * Housekeeping
 */

static void
janitor_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdAgent    *agent = w->data;
	ev_tstamp	now = ev_now(loop);
	double		client_idle = agent->settings.client_idle_timeout_ms / 1000.0;
	double		login_timeout = agent->settings.client_login_timeout_ms / 1000.0;
	HdList	   *item;
	HdList	   *tmp;
	bool		busy = false;

	(void) revents;
	hd_log_tick();
	if (configs_dir_changed(agent))
	{
		char		err[512];

		(void) reload_configs(agent, err, sizeof(err));
	}
	hd_list_foreach_safe(item, tmp, &agent->pools)
		hd_pool_janitor(hd_container_of(item, HdPool, link), now);

	hd_list_foreach_safe(item, tmp, &agent->clients)
	{
		HdClient   *client = hd_container_of(item, HdClient, link);
		HdClientSession *session = &client->session;
		bool		between_transactions = session->protocol->idle(session);

		if (client->state == HD_CLIENT_CLOSED)
			continue;
		/* not logged in in time (this also ends a FATAL the client never reads) */
		if (login_timeout > 0 && client->state != HD_CLIENT_ACTIVE &&
			now - client->connected_at > login_timeout)
		{
			hd_client_login_timeout(client);
			continue;
		}
		if (client->close_after_flush)
			continue;
		if (client->state == HD_CLIENT_CANCEL)
		{
			busy = true;		/* closed when its cancel is done (bounded: cancel.c) */
			continue;
		}
		if (agent->draining && between_transactions)
			session->protocol->terminate(session, HD_SQLSTATE_ADMIN_SHUTDOWN,
										 "terminating connection: the agent is shutting down");
		else if (client_idle > 0 && between_transactions &&
				 now - client->last_activity > client_idle)
			session->protocol->terminate(session, HD_SQLSTATE_IDLE_SESSION_TIMEOUT,
										 "terminating connection due to idle timeout "
										 "(client_idle_timeout)");
		else
			busy = true;
	}
	if (hd_my_agent_janitor(agent->mysql, now, agent->draining))
		busy = true;
	if (agent->draining && !busy)
	{
		hd_info("drained: exiting");
		ev_break(loop, EVBREAK_ALL);
	}
}

/* Free what was closed during this loop iteration (see hd_client_close). */
static void
reaper_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	HdAgent    *agent = w->data;
	HdList	   *item;
	bool		freed = false;

	(void) loop;
	(void) revents;
	while ((item = hd_list_first(&agent->dead_clients)) != NULL)
	{
		hd_client_free(hd_container_of(item, HdClient, link));
		freed = true;
	}
	/* their descriptors are free: a listener that ran out may accept now */
	if (freed)
	{
		hd_listener_wake(&agent->tcp_clients.listener);
		hd_listener_wake(&agent->unix_clients.listener);
		hd_listener_wake(&agent->mysql_clients.listener);
	}
	while ((item = hd_list_first(&agent->dead_servers)) != NULL)
		hd_server_free(hd_container_of(item, HdServer, conn.link));
}

static void
agent_shutdown(HdAgent *agent)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &agent->clients)
		hd_client_close(hd_container_of(item, HdClient, link));
	hd_pools_close_all(&agent->pools, "the agent is stopping");
	hd_my_agent_shutdown(agent->mysql);
	hd_lookup_shutdown(agent);
	hd_cancel_shutdown(agent);
	reaper_cb(agent->loop, &agent->reaper, 0);
	hd_cache_layer_close(agent->cache);
	agent->cache = NULL;
	while ((item = hd_list_first(&agent->pools)) != NULL)
		hd_pool_free(hd_container_of(item, HdPool, link));
	close_listeners(agent);
	hd_metrics_stop(agent);
	hd_tls_ctx_free(&agent->tls_ctx);
	hd_auth_file_free(&agent->auth_file);
	hd_configs_free(&agent->configs);
	hd_settings_free(&agent->settings);
}

int
hd_agent_main(int argc, char **argv)
{
	HdAgent		agent = {0};
	char		err[512];
	const char *path = getenv(HD_SETTINGS_ENV);

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			usage(stdout);
			return 0;
		}
		else
		{
			usage(stderr);
			return 2;
		}
	}
	agent.settings_path = (char *) (path ? path : HD_SETTINGS_DEFAULT_FILE);
	if (hd_settings_load(agent.settings_path, &agent.settings, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "hyperdrive agent: %s\n", err);
		return 1;
	}
	hd_log_set_level(agent.settings.log_level);
	if (load_auth_file(&agent.settings, agent.settings_path, &agent.auth_file, err,
					   sizeof(err)) < 0)
	{
		fprintf(stderr, "hyperdrive agent: %s\n", err);
		hd_settings_free(&agent.settings);
		return 1;
	}
	if (hd_configs_load(agent.settings.state_dir, &agent.configs, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "hyperdrive agent: %s\n", err);
		hd_auth_file_free(&agent.auth_file);
		hd_settings_free(&agent.settings);
		return 1;
	}
	/* refuse now rather than fail with EMFILE under load */
	if (ensure_fd_limit(&agent.settings, &agent.configs, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "hyperdrive agent: %s\n", err);
		hd_auth_file_free(&agent.auth_file);
		hd_configs_free(&agent.configs);
		hd_settings_free(&agent.settings);
		return 1;
	}
	/* the first two listeners' clients speak PostgreSQL, the third's MySQL */
	client_listener_init(&agent.tcp_clients, &agent, &hd_pg_client_protocol);
	client_listener_init(&agent.unix_clients, &agent, &hd_pg_client_protocol);
	agent.loop = ev_default_loop(EVFLAG_AUTO);
	{
		HdMyRoot	root = {&agent, &agent.nclients, refuse_over_limit,
		(struct ssl_ctx_st *const *) &agent.tls_ctx};

		if ((agent.mysql = hd_my_agent_new(agent.loop, &agent.settings, &agent.configs, &root)) == NULL)
		{
			fprintf(stderr, "hyperdrive agent: out of memory\n");
			hd_configs_free(&agent.configs);
			hd_settings_free(&agent.settings);
			return 1;
		}
	}
	client_listener_init(&agent.mysql_clients, agent.mysql, &hd_my_client_protocol);
	agent.console = &hd_admin_console;
	hd_list_init(&agent.pools);
	hd_list_init(&agent.clients);
	hd_list_init(&agent.controls);
	hd_list_init(&agent.cancels);
	hd_list_init(&agent.dead_clients);
	hd_list_init(&agent.dead_servers);
	agent.next_cancel_pid = (uint32_t) getpid() * 1000u;
	if (!hd_random_bytes(agent.mock_key, sizeof(agent.mock_key)))
	{
		fprintf(stderr, "hyperdrive agent: no random numbers available from OpenSSL\n");
		hd_auth_file_free(&agent.auth_file);
		hd_configs_free(&agent.configs);
		hd_settings_free(&agent.settings);
		return 1;
	}
	/* client-facing TLS: refuse to start with a certificate or key that does not load */
	if (hd_tls_accept_ctx_load(&agent.tls_ctx, &agent.settings, err, sizeof(err)) < 0)
	{
		fprintf(stderr, "hyperdrive agent: %s\n", err);
		hd_auth_file_free(&agent.auth_file);
		hd_configs_free(&agent.configs);
		hd_settings_free(&agent.settings);
		return 1;
	}
	/* the cache (before any thread: opening checks the store in a child process) */
	if (hd_cache_layer_open(agent.loop, &agent.settings, &agent.configs, &hd_pg_origin,
							&hd_pg_cache_session, &agent, &agent.cache, err, sizeof(err)) < 0)
		hd_error("the cache in %s/cache cannot be used (%s): running without a cache, "
				 "retrying every few seconds", agent.settings.state_dir, err);
	err[0] = '\0';
	if (hd_listener_open_tcp(&agent.tcp_clients.listener, agent.settings.listen_addr,
							 agent.settings.listen_port, "listen_addr/listen_port", err,
							 sizeof(err)) < 0 ||
		(agent.settings.unix_socket_dir &&
		 hd_listener_open_unix(&agent.unix_clients.listener, agent.settings.unix_socket_dir,
							   agent.settings.listen_port, err, sizeof(err)) < 0) ||
		(agent.settings.mysql_listen_port > 0 &&
		 hd_listener_open_tcp(&agent.mysql_clients.listener, agent.settings.listen_addr,
							  agent.settings.mysql_listen_port, "listen_addr/mysql_listen_port",
							  err, sizeof(err)) < 0) ||
		hd_metrics_start(&agent) < 0)
	{
		if (err[0])
			fprintf(stderr, "hyperdrive agent: %s\n", err);
		close_listeners(&agent);
		hd_cache_layer_close(agent.cache);
		hd_tls_ctx_free(&agent.tls_ctx);
		hd_auth_file_free(&agent.auth_file);
		hd_configs_free(&agent.configs);
		hd_settings_free(&agent.settings);
		return 1;
	}
	if (agent.settings.nadmin_users > 0 && agent.settings.auth_file == NULL)
		hd_warning("admin_users is set but auth_file is not: nobody can log in to the admin console");
	signal(SIGPIPE, SIG_IGN);
	/* past a file size limit, writes fail with EFBIG (handled like a full disk) */
	signal(SIGXFSZ, SIG_IGN);

	ev_signal_init(&agent.sigint_watcher, sigint_cb, SIGINT);
	ev_signal_init(&agent.sigterm_watcher, sigterm_cb, SIGTERM);
	ev_signal_init(&agent.sighup_watcher, sighup_cb, SIGHUP);
	ev_timer_init(&agent.janitor, janitor_cb, 1., 1.);
	ev_prepare_init(&agent.reaper, reaper_cb);
	snprintf(agent.configs_dir, sizeof(agent.configs_dir), "%s/configs",
			 agent.settings.state_dir);
	(void) configs_dir_changed(&agent);
	agent.sigint_watcher.data = agent.sigterm_watcher.data =
		agent.sighup_watcher.data = agent.janitor.data = agent.reaper.data = &agent;
	hd_listener_start(&agent.tcp_clients.listener, agent.loop, "clients", client_accepted,
					  &agent.tcp_clients);
	if (agent.unix_clients.listener.fd >= 0)
		hd_listener_start(&agent.unix_clients.listener, agent.loop,
						  "clients on the Unix-domain socket", client_accepted, &agent.unix_clients);
	if (agent.mysql_clients.listener.fd >= 0)
		hd_listener_start(&agent.mysql_clients.listener, agent.loop, "MySQL clients",
						  client_accepted, &agent.mysql_clients);
	ev_signal_start(agent.loop, &agent.sigint_watcher);
	ev_signal_start(agent.loop, &agent.sigterm_watcher);
	ev_signal_start(agent.loop, &agent.sighup_watcher);
	ev_timer_start(agent.loop, &agent.janitor);
	ev_prepare_start(agent.loop, &agent.reaper);

	hd_info("listening on %s:%d%s%s with %zu config(s); state in %s",
			agent.settings.listen_addr, agent.settings.listen_port,
			agent.unix_clients.listener.path[0] ? " and " : "", agent.unix_clients.listener.path,
			agent.configs.count, agent.settings.state_dir);
	(void) sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%d with %zu config(s)",
					  agent.settings.listen_addr, agent.settings.listen_port, agent.configs.count);
	if (agent.mysql_clients.listener.fd >= 0)
		hd_info("listening for MySQL clients on %s:%d", agent.settings.listen_addr,
				agent.settings.mysql_listen_port);
	ev_run(agent.loop, 0);
	agent_shutdown(&agent);
	return 0;
}
