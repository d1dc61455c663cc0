/*
 * server.c
 *    One origin connection: connect, log in, then forward its replies.
 *
 * States (HdPoolConnState, pool.h): CONNECTING (non-blocking connect, bounded by
 * server_connect_timeout) -> LOGIN (StartupMessage, the authentication the
 * origin asks for, ParameterStatus, BackendKeyData, ReadyForQuery) -> IDLE
 * (in the pool) <-> ACTIVE (held by a client). Replies are forwarded to the
 * client as complete messages; ReadyForQuery is where the pool may take the
 * server back (pool.c decides).
 *
 * Every reply is matched to what the server owes (stmt.h's queue, by
 * hd_expect_match() alone), whoever it is for: the client, the agent's own
 * settings query and state check, or the result cache's analyses, fills
 * and read-your-writes queries (cache_fill.c gets those, with the entry
 * they answer).
 */
#include "pgwire/pooler.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/sqlstate.h"
#include "pgwire/proto.h"
#include "net/tcp.h"
#include "pgwire/tls_negotiate.h"

static void server_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void server_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void server_connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void negotiate(HdServer *server);

/* A connection of its own for a client's replication session (not pooled). */
HdServer *
hd_server_connect_replication(HdPool *pool, HdClient *client)
{
	HdServer   *server;

	if (hd_pool_config_conns(pool->all, pool->config.id) >= pool->config.origin_connection_limit)
	{
		hd_client_fatal(client, HD_SQLSTATE_TOO_MANY_CONNECTIONS,
						"sorry, too many connections to the origin for this config "
						"(origin_connection_limit)", NULL);
		return NULL;
	}
	server = hd_server_connect(pool);
	if (server)
		server->dedicated = client;
	return server;
}

HdServer *
hd_server_connect(HdPool *pool)
{
	HdAgent    *agent = hd_pg_pool(pool)->agent;
	HdServer   *server;
	char		err[256] = "could not connect to origin";
	int			fd = hd_origin_connect(&pool->config, err, sizeof(err));

	if (fd < 0)
	{
		hd_pg_pool_server_failed(pool, NULL, HD_SQLSTATE_UNABLE_TO_CONNECT, err);
		return NULL;
	}
	server = calloc(1, sizeof(HdServer));
	if (server == NULL)
	{
		close(fd);
		hd_pg_pool_server_failed(pool, NULL, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory");
		return NULL;
	}
	server->agent = agent;
	server->pool = pool;
	hd_conn_init(&server->sock, agent->loop, fd, &server->read_watcher, &server->write_watcher);
	server->txn_status = 'I';
	hd_pool_conn_add(pool, &server->conn);
	ev_io_init(&server->read_watcher, server_read_cb, fd, EV_READ);
	ev_io_init(&server->write_watcher, server_write_cb, fd, EV_WRITE);
	server->read_watcher.data = server->write_watcher.data = server;
	ev_timer_init(&server->connect_timer, server_connect_timeout_cb,
				  agent->settings.server_connect_timeout_ms / 1000.0, 0.);
	server->connect_timer.data = server;
	ev_timer_start(agent->loop, &server->connect_timer);
	/* writable means connected (or failed: getsockopt tells) */
	ev_io_start(agent->loop, &server->write_watcher);
	return server;
}

void
hd_server_close(HdServer *server, const char *reason)
{
	HdAgent    *agent = server->agent;

	if (server->conn.state == HD_CONN_CLOSED)
		return;
	hd_info("origin connection %u (config %s, %s): closing: %s", server->backend_pid,
			server->pool->config.name, server->pool->role, reason);
	server->conn.state = HD_CONN_CLOSED;
	ev_io_stop(agent->loop, &server->read_watcher);
	ev_io_stop(agent->loop, &server->write_watcher);
	ev_timer_stop(agent->loop, &server->connect_timer);
	if (server->sock.fd >= 0)
	{
		/* a polite Terminate if it is logged in; ignore failures */
		if (server->backend_pid != 0)
		{
			static const char terminate[5] = {'X', 0, 0, 0, 4};

			hd_conn_send_now(&server->sock, terminate, sizeof(terminate));
		}
		hd_conn_close(&server->sock);
	}
	if (server->client)
	{
		HdClient   *client = server->client;

		server->client = NULL;
		client->server = NULL;
		if (server->origin_fatal)
		{
			/* the origin said why (pg_terminate_backend, say): only that, as directly */
			ev_io_stop(agent->loop, &client->read_watcher);
			client->close_after_flush = true;
			hd_client_flush(client);
		}
		else
			hd_client_fatal(client, HD_SQLSTATE_CONNECTION_FAILURE, "the connection to the origin server was lost",
							reason);
	}
	hd_cancel_server_gone(server);
	hd_pool_conn_gone(server->pool, &server->conn);
	/* freed before the loop blocks (agent.c) */
	hd_list_append(&agent->dead_servers, &server->conn.link);
}

void
hd_server_free(HdServer *server)
{
	hd_list_del(&server->conn.link);
	hd_iobuf_free(&server->in);
	hd_iobuf_free(&server->out);
	hd_conn_free(&server->sock);
	if (server->scram)
		hd_scram_client_free(server->scram);
	hd_expect_free(&server->expect);
	hd_iobuf_free(&server->described_params);
	free(server->state_baseline);
	free(server->state_report);
	free(server->state_error);
	hd_settings_clear(&server->state_tracked);
	hd_cache_server_free(server);
	hd_server_stmts_free(&server->stmts);
	hd_settings_clear(&server->settings);
	if (server->has_pending)
		hd_classification_free(&server->pending);
	free(server->setup_error);
	free(server);
}

void
hd_server_flush(HdServer *server)
{
	int			rc;

	if (server->conn.state == HD_CONN_CLOSED || server->conn.state == HD_CONN_CONNECTING)
		return;
	rc = hd_conn_flush(&server->sock, &server->out);
	if (rc < 0)
	{
		char		reason[300];

		snprintf(reason, sizeof(reason), "write failed: %s", hd_conn_error(&server->sock, errno));
		hd_server_close(server, reason);
		return;
	}
	if (rc > 0)
		return;
	/* drained: a client that stopped because this output was full may go on */
	if (server->client && server->client->paused_for_server)
	{
		server->client->paused_for_server = false;
		hd_client_resume_reading(server->client);
	}
}

void
hd_server_resume_reading(HdServer *server)
{
	if (server->conn.state != HD_CONN_CLOSED && server->conn.state != HD_CONN_CONNECTING)
	{
		ev_io_start(server->agent->loop, &server->read_watcher);
		/* OpenSSL may hold decrypted bytes the socket watcher cannot see */
		hd_conn_resume_reading(&server->sock);
	}
}

/* ---------------------------------------------------------------------------
 * Connecting and logging in
 */

static void
send_startup(HdServer *server)
{
	HdMsg		msg;
	const HdConfig *config = &server->pool->config;

	hd_msg_begin(&msg, &server->out, 0);
	hd_msg_put_u32(&msg, HD_PROTOCOL_3_0);
	hd_msg_put_str(&msg, "user");
	hd_msg_put_str(&msg, server->pool->role);
	hd_msg_put_str(&msg, "database");
	hd_msg_put_str(&msg, config->database);
	if (server->dedicated && server->dedicated->replication[0])
	{
		hd_msg_put_str(&msg, "replication");
		hd_msg_put_str(&msg, server->dedicated->replication);
	}
	hd_msg_put_byte(&msg, 0);
	if (hd_msg_end(&msg) < 0)
		hd_server_close(server, "out of memory");
}

static void
on_connected(HdServer *server)
{
	int			error = 0;
	socklen_t	len = sizeof(error);

	if (getsockopt(server->sock.fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		error = errno;
	if (error != 0)
	{
		char		message[256];

		snprintf(message, sizeof(message), "could not connect to origin %s:%d: %s",
				 server->pool->config.host, server->pool->config.port, strerror(error));
		hd_pg_pool_server_failed(server->pool, server, HD_SQLSTATE_UNABLE_TO_CONNECT, message);
		hd_server_close(server, message);
		return;
	}
	server->conn.state = HD_CONN_LOGIN;
	server->conn.connected_at = ev_now(server->agent->loop);
	ev_io_start(server->agent->loop, &server->read_watcher);
	/* SSLRequest and TLS handshake per sslmode, then the StartupMessage */
	negotiate(server);
}

static void
server_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdServer   *server = w->data;

	(void) loop;
	(void) revents;
	if (server->conn.state == HD_CONN_CONNECTING)
		on_connected(server);
	else if (hd_origin_tls_negotiating(server))
		negotiate(server);
	else
		hd_server_flush(server);
}

static void
server_connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdServer   *server = w->data;
	char		message[256];

	(void) loop;
	(void) revents;
	if (server->conn.state != HD_CONN_CONNECTING && server->conn.state != HD_CONN_LOGIN)
		return;
	snprintf(message, sizeof(message),
			 "could not connect to origin %s:%d: timed out after %lld ms (server_connect_timeout)",
			 server->pool->config.host, server->pool->config.port,
			 (long long) server->agent->settings.server_connect_timeout_ms);
	hd_pg_pool_server_failed(server->pool, server, HD_SQLSTATE_UNABLE_TO_CONNECT, message);
	hd_server_close(server, message);
}

/* Send a PasswordMessage-type ('p') message: SASL responses and passwords. */
static void
send_password_message(HdServer *server, const char *prefix_mech, const char *data, size_t n)
{
	HdMsg		msg;

	hd_msg_begin(&msg, &server->out, 'p');
	if (prefix_mech)
	{
		/* SASLInitialResponse: mechanism, then the length of the data */
		hd_msg_put_str(&msg, prefix_mech);
		hd_msg_put_u32(&msg, (uint32_t) n);
	}
	hd_msg_put_bytes(&msg, data, n);
	if (hd_msg_end(&msg) < 0)
		hd_server_close(server, "out of memory");
}

static void
login_failed(HdServer *server, const char *sqlstate, const char *message)
{
	HdClient   *dedicated = server->dedicated;

	server->dedicated = NULL;
	if (dedicated)
		hd_client_fatal(dedicated, sqlstate, message, NULL);
	else
		hd_pg_pool_server_failed(server->pool, server, sqlstate, message);
	hd_server_close(server, message);
}

/* The SSLRequest exchange and TLS handshake (tls_negotiate.c), then the StartupMessage. */
static void
negotiate(HdServer *server)
{
	char		sqlstate[6];
	char		message[512];

	switch (hd_origin_tls_step(server, sqlstate, message, sizeof(message)))
	{
		case HD_CONN_WAIT:
			return;
		case HD_CONN_READY:
			send_startup(server);
			if (server->conn.state != HD_CONN_CLOSED)
				hd_server_flush(server);
			return;
		case HD_CONN_FAILED:
			login_failed(server, sqlstate, message);
			return;
	}
}

/* The origin's authentication request (message 'R'). */
static void
handle_auth_request(HdServer *server, const char *body, uint32_t len)
{
	HdPgPool   *pg = hd_pg_pool(server->pool);
	HdAuthError err = {0};
	const char *out = NULL;
	uint32_t	code;

	if (len < 4)
	{
		login_failed(server, HD_SQLSTATE_PROTOCOL_VIOLATION, "malformed authentication request from the origin");
		return;
	}
	code = hd_get_u32(body);
	if (code != HD_AUTHREQ_OK && pg->password == NULL && !pg->use_keys &&
		pg->md5_secret == NULL)
	{
		login_failed(server, HD_SQLSTATE_INVALID_PASSWORD,
					 "the origin asked for a password, and the agent has none for this role "
					 "(for the config's user: hyperdrive update --origin-password)");
		return;
	}
	switch (code)
	{
		case HD_AUTHREQ_OK:
			/* with SCRAM, only after the origin proved it knows the secret */
			if (server->scram && !server->scram_verified)
				login_failed(server, HD_SQLSTATE_INVALID_AUTHORIZATION,
							 "the origin accepted the login without completing SCRAM authentication");
			return;
		case HD_AUTHREQ_CLEARTEXT:
			if (pg->password == NULL)
			{
				login_failed(server, HD_SQLSTATE_INVALID_AUTHORIZATION,
							 "the origin asks for a cleartext password, which the agent does not "
							 "know for this role (it logs in with SCRAM keys or an md5 secret)");
				return;
			}
			send_password_message(server, NULL, pg->password, strlen(pg->password) + 1);
			return;
		case HD_AUTHREQ_MD5:
			{
				char		response[HD_MD5_SECRET_LEN + 1];

				if (len < 8 ||
					!(pg->password ?
					  hd_md5_client_response(pg->password, pg->pool.role,
											 (const unsigned char *) body + 4, response) :
					  pg->md5_secret ?
					  hd_md5_client_response_from_secret(pg->md5_secret,
														 (const unsigned char *) body + 4,
														 response) : false))
				{
					if (pg->password == NULL && pg->md5_secret == NULL)
						err = (HdAuthError) {HD_SQLSTATE_INVALID_AUTHORIZATION,
							"the origin asks for md5, and the agent has only SCRAM keys for this role", "", ""};
					break;
				}
				send_password_message(server, NULL, response, strlen(response) + 1);
				return;
			}
		case HD_AUTHREQ_SASL:
			/* body: mechanism names, each NUL-terminated, then an empty one */
			if (memmem(body + 4, len - 4, HD_SCRAM_MECHANISM "\0", sizeof(HD_SCRAM_MECHANISM)) == NULL)
			{
				login_failed(server, HD_SQLSTATE_INVALID_AUTHORIZATION,
							 "the origin offers no SASL mechanism the agent supports (SCRAM-SHA-256)");
				return;
			}
			if (pg->password)
				server->scram = hd_scram_client_new_password(pg->password, &err);
			else if (pg->use_keys)
				server->scram = hd_scram_client_new_keys(pg->client_key, pg->server_key, &err);
			else
			{
				login_failed(server, HD_SQLSTATE_INVALID_AUTHORIZATION,
							 "the origin asks for SCRAM, and the agent has only an md5 secret for this role");
				return;
			}
			if (server->scram == NULL ||
				hd_scram_client_first(server->scram, &out, &err) != HD_AUTH_OK)
				break;
			send_password_message(server, HD_SCRAM_MECHANISM, out, strlen(out));
			return;
		case HD_AUTHREQ_SASL_CONTINUE:
			if (server->scram == NULL ||
				hd_scram_client_handle_server_first(server->scram, body + 4, len - 4, &out,
													&err) != HD_AUTH_OK)
				break;
			send_password_message(server, NULL, out, strlen(out));
			return;
		case HD_AUTHREQ_SASL_FINAL:
			if (server->scram == NULL ||
				hd_scram_client_handle_server_final(server->scram, body + 4, len - 4,
													&err) != HD_AUTH_OK)
				break;
			server->scram_verified = true;
			return;
		default:
			{
				char		message[128];

				snprintf(message, sizeof(message),
						 "the origin requested an authentication method the agent does not support (code %u)",
						 code);
				login_failed(server, HD_SQLSTATE_INVALID_AUTHORIZATION, message);
				return;
			}
	}
	login_failed(server, err.sqlstate[0] ? err.sqlstate : HD_SQLSTATE_INVALID_AUTHORIZATION,
				 err.message[0] ? err.message : "authentication with the origin failed");
}

/* One complete message during login. */
static void
handle_login_message(HdServer *server, char type, const char *body, uint32_t len)
{
	switch (type)
	{
		case 'R':
			handle_auth_request(server, body, len);
			break;
		case 'S':
			{
				const char *name = body;
				const char *value = memchr(body, '\0', len);

				if (value && (size_t) (value + 1 - body) < len &&
					memchr(value + 1, '\0', len - (size_t) (value + 1 - body)))
					hd_pg_pool_remember_params(server->pool, name, value + 1);
				break;
			}
		case 'K':
			if (len >= 8)
			{
				server->backend_pid = hd_get_u32(body);
				server->backend_key = hd_get_u32(body + 4);
			}
			break;
		case 'Z':
			ev_timer_stop(server->agent->loop, &server->connect_timer);
			server->txn_status = len >= 1 ? body[0] : 'I';
			hd_info("origin connection %u to %s:%d/%s as %s is ready", server->backend_pid,
					server->pool->config.host, server->pool->config.port,
					server->pool->config.database, server->pool->role);
			if (server->dedicated)
			{
				HdClient   *client = server->dedicated;

				server->dedicated = NULL;
				hd_client_replication_ready(client, server);
			}
			else
				hd_pg_pool_server_ready(server);
			break;
		case 'E':
			{
				const char *sqlstate = hd_error_field(body, len, 'C');
				const char *message = hd_error_field(body, len, 'M');

				login_failed(server, sqlstate ? sqlstate : HD_SQLSTATE_CONNECTION_FAILURE,
							 message ? message : "the origin refused the login");
				break;
			}
		case 'N':
			break;				/* notices during login are not for anyone */
		default:
			login_failed(server, HD_SQLSTATE_PROTOCOL_VIOLATION, "unexpected message from the origin during login");
			break;
	}
}

/* ---------------------------------------------------------------------------
 * Forwarding replies
 */

/* A message from a server no client holds: only a few are expected. */
static void
handle_idle_message(HdServer *server, char type, const char *body, uint32_t len)
{
	if (type == 'S' || type == 'N' || type == 'A')
		return;					/* ParameterStatus, notice, notification: nobody to tell */
	if (type == 'E')
	{
		const char *message = hd_error_field(body, len, 'M');

		hd_server_close(server, message ? message : "error from an idle origin connection");
		return;
	}
	hd_server_close(server, "unexpected message from an idle origin connection");
}

/* Nothing owed to the client and no batch half sent: the server may go back. */
bool
hd_server_owes_nothing(const HdServer *server)
{
	return server->txn_status == 'I' && server->expect.count == 0 && !server->mid_batch &&
		server->cache_op == HD_COP_NONE;
}

/*
 * Nothing of the client's in flight or queued on it: what the cache answers
 * on the client's own connection now comes after everything sent before.
 */
bool
hd_server_quiet(const HdServer *server)
{
	return hd_server_owes_nothing(server) && hd_iobuf_live(&server->out) == 0 &&
		server->cancels == 0;
}

static void
to_client(HdServer *server, const char *msg, size_t total)
{
	if (server->client == NULL)
		return;
	if (msg[0] == 'E')
	{
		const char *severity = hd_error_field(msg + 5, total - 5, 'V');

		/* the backend ends the session after it (hd_server_close) */
		if (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
			server->origin_fatal = true;
	}
	server->pool->stats.bytes_to_clients += total;
	if (hd_iobuf_append(&server->client->out, msg, total) < 0)
		hd_client_fatal(server->client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
}

/* Answer, in order, what the agent answers itself and is now due. */
void
hd_server_emit_synthesized(HdServer *server)
{
	static const char parse_complete[5] = {'1', 0, 0, 0, 4};
	static const char close_complete[5] = {'3', 0, 0, 0, 4};
	HdExpect   *head;

	while ((head = hd_expect_head(&server->expect)) != NULL &&
		   head->action == HD_REPLY_SYNTHESIZE)
	{
		to_client(server, head->kind == HD_EXPECT_PARSE ? parse_complete : close_complete, 5);
		hd_expect_pop(&server->expect);
	}
}

/*
 * An ErrorResponse in the extended protocol: PostgreSQL skips every message
 * up to the next Sync, so nothing more is owed for them. The first entry is
 * the message that failed, the others were skipped (prepare.h keeps track
 * of the statements they would have made; the cache's own are its own).
 */
static void
void_until_sync(HdServer *server)
{
	HdExpect	entry;
	bool		first = true;

	while (hd_expect_pop_void(&server->expect, &entry))
	{
		if (!hd_expect_is_cache(&entry))
			hd_prepare_skipped(server, &entry, first);
		first = false;
	}
}

/*
 * The queue moves on past what the reply of type ends (stmt.h
 * hd_expect_match()); head is the entry it answers.
 */
static void
match_reply(HdServer *server, const HdExpect *head, char type)
{
	switch (hd_expect_match(head, type))
	{
		case HD_MATCH_VOIDS:
			void_until_sync(server);
			break;
		case HD_MATCH_ENDS:
			if (head->kind == HD_EXPECT_PARSE && head->stmt_id != 0)
			{
				/* an origin accepted it: a later Parse of it may be answered locally */
				HdStatement *stmt = hd_registry_get(&hd_pg_pool(server->pool)->registry,
													head->stmt_id);

				if (stmt)
					stmt->verified = true;
			}
			hd_expect_pop(&server->expect);
			break;
		case HD_MATCH_ASYNC:
		case HD_MATCH_UNOWED:
		case HD_MATCH_PART:
			break;
	}
}

/*
 * A reply to the result cache's own work (cache_fill.h): matched as every
 * reply is, then the op does what its entry says. The op's last
 * ReadyForQuery has left nothing owed when it ends, so that it may release
 * the connection (a refresh); the transaction status is the origin's.
 */
static void
handle_cache_reply(HdServer *server, char type, const char *msg, size_t total)
{
	HdExpect	entry = *hd_expect_head(&server->expect);

	if (type == 'Z')
		server->txn_status = msg[5];
	match_reply(server, &entry, type);
	hd_cache_reply(server, &entry, type, msg, total);
}

/*
 * The reply to the agent's own settings query (client.c sync_settings()):
 * dropped; at its ReadyForQuery the client goes on, or learns it failed.
 */
static void
handle_setup_reply(HdServer *server, char type, const char *msg, size_t total)
{
	if (type == 'E' && !server->setup_failed)
	{
		const char *message = hd_error_field(msg + 5, total - 5, 'M');

		server->setup_failed = true;
		free(server->setup_error);
		server->setup_error = strdup(message ? message : "could not apply session settings");
	}
	if (type != 'Z')
		return;
	server->txn_status = msg[5];
	hd_expect_pop(&server->expect);
	if (server->setup_failed)
	{
		/* what it holds now is not known: not for anyone else */
		server->conn.close_on_release = true;
		server->setup_failed = false;
		if (server->client)
			hd_client_setup_done(server->client, server->setup_error);
		return;
	}
	/* the check that learns the new state follows: the client goes on after it */
	if (server->client && !(hd_expect_head(&server->expect) &&
							hd_expect_head(&server->expect)->kind == HD_EXPECT_STATE))
		hd_client_setup_done(server->client, NULL);
}

/*
 * At the ReadyForQuery after a statement that SET or RESET tracked settings
 * (a simple Query, or an extended-protocol batch): if it succeeded and no
 * transaction block is open, the client's and the server's settings now
 * include the change; inside an open block the outcome is not known yet, so
 * the client keeps this server for good. A RESET goes back to the client's
 * startup value, which the server does not have: it is set again before the
 * client's next statement.
 */
static void
apply_pending(HdServer *server)
{
	HdClient   *client = server->client;

	if (client && !server->query_had_error)
	{
		if (server->txn_status != 'I')
			hd_client_pin(client, "SET inside a transaction block");
		else if (hd_settings_apply(&client->settings, &server->pending, &client->startup) < 0 ||
				 hd_settings_apply(&server->settings, &server->pending, NULL) < 0)
			hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		else
		{
			bool		err;
			char	   *diff;

			hd_state_note_tracked(server, &server->pending);
			/* a RESET to a startup value the server lacks: set before the next statement */
			diff = hd_settings_diff_sql(&server->settings, &client->settings, &err);
			if (diff || err)
				client->server_synced = false;
			free(diff);
			if (server->pending.discard_all)
				hd_prepare_forget_all(client);
		}
	}
	hd_classification_free(&server->pending);
	server->has_pending = false;
}

/*
 * One reply from a server that a client holds (or that runs the agent's own
 * work): match it to what is owed, forward it (or drop the replies to the
 * agent's own messages, or hand them to whose they are), and note the
 * transaction status at ReadyForQuery.
 */
static void
handle_reply(HdServer *server, char type, const char *msg, size_t total)
{
	HdExpect   *head;
	HdExpect	cur = {0};
	bool		forward;

	/* asynchronous messages belong to no request (the cache's ops decide for theirs) */
	head = hd_expect_head(&server->expect);
	if (hd_expect_match(head, type) == HD_MATCH_ASYNC)
	{
		if (head && hd_expect_is_cache(head))
			hd_cache_reply(server, head, type, msg, total);
		else
			to_client(server, msg, total);
		return;
	}
	hd_server_emit_synthesized(server);
	head = hd_expect_head(&server->expect);
	if (head && hd_expect_is_cache(head))
	{
		handle_cache_reply(server, type, msg, total);
		return;
	}
	if (head && head->kind == HD_EXPECT_QUERY && head->action == HD_REPLY_SWALLOW)
	{
		handle_setup_reply(server, type, msg, total);
		return;
	}
	if (head && head->kind == HD_EXPECT_STATE)
	{
		hd_state_check_reply(server, type, msg, total);
		return;
	}
	if (head)
		cur = *head;
	forward = hd_prepare_reply(server, head, type, msg, total);
	head = hd_expect_head(&server->expect);	/* (it may have queued more: the ring moved) */
	/* an injected message's replies are dropped, its errors are the client's */
	if (head && head->action == HD_REPLY_SWALLOW && type != 'E')
		forward = false;
	if (type == 'Z')
	{
		server->txn_status = msg[5];
		if (server->has_pending && head &&
			(head->kind == HD_EXPECT_QUERY || head->kind == HD_EXPECT_SYNC))
			apply_pending(server);
		if (server->txn_status == 'I')
		{
			server->transactions++;
			server->pool->stats.transactions++;
		}
		hd_prepare_note_ready(server, server->txn_status);
		server->query_had_error = false;
	}
	if (type == 'E')
		server->query_had_error = true;
	if (head)
		match_reply(server, head, type);	/* (nothing owed: pass it on) */
	if (type == 'C')
	{
		hd_prepare_note_tag(server, head ? &cur : NULL, msg + 5);
		if (!server->wrote)
			hd_cache_note_tag(server, msg + 5, (uint32_t) (total - 5));
	}
	if (forward)
		to_client(server, msg, total);
	if (type == 'E')
		server->pool->stats.errors_to_clients++;
	if (type == 'Z' && server->expect.count == 0 && server->request_sent_at > 0)
	{
		hd_histogram_observe(&server->pool->stats.query_latency,
							 ev_time() - server->request_sent_at);
		server->request_sent_at = 0;
	}
	hd_server_emit_synthesized(server);
	if (server->verify_resume)
	{
		server->verify_resume = false;
		if (server->client && hd_batch_wait(&server->client->batch) == HD_BWAIT_SHAPE)
			hd_client_verify_done(server->client);
	}
}

/*
 * What a server no client holds owes is the agent's own: its state check,
 * or a cache op (a background refresh has no client, cache.h).
 */
static bool
owes_agent_only(HdServer *server)
{
	HdExpect   *head = hd_expect_head(&server->expect);

	return hd_state_check_only_owed(server) || (head && hd_expect_is_cache(head));
}

/*
 * Whether the connection's state is checked after each of its client's
 * transactions, and a write's position learned for the client's reads
 * (cache.h): transaction pooling (a client not pinned), and a connection
 * the cache may answer its client on (cache_request.h
 * hd_cache_own_connection(): the key carries that state).
 */
static bool
checked_after_transactions(const HdServer *server, const HdClient *client)
{
	return (server->pool->config.pool_mode == HD_POOL_TRANSACTION && !client->pinned) ||
		hd_cache_own_connection(client);
}

static void
server_process(HdServer *server)
{
	while (server->conn.state != HD_CONN_CLOSED && hd_iobuf_live(&server->in) >= 5)
	{
		const char *head = hd_iobuf_head(&server->in);
		char		type = head[0];
		uint32_t	len = hd_get_u32(head + 1);

		if (len < 4)
		{
			hd_server_close(server, "invalid message length from the origin");
			return;
		}
		if (hd_iobuf_live(&server->in) < (size_t) len + 1)
			break;
		if (server->conn.state == HD_CONN_LOGIN)
			handle_login_message(server, type, head + 5, len - 4);
		else if (server->conn.state == HD_CONN_RESETTING)
		{
			if (type == 'Z')
			{
				/* DISCARD ALL deallocated every prepared statement, reset every setting */
				hd_server_stmts_clear(&server->stmts);
				hd_settings_clear(&server->settings);
				/* and the state its session had: learned again for the next (state_check.c) */
				free(server->state_baseline);
				server->state_baseline = NULL;
				hd_settings_clear(&server->state_tracked);
				server->state_tracked_all = false;
				server->state_dirty = false;
				server->conn.state = HD_CONN_IDLE;
				hd_iobuf_consume(&server->in, (size_t) len + 1);
				hd_pool_release(server->pool, &server->conn);
				continue;
			}
			if (type == 'E')
			{
				hd_server_close(server, "DISCARD ALL failed");
				return;
			}
		}
		else if (server->client == NULL && !owes_agent_only(server))
			handle_idle_message(server, type, head + 5, len - 4);
		else
		{
			if (type == 'Z' && len != 5)
			{
				hd_server_close(server, "invalid ReadyForQuery from the origin");
				return;
			}
			handle_reply(server, type, head, (size_t) len + 1);
		}
		if (server->conn.state == HD_CONN_CLOSED)
			return;
		hd_iobuf_consume(&server->in, (size_t) len + 1);
	}
	if (server->conn.state == HD_CONN_LOGIN)
		hd_server_flush(server);	/* our answers to the authentication requests */
	if (server->conn.state == HD_CONN_CLOSED || server->client == NULL)
		return;

	/* push the replies out, then give the server back if the client is done */
	{
		HdClient   *client = server->client;

		hd_client_flush(client);
		if (client->state == HD_CLIENT_CLOSED)
			return;
		/*
		 * Resumed once the client drained (client.c), or the server is
		 * released (pool.c). The agent's own checks are read on: nothing of
		 * them goes to the client, and the release waits for them.
		 */
		if (hd_iobuf_live(&client->out) > HD_BACKPRESSURE_BYTES &&
			!hd_state_check_only_owed(server) && server->cache_op != HD_COP_RYW)
			ev_io_stop(server->agent->loop, &server->read_watcher);
		if (hd_log_enabled(HD_LOG_DEBUG) && !hd_server_owes_nothing(server))
			hd_debug("origin connection %u kept by %s: status %c, %zu replies owed%s",
					 server->backend_pid, client->addr, server->txn_status,
					 server->expect.count, server->mid_batch ? ", batch not synced" : "");
		if (hd_server_owes_nothing(server) && checked_after_transactions(server, client) &&
			server->state_dirty && server->cancels == 0)
		{
			/*
			 * What did its transaction leave behind? (The client need not
			 * wait. While a cancel may land the connection is released
			 * unchecked instead, and checked before anyone gets it: pool.c.)
			 */
			if (hd_state_check_start(server, false) < 0)
			{
				hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
				return;
			}
			hd_server_flush(server);
			hd_server_resume_reading(server);	/* (a slow client paused it) */
			return;
		}
		if (hd_server_owes_nothing(server) && checked_after_transactions(server, client) &&
			hd_cache_want_ryw(server))
		{
			/* it wrote: learn the WAL position its reads must wait for (cache.h) */
			int			rc;

			if (server->cancels > 0)
				return;			/* not while a cancel may land: cancel.c settles it later */
			rc = hd_cache_after_write(server->agent->cache, server->pool->config.id,
									  &client->cache_waiter, server);
			if (rc < 0)
			{
				hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
				return;
			}
			if (rc > 0)
			{
				hd_batch_event(&client->batch, HD_BEV_CACHE_WAIT);
				ev_io_stop(server->agent->loop, &client->read_watcher);
				hd_server_flush(server);
				hd_server_resume_reading(server);	/* (a slow client paused it) */
				return;
			}
		}
		if (hd_server_owes_nothing(server) && !client->pinned &&
			server->pool->config.pool_mode == HD_POOL_TRANSACTION)
		{
			hd_histogram_observe(&server->pool->stats.transaction_latency,
								 ev_time() - client->server_taken_at);
			server->client = NULL;
			client->server = NULL;
			hd_debug("origin connection %u released by %s", server->backend_pid, client->addr);
			hd_pool_release(server->pool, &server->conn);
			/* the client may have sent its next transaction already (or, after a
			 * cache op, stopped reading: resume either way) */
			server->wrote = false;
			hd_client_resume_reading(client);
			/* (no caller of this callback holds the client's input) */
			hd_iobuf_trim(&client->in);
		}
		else if (hd_server_owes_nothing(server) && hd_cache_own_connection(client))
		{
			/*
			 * The client keeps its connection, and the cache may answer it
			 * there: one that waited for the cache's work or the check on it
			 * (stopped reading) goes on now.
			 */
			hd_client_resume_reading(client);
			hd_iobuf_trim(&client->in);
		}
	}
}

static void
server_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdServer   *server = w->data;
	long		n;

	(void) loop;
	(void) revents;
	if (hd_origin_tls_negotiating(server))
	{
		negotiate(server);
		return;
	}
	n = hd_conn_read(&server->sock, &server->in, HD_READ_CHUNK);
	if (n == -2)
		return;
	if (n <= 0)
	{
		char		reason[300];

		snprintf(reason, sizeof(reason), "%s",
				 n == 0 ? "the origin closed the connection" : hd_conn_error(&server->sock, errno));
		if (server->conn.state == HD_CONN_LOGIN)
			hd_pg_pool_server_failed(server->pool, server, HD_SQLSTATE_CONNECTION_FAILURE, reason);
		hd_server_close(server, reason);
		return;
	}
	server_process(server);
	hd_iobuf_trim(&server->in);
}

/*
 * Everything read is handled: forward the replies and, as after any reply,
 * give the server back if its client is done (cancel.c, once a cancel that
 * held it is over).
 */
void
hd_server_settle(HdServer *server)
{
	server_process(server);
}
