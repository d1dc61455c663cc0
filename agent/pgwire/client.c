/*
 * client.c
 *    One client connection: startup, authentication, then forwarding.
 *
 * States (HdClientState): STARTUP (SSLRequest/GSSENCRequest answered 'N',
 * StartupMessage checked) -> AUTH (the password exchange the settings ask
 * for) -> LOGIN (waiting until the pool knows the origin's ParameterStatus
 * values; in session pooling, for a server of its own) -> ACTIVE. A
 * CancelRequest goes from STARTUP to CANCEL until it is done (cancel.c).
 * In ACTIVE every complete
 * message is checked for a known type and a sane length (the protocol's
 * frame(): pg_client_protocol.c), then moved to the
 * server the client holds; with no server, the client asks its pool for one
 * and stops reading until it gets it.
 */
#include "pgwire/pooler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/sqlstate.h"
#include "pgwire/proto.h"
#include "pgwire/tls_negotiate.h"

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void client_process(HdClient *client);

HdClient *
hd_client_accept(HdAgent *agent, int fd, const char *addr)
{
	HdClient   *client = calloc(1, sizeof(HdClient));

	if (client == NULL)
	{
		close(fd);
		hd_error("out of memory accepting a client from %s", addr);
		return NULL;
	}
	client->session.protocol = &hd_pg_client_protocol;
	client->agent = agent;
	client->id = ++agent->next_client_id;
	hd_batch_init(&client->batch);
	hd_conn_init(&client->sock, agent->loop, fd, &client->read_watcher, &client->write_watcher);
	client->state = HD_CLIENT_STARTUP;
	snprintf(client->addr, sizeof(client->addr), "%s", addr);
	hd_list_init(&client->wait.link);
	hd_cache_waiter_init(&client->cache_waiter);
	hd_list_append(&agent->clients, &client->link);
	agent->nclients++;
	client->last_activity = client->connected_at = ev_now(agent->loop);
	ev_io_init(&client->read_watcher, client_read_cb, fd, EV_READ);
	ev_io_init(&client->write_watcher, client_write_cb, fd, EV_WRITE);
	client->read_watcher.data = client->write_watcher.data = client;
	ev_io_start(agent->loop, &client->read_watcher);
	return client;
}

/*
 * Close the client. A server it holds goes back to the pool only if it is
 * idle and fully answered; otherwise it is closed, so that a half-done
 * transaction never reaches another client.
 */
void
hd_client_close(HdClient *client)
{
	HdAgent    *agent = client->agent;

	if (client->state == HD_CLIENT_CLOSED)
		return;
	if (client->state == HD_CLIENT_CANCEL)
		hd_cancel_requester_gone(client);
	client->state = HD_CLIENT_CLOSED;
	if (client->wait.waiting)
		hd_pool_cancel_wait(client->pool, &client->wait);
	if (client->cache_waiter.flight)
		hd_cache_client_gone(client);
	if (client->auth_step == HD_AUTH_STEP_LOOKUP)
		hd_lookup_cancel(agent, client);
	if (client->replication[0] && client->server == NULL && client->pool)
	{
		/* its own origin connection may still be logging in */
		HdList	   *item;
		HdList	   *tmp;

		hd_list_foreach_safe(item, tmp, &client->pool->conns)
		{
			HdServer   *server = hd_container_of(item, HdServer, conn.link);

			if (server->dedicated == client)
			{
				server->dedicated = NULL;
				hd_server_close(server, "its replication client went away");
			}
		}
	}
	if (client->server)
	{
		HdServer   *server = client->server;

		server->client = NULL;
		client->server = NULL;
		if (hd_server_owes_nothing(server) && hd_iobuf_live(&server->out) == 0 &&
			!client->pinned)
			hd_pool_release(server->pool, &server->conn);
		else if (hd_state_check_only_owed(server) && !client->pinned)
			;					/* its check decides: released or closed (state_check.c) */
		else
			hd_server_close(server, client->pinned ?
							"its client had session state (pinned) and disconnected" :
							"client disconnected in the middle of a transaction");
	}
	ev_io_stop(agent->loop, &client->read_watcher);
	ev_io_stop(agent->loop, &client->write_watcher);
	hd_conn_close(&client->sock);
	agent->nclients--;
	/*
	 * Freed before the loop next blocks (agent.c), not now: the callback that
	 * closed it may still look at client->state on its way out.
	 */
	hd_list_del(&client->link);
	hd_list_append(&agent->dead_clients, &client->link);
}

void
hd_client_free(HdClient *client)
{
	hd_list_del(&client->link);
	hd_iobuf_free(&client->in);
	hd_iobuf_free(&client->out);
	hd_conn_free(&client->sock);
	hd_client_auth_free(client);
	hd_client_stmts_free(&client->stmts);
	if (client->unnamed)
	{
		hd_unnamed_clear(client->unnamed);
		free(client->unnamed);
	}
	if (client->unnamed_effect)
	{
		hd_classification_free(client->unnamed_effect);
		free(client->unnamed_effect);
	}
	hd_settings_clear(&client->settings);
	hd_settings_clear(&client->startup);
	free(client->pin_detail);
	if (client->admin)
		client->agent->console->free(client);
	free(client);
}

/* Send what is buffered; close once a fatal error has gone out. */
void
hd_client_flush(HdClient *client)
{
	int			rc = hd_conn_flush(&client->sock, &client->out);

	if (rc < 0)
	{
		hd_debug("client %s: write failed: %s", client->addr, hd_conn_error(&client->sock, errno));
		hd_client_close(client);
		return;
	}
	if (rc > 0)
		return;
	if (client->close_after_flush)
	{
		hd_client_close(client);
		return;
	}
	/* the client drained: the server may send again, and the client be read */
	if (client->server)
		hd_server_resume_reading(client->server);
	if (client->paused_for_output)
	{
		client->paused_for_output = false;
		hd_client_resume_reading(client);
	}
}

/* FATAL error in PostgreSQL's terms, then close once it is sent. */
void
hd_client_fatal(HdClient *client, const char *sqlstate, const char *message, const char *detail)
{
	hd_info("client %s (%s@%s): %s (SQLSTATE %s)", client->addr,
			client->user[0] ? client->user : "?",
			client->database[0] ? client->database : "?", message, sqlstate);
	ev_io_stop(client->agent->loop, &client->read_watcher);
	if (client->wait.waiting)
		hd_pool_cancel_wait(client->pool, &client->wait);
	client->session.protocol->encode_error(&client->out, true, sqlstate, message, detail);
	client->close_after_flush = true;
	hd_client_flush(client);
}

static void
client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void) loop;
	(void) revents;
	if (hd_conn_negotiating(&((HdClient *) w->data)->sock))
		(void) hd_client_tls_handshake(w->data);
	else
		hd_client_flush(w->data);
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdClient   *client = w->data;
	long		n;

	(void) loop;
	(void) revents;
	/* TLS handshake first; it reads and writes on its own (tls_negotiate.c) */
	if (hd_conn_negotiating(&client->sock) && !hd_client_tls_handshake(client))
		return;
	n = hd_conn_read(&client->sock, &client->in, HD_READ_CHUNK);
	if (n == -2)
		return;
	if (n <= 0)
	{
		if (n < 0)
			hd_debug("client %s: read failed: %s", client->addr,
					 hd_conn_error(&client->sock, errno));
		hd_client_close(client);
		return;
	}
	client->last_activity = ev_now(client->agent->loop);
	/*
	 * After the bytes are in: every request now in the buffer arrived by
	 * then (strict consistency compares probes' send times with it).
	 */
	client->cache_waiter.arrived = hd_clock_now();
	client_process(client);
	/* waiting for its pool: what it sends meanwhile is held, but not without bound */
	if (client->state == HD_CLIENT_LOGIN && hd_iobuf_live(&client->in) > HD_PRELOGIN_MAX)
		ev_io_stop(client->agent->loop, &client->read_watcher);
	/*
	 * All processed: an idle client keeps no input buffer (iobuf.h). Only
	 * where no caller can hold a pointer into it: here, at the top of a
	 * callback, and where a waiting client is handed a server.
	 */
	hd_iobuf_trim(&client->in);
}

void
hd_client_resume_reading(HdClient *client)
{
	if (client->state == HD_CLIENT_CLOSED || client->close_after_flush ||
		client->awaiting_setup || hd_batch_waiting(&client->batch))
		return;
	ev_io_start(client->agent->loop, &client->read_watcher);
	/* OpenSSL may hold decrypted bytes the socket watcher cannot see */
	hd_conn_resume_reading(&client->sock);
	/* bytes may already be waiting in the buffer */
	if (hd_iobuf_live(&client->in) > 0)
		client_process(client);
}

/* ---------------------------------------------------------------------------
 * Startup
 */

/*
 * CancelRequest: forward it to the origin backend of the client it names;
 * this connection closes once the origin has processed it (cancel.c).
 */
static void
handle_cancel(HdClient *client, const HdStartup *startup)
{
	HdClient   *target = hd_agent_find_cancel_target(client->agent, startup->cancel_pid,
													  startup->cancel_key);

	/*
	 * Like PostgreSQL, say nothing either way: the key is the secret. A
	 * client whose server owes it nothing but the agent's session-state check
	 * has nothing running: its cancel is dropped, as an idle backend ignores
	 * one (forwarded, it would only cancel the check).
	 */
	if (target && target->server && !hd_state_check_only_owed(target->server))
		hd_cancel_forward(client, target->server);
	else
		hd_client_close(client);
}

static bool
valid_name(const char *value, size_t max)
{
	return value != NULL && value[0] != '\0' && strlen(value) < max;
}

static void
handle_startup_message(HdClient *client, const HdStartup *startup)
{
	const char *user = hd_startup_param(startup, "user");
	const char *database = hd_startup_param(startup, "database");
	const HdConfig *config;

	/* over max_client_conn: refused now, as PostgreSQL refuses at the startup packet */
	if (hd_agent_refuse_over_limit(client->agent, &client->session))
		return;
	if (startup->code >> 16 != 3 || (startup->code & 0xffff) != 0)
	{
		char		message[128];

		snprintf(message, sizeof(message),
				 "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
				 startup->code >> 16, startup->code & 0xffff);
		hd_client_fatal(client, HD_SQLSTATE_FEATURE_NOT_SUPPORTED, message, NULL);
		return;
	}
	if (hd_startup_param(startup, "replication") != NULL)
	{
		/* passed through on a connection of its own, as PgBouncer 1.23 does */
		const char *value = hd_startup_param(startup, "replication");

		if (strlen(value) >= sizeof(client->replication))
		{
			hd_client_fatal(client, HD_SQLSTATE_INVALID_PARAMETER_VALUE, "invalid value for parameter \"replication\"", NULL);
			return;
		}
		snprintf(client->replication, sizeof(client->replication), "%s", value);
	}
	if (!valid_name(user, sizeof(client->user)))
	{
		hd_client_fatal(client, HD_SQLSTATE_INVALID_AUTHORIZATION, "no PostgreSQL user name specified in startup packet",
						NULL);
		return;
	}
	snprintf(client->user, sizeof(client->user), "%s", user);
	snprintf(client->database, sizeof(client->database), "%s",
			 valid_name(database, sizeof(client->database)) ? database : user);

	/*
	 * Every other parameter is a setting for the session, as a SET would be:
	 * `options` first, then the others, which win (PostgreSQL's order). They
	 * are also what RESET goes back to.
	 */
	for (int pass = 0; pass < 2; pass++)
	{
		for (int i = 0; i < startup->nparams; i++)
		{
			const char *name = startup->names[i];
			const char *problem;

			if (strcmp(name, "user") == 0 || strcmp(name, "database") == 0 ||
				strcmp(name, "replication") == 0 || (strcmp(name, "options") == 0) != (pass == 0))
				continue;
			problem = hd_settings_from_startup(&client->settings, name, startup->values[i]);
			if (problem)
			{
				hd_client_fatal(client, HD_SQLSTATE_INVALID_PARAMETER_VALUE, problem, NULL);
				return;
			}
		}
	}
	if (hd_settings_copy(&client->startup, &client->settings) < 0)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}

	if (strcmp(client->database, HD_CONSOLE_DATABASE) == 0)
	{
		client->admin = true;
		client->agent->console->start(client);
		return;
	}
	config = hd_agent_find_config(client->agent, client->database);
	if (config == NULL)
	{
		char		message[160];

		snprintf(message, sizeof(message), "database \"%s\" does not exist", client->database);
		hd_client_fatal(client, HD_SQLSTATE_INVALID_CATALOG_NAME, message,
						"The agent has no config of that name (hyperdrive list).");
		return;
	}
	if (config->protocol != HD_PROTOCOL_POSTGRESQL)
	{
		char		message[256];

		/* its origin speaks another protocol: nothing here can serve it */
		hd_config_wrong_listener(config, client->agent->settings.mysql_listen_port,
								 message, sizeof(message));
		hd_client_fatal(client, HD_SQLSTATE_INVALID_CATALOG_NAME, message, NULL);
		return;
	}
	if (client->agent->draining)
	{
		hd_client_fatal(client, HD_SQLSTATE_CANNOT_CONNECT_NOW, "the database system is shutting down", NULL);
		return;
	}
	/* the config's own user: its pool; any other role: looked up (client_auth.c) */
	client->pool = hd_pg_pool_get(client->agent, config, client->user);
	if (hd_client_auth_state(client) == NULL)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return;
	}
	snprintf(client->auth->config_id, sizeof(client->auth->config_id), "%s", config->id);
	hd_client_start_auth(client);
}

/* Returns false when the client was closed or must wait for more bytes. */
static bool
process_startup(HdClient *client)
{
	uint32_t	len;
	HdStartup	startup;
	const char *problem;

	if (hd_iobuf_live(&client->in) < 4)
		return false;
	len = hd_get_u32(hd_iobuf_head(&client->in));
	if (len < 8 || len > HD_MAX_STARTUP_PACKET)
	{
		/* PostgreSQL logs it and closes without a word (a reply can crash a client) */
		hd_info("client %s: invalid length of startup packet (%u): closing", client->addr, len);
		hd_client_close(client);
		return false;
	}
	if (hd_iobuf_live(&client->in) < len)
		return false;
	problem = hd_parse_startup(hd_iobuf_head(&client->in) + 4, len - 4, &startup);
	if (problem)
	{
		hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, problem, NULL);
		return false;
	}
	if (startup.code == HD_SSL_REQUEST_CODE || startup.code == HD_GSSENC_REQUEST_CODE)
	{
		hd_iobuf_consume(&client->in, len);
		/* TLS when configured: 'S' and the handshake, or a refusal (tls_negotiate.c) */
		if (startup.code == HD_SSL_REQUEST_CODE && hd_client_ssl_request(client))
			return false;
		/* no TLS or GSSAPI encryption: the client may go on in the clear */
		if (hd_iobuf_append(&client->out, "N", 1) < 0)
		{
			hd_client_close(client);
			return false;
		}
		hd_client_flush(client);
		return client->state != HD_CLIENT_CLOSED;
	}
	if (startup.code == HD_CANCEL_REQUEST_CODE)
	{
		hd_iobuf_consume(&client->in, len);
		handle_cancel(client, &startup);
		return false;
	}
	handle_startup_message(client, &startup);
	if (client->state == HD_CLIENT_CLOSED || client->close_after_flush)
		return false;
	hd_iobuf_consume(&client->in, len);
	return true;
}

/* ---------------------------------------------------------------------------
 * Logged in
 */

/* The pool knows the origin's parameters: finish the client's login. */
void
hd_client_login_done(HdClient *client)
{
	HdPgPool   *pg = hd_pg_pool(client->pool);

	for (int i = 0; i < pg->nparams; i++)
	{
		/* what the client asked for in its startup packet, as PostgreSQL reports it */
		const HdSetting *own = hd_settings_find(&client->settings, pg->params[i].name);

		hd_send_parameter_status(&client->out, pg->params[i].name,
								 own && own->value ? own->value : pg->params[i].value);
	}
	if (client->server)
	{
		/*
		 * Its own origin connection for its whole life (session pooling,
		 * replication): the backend's real key, so that pg_backend_pid(),
		 * pg_cancel_backend() and pg_terminate_backend() agree with it, as
		 * directly. Cancels with it still come through the agent (agent.c).
		 */
		client->cancel_pid = client->server->backend_pid;
		client->cancel_key = client->server->backend_key;
	}
	else
	{
		client->cancel_pid = ++client->agent->next_cancel_pid;
		client->cancel_key = hd_random_u32();
	}
	hd_send_backend_key(&client->out, client->cancel_pid, client->cancel_key);
	client->session.protocol->encode_ready(&client->out, &client->session);
	client->state = HD_CLIENT_ACTIVE;
	hd_client_flush(client);
	if (client->state != HD_CLIENT_CLOSED)
		hd_client_resume_reading(client);
}

/*
 * A replication connection: its own origin connection logged in. The client
 * gets the login's parameters and keeps the connection until it leaves.
 */
void
hd_client_replication_ready(HdClient *client, HdServer *server)
{
	client->server = server;
	server->client = client;
	server->conn.state = HD_CONN_ACTIVE;
	client->server_synced = true;
	client->pinned = true;
	client->pin_reason = "replication connection";
	client->server_taken_at = ev_time();
	hd_info("client %s (%s@%s): replication connection (replication=%s) passed through",
			client->addr, client->user, client->database, client->replication);
	hd_client_login_done(client);
}

/* The pool handed this client a server: forward what it has queued. */
void
hd_client_server_ready(HdClient *client)
{
	client->wait.waiting = false;
	hd_client_resume_reading(client);
	/* a queued client is not in the middle of processing its input */
	hd_iobuf_trim(&client->in);
}

/* ---------------------------------------------------------------------------
 * Forwarding: statements (prepare.h) and session state (session.h)
 */

void
hd_client_pin(HdClient *client, const char *reason)
{
	if (client->pinned && hd_pin_class(client->pin_reason).cache_safe &&
		!hd_pin_class(reason).cache_safe)
	{
		/* pinned for a reason the cache lives with: this one it does not (session.h) */
		hd_info("client %s (%s@%s), pinned to its origin connection: %s: no more answers from "
				"the cache", client->addr, client->user, client->database, reason);
		client->pin_reason = reason;
		return;
	}
	if (client->pinned)
		return;
	client->pinned = true;
	client->pin_reason = reason;
	client->pool->stats.pinned_clients++;
	hd_info("client %s (%s@%s) is pinned to its origin connection: %s", client->addr,
			client->user, client->database, reason);
}

/*
 * A tracked SET (RESET, DISCARD ALL) the server runs now: applied to the
 * client's settings once its ReadyForQuery shows it succeeded outside a
 * transaction block (server.c apply_pending). Takes c.
 */
static void
add_pending(HdClient *client, HdServer *server, HdClassification *c)
{
	if (server->txn_status != 'I')
		hd_client_pin(client, "SET inside a transaction block");
	else if (!server->has_pending)
	{
		server->pending = *c;	/* the server owns it now */
		server->has_pending = true;
		memset(c, 0, sizeof(*c));
		return;
	}
	else if (hd_classification_merge(&server->pending, c) < 0)
		hd_client_pin(client, "out of memory");
	hd_classification_free(c);
}

/*
 * Whether the session-state check (state_check.c) may be sent right behind
 * what the client sends next, rather than once its ReadyForQuery is back: a
 * round trip to the origin less per transaction. Only where the check would
 * run next anyway, as its own transaction: transaction pooling, a client not
 * pinned, a connection idle outside a transaction block that owes nothing
 * but `owed` replies (what was just queued), no cancel on its way, and a
 * baseline to compare with. What is sent must then certainly leave the
 * connection so: the callers below check that.
 */
static bool
connection_lets_check_follow(const HdClient *client, const HdServer *server, size_t owed)
{
	return server->pool->config.pool_mode == HD_POOL_TRANSACTION && !client->pinned &&
		!client->replication[0] && server->txn_status == 'I' &&
		server->expect.count == owed && !server->mid_batch && server->cancels == 0 &&
		server->cache_op == HD_COP_NONE && server->state_baseline != NULL;
}

/*
 * A Query just queued (the one entry owed): it must be one plain statement
 * (session.h) with no session effect the agent must apply first.
 */
static bool
check_may_follow(const HdClient *client, const HdServer *server, const HdClassification *c,
				 const char *sql, size_t len)
{
	return connection_lets_check_follow(client, server, 1) && c->effect == HD_EFFECT_NONE &&
		!c->deallocate && hd_query_leaves_no_transaction(sql, len);
}

/*
 * The same for an extended-protocol batch, message by message: at its first
 * message, whether the connection lets the check follow (nothing owed yet);
 * then each Parse, and each Bind's statement, must be one plain statement
 * (session.h), and nothing but Parse, Bind, Describe, Execute, Close and
 * Flush may come before its Sync. A batch that passes leaves the connection
 * idle at its Sync: the check goes right behind it.
 */
static void
batch_plain_start(const HdClient *client, HdServer *server)
{
	server->batch_plain = connection_lets_check_follow(client, server, 0);
}

static bool
plain_text(const char *sql)
{
	return sql && hd_query_leaves_no_transaction(sql, strlen(sql));
}

/* The statement a Bind names (its body), as the client knows it. */
static bool
bound_statement_plain(HdClient *client, const char *body, uint32_t len)
{
	size_t		pos = 0;
	const char *name = hd_take_string(body, len, &pos) ? hd_take_string(body, len, &pos) : NULL;
	HdStatement *stmt;

	if (name == NULL)
		return false;
	if (name[0] == '\0')
		return client->unnamed && client->unnamed->state == HD_UNNAMED_KNOWN &&
			plain_text(client->unnamed->query);
	stmt = hd_registry_get(&hd_pg_pool(client->pool)->registry,
						   hd_client_stmt_find(&client->stmts, name));
	return stmt && plain_text(stmt->query);
}

static void
batch_plain_note(HdClient *client, HdServer *server, char type, const char *body, uint32_t len)
{
	size_t		pos = 0;

	if (!server->batch_plain)
		return;
	if (type == 'P')
		server->batch_plain = hd_take_string(body, len, &pos) &&
			plain_text(hd_take_string(body, len, &pos));
	else if (type == 'B')
		server->batch_plain = bound_statement_plain(client, body, len);
	else if (type != 'D' && type != 'E' && type != 'C' && type != 'H' && type != 'S')
		server->batch_plain = false;
}

/*
 * A simple Query. Its session effect: a pin, or tracked settings applied at
 * its ReadyForQuery; a DEALLOCATE acts on the client's own names
 * (prepare.h). PostgreSQL drops the unnamed statement at a simple Query.
 */
static HdForward
forward_query(HdClient *client, HdServer *server, const char *msg, uint32_t len)
{
	HdClassification c;

	client->pool->stats.queries++;
	if (client->replication[0])
		memset(&c, 0, sizeof(c));
	else
		hd_classify(msg + 5, len > 4 ? len - 5 : 0, false, &c);
	if (c.deallocate)
	{
		HdForward	rc = hd_prepare_query_deallocate(client, server, msg, len,
													 c.deallocate_name);

		hd_classification_free(&c);
		return rc;
	}
	if (c.effect == HD_EFFECT_PIN)
		hd_client_pin(client, c.pin_reason);	/* (again: a reason the cache minds) */
	else if (!client->pinned && c.effect == HD_EFFECT_TRACKED)
		add_pending(client, server, &c);	/* takes c */
	hd_prepare_query_sent(client, server);
	if (hd_iobuf_append(&server->out, msg, (size_t) len + 1) < 0 ||
		hd_prepare_expect(server, HD_EXPECT_QUERY, HD_REPLY_FORWARD, 0, 0) < 0)
	{
		hd_classification_free(&c);
		return HD_FWD_NOMEM;
	}
	if (check_may_follow(client, server, &c, msg + 5, len > 4 ? len - 4 : 0))
	{
		if (hd_state_check_start(server, false) < 0)
		{
			hd_classification_free(&c);
			return HD_FWD_NOMEM;
		}
		hd_debug("origin connection %u: the session-state check follows the Query of %s",
				 server->backend_pid, client->addr);
	}
	hd_classification_free(&c);
	return HD_FWD_DONE;
}

/*
 * A Parse. Classified as a simple Query's text would be: a tracked SET in
 * the unnamed statement (pgjdbc's SET extra_float_digits, SET
 * application_name at connect) is carried when it runs; one in a named
 * statement, which may run at any later time, pins; a DEALLOCATE in the
 * unnamed statement acts on the client's names (psycopg 3's DEALLOCATE ALL).
 */
static HdForward
forward_parse(HdClient *client, HdServer *server, const char *body, uint32_t len)
{
	size_t		pos = 0;
	const char *name = hd_take_string(body, len, &pos);
	const char *query = name ? hd_take_string(body, len, &pos) : NULL;
	bool		unnamed = name && name[0] == '\0';
	HdClassification c;

	if (query == NULL || client->replication[0])
		return hd_prepare_forward(client, server, 'P', body, len);	/* reports it */
	hd_classify(query, strlen(query), !unnamed, &c);
	if (unnamed && c.deallocate)
	{
		HdForward	rc = hd_prepare_parse_deallocate(client, server, body, len,
													 c.deallocate_name);

		hd_classification_free(&c);
		return rc;
	}
	if (unnamed && client->unnamed_effect)
	{
		hd_classification_free(client->unnamed_effect);
		free(client->unnamed_effect);
		client->unnamed_effect = NULL;
	}
	if (c.effect == HD_EFFECT_PIN || c.deallocate)
		hd_client_pin(client, c.deallocate ? "DEALLOCATE in a prepared statement" : c.pin_reason);
	else if (c.effect == HD_EFFECT_TRACKED && !unnamed)
		hd_client_pin(client, "session-level statement in a prepared statement");
	else if (!client->pinned && c.effect == HD_EFFECT_TRACKED)
	{
		client->unnamed_effect = malloc(sizeof(HdClassification));
		if (client->unnamed_effect == NULL)
			hd_client_pin(client, "out of memory");
		else
		{
			*client->unnamed_effect = c;	/* takes c */
			memset(&c, 0, sizeof(c));
		}
	}
	hd_classification_free(&c);
	return hd_prepare_forward(client, server, 'P', body, len);
}

/* An Execute: the tracked SET of the portal's statement, if any, runs now. */
static HdForward
forward_execute(HdClient *client, HdServer *server, const char *msg, uint32_t len)
{
	if (client->bound_effect && client->unnamed_effect && !client->pinned)
	{
		HdClassification copy = {0};

		if (hd_classification_merge(&copy, client->unnamed_effect) < 0)
			hd_client_pin(client, "out of memory");
		else
			add_pending(client, server, &copy);	/* takes copy */
		hd_classification_free(&copy);
	}
	if (hd_iobuf_append(&server->out, msg, (size_t) len + 1) < 0 ||
		hd_prepare_execute(client, server) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_DONE;
}

/*
 * Before a server takes a client's first message, give it the client's
 * session settings, and under transaction pooling learn the state they
 * leave (state_check.c); the client waits for both (a failed SET must not
 * let its queries run under the wrong settings).
 */
static bool
sync_settings(HdClient *client, HdServer *server)
{
	bool		err;
	char	   *sql = hd_settings_diff_sql(&server->settings, &client->settings, &err);
	bool		learn = ((client->pool->config.pool_mode == HD_POOL_TRANSACTION &&
						  !client->pinned) || hd_cache_own_connection(client)) &&
		(sql != NULL || server->state_baseline == NULL);
	HdMsg		msg;

	client->server_synced = true;
	if (sql == NULL && (err || !learn))
	{
		if (err)
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return !err;
	}
	if (sql)
	{
		hd_msg_begin(&msg, &server->out, 'Q');
		hd_msg_put_str(&msg, sql);
		free(sql);
		if (hd_msg_end(&msg) < 0 ||
			hd_expect_push(&server->expect, HD_EXPECT_QUERY, HD_REPLY_SWALLOW, 0, 0) < 0 ||
			hd_settings_copy(&server->settings, &client->settings) < 0)
		{
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return false;
		}
		hd_prepare_server_unnamed_lost(server);
	}
	if (learn && hd_state_check_start(server, true) < 0)
	{
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return false;
	}
	client->awaiting_setup = true;
	ev_io_stop(client->agent->loop, &client->read_watcher);
	hd_server_flush(server);
	return false;
}

void
hd_client_setup_done(HdClient *client, const char *error)
{
	client->awaiting_setup = false;
	if (error)
	{
		hd_client_fatal(client, HD_SQLSTATE_INVALID_PARAMETER_VALUE, error,
						"The agent applies the session's settings (startup parameters, SET) "
						"on each origin connection it uses.");
		return;
	}
	hd_client_resume_reading(client);
}

void
hd_client_verify_done(HdClient *client)
{
	hd_batch_event(&client->batch, HD_BEV_SHAPE_END);
	hd_client_resume_reading(client);
}

/*
 * Send one client message to its server, rewriting statement names where
 * needed (prepare.h). HD_FWD_WAIT: not taken (the client waits).
 */
static HdForward
forward_message(HdClient *client, HdServer *server, const char *msg, uint32_t len)
{
	char		type = msg[0];
	const char *body = msg + 5;
	uint32_t	body_len = len - 4;
	HdForward	rc;

	server->state_dirty = true;	/* it may change the session: checked at the end */
	if (!server->mid_batch)
		batch_plain_start(client, server);
	batch_plain_note(client, server, type, body, body_len);
	switch (type)
	{
		case 'Q':
			return forward_query(client, server, msg, len);
		case 'F':
			if (hd_iobuf_append(&server->out, msg, (size_t) len + 1) < 0 ||
				hd_prepare_expect(server, HD_EXPECT_QUERY, HD_REPLY_FORWARD, 0, 0) < 0)
				return HD_FWD_NOMEM;
			return HD_FWD_DONE;
		case 'P':
			rc = forward_parse(client, server, body, body_len);
			break;
		case 'B':
			{
				/* a portal of the unnamed statement runs its tracked SET, if any */
				size_t		pos = 0;
				const char *stmt = hd_take_string(body, body_len, &pos) ?
					hd_take_string(body, body_len, &pos) : NULL;

				client->bound_effect = stmt && stmt[0] == '\0';
			}
			/* fall through */
		case 'D':
		case 'C':
			rc = hd_prepare_forward(client, server, type, body, body_len);
			break;
		case 'E':
			rc = forward_execute(client, server, msg, len);
			break;
		case 'S':
			rc = hd_iobuf_append(&server->out, msg, (size_t) len + 1) < 0 ||
				hd_prepare_expect(server, HD_EXPECT_SYNC, HD_REPLY_FORWARD, 0, 0) < 0 ?
				HD_FWD_NOMEM : HD_FWD_DONE;
			if (rc == HD_FWD_DONE && server->batch_plain && !client->pinned)
			{
				/* the batch leaves the connection idle: its check goes right behind it */
				if (hd_state_check_start(server, false) < 0)
					return HD_FWD_NOMEM;
				hd_debug("origin connection %u: the session-state check follows the batch of %s",
						 server->backend_pid, client->addr);
			}
			server->batch_plain = false;
			break;
		default:
			/* Flush and COPY data: nothing owed */
			if (type == 'H')
				server->mid_batch = true;
			return hd_iobuf_append(&server->out, msg, (size_t) len + 1) < 0 ?
				HD_FWD_NOMEM : HD_FWD_DONE;
	}
	if (rc == HD_FWD_DONE)
		server->mid_batch = type != 'S';
	return rc;
}

/*
 * A client without a server preparing a statement that an origin already
 * accepted (same text, types and search_path) gets ParseComplete, and for
 * its Sync ReadyForQuery, from the agent: re-preparing the same statements
 * on every new connection (what drivers and pgbench -M prepared do) then
 * needs no origin connection. It also keeps a client that prepares
 * synchronously while others of its process hold every origin connection
 * from waiting for them. Returns true if the message was answered here.
 */
static bool
answer_locally(HdClient *client, const char *msg, uint32_t msg_len)
{
	static const char parse_complete[5] = {'1', 0, 0, 0, 4};
	char		type = msg[0];
	const char *body = msg + 5;
	uint32_t	len = msg_len - 4;
	size_t		pos = 0;
	const char *name;
	const char *query;
	HdStatement *stmt;

	if (client->server != NULL || client->pinned || client->replication[0])
		return false;
	/* (the caller ends the batch at its Sync) */
	if (type == 'S' && hd_batch_local(&client->batch))
		return client->session.protocol->encode_ready(&client->out, &client->session) == 0;
	if (type == 'H' && hd_batch_local(&client->batch))
		return true;
	if (type != 'P')
		return false;
	name = hd_take_string(body, len, &pos);
	query = name ? hd_take_string(body, len, &pos) : NULL;
	if (query == NULL || name[0] == '\0' || len - pos < 2)
		return false;
	stmt = hd_registry_find(&hd_pg_pool(client->pool)->registry, query, body + pos, len - pos,
							hd_prepare_context(client));
	if (stmt == NULL || !stmt->verified)
		return false;
	if (client->session.protocol->classify(msg, (size_t) msg_len + 1) ==
		HD_CLIENT_MSG_SESSION_STATE)
		return false;			/* the usual path pins it */
	if (hd_client_stmt_set(&client->stmts, name, stmt->id) < 0 ||
		hd_iobuf_append(&client->out, parse_complete, sizeof(parse_complete)) < 0)
		return false;
	hd_batch_event(&client->batch, HD_BEV_LOCAL_ANSWER);
	return true;
}

/*
 * The start of a message larger than the agent holds (HD_HOLD_MAX): what is
 * here goes to the server now (a Bind's statement name rewritten as for a
 * whole one), the rest as it arrives (client->stream_left). The cache and the
 * statement classification need whole messages: a large statement bypasses
 * them (its session effect is seen by the session-state check). A named
 * Parse, whose text the agent would keep, is refused (54000) and dropped.
 */
static HdForward
start_stream(HdClient *client, HdServer *server, const char *msg, uint32_t len, size_t avail)
{
	char		type = msg[0];
	size_t		pos = 0;
	HdForward	rc;

	server->state_dirty = true;
	switch (type)
	{
		case 'B':
			client->bound_effect = false;
			rc = hd_prepare_bind_start(client, server, msg + 5, avail - 5, len - 4);
			break;
		case 'P':
			if (hd_take_string(msg + 5, avail - 5, &pos) == NULL)
				return HD_FWD_WAIT;	/* its name is not all here yet */
			if (msg[5] != '\0')
			{
				hd_info("client %s (%s@%s): refused a %u-byte named Parse (the agent keeps "
						"at most %d bytes of a statement's text)", client->addr, client->user,
						client->database, len, HD_HOLD_MAX);
				client->stream_drain = true;
				rc = hd_prepare_refuse(server, HD_REFUSE_TOO_LARGE);
			}
			else
				rc = hd_prepare_parse_start(client, server, msg + 5, avail - 5);
			break;
		case 'Q':
		case 'F':
			if (type == 'Q')
			{
				client->pool->stats.queries++;
				hd_cache_count_bypass(client, "too large");
				hd_prepare_query_sent(client, server);
			}
			rc = hd_iobuf_append(&server->out, msg, avail) < 0 ||
				hd_prepare_expect(server, HD_EXPECT_QUERY, HD_REPLY_FORWARD, 0, 0) < 0 ?
				HD_FWD_NOMEM : HD_FWD_DONE;
			break;
		default:				/* COPY data, CopyDone, CopyFail */
			rc = hd_iobuf_append(&server->out, msg, avail) < 0 ? HD_FWD_NOMEM : HD_FWD_DONE;
			break;
	}
	if (rc != HD_FWD_DONE)
		return rc;
	if (type == 'P' || type == 'B')
		server->mid_batch = true;
	client->pool->stats.bytes_from_clients += client->stream_drain ? 0 : avail;
	client->stream_left = (uint32_t) ((size_t) len + 1 - avail);
	hd_iobuf_consume(&client->in, avail);
	return HD_FWD_DONE;
}

/*
 * The rest of a large message as it arrives: on to the server (or dropped).
 * Returns 1 (some passed), 0 (nothing here yet) or -1 (the client stops:
 * the server's output is full, or it is gone).
 */
static int
pass_stream(HdClient *client)
{
	HdServer   *server = client->server;
	size_t		n = hd_iobuf_live(&client->in);

	if (n > client->stream_left)
		n = client->stream_left;
	if (n == 0)
		return 0;
	if (!client->stream_drain)
	{
		if (server == NULL)
			return -1;			/* its origin connection went away: the client is told */
		if (hd_iobuf_append(&server->out, hd_iobuf_head(&client->in), n) < 0)
		{
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return -1;
		}
		client->pool->stats.bytes_from_clients += n;
	}
	hd_iobuf_consume(&client->in, n);
	client->stream_left -= (uint32_t) n;
	if (client->stream_left == 0)
		client->stream_drain = false;
	if (server && hd_iobuf_live(&server->out) > HD_BACKPRESSURE_BYTES)
	{
		client->paused_for_server = true;
		ev_io_stop(client->agent->loop, &client->read_watcher);
		hd_server_flush(server);
		return -1;
	}
	return 1;
}

/*
 * A client that does not read what it is sent gets nothing more processed
 * (cache hits and the agent's own answers go to its output, as the origin's
 * replies do): its reading stops until its output drains (hd_client_flush).
 */
static bool
output_full(HdClient *client)
{
	if (hd_iobuf_live(&client->out) <= HD_BACKPRESSURE_BYTES)
		return false;
	hd_client_flush(client);
	if (client->state != HD_CLIENT_ACTIVE)
		return true;
	if (hd_iobuf_live(&client->out) <= HD_BACKPRESSURE_BYTES)
		return false;
	client->paused_for_output = true;
	ev_io_stop(client->agent->loop, &client->read_watcher);
	return true;
}

/*
 * What one step of process_active() says: go on with this message, take the
 * next one, or stop (true: for now, more bytes will come; false: the client
 * must stop: closed, waiting, or back-pressured).
 */
typedef enum Step
{
	STEP_GO,					/* this message goes on to the next stage */
	STEP_NEXT,					/* it was dealt with: the next message */
	STEP_MORE,					/* return true: read on */
	STEP_STOP					/* return false: the client stops */
} Step;

/* The message at the head of a client's input, read before anything acts on it. */
typedef struct ClientMsg
{
	const char *head;
	char		type;
	uint32_t	len;			/* its length word (the type byte not included) */
	size_t		avail;			/* bytes of it (and after it) in the input */
	bool		whole;			/* all of it is here */
} ClientMsg;

/* The client stops reading until something resumes it; its server is sent what it has. */
static Step
stop_reading(HdClient *client, HdServer *server)
{
	ev_io_stop(client->agent->loop, &client->read_watcher);
	if (server)
		hd_server_flush(server);
	return STEP_STOP;
}

/*
 * Read the header of the message at the head of the input and check it the
 * way PostgreSQL does (the protocol's frame(): pg_client_protocol.c), before
 * anything acts on it: a malformed stream closes the client. STEP_GO with m filled in, STEP_MORE (wait for the rest of a
 * message the agent holds) or STEP_STOP.
 */
static Step
read_message(HdClient *client, ClientMsg *m)
{
	HdClientFrame frame;

	if (hd_iobuf_live(&client->in) < 5)
		return STEP_MORE;
	if (output_full(client))
		return STEP_STOP;
	m->head = hd_iobuf_head(&client->in);
	m->avail = hd_iobuf_live(&client->in);
	if (client->session.protocol->frame(m->head, m->avail, &frame) == HD_FRAME_INVALID)
	{
		hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, frame.reason, NULL);
		return STEP_STOP;
	}
	/* (five bytes are in: frame.size is known) */
	m->type = m->head[0];
	m->len = (uint32_t) (frame.size - 1);
	if (m->type == 'X')
	{
		hd_client_close(client);
		return STEP_STOP;
	}
	m->whole = m->avail >= (size_t) m->len + 1;
	if (!m->whole && (size_t) m->len + 1 <= HD_HOLD_MAX)
		return STEP_MORE;		/* wait for the rest */
	return STEP_GO;
}

/*
 * A client the cache may answer on its own connection
 * (hd_cache_own_connection()), idle, without its settings applied or its
 * state learned yet
 * (its first request, a RESET to a startup value): both are done first
 * (sync_settings(), the client waits), so that the cache may answer this
 * request with the state known. false: nothing to do.
 */
static bool
set_up_own_connection(HdClient *client, const ClientMsg *m)
{
	HdServer   *server = client->server;
	char		type = m->type;

	if (!m->whole || client->cache_step != HD_CSTEP_NONE || hd_batch_passed(&client->batch) ||
		server == NULL || client->admin ||
		!(type == 'Q' || type == 'P' || type == 'B' || type == 'D') ||
		!hd_cache_own_connection(client) || !hd_server_quiet(server) ||
		(client->server_synced && server->state_baseline != NULL))
		return false;
	client->server_synced = false;
	return !sync_settings(client, server);
}

/*
 * Its server owes it nothing but the session-state check of its last
 * transaction: the cache may answer this request once that is over (the
 * server released, the client's state known), so the client waits for it.
 */
static bool
wait_for_state_check(HdClient *client, const ClientMsg *m)
{
	char		type = m->type;

	if (!m->whole || client->cache_step != HD_CSTEP_NONE || hd_batch_passed(&client->batch) ||
		client->server == NULL || !hd_state_check_only_owed(client->server) ||
		!(type == 'Q' || type == 'P' || type == 'B' || type == 'D') || !hd_cache_serves(client))
		return false;
	hd_batch_event(&client->batch, HD_BEV_CHECK_START);
	return true;
}

/*
 * Whether the cache decides this message: a whole Query, or a whole message
 * of an extended batch it has not passed on, of a client without a server
 * (under transaction pooling one holding a server is in a transaction:
 * cache.h) or whose own idle connection the cache may answer for
 * (session pooling: hd_cache_held_bypass()).
 */
static bool
cache_decides(const HdClient *client, const ClientMsg *m)
{
	char		type = m->type;

	if (!m->whole || client->cache_step != HD_CSTEP_NONE || client->admin)
		return false;
	return type == 'Q' ||
		(!hd_batch_passed(&client->batch) &&
		 (client->server == NULL || hd_cache_held_bypass(client) == NULL) &&
		 (type == 'P' || type == 'B' || type == 'D'));
}

/* Why an Execute the cache did not decide went to the origin (without "bypass:"). */
static const char *
execute_bypass(const HdClient *client)
{
	const char *why = client->server ? hd_cache_held_bypass(client) : NULL;

	if (why)
		return why + strlen("bypass:");
	return client->pinned ? "pinned" : "transaction";
}

/*
 * The cache decides first (cache.h): a hit needs no server. The rest of a
 * batch it passed on goes as it is until its Sync.
 */
static Step
decide_by_cache(HdClient *client, const ClientMsg *m)
{
	char		type = m->type;

	if (!m->whole && client->cache_step == HD_CSTEP_NONE && (type == 'P' || type == 'B'))
	{
		/* a large message streams through (forward_to_server): no cache for its batch */
		client->cache_step = HD_CSTEP_FORWARD;
		hd_batch_event(&client->batch, HD_BEV_PASS);
	}
	if (wait_for_state_check(client, m))
		return stop_reading(client, NULL);
	if (set_up_own_connection(client, m))
		return STEP_STOP;		/* hd_client_setup_done() resumes (or it was closed) */
	if (!cache_decides(client, m))
	{
		/* not decided: an Execute counts as a bypass (unless its batch was counted) */
		if (type == 'E' && !hd_batch_counted(&client->batch) && !client->replication[0])
			hd_cache_count_bypass(client, execute_bypass(client));
		return STEP_GO;
	}
	client->cache_step = (uint8_t) hd_cache_on_request(client, m->head,
														hd_iobuf_live(&client->in));
	switch (client->cache_step)
	{
		case HD_CSTEP_MORE:
			client->cache_step = HD_CSTEP_NONE;
			return STEP_MORE;	/* the rest of the batch is on its way */
		case HD_CSTEP_SERVED:
			/* answered: the request left the input */
			client->cache_step = HD_CSTEP_NONE;
			hd_client_flush(client);
			return client->state == HD_CLIENT_ACTIVE ? STEP_NEXT : STEP_STOP;
		case HD_CSTEP_WAIT:
			/* the request stays in: answered by the fill, or run when it fails */
			hd_batch_event(&client->batch, HD_BEV_CACHE_WAIT);
			return stop_reading(client, NULL);
		case HD_CSTEP_FORWARD:
			if (type != 'Q')
				hd_batch_event(&client->batch, HD_BEV_PASS);
			return STEP_GO;
		default:
			return STEP_GO;		/* ANALYZE, FILL: on its server (run_cache_op) */
	}
}

/*
 * The agent answers the message itself (answer_locally): consumed here,
 * and at a Sync the batch is over.
 */
static Step
answer_here(HdClient *client, const ClientMsg *m)
{
	if (!m->whole ||
		!(client->cache_step == HD_CSTEP_NONE || client->cache_step == HD_CSTEP_FORWARD) ||
		!answer_locally(client, m->head, m->len))
		return STEP_GO;
	hd_iobuf_consume(&client->in, (size_t) m->len + 1);
	client->cache_step = HD_CSTEP_NONE;
	if (m->type == 'S')
		hd_batch_event(&client->batch, HD_BEV_SYNC);
	hd_client_flush(client);
	return client->state == HD_CLIENT_ACTIVE ? STEP_NEXT : STEP_STOP;
}

/*
 * The server the message goes to: the one it holds, or one from its pool.
 * NULL: the client stops (queued for a server, a cancel for its server in
 * flight, or its settings being applied first).
 */
static HdServer *
take_server(HdClient *client)
{
	HdServer   *server;

	if (client->server == NULL)
	{
		hd_client_request_server(client);
		if (client->server == NULL)
		{
			/* queued (or refused): hd_client_server_ready() resumes */
			stop_reading(client, NULL);
			return NULL;
		}
	}
	server = client->server;
	if (server->cancels > 0)
	{
		/* a cancel for it is in flight: nothing more until it is done (cancel.c) */
		stop_reading(client, NULL);
		return NULL;
	}
	/* the server answers the rest of the batch */
	hd_batch_event(&client->batch, HD_BEV_TO_SERVER);
	if (!client->server_synced && !client->replication[0] && !sync_settings(client, server))
		return NULL;			/* hd_client_setup_done() resumes */
	return server;
}

/*
 * The cache's analysis or fill of this request runs on the server first.
 * STEP_GO: forward the message as it is; STEP_NEXT: decide again.
 */
static Step
run_cache_op(HdClient *client, HdServer *server)
{
	if (client->cache_step != HD_CSTEP_ANALYZE && client->cache_step != HD_CSTEP_FILL)
		return STEP_GO;
	switch (hd_cache_lead(client->agent->cache, &client->cache_waiter, server))
	{
		case HD_CACHE_LEAD_OOM:
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return STEP_STOP;
		case HD_CACHE_LEAD_SENT:
			/* the request stays (analysis) or went (fill); wait for the op */
			hd_batch_event(&client->batch, HD_BEV_CACHE_WAIT);
			return stop_reading(client, server);
		case HD_CACHE_LEAD_DECIDE_AGAIN:
			client->cache_step = HD_CSTEP_NONE;
			return STEP_NEXT;
		case HD_CACHE_LEAD_FORWARD:
			break;
	}
	client->cache_step = HD_CSTEP_FORWARD;
	return STEP_GO;
}

/*
 * Forward the message (or start streaming a large one) and consume it.
 * The client stops after a Parse that started a shape check (the next
 * messages wait for it) and when its server's output is full.
 */
static Step
forward_to_server(HdClient *client, HdServer *server, const ClientMsg *m)
{
	if (server->expect.count == 0 && server->request_sent_at == 0)
		server->request_sent_at = ev_time();
	if (m->whole)
		client->pool->stats.bytes_from_clients += (uint64_t) m->len + 1;
	switch (m->whole ? forward_message(client, server, m->head, m->len) :
			start_stream(client, server, m->head, m->len, m->avail))
	{
		case HD_FWD_NOMEM:
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return STEP_STOP;
		case HD_FWD_MALFORMED:
			hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "invalid message format", NULL);
			return STEP_STOP;
		case HD_FWD_WAIT:
			if (!m->whole && hd_batch_wait(&client->batch) != HD_BWAIT_SHAPE)
			{
				/* a large Bind or Parse whose names are not all here yet */
				if (m->avail <= HD_HOLD_MAX)
					return STEP_MORE;
				hd_client_fatal(client, HD_SQLSTATE_PROTOCOL_VIOLATION, "invalid message format", NULL);
				return STEP_STOP;
			}
			/* a statement's shape is checked first; the message stays */
			return stop_reading(client, server);
		case HD_FWD_DONE:
			break;
	}
	client->cache_step = HD_CSTEP_NONE;
	if (!m->whole)
		return STEP_NEXT;		/* (start_stream() took what is here; pass_stream() the rest) */
	hd_iobuf_consume(&client->in, (size_t) m->len + 1);
	if (m->type == 'S')
		hd_batch_event(&client->batch, HD_BEV_SYNC);
	if (hd_batch_wait(&client->batch) == HD_BWAIT_SHAPE)
		return stop_reading(client, server);	/* its Parse met a known text: the next
												 * messages wait for the check */
	if (hd_iobuf_live(&server->out) > HD_BACKPRESSURE_BYTES)
	{
		client->paused_for_server = true;
		return stop_reading(client, server);
	}
	return STEP_NEXT;
}

/*
 * One message at the head of the input, through the stages in order: read
 * it whole (or a large one's start), let the cache decide, answer it here,
 * or take a server, run the cache's op on it, and forward it.
 */
static Step
process_message(HdClient *client)
{
	ClientMsg	m;
	HdServer   *server;
	Step		step;

	if ((step = read_message(client, &m)) != STEP_GO ||
		(step = decide_by_cache(client, &m)) != STEP_GO ||
		(step = answer_here(client, &m)) != STEP_GO)
		return step;
	if ((server = take_server(client)) == NULL)
		return STEP_STOP;
	if ((step = run_cache_op(client, server)) != STEP_GO)
		return step;
	return forward_to_server(client, server, &m);
}

/*
 * Move complete messages to the server. Returns false when the client must
 * stop for now (closed, waiting for a server, or back-pressured).
 */
static bool
process_active(HdClient *client)
{
	for (;;)
	{
		Step		step;

		if (client->stream_left > 0)
		{
			int			rc = pass_stream(client);

			if (rc <= 0)
				return rc == 0;
			continue;
		}
		step = process_message(client);
		if (step == STEP_MORE)
			return true;
		if (step == STEP_STOP)
			return false;
	}
}

static void
client_process(HdClient *client)
{
	HdServer   *server;

	while (client->state == HD_CLIENT_STARTUP)
	{
		if (!process_startup(client))
			return;
	}
	if (client->admin)
	{
		client->agent->console->process(client);
		return;
	}
	if (client->state == HD_CLIENT_AUTH)
	{
		hd_client_continue_auth(client);
		return;
	}
	if (client->state != HD_CLIENT_ACTIVE)
		return;					/* LOGIN: bytes wait in the buffer */
	process_active(client);
	server = client->state == HD_CLIENT_ACTIVE ? client->server : NULL;
	if (server)
	{
		/* replies the agent gives itself may be due now (nothing ahead of them) */
		hd_server_emit_synthesized(server);
		hd_server_flush(server);
	}
}
