/*
 * state_check.c
 *    The session-state check of pooled origin connections.
 *
 * Under transaction pooling one origin connection serves many clients, and
 * a client can change the session's state in ways its statements' text does
 * not show (session.h classifies the text): a function calling
 * set_config(..., false), SET ROLE by EXECUTE in a DO block, a temporary
 * object or an advisory lock taken by a function, LISTEN in a function. So
 * the agent asks the origin for its session state (session.h
 * hd_state_query(): hyperdrive.session_state() of the extension, or a
 * smaller query without it):
 *
 *   learn    when it has set the connection up for a client (the settings it
 *            carries, session.h) and the first time the connection is used:
 *            the report is the connection's baseline. The client waits.
 *   compare  after each client transaction that sent anything, before the
 *            connection goes back to the pool. The client does not wait
 *            (it got its ReadyForQuery; its next messages queue behind the
 *            check on the same connection). A difference from the baseline
 *            that the client's own tracked SETs (and RESET ALL, DISCARD ALL)
 *            do not explain keeps the connection with that client for good
 *            (pinned, logged with the settings' names; closed when it
 *            leaves). A difference they explain becomes the baseline, and
 *            those settings are set again for the next client, since their
 *            values are the client's, not what the agent would set.
 *            When the transaction is one Query that certainly leaves the
 *            connection idle (client.c check_may_follow(), session.h), the
 *            check is sent right behind it instead of after its
 *            ReadyForQuery: it runs at the same point of the session, a
 *            round trip sooner. A cancel the client meant for that Query
 *            can then land on the check: a check canceled (57014) is sent
 *            again, once (the client's statement_timeout also says 57014).
 *
 * A client the result cache answers on a connection it holds for good
 * (cache_request.h hd_cache_own_connection(): session pooling, or a
 * cache-safe pin, where the config caches) gets the same learn and compare
 * on that connection, so that the cache's key (which carries the baseline)
 * is the session's state; for it a change of advisory locks or LISTEN is
 * explained (session.h hd_state_entry_cache_neutral()), and an unexplained
 * difference makes even an already pinned client's pin unsafe for the
 * cache. Under session pooling DISCARD ALL forgets the baseline (server.c).
 *
 * The check is Parse (once per connection) / Bind / Execute / Sync of the
 * prepared statement hd_state, queued as one HD_EXPECT_STATE entry; its
 * replies come here and never reach the client. A connection whose client
 * left while its check runs is released or closed by the check's result.
 * The first check of a pool tries the extension's function; if that fails
 * (no extension, no USAGE on schema hyperdrive) the pool uses the smaller
 * query from then on and says so once (WARNING).
 */
#include "pgwire/pooler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "pgwire/proto.h"

/* The pool's query: the extension's function until that failed once. */
const char *
hd_state_check_query(HdPool *pool)
{
	HdPgPool   *pg = hd_pg_pool(pool);

	if (pg->state_sql == NULL)
	{
		pg->state_with_function = !pg->state_function_failed;
		pg->state_sql = hd_state_query(pg->state_with_function);
	}
	return pg->state_sql;
}

int
hd_state_check_start(HdServer *server, bool learn)
{
	HdMsg		m;
	const char *sql = hd_state_check_query(server->pool);
	HdIoBuf    *out = &server->out;

	if (sql == NULL)
		return -1;
	/* (a Close first: a failed check may have left it half there) */
	if (!server->state_prepared &&
		(hd_send_describe_close(out, 'C', 'S', HD_STATE_STATEMENT) < 0 ||
		 hd_send_parse(out, HD_STATE_STATEMENT, sql, NULL, 0) < 0))
		return -1;
	hd_msg_begin(&m, out, 'B');
	hd_msg_put_str(&m, "");
	hd_msg_put_str(&m, HD_STATE_STATEMENT);
	hd_msg_put_u16(&m, 0);
	hd_msg_put_u16(&m, 0);
	hd_msg_put_u16(&m, 0);
	if (hd_msg_end(&m) < 0 || hd_send_execute_sync(out) < 0 ||
		hd_expect_push(&server->expect, HD_EXPECT_STATE, HD_REPLY_SWALLOW, 0, 0) < 0)
		return -1;
	server->state_prepared = true;
	server->state_learn = learn;
	server->state_failed = false;
	free(server->state_report);
	server->state_report = NULL;
	if (!learn)
		server->state_dirty = false;
	return 0;
}

bool
hd_state_check_only_owed(const HdServer *server)
{
	const HdExpect *head = server->expect.count == 1 ? &server->expect.items[server->expect.head] :
		NULL;

	return head && head->kind == HD_EXPECT_STATE && server->txn_status == 'I' &&
		!server->mid_batch && server->cache_op == HD_COP_NONE;
}

void
hd_state_note_tracked(HdServer *server, const HdClassification *c)
{
	if (c->reset_all)
		server->state_tracked_all = true;
	for (size_t i = 0; i < c->changes.count; i++)
		if (hd_settings_put(&server->state_tracked, c->changes.items[i].name, NULL, "") < 0)
			server->state_tracked_all = false;	/* forget nothing: unexplained, then */
}

/*
 * Whether the changes between the baseline and the report are the client's
 * own tracked SETs (or, for a client the cache answers on this connection
 * of its own, entries no cacheable SELECT reads: session.h); why lists the
 * others (names), for the log.
 */
static bool
explained(HdServer *server, const HdSettingList *changed, char *why, size_t whylen)
{
	size_t		used = 0;
	bool		ok = true;
	bool		own = server->client && hd_cache_own_connection(server->client);

	why[0] = '\0';
	for (size_t i = 0; i < changed->count; i++)
	{
		const char *name = changed->items[i].name;

		if (name[0] != '@' && (server->state_tracked_all ||
							   hd_settings_find(&server->state_tracked, name)))
			continue;
		if (own && hd_state_entry_cache_neutral(name))
			continue;
		ok = false;
		if (used < whylen)
			used += (size_t) snprintf(why + used, whylen - used, "%s%s", used ? ", " : "",
									  name[0] == '@' ? name + 1 : name);
	}
	return ok;
}

/* The client's own SETs changed these: the next client gets them set again. */
static void
forget_values(HdServer *server, const HdSettingList *changed)
{
	for (size_t i = 0; i < changed->count; i++)
		if (hd_settings_find(&server->settings, changed->items[i].name) &&
			hd_settings_put(&server->settings, changed->items[i].name, NULL, "") < 0)
			server->conn.close_on_release = true;	/* cannot say what it holds */
}

/* A learn check failed: try the smaller query once, else the client cannot go on. */
static void
learn_failed(HdServer *server, const char *error)
{
	HdPool	   *pool = server->pool;
	HdPgPool   *pg = hd_pg_pool(pool);

	if (pg->state_with_function && !pg->state_function_failed)
	{
		hd_warning("config %s: hyperdrive.session_state() is not usable as %s (%s): session "
				   "state changed by functions is seen only for the role, search_path, "
				   "temporary schemas, LISTEN and the settings the agent carries; install the "
				   "extension and GRANT USAGE ON SCHEMA hyperdrive for the rest (docs/agent.md)",
				   pool->config.name, pool->role, error ? error : "no result");
		pg->state_function_failed = true;
		free(pg->state_sql);
		pg->state_sql = NULL;
		server->state_prepared = false;
		if (hd_state_check_start(server, true) == 0)
		{
			hd_server_flush(server);
			return;
		}
	}
	server->conn.close_on_release = true;
	if (server->client)
		hd_client_setup_done(server->client, "the agent could not read the session state of "
							 "its origin connection");
}

/* The check's ReadyForQuery: learn, or compare and decide. */
static void
check_done(HdServer *server)
{
	HdClient   *client = server->client;
	HdSettingList changed = {0};
	char		why[256];
	char	   *report = server->state_report;

	server->state_report = NULL;
	if (server->state_failed && server->state_canceled && !server->state_learn &&
		!server->state_retried)
	{
		/*
		 * A check sent right behind a client's statement (client.c) can take
		 * the cancel the client meant for that statement, which ended first:
		 * nothing was learned, so ask again, once. (57014 is also the
		 * client's statement_timeout, which would cancel every check.)
		 */
		server->state_canceled = false;
		if (hd_state_check_start(server, false) == 0)
		{
			server->state_retried = true;
			free(report);
			hd_server_flush(server);
			return;
		}
		/* out of memory: as any failed check */
	}
	server->state_retried = false;
	if (server->state_learn)
	{
		if (server->state_failed || report == NULL)
		{
			learn_failed(server, server->state_error);
			free(report);
			return;
		}
		free(server->state_baseline);
		server->state_baseline = report;
		hd_settings_clear(&server->state_tracked);
		server->state_tracked_all = false;
		if (client && client->awaiting_setup)
			hd_client_setup_done(client, NULL);
		return;
	}
	if (server->state_failed || report == NULL || server->state_baseline == NULL ||
		hd_state_changed_names(server->state_baseline, report, &changed) < 0)
		snprintf(why, sizeof(why), "the check failed: %s",
				 server->state_error ? server->state_error : "no report");
	else if (changed.count == 0 || explained(server, &changed, why, sizeof(why)))
	{
		forget_values(server, &changed);
		free(server->state_baseline);
		server->state_baseline = report;
		report = NULL;
		why[0] = '\0';
	}
	free(report);
	hd_settings_clear(&changed);
	hd_settings_clear(&server->state_tracked);
	server->state_tracked_all = false;
	if (why[0] == '\0')
	{
		/* unchanged: its client gone meanwhile, it goes back to the pool now */
		if (client == NULL && hd_server_owes_nothing(server))
			hd_pool_release(server->pool, &server->conn);
		else if (client && hd_batch_wait(&client->batch) == HD_BWAIT_CHECK)
		{
			/* resumed when the server is released (server.c) */
			hd_batch_event(&client->batch, HD_BEV_CHECK_END);
		}
		return;
	}
	if (client)
	{
		char		reason[320];

		/* static text for the pin: the names go to the log line below */
		hd_info("client %s (%s@%s): session state changed on the origin by server-side code "
				"(%s): it keeps this origin connection", client->addr, client->user,
				client->database, why);
		snprintf(reason, sizeof(reason), "session state changed on the origin (%s)", why);
		free(client->pin_detail);
		client->pin_detail = strdup(reason);
		/* (a client pinned for a reason the cache lives with: not any more, client.c) */
		hd_client_pin(client, client->pin_detail ? client->pin_detail :
					  "session state changed on the origin");
		if (hd_batch_wait(&client->batch) == HD_BWAIT_CHECK)
		{
			hd_batch_event(&client->batch, HD_BEV_CHECK_END);
			hd_client_resume_reading(client);	/* pinned now: its request bypasses */
		}
	}
	else
		hd_server_close(server, "session state changed on the origin by its last client");
}

void
hd_state_check_reply(HdServer *server, char type, const char *msg, size_t total)
{
	switch (type)
	{
		case 'D':
			if (server->state_report == NULL)
				server->state_report = hd_data_row_value(msg + 5, total - 5, 0);
			break;
		case 'E':
			{
				const char *m = hd_error_field(msg + 5, total - 5, 'M');
				const char *code = hd_error_field(msg + 5, total - 5, 'C');

				/* a client's cancel that came too late for its statement (check_done) */
				server->state_canceled = code && strcmp(code, HD_SQLSTATE_QUERY_CANCELED) == 0;
				server->state_failed = true;
				server->state_prepared = false;
				free(server->state_error);
				server->state_error = strdup(m ? m : "error");
				break;
			}
		case 'Z':
			server->txn_status = msg[5];
			hd_expect_pop(&server->expect);
			check_done(server);
			break;
		default:
			break;				/* ParseComplete, BindComplete, CommandComplete, notices */
	}
}
