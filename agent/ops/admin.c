/*
 * admin.c
 *    The admin console: database "hyperdrive", as PgBouncer's "pgbouncer".
 *
 * Login: a user named in the settings' admin_users and listed in auth_file
 * (auth_file.h) authenticates with the method of auth_type, against the
 * file's secret: SCRAM-SHA-256 (also when auth_type is md5 and the secret is
 * a SCRAM one, as PostgreSQL does), md5, or a cleartext password. Anyone
 * else goes through the same exchange, doomed (a mock SCRAM exchange, or a
 * password request that nothing can answer), and gets 28P01 "password
 * authentication failed", so that a client cannot tell who is an admin.
 *
 * Then simple Query messages, one command each (case-insensitive, optional
 * trailing semicolon):
 *   SHOW CONFIGS | POOLS | CLIENTS | SERVERS | STATS | VERSION | HELP
 *   PAUSE [config], RESUME [config], KILL config, RELOAD, SHUTDOWN
 * Both protocols' configs, pools, clients and origin connections are shown
 * and acted on: PostgreSQL's here, the MySQL wing's through its accessors
 * (mywire.h); rows per config, pool, client or server end with a protocol
 * column (postgresql | mysql). New columns go at the end: clients parse
 * positions.
 * Every reply ends with ReadyForQuery 'I'; a bad command is an ERROR (the
 * session goes on). Extended-protocol messages get one ERROR 0A000 and are
 * skipped up to the next Sync, as PostgreSQL skips after an error.
 */
#include "ops/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "base/sqlstate.h"
#include "mywire/mywire.h"
#include "ops/metrics.h"
#include "pgwire/proto.h"
#include "base/version.h"

/* Longest message the console accepts after login. */
#define ADMIN_MAX_MESSAGE (1024 * 1024)
/* How often a back-pressured console checks whether its client caught up. */
#define ADMIN_RESUME_INTERVAL 0.05

#define OID_INT8 20
#define OID_TEXT 25
#define OID_FLOAT8 701

typedef struct AdminState
{
	HdClient   *client;
	bool		skip_until_sync;	/* an extended-protocol message was refused */
	ev_timer	resume;			/* polls for the client to read its replies */
} AdminState;

typedef struct Column
{
	const char *name;
	uint32_t	oid;
} Column;

/* ---------------------------------------------------------------------------
 * Replies
 */

static void
send_row_description(HdIoBuf *out, const Column *cols, int n, bool *oom)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'T');
	hd_msg_put_u16(&msg, (uint16_t) n);
	for (int i = 0; i < n; i++)
	{
		hd_msg_put_str(&msg, cols[i].name);
		hd_msg_put_u32(&msg, 0);	/* table */
		hd_msg_put_u16(&msg, 0);	/* column number */
		hd_msg_put_u32(&msg, cols[i].oid);
		hd_msg_put_u16(&msg, (uint16_t) (cols[i].oid == OID_TEXT ? -1 : 8));
		hd_msg_put_u32(&msg, (uint32_t) -1);	/* typmod */
		hd_msg_put_u16(&msg, 0);	/* text format */
	}
	if (hd_msg_end(&msg) < 0)
		*oom = true;
}

/* A row; a NULL value is SQL NULL. */
static void
send_data_row(HdIoBuf *out, const char *const *values, int n, bool *oom)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'D');
	hd_msg_put_u16(&msg, (uint16_t) n);
	for (int i = 0; i < n; i++)
	{
		if (values[i] == NULL)
			hd_msg_put_u32(&msg, (uint32_t) -1);
		else
		{
			size_t		len = strlen(values[i]);

			hd_msg_put_u32(&msg, (uint32_t) len);
			hd_msg_put_bytes(&msg, values[i], len);
		}
	}
	if (hd_msg_end(&msg) < 0)
		*oom = true;
}

static void
send_complete(HdIoBuf *out, const char *tag, bool *oom)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'C');
	hd_msg_put_str(&msg, tag);
	if (hd_msg_end(&msg) < 0)
		*oom = true;
}

static void
send_error(HdIoBuf *out, const char *sqlstate, const char *message, bool *oom)
{
	if (hd_send_error(out, "ERROR", sqlstate, message, NULL, NULL) < 0)
		*oom = true;
}

/* A time as PostgreSQL shows a timestamptz in UTC; NULL for none. */
static const char *
format_time(ev_tstamp when, char *buf, size_t len)
{
	time_t		t = (time_t) when;
	struct tm	tm;

	if (when <= 0 || gmtime_r(&t, &tm) == NULL ||
		strftime(buf, len, "%Y-%m-%d %H:%M:%S+00", &tm) == 0)
		return NULL;
	return buf;
}

static const char *
format_u64(uint64_t value, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", (unsigned long long) value);
	return buf;
}

static const char *
format_avg_ms(const HdHistogram *h, char *buf, size_t len)
{
	snprintf(buf, len, "%.3f", h->count ? h->sum * 1000.0 / (double) h->count : 0.0);
	return buf;
}

/* ---------------------------------------------------------------------------
 * SHOW
 */

static void
show_configs(HdAgent *agent, HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {
		{"id", OID_TEXT}, {"name", OID_TEXT}, {"host", OID_TEXT}, {"port", OID_INT8},
		{"database", OID_TEXT}, {"user", OID_TEXT}, {"pool_mode", OID_TEXT},
		{"origin_connection_limit", OID_INT8}, {"caching", OID_TEXT}, {"protocol", OID_TEXT}
	};

	send_row_description(out, cols, 10, oom);
	for (size_t i = 0; i < agent->configs.count; i++)
	{
		const HdConfig *c = &agent->configs.items[i];
		char		port[16];
		char		limit[16];
		const char *values[10];

		snprintf(port, sizeof(port), "%d", c->port);
		snprintf(limit, sizeof(limit), "%d", c->origin_connection_limit);
		values[0] = c->id;
		values[1] = c->name;
		values[2] = c->host;
		values[3] = port;
		values[4] = c->database;
		values[5] = c->user;
		values[6] = hd_pool_mode_name(c->pool_mode);
		values[7] = limit;
		values[8] = c->caching_disabled ? "off" : "on";
		values[9] = hd_protocol_name(c->protocol);
		send_data_row(out, values, 10, oom);
	}
}

/* One SHOW POOLS row per pool of the list (PostgreSQL's or the MySQL wing's). */
static void
pool_rows(HdAgent *agent, HdList *pools, HdIoBuf *out, bool *oom)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		HdPoolCounts c = {0};
		char		num[5][16];
		const char *values[10];

		hd_pool_counts_add(agent, pool, &c);
		/* a replaced pool that has drained is of no interest */
		if (pool->stale && hd_list_empty(&pool->conns) &&
			c.clients_active + c.clients_waiting + c.clients_idle == 0)
			continue;
		snprintf(num[0], sizeof(num[0]), "%d", c.clients_active);
		snprintf(num[1], sizeof(num[1]), "%d", c.clients_waiting);
		snprintf(num[2], sizeof(num[2]), "%d", c.servers_active);
		snprintf(num[3], sizeof(num[3]), "%d", c.servers_idle);
		snprintf(num[4], sizeof(num[4]), "%d", c.servers_connecting);
		values[0] = pool->config.name;
		values[1] = pool->role;
		for (int i = 0; i < 5; i++)
			values[2 + i] = num[i];
		values[7] = pool->paused ? "yes" : "no";
		values[8] = pool->last_error;
		values[9] = hd_protocol_name(pool->config.protocol);
		send_data_row(out, values, 10, oom);
	}
}

static void
show_pools(HdAgent *agent, HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {
		{"config", OID_TEXT}, {"role", OID_TEXT}, {"clients_active", OID_INT8},
		{"clients_waiting", OID_INT8}, {"servers_active", OID_INT8},
		{"servers_idle", OID_INT8}, {"servers_connecting", OID_INT8},
		{"paused", OID_TEXT}, {"last_error", OID_TEXT}, {"protocol", OID_TEXT}
	};

	send_row_description(out, cols, 10, oom);
	pool_rows(agent, &agent->pools, out, oom);
	if (agent->mysql)
		pool_rows(agent, hd_my_agent_pools(agent->mysql), out, oom);
}

typedef struct RowSink
{
	HdIoBuf    *out;
	bool	   *oom;
} RowSink;

static void
mysql_client_row(void *arg, const HdMySessionRow *row)
{
	RowSink    *sink = arg;
	char		when[40];
	char		origin[16];
	const char *values[9];

	snprintf(origin, sizeof(origin), "%u", row->origin_id);
	values[0] = row->addr;
	values[1] = row->user;
	values[2] = row->config;
	values[3] = row->state;
	values[4] = format_time(row->connected_at, when, sizeof(when));
	values[5] = row->origin_id ? "yes" : "no";
	values[6] = "mysql";
	values[7] = row->origin_id ? origin : NULL;
	values[8] = row->pinned;
	send_data_row(sink->out, values, 9, sink->oom);
}

static void
show_clients(HdClient *self, HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {
		{"address", OID_TEXT}, {"user", OID_TEXT}, {"database", OID_TEXT},
		{"state", OID_TEXT}, {"connected_at", OID_TEXT}, {"has_server", OID_TEXT},
		{"protocol", OID_TEXT}, {"backend_pid", OID_INT8}, {"pinned", OID_TEXT}
	};
	HdList	   *item;
	HdList	   *tmp;
	RowSink		sink = {out, oom};

	send_row_description(out, cols, 9, oom);
	hd_list_foreach_safe(item, tmp, &self->agent->clients)
	{
		HdClient   *client = hd_container_of(item, HdClient, link);
		char		when[40];
		char		pid[16];
		const char *values[9];

		values[0] = client->addr;
		values[1] = client->user;
		values[2] = client->database;
		values[3] = client == self ? "active" : hd_client_state_name(client);
		values[4] = format_time(client->connected_at, when, sizeof(when));
		values[5] = client->server ? "yes" : "no";
		values[6] = "postgresql";
		values[7] = NULL;
		if (client->server && client->server->backend_pid)
		{
			snprintf(pid, sizeof(pid), "%u", client->server->backend_pid);
			values[7] = pid;
		}
		values[8] = client->pinned ? (client->pin_reason ? client->pin_reason : "pinned") : NULL;
		send_data_row(out, values, 9, oom);
	}
	if (self->agent->mysql)
		hd_my_agent_sessions(self->agent->mysql, mysql_client_row, &sink);
}

static void
mysql_server_row(void *arg, const HdMyServerRow *row)
{
	RowSink    *sink = arg;
	char		id[16];
	char		when[40];
	char		uses[24];
	const char *values[7];

	snprintf(id, sizeof(id), "%u", row->origin_id);
	values[0] = row->pool->config.name;
	values[1] = row->pool->role;
	values[2] = row->origin_id ? id : NULL;
	values[3] = hd_pool_conn_state_name(row->conn->state);
	values[4] = format_time(row->conn->connected_at, when, sizeof(when));
	values[5] = format_u64(row->handouts, uses, sizeof(uses));
	values[6] = "mysql";
	send_data_row(sink->out, values, 7, sink->oom);
}

static void
show_servers(HdAgent *agent, HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {
		{"config", OID_TEXT}, {"role", OID_TEXT}, {"backend_pid", OID_INT8},
		{"state", OID_TEXT}, {"connected_at", OID_TEXT}, {"transactions", OID_INT8},
		{"protocol", OID_TEXT}
	};
	HdList	   *item;
	HdList	   *tmp;
	RowSink		sink = {out, oom};

	send_row_description(out, cols, 7, oom);
	hd_list_foreach_safe(item, tmp, &agent->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		HdList	   *s;
		HdList	   *stmp;

		hd_list_foreach_safe(s, stmp, &pool->conns)
		{
			HdServer   *server = hd_container_of(s, HdServer, conn.link);
			char		pid[16];
			char		when[40];
			char		txns[24];
			const char *values[7];

			snprintf(pid, sizeof(pid), "%u", server->backend_pid);
			values[0] = pool->config.name;
			values[1] = pool->role;
			values[2] = server->backend_pid ? pid : NULL;
			values[3] = hd_server_state_name(server);
			values[4] = format_time(server->conn.connected_at, when, sizeof(when));
			values[5] = format_u64(server->transactions, txns, sizeof(txns));
			values[6] = "postgresql";
			send_data_row(out, values, 7, oom);
		}
	}
	if (agent->mysql)
		hd_my_agent_servers(agent->mysql, mysql_server_row, &sink);
}

static void
show_stats(HdAgent *agent, HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {
		{"config", OID_TEXT}, {"transactions", OID_INT8}, {"queries", OID_INT8},
		{"bytes_received", OID_INT8}, {"bytes_sent", OID_INT8}, {"errors", OID_INT8},
		{"wait_timeouts", OID_INT8}, {"connect_failures", OID_INT8},
		{"avg_query_ms", OID_FLOAT8}, {"avg_wait_ms", OID_FLOAT8}, {"protocol", OID_TEXT}
	};

	send_row_description(out, cols, 11, oom);
	for (size_t i = 0; i < agent->configs.count; i++)
	{
		const HdConfig *config = &agent->configs.items[i];
		HdPoolCounts c;
		char		num[9][32];
		const char *values[11];

		hd_config_counts(agent, config->id, &c);
		values[0] = config->name;
		values[1] = format_u64(c.stats.transactions, num[0], sizeof(num[0]));
		values[2] = format_u64(c.stats.queries, num[1], sizeof(num[1]));
		values[3] = format_u64(c.stats.bytes_from_clients, num[2], sizeof(num[2]));
		values[4] = format_u64(c.stats.bytes_to_clients, num[3], sizeof(num[3]));
		values[5] = format_u64(c.stats.errors_to_clients, num[4], sizeof(num[4]));
		values[6] = format_u64(c.stats.wait_timeouts, num[5], sizeof(num[5]));
		values[7] = format_u64(c.stats.connect_failures, num[6], sizeof(num[6]));
		values[8] = format_avg_ms(&c.stats.query_latency, num[7], sizeof(num[7]));
		values[9] = format_avg_ms(&c.stats.wait_latency, num[8], sizeof(num[8]));
		values[10] = hd_protocol_name(config->protocol);
		send_data_row(out, values, 11, oom);
	}
}

static void
cache_row(void *arg, const char *const *values, int n)
{
	RowSink    *r = arg;

	send_data_row(r->out, values, n, r->oom);
}

static void
show_cache(HdAgent *agent, HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {
		{"config", OID_TEXT}, {"entries", OID_INT8}, {"bytes", OID_INT8}, {"hits", OID_INT8},
		{"misses", OID_INT8}, {"stored", OID_INT8}, {"invalidated", OID_INT8},
		{"bypasses", OID_TEXT}, {"stream_connected", OID_TEXT}, {"applied_lsn", OID_TEXT},
		{"lag_seconds", OID_FLOAT8}, {"slots_lost", OID_INT8}, {"coalesced", OID_INT8},
		{"stale", OID_INT8}, {"refreshes", OID_INT8}, {"ddl_invalidations", OID_INT8},
		{"fill_relations_by_value", OID_INT8}, {"fill_relations_whole", OID_INT8},
		{"changes_by_value", OID_INT8}, {"changes_by_column", OID_INT8},
		{"changes_by_relation", OID_INT8}, {"changes_all", OID_INT8},
		{"strict_waits", OID_INT8}, {"strict_probes", OID_INT8}
	};
	RowSink		r = {out, oom};

	send_row_description(out, cols, HD_CACHE_SHOW_COLUMNS, oom);
	hd_cache_show(agent->cache, cache_row, &r);
}

static void
show_version(HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {{"version", OID_TEXT}};
	const char *values[1] = {"hyperdrive " HYPERDRIVE_VERSION};

	send_row_description(out, cols, 1, oom);
	send_data_row(out, values, 1, oom);
}

static void
show_help(HdIoBuf *out, bool *oom)
{
	static const Column cols[] = {{"command", OID_TEXT}, {"description", OID_TEXT}};
	static const char *const rows[][2] = {
		{"SHOW CONFIGS", "the configs (origin databases clients can use), with their protocol"},
		{"SHOW POOLS", "per config and role: clients, origin connections, pause, last error"},
		{"SHOW CLIENTS", "client connections (PostgreSQL and MySQL)"},
		{"SHOW SERVERS", "origin connections (PostgreSQL and MySQL)"},
		{"SHOW STATS", "per config: counters and average latencies"},
		{"SHOW CACHE", "per config: cache entries, hits, misses, bypasses by reason, stream"},
		{"PURGE CACHE [config]", "drop the cached results (of the config, or all)"},
		{"SHOW VERSION", "the agent's version"},
		{"SHOW HELP", "this list"},
		{"PAUSE [config]", "hand out no origin connection (to the config, or to all)"},
		{"RESUME [config]", "undo PAUSE"},
		{"KILL config", "close every client and origin connection of the config"},
		{"RELOAD", "reload the settings, auth_file and configs (as SIGHUP)"},
		{"SHUTDOWN", "stop accepting clients; exit when transactions end (as SIGTERM)"},
	};

	send_row_description(out, cols, 2, oom);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		send_data_row(out, rows[i], 2, oom);
}

/* ---------------------------------------------------------------------------
 * Commands that change things
 */

static void
pause_pools(HdList *pools, const HdConfig *config, bool pause)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);

		if (strcmp(pool->config.id, config->id) != 0)
			continue;
		if (pause)
			hd_pool_pause(pool);
		else if (pool->paused)
			hd_pool_resume(pool);
	}
}

/*
 * Both protocols' pools of the config. A pool made after PAUSE starts
 * paused when another pool of its config is (pool.c). A MySQL config's
 * pools are per client capabilities and made at login: one that has no
 * pool yet has nothing to pause, and its first client's pool starts
 * unpaused (a PostgreSQL config gets its owner's pool made here).
 */
static void
pause_config(HdAgent *agent, const HdConfig *config, bool pause)
{
	/* so that the config's clients find their pool paused, even the first */
	if (pause && config->protocol == HD_PROTOCOL_POSTGRESQL)
		(void) hd_pg_pool_get(agent, config, config->user);
	pause_pools(&agent->pools, config, pause);
	if (agent->mysql)
		pause_pools(hd_my_agent_pools(agent->mysql), config, pause);
}

/* KILL: every client and origin connection of the config, at once. */
static void
kill_config(HdAgent *agent, const HdConfig *config)
{
	HdList	   *item;
	HdList	   *tmp;

	if (agent->mysql)
		hd_my_agent_kill_config(agent->mysql, config->id);

	hd_list_foreach_safe(item, tmp, &agent->clients)
	{
		HdClient   *client = hd_container_of(item, HdClient, link);

		if (client->pool && strcmp(client->pool->config.id, config->id) == 0 &&
			client->state != HD_CLIENT_CLOSED && !client->close_after_flush)
			hd_client_fatal(client, HD_SQLSTATE_ADMIN_SHUTDOWN,
							"terminating connection due to administrator command", NULL);
	}
	hd_list_foreach_safe(item, tmp, &agent->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		HdList	   *s;
		HdList	   *stmp;

		if (strcmp(pool->config.id, config->id) != 0)
			continue;
		hd_list_foreach_safe(s, stmp, &pool->conns)
		{
			HdServer   *server = hd_container_of(s, HdServer, conn.link);

			/* its client already has its FATAL: do not send another */
			if (server->client)
			{
				server->client->server = NULL;
				server->client = NULL;
			}
			hd_server_close(server, "KILL from the admin console");
		}
	}
}

/* ---------------------------------------------------------------------------
 * Queries
 */

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A config by name (or id), with optional double quotes around it. */
static const HdConfig *
find_config(HdAgent *agent, char *name)
{
	size_t		len = strlen(name);

	if (len >= 2 && name[0] == '"' && name[len - 1] == '"')
	{
		name[len - 1] = '\0';
		name++;
	}
	return hd_configs_find(&agent->configs, name);
}

static void
no_such_config(HdIoBuf *out, const char *name, bool *oom)
{
	char		message[160];

	snprintf(message, sizeof(message), "no such config: %.100s", name);
	send_error(out, HD_SQLSTATE_INVALID_CATALOG_NAME, message, oom);
}

/* One command; the reply goes to out (without the ReadyForQuery). */
static void
run_command(HdClient *client, char *text, bool *oom)
{
	HdAgent    *agent = client->agent;
	HdIoBuf    *out = &client->out;
	char		original[256];
	char	   *words[4] = {NULL};
	int			nwords = 0;
	char	   *p;
	size_t		len;

	/* trim blanks and trailing semicolons */
	while (is_space(*text))
		text++;
	len = strlen(text);
	while (len > 0 && (is_space(text[len - 1]) || text[len - 1] == ';'))
		text[--len] = '\0';
	if (len == 0)
	{
		static const char empty[5] = {'I', 0, 0, 0, 4};

		if (hd_iobuf_append(out, empty, sizeof(empty)) < 0)
			*oom = true;
		return;
	}
	snprintf(original, sizeof(original), "%s", text);
	for (p = text; *p && nwords < 4;)
	{
		while (is_space(*p))
			*p++ = '\0';
		if (*p == '\0')
			break;
		words[nwords++] = p;
		while (*p && !is_space(*p))
			p++;
	}
	if (*p != '\0')
		nwords = 4;				/* more words than any command has */

	if (nwords == 2 && strcasecmp(words[0], "show") == 0)
	{
		const char *what = words[1];

		if (strcasecmp(what, "configs") == 0)
			show_configs(agent, out, oom);
		else if (strcasecmp(what, "pools") == 0)
			show_pools(agent, out, oom);
		else if (strcasecmp(what, "clients") == 0)
			show_clients(client, out, oom);
		else if (strcasecmp(what, "servers") == 0)
			show_servers(agent, out, oom);
		else if (strcasecmp(what, "stats") == 0)
			show_stats(agent, out, oom);
		else if (strcasecmp(what, "cache") == 0)
			show_cache(agent, out, oom);
		else if (strcasecmp(what, "version") == 0)
			show_version(out, oom);
		else if (strcasecmp(what, "help") == 0)
			show_help(out, oom);
		else
			goto unknown;
		send_complete(out, "SHOW", oom);
		return;
	}
	if ((nwords == 1 || nwords == 2) &&
		(strcasecmp(words[0], "pause") == 0 || strcasecmp(words[0], "resume") == 0))
	{
		bool		pause = strcasecmp(words[0], "pause") == 0;

		if (nwords == 2)
		{
			const HdConfig *config = find_config(agent, words[1]);

			if (config == NULL)
			{
				no_such_config(out, words[1], oom);
				return;
			}
			pause_config(agent, config, pause);
			hd_info("admin %s (%s): %s %s", client->user, client->addr,
					pause ? "PAUSE" : "RESUME", config->name);
		}
		else
		{
			for (size_t i = 0; i < agent->configs.count; i++)
				pause_config(agent, &agent->configs.items[i], pause);
			hd_info("admin %s (%s): %s (every config)", client->user, client->addr,
					pause ? "PAUSE" : "RESUME");
		}
		send_complete(out, pause ? "PAUSE" : "RESUME", oom);
		return;
	}
	if (nwords == 2 && strcasecmp(words[0], "kill") == 0)
	{
		const HdConfig *config = find_config(agent, words[1]);

		if (config == NULL)
		{
			no_such_config(out, words[1], oom);
			return;
		}
		hd_info("admin %s (%s): KILL %s", client->user, client->addr, config->name);
		kill_config(agent, config);
		send_complete(out, "KILL", oom);
		return;
	}
	if ((nwords == 2 || nwords == 3) && strcasecmp(words[0], "purge") == 0 &&
		strcasecmp(words[1], "cache") == 0)
	{
		const HdConfig *config = NULL;
		uint64_t	removed = 0;
		char		err[512];
		char		message[600];

		if (nwords == 3 && (config = find_config(agent, words[2])) == NULL)
		{
			no_such_config(out, words[2], oom);
			return;
		}
		if (hd_cache_purge_config(agent->cache, config ? config->id : NULL, &removed, err,
								  sizeof(err)) < 0)
		{
			snprintf(message, sizeof(message), "purge failed: %s", err);
			send_error(out, HD_SQLSTATE_INTERNAL_ERROR, message, oom);
			return;
		}
		hd_info("admin %s (%s): PURGE CACHE %s: %llu entries removed", client->user, client->addr,
				config ? config->name : "(every config)", (unsigned long long) removed);
		send_complete(out, "PURGE", oom);
		return;
	}
	if (nwords == 1 && strcasecmp(words[0], "reload") == 0)
	{
		char		err[512];
		char		message[600];

		hd_info("admin %s (%s): RELOAD", client->user, client->addr);
		if (hd_agent_reload(agent, err, sizeof(err)) < 0)
		{
			snprintf(message, sizeof(message), "reload failed, keeping the previous settings: %s",
					 err);
			send_error(out, HD_SQLSTATE_CONFIG_FILE_ERROR, message, oom);
			return;
		}
		send_complete(out, "RELOAD", oom);
		return;
	}
	if (nwords == 1 && strcasecmp(words[0], "shutdown") == 0)
	{
		hd_info("admin %s (%s): SHUTDOWN: no new clients; exiting when the current transactions end",
				client->user, client->addr);
		hd_agent_drain(agent);
		send_complete(out, "SHUTDOWN", oom);
		return;
	}

unknown:
	{
		char		message[300];

		snprintf(message, sizeof(message), "unknown command: %s", original);
		send_error(out, HD_SQLSTATE_SYNTAX_ERROR, message, oom);
	}
}

/* ---------------------------------------------------------------------------
 * After login: the message loop
 */

static void
resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	AdminState *state = w->data;
	HdClient   *client = state->client;

	(void) revents;
	if (client->state == HD_CLIENT_CLOSED || client->close_after_flush)
	{
		ev_timer_stop(loop, w);
		return;
	}
	if (hd_iobuf_live(&client->out) > HD_BACKPRESSURE_BYTES / 2)
		return;
	ev_timer_stop(loop, w);
	hd_client_resume_reading(client);
}

static bool
closing(const HdClient *client)
{
	return client->state == HD_CLIENT_CLOSED || client->close_after_flush;
}

static void
process_messages(HdClient *client, AdminState *state)
{
	while (!closing(client) && hd_iobuf_live(&client->in) >= 5)
	{
		const char *head = hd_iobuf_head(&client->in);
		char		type = head[0];
		uint32_t	len = hd_get_u32(head + 1);
		bool		oom = false;

		if (len < 4 || len > ADMIN_MAX_MESSAGE)
		{
			hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "invalid message length", NULL);
			return;
		}
		if (type == 'X')
		{
			hd_client_close(client);
			return;
		}
		if (hd_iobuf_live(&client->in) < (size_t) len + 1)
			break;
		switch (type)
		{
			case 'Q':
				if (state->skip_until_sync)
					break;
				{
					char	   *text = malloc(len - 3);

					if (text == NULL)
					{
						oom = true;
						break;
					}
					memcpy(text, head + 5, len - 4);
					text[len - 4] = '\0';	/* up to the first NUL */
					run_command(client, text, &oom);
					free(text);
					if (hd_send_ready(&client->out, 'I') < 0)
						oom = true;
				}
				break;
			case 'F':			/* FunctionCall: an error, then ReadyForQuery */
				if (state->skip_until_sync)
					break;
				send_error(&client->out, HD_SQLSTATE_FEATURE_NOT_SUPPORTED,
						   "the admin console supports only simple queries", &oom);
				if (hd_send_ready(&client->out, 'I') < 0)
					oom = true;
				break;
			case 'P':
			case 'B':
			case 'E':
			case 'D':
			case 'C':
				if (!state->skip_until_sync)
					send_error(&client->out, HD_SQLSTATE_FEATURE_NOT_SUPPORTED,
							   "the admin console supports only simple queries", &oom);
				state->skip_until_sync = true;
				break;
			case 'S':			/* Sync: the end of the refused batch */
				state->skip_until_sync = false;
				if (hd_send_ready(&client->out, 'I') < 0)
					oom = true;
				break;
			case 'H':			/* Flush */
			case 'd':			/* COPY messages outside COPY: ignored, as PostgreSQL */
			case 'c':
			case 'f':
				break;
			default:
				{
					char		message[64];

					snprintf(message, sizeof(message), "invalid frontend message type %d",
							 (unsigned char) type);
					hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, message, NULL);
					return;
				}
		}
		if (closing(client))
			return;
		hd_iobuf_consume(&client->in, (size_t) len + 1);
		if (oom)
		{
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return;
		}
		if (hd_iobuf_live(&client->out) > HD_BACKPRESSURE_BYTES)
		{
			/* let the client read its replies before taking more commands */
			ev_io_stop(client->agent->loop, &client->read_watcher);
			ev_timer_again(client->agent->loop, &state->resume);
			break;
		}
	}
	if (!closing(client))
		hd_client_flush(client);
}

/* ---------------------------------------------------------------------------
 * Login
 */

static bool
is_admin_user(const HdAgent *agent, const char *user)
{
	for (size_t i = 0; i < agent->settings.nadmin_users; i++)
		if (strcmp(agent->settings.admin_users[i], user) == 0)
			return true;
	return false;
}

/* The server_version the origins report, for clients that look at it. */
static const char *
server_version(HdAgent *agent)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &agent->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		HdPgPool   *pg = hd_pg_pool_of(pool);

		for (int i = 0; pg && pool->params_known && i < pg->nparams; i++)
			if (strcmp(pg->params[i].name, "server_version") == 0)
				return pg->params[i].value;
	}
	return "15.0";
}

static void
login_done(HdClient *client)
{
	HdAgent    *agent = client->agent;
	HdIoBuf    *out = &client->out;
	bool		oom = false;

	if (hd_send_auth(out, HD_AUTHREQ_OK, NULL, 0) < 0 ||
		hd_send_parameter_status(out, "server_version", server_version(agent)) < 0 ||
		hd_send_parameter_status(out, "client_encoding", "UTF8") < 0 ||
		hd_send_parameter_status(out, "DateStyle", "ISO") < 0 ||
		hd_send_parameter_status(out, "integer_datetimes", "on") < 0 ||
		hd_send_parameter_status(out, "standard_conforming_strings", "on") < 0)
		oom = true;
	client->cancel_pid = ++agent->next_cancel_pid;
	client->cancel_key = hd_random_u32();
	if (oom || hd_send_backend_key(out, client->cancel_pid, client->cancel_key) < 0 ||
		hd_send_ready(out, 'I') < 0)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	client->state = HD_CLIENT_ACTIVE;
	hd_info("admin %s logged in to the console from %s", client->user, client->addr);
}

static void
admin_start(HdClient *client)
{
	HdAgent    *agent = client->agent;
	AdminState *state = calloc(1, sizeof(AdminState));
	const HdAuthUser *user;

	if (state == NULL)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	state->client = client;
	ev_init(&state->resume, resume_cb);
	state->resume.repeat = ADMIN_RESUME_INTERVAL;
	state->resume.data = state;
	client->admin_state = state;
	client->state = HD_CLIENT_AUTH;

	user = is_admin_user(agent, client->user) ?
		hd_auth_file_find(&agent->auth_file, client->user) : NULL;
	/* anyone else gets the same doomed exchange as an unknown role */
	hd_client_challenge(client, user && user->has_scram ? &user->scram : NULL,
						user ? user->kind : HD_SECRET_SCRAM, user ? user->secret : NULL,
						login_done);
}

static void
admin_process(HdClient *client)
{
	AdminState *state = client->admin_state;

	if (state == NULL || closing(client))
		return;
	/* the password exchange is the pooler's (client_auth.c), one message at a time */
	while (client->state == HD_CLIENT_AUTH && !closing(client) &&
		   hd_iobuf_live(&client->in) >= 5)
	{
		size_t		before = hd_iobuf_live(&client->in);

		hd_client_continue_auth(client);
		if (hd_iobuf_live(&client->in) == before)
			break;				/* the rest of the message has not arrived */
	}
	if (closing(client) || client->state == HD_CLIENT_AUTH)
		return;
	if (client->state == HD_CLIENT_ACTIVE)
		process_messages(client, state);
}

static void
admin_free(HdClient *client)
{
	AdminState *state = client->admin_state;

	if (state == NULL)
		return;
	ev_timer_stop(client->agent->loop, &state->resume);
	free(state);
	client->admin_state = NULL;
}

const HdConsoleOps hd_admin_console = {
	.start = admin_start,
	.process = admin_process,
	.free = admin_free,
};
