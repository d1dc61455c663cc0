/*
 * my_client.c
 *    One MySQL client session: the greeting, the login, then its commands,
 *    each served on an origin connection of its pool (my_pool.c) or by the
 *    agent itself, and the session state the agent carries for it.
 *
 * The server speaks first: accept() writes the greeting (or, over
 * max_client_conn, ERR 1040). The handshake response names the config (its
 * database) and the user; the password is checked with
 * mysql_native_password against SHA1(SHA1(password)) (a client that
 * answered another plugin is switched to it first): the config's own
 * user's from the config's password, any other user's as the origin stores
 * it, looked up there (my_lookup.h; the session reads nothing meanwhile).
 * A right answer proves SHA1(password), which becomes the login of that
 * user's pool; an unknown user, an account the agent cannot check and a
 * wrong password get the same ERR 1045. Then the session is
 * ACTIVE: one command at a time (the protocol has no pipelining the agent
 * must keep: a client sends its next command after the reply).
 *
 * Transaction pooling: a command that needs the origin gets a connection;
 * before the command is sent, the connection is brought to the session's
 * state (sync: its database, autocommit, the SETs the session made, and for
 * COM_STMT_EXECUTE the statement prepared there); after the reply the
 * connection goes back to the pool unless the final status flags say a
 * transaction is open, or the session is pinned, or the session sent long
 * data for an execute still to come. A statement whose effect on the
 * session the agent cannot carry pins the session to its connection for
 * good, counted and logged once: what my_sql.c says pins, and any statement
 * the origin reports changed the session state (session_track_state_change)
 * when the agent did not expect it to (a procedure's SET, say).
 *
 * Invariants:
 *   - A client's command is sent to a server only once the server carries
 *     exactly the client's state (sync succeeded), and a server is handed to
 *     another client only between that client's transactions.
 *   - Every byte of an origin's reply to a client's command goes to that
 *     client, in order, and to no one else; the agent's own statements'
 *     replies go to no client.
 *   - What cannot be told apart is not shared: a read of the previous
 *     statement's diagnostics (LAST_INSERT_ID(), SHOW WARNINGS, ...) runs
 *     only on the connection that ran the client's previous statement, if
 *     nobody used it since, and is refused otherwise.
 */
#include "mywire/my_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "auth/mysql_auth.h"
#include "base/log.h"
#include "mywire/my_lookup.h"
#include "net/tls.h"

static void client_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void client_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void process_input(HdMyClient *client);
static void command_done(HdMyClient *client);

/* Capabilities the agent offers clients. */
#define AGENT_CAPS (HD_MY_CLIENT_LONG_PASSWORD | HD_MY_CLIENT_FOUND_ROWS | \
	HD_MY_CLIENT_LONG_FLAG | HD_MY_CLIENT_CONNECT_WITH_DB | HD_MY_CLIENT_ODBC | \
	HD_MY_CLIENT_LOCAL_FILES | HD_MY_CLIENT_IGNORE_SPACE | HD_MY_CLIENT_PROTOCOL_41 | \
	HD_MY_CLIENT_INTERACTIVE | HD_MY_CLIENT_TRANSACTIONS | HD_MY_CLIENT_SECURE_CONNECTION | \
	HD_MY_CLIENT_MULTI_STATEMENTS | HD_MY_CLIENT_MULTI_RESULTS | HD_MY_CLIENT_PS_MULTI_RESULTS | \
	HD_MY_CLIENT_PLUGIN_AUTH | HD_MY_CLIENT_CONNECT_ATTRS | HD_MY_CLIENT_PLUGIN_AUTH_LENENC | \
	HD_MY_CLIENT_SESSION_TRACK | HD_MY_CLIENT_DEPRECATE_EOF)

#define NATIVE "mysql_native_password"
#define SHA2 "caching_sha2_password"
#define DEFAULT_VERSION "5.5.5-10.11.0-MariaDB-hyperdrive"
/* utf8mb4_general_ci: the greeting's collation until an origin's is known */
#define DEFAULT_COLLATION 45

/* MySQL error numbers the agent sends. */
#define ER_CON_COUNT_ERROR 1040
#define ER_ACCESS_DENIED_ERROR 1045
#define ER_NO_DB_ERROR 1046
#define ER_UNKNOWN_COM_ERROR 1047
#define ER_BAD_DB_ERROR 1049
#define ER_SERVER_SHUTDOWN 1053
#define ER_NET_PACKET_TOO_LARGE 1153
#define ER_NET_READ_ERROR 1158
#define ER_UNKNOWN_ERROR 1105
#define ER_NOT_ALLOWED_COMMAND 1148
#define ER_UNKNOWN_STMT_HANDLER 1243
#define ER_MALFORMED_PACKET 1835
#define ER_CLIENT_INTERACTION_TIMEOUT 4031
#define CR_OUT_OF_MEMORY 2008

/* ---------------------------------------------------------------------------
 * Output and closing
 */

void
hd_my_client_flush(HdMyClient *client)
{
	int			rc;

	if (client->state == HD_MY_CLIENT_CLOSED)
		return;
	rc = hd_conn_flush(&client->sock, &client->out);
	if (rc < 0)
	{
		hd_my_client_close(client);
		return;
	}
	if (rc > 0)
		return;
	if (client->close_after_flush)
	{
		hd_my_client_close(client);
		return;
	}
	/* drained: a server that stopped for this output may go on */
	if (client->server)
		hd_my_server_resume_reading(client->server);
}

/* An ERR for the command being served (seq: after the command's). */
static void
send_err(HdMyClient *client, uint8_t seq, uint16_t code, const char *sqlstate, const char *message)
{
	if (client->pool)
		client->pool->pool.stats.errors_to_clients++;
	if (hd_my_put_err(&client->out, seq, code, sqlstate, message) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	hd_my_client_flush(client);
}

void
hd_my_client_fatal(HdMyClient *client, uint16_t code, const char *sqlstate, const char *message)
{
	if (client->state == HD_MY_CLIENT_CLOSED || client->close_after_flush)
		return;
	hd_info("MySQL client %s: closing: %s", client->addr, message);
	ev_io_stop(client->my->loop, &client->read_watcher);
	client->close_after_flush = true;
	/* logged in: the ERR answers the command being served (or the next one) */
	send_err(client, client->state == HD_MY_CLIENT_ACTIVE ? client->reply_seq : client->auth_seq,
			 code, sqlstate, message);
}

void
hd_my_client_close(HdMyClient *client)
{
	HdMyAgent  *my = client->my;
	HdMyServer *server = client->server;

	if (client->state == HD_MY_CLIENT_CLOSED)
		return;
	client->state = HD_MY_CLIENT_CLOSED;
	hd_conn_close(&client->sock);
	hd_my_lookup_cancel(my, client);
	if (client->wait.waiting)
		hd_pool_cancel_wait(&client->pool->pool, &client->wait);
	if (server)
	{
		/* its statement is running: nobody waits for its answer */
		if (client->sent)
			hd_my_server_kill_query(server);
		/*
		 * What it left on its server (a transaction, a pin's state, a reply
		 * still coming) must not reach anyone: reset before reuse. The reset
		 * queues behind what the server still owes.
		 */
		if (client->pinned || client->in_trans || !hd_my_server_idle(server) ||
			client->long_data || client->pool->pool.config.pool_mode == HD_POOL_SESSION)
			server->dirty = true;
		hd_my_pool_release(client);
	}
	hd_my_client_stmts_free(client);
	(*my->root.nclients)--;
	hd_list_del(&client->link);
	hd_list_append(&my->dead_clients, &client->link);
}

void
hd_my_client_free(HdMyClient *client)
{
	hd_list_del(&client->link);
	hd_iobuf_free(&client->in);
	hd_iobuf_free(&client->out);
	hd_conn_free(&client->sock);
	free(client->sets);
	hd_free_secret(client->plain_password);
	free(client);
}

/* ---------------------------------------------------------------------------
 * The client-protocol driver's table (net/client_protocol.h)
 */

static HdMyClient *
client_of(const HdClientSession *session)
{
	return hd_container_of(session, HdMyClient, session);
}

static uint16_t
code_for(const char *sqlstate)
{
	if (strcmp(sqlstate, "53300") == 0)
		return ER_CON_COUNT_ERROR;
	if (strcmp(sqlstate, "57P01") == 0)
		return ER_SERVER_SHUTDOWN;
	if (strcmp(sqlstate, "57P05") == 0)
		return ER_CLIENT_INTERACTION_TIMEOUT;
	if (strncmp(sqlstate, "28", 2) == 0)
		return ER_ACCESS_DENIED_ERROR;
	return ER_UNKNOWN_ERROR;
}

/* MySQL's SQLSTATE for a condition the agent names with PostgreSQL's. */
static const char *
sqlstate_for_mysql(const char *sqlstate)
{
	if (strcmp(sqlstate, "53300") == 0)
		return "08004";
	if (strcmp(sqlstate, "57P01") == 0)
		return "08S01";
	if (strncmp(sqlstate, "28", 2) == 0)
		return "28000";
	if (strncmp(sqlstate, "08", 2) == 0)
		return "08S01";
	return "HY000";
}

static void
my_terminate(HdClientSession *session, const char *sqlstate, const char *message)
{
	HdMyClient *client = client_of(session);

	hd_my_client_fatal(client, code_for(sqlstate), sqlstate_for_mysql(sqlstate), message);
}

static bool
my_idle(const HdClientSession *session)
{
	const HdMyClient *client = client_of(session);

	if (client->state != HD_MY_CLIENT_ACTIVE)
		return client->state != HD_MY_CLIENT_CLOSED;
	return client->command < 0 && !client->wait.waiting && !client->in_trans &&
		(client->server == NULL || hd_my_server_idle(client->server));
}

static HdFrameStatus
my_frame(const char *bytes, size_t len, HdClientFrame *out)
{
	size_t		total;
	size_t		payload;

	out->size = 0;
	if (len >= HD_MY_HEADER)
		out->size = HD_MY_HEADER + hd_my_get_u24(bytes);
	if (!hd_my_command_peek(bytes, len, &total, &payload))
		return HD_FRAME_NEED_MORE;
	if (payload > HD_MY_MAX_COMMAND)
	{
		snprintf(out->reason, sizeof(out->reason), "a command larger than %u bytes",
				 HD_MY_MAX_COMMAND);
		return HD_FRAME_INVALID;
	}
	out->size = total;
	return HD_FRAME_COMPLETE;
}

static HdClientMsgKind
my_classify(const char *msg, size_t size)
{
	HdMySqlClass cls;

	if (size < HD_MY_HEADER + 1)
		return HD_CLIENT_MSG_OTHER;
	switch ((unsigned char) msg[HD_MY_HEADER])
	{
		case HD_MY_COM_QUERY:
			hd_my_sql_classify(msg + HD_MY_HEADER + 1, size - HD_MY_HEADER - 1, &cls);
			if (cls.kind == HD_MY_SQL_CARRY || cls.kind == HD_MY_SQL_USE || cls.kind == HD_MY_SQL_PIN)
				return HD_CLIENT_MSG_SESSION_STATE;
			return cls.txn_control ? HD_CLIENT_MSG_TXN_CONTROL : HD_CLIENT_MSG_QUERY;
		case HD_MY_COM_STMT_PREPARE:
		case HD_MY_COM_STMT_EXECUTE:
		case HD_MY_COM_FIELD_LIST:
			return HD_CLIENT_MSG_QUERY;
		case HD_MY_COM_INIT_DB:
		case HD_MY_COM_RESET_CONNECTION:
		case HD_MY_COM_CHANGE_USER:
		case HD_MY_COM_SET_OPTION:
			return HD_CLIENT_MSG_SESSION_STATE;
		default:
			return HD_CLIENT_MSG_OTHER;
	}
}

static int
my_encode_error(HdIoBuf *out, bool fatal, const char *sqlstate, const char *message,
				const char *detail)
{
	char		text[1024];

	(void) fatal;
	snprintf(text, sizeof(text), "%s%s%s", message, detail ? ": " : "", detail ? detail : "");
	return hd_my_put_err(out, 1, code_for(sqlstate), sqlstate_for_mysql(sqlstate), text);
}

static int
my_encode_ready(HdIoBuf *out, const HdClientSession *session)
{
	const HdMyClient *client = client_of(session);

	return hd_my_put_ok(out, 1, client->caps, client->status, 0);
}

static HdClientSession *my_accept(void *agent, int fd, const char *peer, bool local);
static bool probe_first_origin(HdMyAgent *my);
static void greet(HdMyClient *client);

const HdClientProtocol hd_my_client_protocol = {
	.name = "mysql",
	.accept = my_accept,
	.frame = my_frame,
	.classify = my_classify,
	.encode_error = my_encode_error,
	.encode_ready = my_encode_ready,
	.idle = my_idle,
	.terminate = my_terminate,
};

/* ---------------------------------------------------------------------------
 * Accept and log in
 */

/* Printable nonce bytes: some clients treat the nonce as a C string. */
static void
make_nonce(uint8_t nonce[HD_MY_NONCE_BYTES])
{
	if (getrandom(nonce, HD_MY_NONCE_BYTES, 0) != HD_MY_NONCE_BYTES)
	{
		for (int i = 0; i < HD_MY_NONCE_BYTES; i++)
			nonce[i] = (uint8_t) random();
	}
	for (int i = 0; i < HD_MY_NONCE_BYTES; i++)
		nonce[i] = (uint8_t) (0x21 + nonce[i] % 94);
}

static HdClientSession *
my_accept(void *agent, int fd, const char *peer, bool local)
{
	HdMyAgent  *my = agent;
	HdMyClient *client = calloc(1, sizeof(*client));

	if (client == NULL)
	{
		hd_error("MySQL client %s: out of memory", peer);
		close(fd);
		return NULL;
	}
	client->session.protocol = &hd_my_client_protocol;
	client->my = my;
	client->local = local;
	client->command = -1;
	client->reply_seq = 1;
	client->autocommit = true;
	client->status = HD_MY_STATUS_AUTOCOMMIT;
	client->id = ++my->next_client_id;
	client->thread_id = ++my->next_thread_id;
	client->connected_at = client->last_activity = client->login_started_at = ev_now(my->loop);
	snprintf(client->addr, sizeof(client->addr), "%s", peer);
	hd_list_init(&client->wait.link);
	hd_conn_init(&client->sock, my->loop, fd, &client->read_watcher, &client->write_watcher);
	ev_io_init(&client->read_watcher, client_read_cb, fd, EV_READ);
	ev_io_init(&client->write_watcher, client_write_cb, fd, EV_WRITE);
	client->read_watcher.data = client->write_watcher.data = client;
	hd_list_append(&my->clients, &client->link);
	(*my->root.nclients)++;
	client->state = HD_MY_CLIENT_HANDSHAKE;
	client->auth_seq = 0;
	/* over max_client_conn: ERR 1040 instead of the greeting */
	if (my->root.refuse_over_limit(my->root.agent, &client->session))
		return &client->session;

	/* the greeting says what the origin says of itself: known, or asked first */
	if (my->origin_known || !probe_first_origin(my))
		greet(client);
	return &client->session;
}

/* The first MySQL config's origin greeting, before the first client is greeted. */
static bool
probe_first_origin(HdMyAgent *my)
{
	for (size_t i = 0; i < my->configs->count; i++)
		if (my->configs->items[i].protocol == HD_PROTOCOL_MYSQL)
			return hd_my_probe_greeting(my, &my->configs->items[i]);
	return false;
}

/*
 * The greeting: the origin's version, character set and (a MariaDB origin)
 * extended capabilities, so that a client sees the server it would see
 * directly, with the agent's own thread id, nonce and capabilities.
 */
static void
greet(HdMyClient *client)
{
	HdMyAgent  *my = client->my;
	HdMyGreeting g;

	client->greeted = true;
	memset(&g, 0, sizeof(g));
	snprintf(g.version, sizeof(g.version), "%s", my->version[0] ? my->version : DEFAULT_VERSION);
	g.thread_id = client->thread_id;
	make_nonce(client->nonce);
	memcpy(g.nonce, client->nonce, sizeof(g.nonce));
	g.caps = AGENT_CAPS;
	if (my->origin_known && !(my->origin_caps & HD_MY_CLIENT_LONG_PASSWORD))
	{
		/* a MariaDB origin: a MariaDB server's greeting */
		g.caps &= ~HD_MY_CLIENT_LONG_PASSWORD;
		g.ext_caps = client->ext_offered = my->origin_ext_caps & HD_MY_OFFERED_EXT;
	}
	/* TLS where there is a context, and not on a local socket (as PostgreSQL) */
	if (*my->root.tls_ctx && !client->local)
		g.caps |= HD_MY_CLIENT_SSL;
	g.collation = my->origin_known ? my->origin_collation : DEFAULT_COLLATION;
	g.status = HD_MY_STATUS_AUTOCOMMIT;
	snprintf(g.plugin, sizeof(g.plugin), "%s",
			 my->settings->mysql_auth_plugin == HD_MY_AUTH_SHA2 ? SHA2 : NATIVE);
	if (hd_my_put_greeting(&client->out, &g) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	client->auth_seq = 1;
	ev_io_start(my->loop, &client->read_watcher);
	hd_my_client_flush(client);
}

/* The probe ended (the origin's greeting known, or not): the clients that waited are greeted. */
void
hd_my_client_greet_waiting(HdMyAgent *my)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &my->clients)
	{
		HdMyClient *client = hd_container_of(item, HdMyClient, link);

		if (!client->greeted && client->state == HD_MY_CLIENT_HANDSHAKE && !client->close_after_flush)
			greet(client);
	}
}

/* The MySQL config a login names (its database), or the only one when it names none. */
static const HdConfig *
find_config(HdMyClient *client, const HdMyLogin *login, char *why, size_t whylen, uint16_t *code)
{
	const HdConfigList *list = client->my->configs;
	const HdConfig *only = NULL;
	int			nmysql = 0;

	for (size_t i = 0; i < list->count; i++)
	{
		const HdConfig *cfg = &list->items[i];

		if (cfg->protocol != HD_PROTOCOL_MYSQL)
		{
			if (login->has_database && strcmp(cfg->name, login->database) == 0)
			{
				hd_config_wrong_listener(cfg, client->my->settings->listen_port, why, whylen);
				*code = ER_BAD_DB_ERROR;
				return NULL;
			}
			continue;
		}
		nmysql++;
		only = cfg;
		if (login->has_database && strcmp(cfg->name, login->database) == 0)
			return cfg;
	}
	if (!login->has_database && nmysql == 1)
		return only;
	if (login->has_database)
	{
		snprintf(why, whylen, "Unknown database '%s' (hyperdrive: no MySQL config of that name; "
				 "the database to connect to is the config's name)", login->database);
		*code = ER_BAD_DB_ERROR;
	}
	else
	{
		snprintf(why, whylen, "No database selected (hyperdrive: connect with the config's name "
				 "as the database; this agent has %d MySQL configs)", nmysql);
		*code = ER_NO_DB_ERROR;
	}
	return NULL;
}

static void
login_denied(HdMyClient *client, bool with_password)
{
	char		msg[300];

	snprintf(msg, sizeof(msg), "Access denied for user '%s'@'%s' (using password: %s)",
			 client->user, client->addr, with_password ? "YES" : "NO");
	hd_info("MySQL client %s: password authentication failed for user \"%s\"", client->addr,
			client->user);
	hd_my_client_fatal(client, ER_ACCESS_DENIED_ERROR, "28000", msg);
}

/* Logged in: OK, and its commands from now on. */
static void
logged_in(HdMyClient *client)
{
	HdMyPool   *pool = client->pool;

	client->state = HD_MY_CLIENT_ACTIVE;
	client->last_activity = ev_now(client->my->loop);
	hd_debug("MySQL client %s logged in as %s to config %s%s", client->addr, client->user,
			 pool->pool.config.name, client->tls ? " over TLS" : "");
	if (hd_my_put_ok(&client->out, client->auth_seq, client->caps, client->status, 0) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	hd_my_client_flush(client);
}

/*
 * caching_sha2_password's fast path, against the config's password: the
 * scramble right, "fast authentication succeeded" (0x01 0x03), then OK.
 */
static void
check_sha2(HdMyClient *client, const uint8_t *token, size_t len)
{
	const char *pw = client->pool->password;
	static const char fast_ok[2] = {0x01, 0x03};

	if (!hd_my_sha2_check(pw, strlen(pw), client->nonce, token, len))
	{
		login_denied(client, len > 0);
		return;
	}
	if (hd_my_put_packet(&client->out, client->auth_seq++, fast_ok, sizeof(fast_ok)) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	logged_in(client);
}

/*
 * An SSLRequest (the handshake response's first 32 bytes, CLIENT_SSL): the
 * TLS handshake, then the whole handshake response comes over TLS.
 */
static void
start_tls(HdMyClient *client, size_t plen)
{
	char		reason[256];

	if (*client->my->root.tls_ctx == NULL || client->local || client->tls)
	{
		hd_my_client_fatal(client, ER_NOT_ALLOWED_COMMAND, "08S01",
						   "TLS was not offered on this connection");
		return;
	}
	/* sent after the request, before the handshake: not encrypted, maybe injected */
	if (hd_iobuf_live(&client->in) > HD_MY_HEADER + plen)
	{
		hd_my_client_fatal(client, ER_MALFORMED_PACKET, "08S01",
						   "received unencrypted data after the SSL request");
		return;
	}
	if (hd_tls_accept_start(&client->sock, *client->my->root.tls_ctx, reason, sizeof(reason)) < 0)
	{
		hd_warning("MySQL client %s: could not start TLS: %s", client->addr, reason);
		hd_my_client_close(client);
		return;
	}
	client->tls = true;
}

/* The TLS handshake's next step: true once it is done and the connection can be read. */
static bool
tls_handshake(HdMyClient *client)
{
	char		desc[128];

	switch (hd_conn_handshake(&client->sock))
	{
		case HD_CONN_READY:
			hd_debug("MySQL client %s: TLS established (%s)", client->addr,
					 hd_tls_describe(&client->sock, desc, sizeof(desc)));
			return true;
		case HD_CONN_WAIT:
			return false;
		case HD_CONN_FAILED:
			break;
	}
	hd_info("MySQL client %s: could not accept a TLS connection: %s", client->addr,
			hd_conn_error(&client->sock, 0));
	hd_my_client_close(client);
	return false;
}

/* The pool of its config, user, variant and collation. */
static HdMyPool *
pool_for(HdMyClient *client, const HdConfig *config)
{
	uint32_t	variant = client->caps & HD_MY_VARIANT_CAPS;

	if (!config->allow_load_local)
		variant &= ~HD_MY_CLIENT_LOCAL_FILES;
	return hd_my_pool_get(client->my, config, client->user, variant, client->ext_caps, client->collation);
}

/*
 * Another user's hash is in (my_lookup.h): the client's answer is checked
 * against it, which yields SHA1(password), all its pool needs to log in to
 * the origin as that user. An unknown user, an account that cannot log in
 * through the agent and a wrong password all get the same answer.
 */
static void
lookup_done(void *arg, int status, const uint8_t stage2[20], const char *message)
{
	HdMyClient *client = arg;
	const HdConfig *config = hd_my_config_by_id(client->my, client->config_id);
	uint8_t		stage1[20];
	bool		ok = false;
	char		msg[400];

	client->looking_up = false;
	if (client->state == HD_MY_CLIENT_CLOSED || client->close_after_flush)
		return;
	if (status == HD_MY_LOOKUP_FAILED)
	{
		hd_warning("MySQL client %s: cannot check the login of user \"%s\": %s", client->addr,
				   client->user, message);
		snprintf(msg, sizeof(msg), "Access denied for user '%s'@'%s' (hyperdrive could not read "
				 "the user's password hash on the origin; the agent's log says why)", client->user,
				 client->addr);
		hd_my_client_fatal(client, ER_ACCESS_DENIED_ERROR, "28000", msg);
		return;
	}
	if (status == HD_MY_LOOKUP_FOUND && client->plain_password)
		ok = hd_my_native_check_plain(stage2, client->plain_password,
									  strlen(client->plain_password), stage1);
	else if (status == HD_MY_LOOKUP_FOUND)
		ok = hd_my_native_check(stage2, client->nonce, client->token, client->token_len, stage1);
	else if (status == HD_MY_LOOKUP_NO_PASSWORD)
		ok = client->plain_password ? client->plain_password[0] == '\0' :
			hd_my_native_check_empty(client->token_len);
	else
		hd_info("MySQL client %s: %s", client->addr, message);
	if (!ok && config && !client->looked_up_again &&
		(status == HD_MY_LOOKUP_FOUND || status == HD_MY_LOOKUP_NO_PASSWORD))
	{
		/* the hash may be a cached one the origin changed since (a new password): read it again */
		hd_my_lookup_forget(client->my, config, client->user);
		client->looked_up_again = true;
		if (hd_my_lookup(client->my, config, client->user, lookup_done, client) == 0)
		{
			client->looking_up = true;
			return;
		}
	}
	memset(client->token, 0, sizeof(client->token));
	if (client->plain_password)
	{
		hd_free_secret(client->plain_password);
		client->plain_password = NULL;
		client->token_len = 1;	/* "using password: YES" */
	}
	if (!ok || config == NULL || (client->pool = pool_for(client, config)) == NULL)
	{
		if (ok)
			hd_my_client_fatal(client, ER_UNKNOWN_ERROR, "HY000", config == NULL ?
							   "the config was deleted" :
							   "out of memory, or a user name too long for hyperdrive (47 bytes)");
		else
			login_denied(client, client->token_len > 0);
		return;
	}
	client->pool->has_stage1 = status == HD_MY_LOOKUP_FOUND;
	if (client->pool->has_stage1)
		memcpy(client->pool->stage1, stage1, sizeof(stage1));
	memset(stage1, 0, sizeof(stage1));
	logged_in(client);
	process_input(client);
}

/* Another user than the config's: its hash is looked up on the origin first. */
static void
start_lookup(HdMyClient *client, const uint8_t *token, size_t len)
{
	const HdConfig *config = hd_my_config_by_id(client->my, client->config_id);

	/* no answer of another length is right, whoever the user */
	if (len != 0 && len != sizeof(client->token))
	{
		login_denied(client, true);
		return;
	}
	if (len > 0)
		memcpy(client->token, token, len);
	client->token_len = len;
	client->looked_up_again = false;
	if (config == NULL || hd_my_lookup(client->my, config, client->user, lookup_done, client) < 0)
	{
		login_denied(client, len > 0);
		return;
	}
	client->looking_up = true;
}

/*
 * The client's mysql_native_password answer: checked against its pool's
 * password (the config's own user), else against the looked-up hash.
 */
static void
check_password(HdMyClient *client, const uint8_t *token, size_t len)
{
	HdMyPool   *pool = client->pool;
	uint8_t		stage2[20];
	uint8_t		stage1[20];

	if (pool == NULL)
	{
		start_lookup(client, token, len);
		return;
	}
	if (!pool->has_stage1)
	{
		/* an account without a password: only an empty answer logs in */
		if (len != 0)
		{
			login_denied(client, true);
			return;
		}
	}
	else
	{
		hd_my_native_stage2(pool->stage1, stage2);
		if (!hd_my_native_check(stage2, client->nonce, token, len, stage1))
		{
			login_denied(client, len > 0);
			return;
		}
	}
	logged_in(client);
}

static void start_tls(HdMyClient *client, size_t plen);
static void check_sha2(HdMyClient *client, const uint8_t *token, size_t len);
static void auth_switch(HdMyClient *client, const char *plugin);
static void ask_password(HdMyClient *client);
static void password_packet(HdMyClient *client, const unsigned char *p, size_t len);

/*
 * A login (the handshake response, or COM_CHANGE_USER): its config (the
 * database it names), its user, its pool (the capabilities and collation it
 * negotiated), then its password, with an auth switch first if it answered
 * for a plugin the agent does not check that way.
 */
static void
login_as(HdMyClient *client, const HdMyLogin *login)
{
	char		why[700];
	uint16_t	code = ER_UNKNOWN_ERROR;
	const HdConfig *config;

	client->collation = login->collation;
	snprintf(client->user, sizeof(client->user), "%s", login->user);
	if ((config = find_config(client, login, why, sizeof(why), &code)) == NULL)
	{
		hd_my_client_fatal(client, code, code == ER_NO_DB_ERROR ? "3D000" : "42000", why);
		return;
	}
	snprintf(client->config_id, sizeof(client->config_id), "%s", config->id);
	snprintf(client->db, sizeof(client->db), "%s", config->database);
	/* another user's pool comes once its password is proven (lookup_done()) */
	if (strcmp(login->user, config->user) == 0 && (client->pool = pool_for(client, config)) == NULL)
	{
		hd_my_client_fatal(client, ER_UNKNOWN_ERROR, "HY000",
						   "out of memory, or a user name too long for hyperdrive (47 bytes)");
		return;
	}
	if (login->has_plugin && strcmp(login->plugin, SHA2) == 0 && client->pool && client->pool->password)
	{
		const char *pw = client->pool->password;

		/*
		 * caching_sha2_password's fast path: the agent knows the config's
		 * password. A client whose answer was for another plugin's nonce
		 * sends none: it is asked again, for this plugin.
		 */
		if (login->auth_len == 0 && pw[0] != '\0')
			auth_switch(client, SHA2);
		else
			check_sha2(client, login->auth, login->auth_len);
		return;
	}
	if (login->has_plugin && strcmp(login->plugin, SHA2) == 0 && client->pool == NULL)
	{
		/*
		 * another user: only its hash can be known, so the password itself
		 * (full authentication), after a scramble for this plugin's nonce
		 * if the client sent none
		 */
		if (login->auth_len == 0)
			auth_switch(client, SHA2);
		else
			ask_password(client);
		return;
	}
	if (login->has_plugin && strcmp(login->plugin, NATIVE) != 0)
	{
		auth_switch(client, NATIVE);
		return;
	}
	check_password(client, login->auth, login->auth_len);
}

/* An auth switch request: authenticate with plugin, for the same nonce. */
static void
auth_switch(HdMyClient *client, const char *plugin)
{
	size_t		mark;

	if (hd_my_packet_begin(&client->out, &mark) != 0 ||
		hd_iobuf_append(&client->out, "\xfe", 1) != 0 ||
		hd_iobuf_append(&client->out, plugin, strlen(plugin) + 1) != 0 ||
		hd_iobuf_append(&client->out, client->nonce, HD_MY_NONCE_BYTES) != 0 ||
		hd_iobuf_append(&client->out, "", 1) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	hd_my_packet_end(&client->out, mark, client->auth_seq);
	client->auth_seq++;
	client->switched_to_sha2 = strcmp(plugin, SHA2) == 0;
	client->state = HD_MY_CLIENT_AUTH_SWITCH;
	hd_my_client_flush(client);
}

static void check_sha2(HdMyClient *client, const uint8_t *token, size_t len);

static void
handshake_response(HdMyClient *client, const unsigned char *p, size_t len)
{
	HdMyLogin	login;
	char		why[300];

	if (!hd_my_parse_login(p, len, &login, why, sizeof(why)))
	{
		hd_my_client_fatal(client, ER_MALFORMED_PACKET, "08S01", why);
		return;
	}
	if (login.ssl_only)
	{
		start_tls(client, len);
		return;
	}
	client->caps = login.caps & (AGENT_CAPS | (client->tls ? HD_MY_CLIENT_SSL : 0));
	client->ext_caps = (login.caps & HD_MY_CLIENT_LONG_PASSWORD) ? 0 : login.ext_caps & client->ext_offered;
	login_as(client, &login);
}

/* ---------------------------------------------------------------------------
 * Session state
 */

int
hd_my_sets_apply(HdMySqlSet **sets, int *nsets, const HdMySqlSet *add, int nadd)
{
	for (int i = 0; i < nadd; i++)
	{
		int			j;

		for (j = 0; j < *nsets; j++)
			if (strcmp((*sets)[j].name, add[i].name) == 0)
				break;
		if (j == *nsets)
		{
			HdMySqlSet *grown;

			if (*nsets == HD_MY_SETS_MAX)
				return -1;
			if ((grown = realloc(*sets, sizeof(**sets) * (size_t) (*nsets + 1))) == NULL)
				return -1;
			*sets = grown;
			(*nsets)++;
		}
		(*sets)[j] = add[i];
	}
	return 0;
}

static const HdMySqlSet *
find_set(const HdMySqlSet *sets, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(sets[i].name, name) == 0)
			return &sets[i];
	return NULL;
}

static void
pin(HdMyClient *client, const char *why)
{
	if (client->pinned)
		return;
	client->pinned = why;
	client->my->pins++;
	client->pool->pool.stats.pinned_clients++;
	hd_info("MySQL client %s (config %s) pinned to its origin connection: %s", client->addr,
			client->pool->pool.config.name, why);
}

/*
 * The statements that bring server to client's state, queued (owed as
 * SYNC); the caller sends them. 0 (n says how many), -1 out of memory.
 */
static int
queue_sync(HdMyClient *client, HdMyServer *server, int *n)
{
	HdIoBuf		sql = {0};
	int			rc = -1;

	*n = 0;
	if (strcmp(server->db, client->db) != 0)
	{
		if (hd_my_server_command(server, HD_MY_COM_INIT_DB, client->db, strlen(client->db)) != 0 ||
			hd_my_server_owe(server, HD_MY_OWED_SYNC, HD_MY_REPLY_OK, false, NULL) != 0)
			return -1;
		snprintf(server->db, sizeof(server->db), "%s", client->db);
		(*n)++;
	}
	/* one SET for the settings and autocommit */
	for (int i = 0; i < server->nsets; i++)
		if (find_set(client->sets, client->nsets, server->sets[i].name) == NULL)
		{
			if (hd_iobuf_append(&sql, hd_iobuf_live(&sql) ? ", " : "SET ", hd_iobuf_live(&sql) ? 2 : 4) != 0 ||
				hd_iobuf_append(&sql, "SESSION ", 8) != 0 ||
				hd_iobuf_append(&sql, server->sets[i].name, strlen(server->sets[i].name)) != 0 ||
				hd_iobuf_append(&sql, " = DEFAULT", 10) != 0)
				goto done;
		}
	for (int i = 0; i < client->nsets; i++)
	{
		const HdMySqlSet *has = find_set(server->sets, server->nsets, client->sets[i].name);

		if (has && strcmp(has->value, client->sets[i].value) == 0)
			continue;
		if (hd_iobuf_append(&sql, hd_iobuf_live(&sql) ? ", " : "SET ", hd_iobuf_live(&sql) ? 2 : 4) != 0 ||
			hd_iobuf_append(&sql, "SESSION ", 8) != 0 ||
			hd_iobuf_append(&sql, client->sets[i].name, strlen(client->sets[i].name)) != 0 ||
			hd_iobuf_append(&sql, " = ", 3) != 0 ||
			hd_iobuf_append(&sql, client->sets[i].value, strlen(client->sets[i].value)) != 0)
			goto done;
	}
	if (server->autocommit != client->autocommit)
	{
		const char *ac = client->autocommit ? "autocommit = 1" : "autocommit = 0";

		if (hd_iobuf_append(&sql, hd_iobuf_live(&sql) ? ", " : "SET ", hd_iobuf_live(&sql) ? 2 : 4) != 0 ||
			hd_iobuf_append(&sql, ac, strlen(ac)) != 0)
			goto done;
	}
	if (hd_iobuf_live(&sql) > 0)
	{
		if (hd_my_server_command(server, HD_MY_COM_QUERY, hd_iobuf_head(&sql), hd_iobuf_live(&sql)) != 0 ||
			hd_my_server_owe(server, HD_MY_OWED_SYNC, HD_MY_REPLY_QUERY, false, NULL) != 0)
			goto done;
		(*n)++;
		/* the server carries the client's settings now */
		free(server->sets);
		server->sets = NULL;
		server->nsets = 0;
		if (hd_my_sets_apply(&server->sets, &server->nsets, client->sets, client->nsets) != 0)
			goto done;
		server->autocommit = client->autocommit;
	}
	rc = 0;
done:
	hd_iobuf_free(&sql);
	return rc;
}

/* ---------------------------------------------------------------------------
 * Commands
 */

/* The command at the head of client->in: its first byte and its payload. */
static const unsigned char *
command_payload(HdMyClient *client, size_t *len)
{
	const unsigned char *head = (const unsigned char *) hd_iobuf_head(&client->in);

	*len = hd_my_get_u24(head);
	return head + HD_MY_HEADER;
}

/* The sequence id the reply to the command at the head of client->in starts with. */
static uint8_t
reply_seq(HdMyClient *client)
{
	size_t		total;
	size_t		payload;
	const unsigned char *head = (const unsigned char *) hd_iobuf_head(&client->in);
	size_t		at = 0;
	uint8_t		last = 0;

	if (!hd_my_command_peek(head, hd_iobuf_live(&client->in), &total, &payload))
		return 1;
	while (at < total)
	{
		last = head[at + 3];
		at += HD_MY_HEADER + hd_my_get_u24(head + at);
	}
	return (uint8_t) (last + 1);
}

static void
consume_command(HdMyClient *client)
{
	size_t		total;
	size_t		payload;

	if (hd_my_command_peek(hd_iobuf_head(&client->in), hd_iobuf_live(&client->in), &total, &payload))
		hd_iobuf_consume(&client->in, total);
}

/* The agent answers the command itself: OK, or ERR. */
static void
answer_ok(HdMyClient *client)
{
	uint8_t		seq = reply_seq(client);

	consume_command(client);
	if (hd_my_put_ok(&client->out, seq, client->caps, client->status, 0) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	client->command = -1;
	hd_my_client_flush(client);
}

static void
answer_err(HdMyClient *client, uint16_t code, const char *sqlstate, const char *message)
{
	uint8_t		seq = reply_seq(client);

	consume_command(client);
	client->command = -1;
	send_err(client, seq, code, sqlstate, message);
}

/*
 * COM_STMT_EXECUTE as the server knows it: its id, and the parameter types
 * if the client sent none this time but the server has none yet (the client
 * sent them on another connection). out gets the whole command packet.
 */
static int
rewrite_execute(HdMyClient *client, HdMyServerStmt *sstmt, HdIoBuf *out)
{
	HdMyClientStmt *stmt = client->exec_stmt;
	uint16_t	params = stmt->def->params;
	size_t		flag_at = 1 + 4 + 1 + 4 + (params + 7) / 8;
	const unsigned char *head = (const unsigned char *) hd_iobuf_head(&client->in);
	HdIoBuf		payload = {0};
	HdIoBuf		typed = {0};
	const unsigned char *p;
	size_t		len;
	size_t		at = 0;
	size_t		mark = out->len;
	int			rc = -1;

	/* the whole payload, its pieces joined (an execute of 16 MB and more spans packets) */
	for (;;)
	{
		size_t		n = hd_my_get_u24(head + at);

		if (hd_iobuf_append(&payload, head + at + HD_MY_HEADER, n) != 0)
			goto done;
		at += HD_MY_HEADER + n;
		if (n < HD_MY_MAX_PAYLOAD)
			break;
	}
	p = (const unsigned char *) hd_iobuf_head(&payload);
	len = hd_iobuf_live(&payload);
	rc = -2;
	if (len < 1 + 4)
		goto done;
	hd_my_put_u32(payload.data + payload.off + 1, sstmt->id);
	if (params > 0 && len > flag_at)
	{
		size_t		tlen = 2u * params;

		if (p[flag_at] == 1)
		{
			/* remember the types: another connection may need them */
			if (len < flag_at + 1 + tlen)
				goto done;
			rc = -1;
			if ((stmt->types == NULL && (stmt->types = malloc(tlen)) == NULL) ||
				(sstmt->types == NULL && (sstmt->types = malloc(tlen)) == NULL))
				goto done;
			memcpy(stmt->types, p + flag_at + 1, tlen);
			stmt->has_types = true;
		}
		else if (!stmt->has_types)
			goto done;
		else if (sstmt->types == NULL || memcmp(sstmt->types, stmt->types, tlen) != 0)
		{
			/*
			 * The origin would take the types it was sent last for this
			 * statement on this connection: none, or another client's. The
			 * client's own last types go with its execute.
			 */
			rc = -1;
			if ((sstmt->types == NULL && (sstmt->types = malloc(tlen)) == NULL) ||
				hd_iobuf_append(&typed, p, flag_at) != 0 ||
				hd_iobuf_append(&typed, "\x01", 1) != 0 ||
				hd_iobuf_append(&typed, stmt->types, tlen) != 0 ||
				hd_iobuf_append(&typed, p + flag_at + 1, len - flag_at - 1) != 0)
				goto done;
			p = (const unsigned char *) hd_iobuf_head(&typed);
			len = hd_iobuf_live(&typed);
		}
		memcpy(sstmt->types, stmt->types, tlen);
	}
	rc = hd_my_put_packet(out, 0, p, len) == 0 ? 0 : -1;
done:
	if (rc != 0)
		out->len = mark;		/* nothing of it goes to the origin */
	hd_iobuf_free(&payload);
	hd_iobuf_free(&typed);
	return rc;
}

/* Send the client's command (at the head of client->in) to its server, synced. */
static void
send_command(HdMyClient *client)
{
	HdMyServer *server = client->server;
	size_t		total;
	size_t		payload;
	HdMyReplyKind kind = HD_MY_REPLY_QUERY;
	bool		binary = false;

	hd_my_command_peek(hd_iobuf_head(&client->in), hd_iobuf_live(&client->in), &total, &payload);
	switch (client->command)
	{
		case HD_MY_COM_STMT_PREPARE:
			kind = HD_MY_REPLY_PREPARE;
			break;
		case HD_MY_COM_STMT_EXECUTE:
			binary = true;
			break;
		case HD_MY_COM_FIELD_LIST:
			kind = HD_MY_REPLY_FIELD_LIST;
			break;
		case HD_MY_COM_STATISTICS:
			kind = HD_MY_REPLY_STRING;
			break;
		case HD_MY_COM_STMT_FETCH:
			kind = HD_MY_REPLY_FETCH;
			binary = true;
			break;
		case HD_MY_COM_INIT_DB:
		case HD_MY_COM_PING:
		case HD_MY_COM_STMT_RESET:
			kind = HD_MY_REPLY_OK;
			break;
		case HD_MY_COM_SET_OPTION:
			kind = HD_MY_REPLY_OK;
			/* a reset may not undo it: the connection closes when its session leaves */
			server->conn.close_on_release = true;
			break;
		default:
			break;
	}
	if (client->command == HD_MY_COM_STMT_EXECUTE || client->command == HD_MY_COM_STMT_RESET ||
		client->command == HD_MY_COM_STMT_SEND_LONG_DATA || client->command == HD_MY_COM_STMT_FETCH)
	{
		HdMyServerStmt *sstmt = hd_my_server_stmt_find(server, client->exec_stmt->def);
		int			rc;

		if (sstmt == NULL)
		{
			answer_err(client, ER_UNKNOWN_STMT_HANDLER, "HY000",
					   "hyperdrive: the prepared statement is not on this origin connection");
			return;
		}
		if (client->command == HD_MY_COM_STMT_EXECUTE)
			rc = rewrite_execute(client, sstmt, &server->out);
		else
		{
			size_t		mark = server->out.len;

			rc = hd_iobuf_append(&server->out, hd_iobuf_head(&client->in), total);
			if (rc == 0)
				hd_my_put_u32(server->out.data + mark + HD_MY_HEADER + 1, sstmt->id);
		}
		if (rc == -2)
		{
			answer_err(client, ER_MALFORMED_PACKET, "HY000",
					   "hyperdrive: a COM_STMT_EXECUTE without parameter types for a statement "
					   "whose types this origin connection has not seen");
			return;
		}
		if (rc != 0)
		{
			hd_my_client_close(client);
			return;
		}
	}
	else if (hd_iobuf_append(&server->out, hd_iobuf_head(&client->in), total) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	client->pool->pool.stats.bytes_from_clients += total;
	client->pool->pool.stats.queries++;
	client->sent_at = ev_time();
	consume_command(client);
	client->sent = true;
	client->state_changed = false;
	/* these have no reply */
	if (client->command == HD_MY_COM_STMT_SEND_LONG_DATA)
	{
		client->long_data = true;
		hd_my_server_flush(server);
		command_done(client);
		return;
	}
	if (hd_my_server_owe(server, HD_MY_OWED_CLIENT, kind, binary, NULL) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	hd_my_server_flush(server);
}

/* The server is the client's: bring it to the client's state, then send. */
void
hd_my_client_server_ready(HdMyClient *client)
{
	HdMyServer *server = client->server;
	int			n = 0;

	if (client->state == HD_MY_CLIENT_CLOSED || client->command < 0 || server == NULL)
		return;
	if (queue_sync(client, server, &n) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	if ((client->command == HD_MY_COM_STMT_EXECUTE ||
		 client->command == HD_MY_COM_STMT_SEND_LONG_DATA) && client->exec_stmt &&
		hd_my_server_stmt_find(server, client->exec_stmt->def) == NULL)
	{
		HdMyStmtDef *def = client->exec_stmt->def;

		if (hd_my_server_stmts_make_room(server) != 0 ||
			hd_my_server_command(server, HD_MY_COM_STMT_PREPARE, def->sql, def->sql_len) != 0 ||
			hd_my_server_owe(server, HD_MY_OWED_PREPARE, HD_MY_REPLY_PREPARE, false, def) != 0)
		{
			hd_my_client_close(client);
			return;
		}
		n++;
	}
	if (n > 0)
	{
		client->syncing = true;
		hd_my_server_flush(server);
		return;
	}
	send_command(client);
}

void
hd_my_client_synced(HdMyClient *client, bool ok, const char *why)
{
	if (!client->syncing)
		return;
	client->syncing = false;
	if (!ok)
	{
		char		msg[512];

		snprintf(msg, sizeof(msg), "hyperdrive: %s", why);
		if (client->server)
			client->server->dirty = true;
		if (!client->pinned && !client->in_trans)
			hd_my_pool_release(client);
		answer_err(client, ER_UNKNOWN_ERROR, "HY000", msg);
		return;
	}
	send_command(client);
}

void
hd_my_client_server_failed(HdMyClient *client, const char *sqlstate, const char *message)
{
	if (client->state != HD_MY_CLIENT_ACTIVE || client->command < 0)
		return;
	answer_err(client, code_for(sqlstate), sqlstate_for_mysql(sqlstate), message);
}

void
hd_my_client_server_lost(HdMyClient *client, const char *why)
{
	char		msg[400];

	snprintf(msg, sizeof(msg), "Lost connection to the origin server (hyperdrive: %s)", why);
	/* what the session carried on it (a transaction, a pin) is gone: the session ends */
	hd_my_client_fatal(client, 2013, "HY000", msg);
}

void
hd_my_client_local_infile(HdMyClient *client)
{
	/* the client's next packets are the file's: process_input() passes them on */
	(void) client;
}

int
hd_my_client_reply_packet(HdMyClient *client, const unsigned char *packet, size_t len,
						  const HdMyReply *reply)
{
	const unsigned char *p = packet + HD_MY_HEADER;
	size_t		plen = len - HD_MY_HEADER;

	if (client->state == HD_MY_CLIENT_CLOSED)
		return 0;
	client->pool->pool.stats.bytes_to_clients += len;
	if (plen > 0 && p[0] == 0xff)
		client->pool->pool.stats.errors_to_clients++;
	if (reply->packet_is_ok)
	{
		bool		changed;

		if (hd_my_put_client_ok(&client->out, packet[3], p, plen, client->caps, &changed) != 0)
			return -1;
		client->state_changed |= changed;
	}
	else if (client->command == HD_MY_COM_STMT_PREPARE && client->exec_stmt &&
			 plen >= 5 && p[0] == 0x00 && reply->kind == HD_MY_REPLY_PREPARE &&
			 !client->prepare_answered)
	{
		/* the prepare's OK: the client's id for it, not the origin's */
		HdMyClientStmt *stmt = client->exec_stmt;
		size_t		mark = client->out.len;

		client->prepare_answered = true;
		stmt->def->params = reply->params;
		stmt->def->columns = reply->columns;
		if (client->server && hd_my_server_stmt_find(client->server, stmt->def) == NULL &&
			(hd_my_server_stmts_make_room(client->server) != 0 ||
			 hd_my_server_stmt_add(client->server, stmt->def, reply->stmt_id) != 0))
			return -1;
		if (hd_iobuf_append(&client->out, packet, len) != 0)
			return -1;
		hd_my_put_u32(client->out.data + mark + HD_MY_HEADER + 1, stmt->id);
	}
	else if (hd_iobuf_append(&client->out, packet, len) != 0)
		return -1;
	/* written once per read from the origin (my_server.c), or sooner when it grows */
	if (hd_iobuf_live(&client->out) >= HD_MY_FLUSH_BYTES)
		hd_my_client_flush(client);
	return 0;
}

/* After a reply: what the session state is now, and whether the server goes back. */
static void
after_reply(HdMyClient *client, const HdMyReply *reply)
{
	HdMySqlClass *cls = &client->cls;
	bool		expected = false;

	if (reply->has_status)
	{
		client->status = reply->status & (uint16_t) ~HD_MY_STATUS_SESSION_STATE_CHANGED;
		client->in_trans = (reply->status & HD_MY_STATUS_IN_TRANS) != 0;
		client->autocommit = (reply->status & HD_MY_STATUS_AUTOCOMMIT) != 0;
		if (client->server)
			client->server->autocommit = client->autocommit;
		if (reply->status & HD_MY_STATUS_CURSOR_EXISTS)
			pin(client, "an open cursor");
	}
	if (!reply->error && (client->command == HD_MY_COM_QUERY || client->command == HD_MY_COM_INIT_DB))
	{
		if (cls->kind == HD_MY_SQL_CARRY && cls->nsets > 0)
		{
			if (hd_my_sets_apply(&client->sets, &client->nsets, cls->sets, cls->nsets) != 0 ||
				(client->server &&
				 hd_my_sets_apply(&client->server->sets, &client->server->nsets, cls->sets, cls->nsets) != 0))
				pin(client, "too many carried SETs");
		}
		if (cls->kind == HD_MY_SQL_USE)
		{
			snprintf(client->db, sizeof(client->db), "%s", cls->database);
			if (client->server)
				snprintf(client->server->db, sizeof(client->server->db), "%s", cls->database);
		}
		expected = cls->kind == HD_MY_SQL_CARRY || cls->kind == HD_MY_SQL_USE;
	}
	if (cls->kind == HD_MY_SQL_PIN && !reply->error)
		pin(client, cls->why);
	if (client->state_changed && !expected)
		pin(client, "the origin reports a change of session state the agent did not see "
			"in the statement (a procedure or function that sets variables, say)");
}

void
hd_my_client_reply_done(HdMyClient *client, const HdMyReply *reply)
{
	if (client->state == HD_MY_CLIENT_CLOSED)
		return;
	hd_my_client_flush(client);
	hd_histogram_observe(&client->pool->pool.stats.query_latency, ev_time() - client->sent_at);
	/* a transaction ended: the reply's status says out of one (and autocommit's own) */
	if (reply->has_status && !(reply->status & HD_MY_STATUS_IN_TRANS))
		client->pool->pool.stats.transactions++;
	after_reply(client, reply);
	/* a prepare the origin refused: the client's id for it goes */
	if (client->command == HD_MY_COM_STMT_PREPARE && client->exec_stmt && !client->prepare_answered)
		hd_my_client_stmt_close(client, client->exec_stmt->id);
	if (client->command == HD_MY_COM_STMT_EXECUTE || client->command == HD_MY_COM_STMT_RESET)
		client->long_data = false;
	command_done(client);
}

/* The command is answered: the server goes back if nothing keeps it, and the next command is read. */
static void
command_done(HdMyClient *client)
{
	client->command = -1;
	client->sent = false;
	client->exec_stmt = NULL;
	client->last_activity = ev_now(client->my->loop);
	if (client->server && !client->pinned && !client->in_trans && !client->long_data &&
		client->pool->pool.config.pool_mode == HD_POOL_TRANSACTION)
		hd_my_pool_release(client);
	if (hd_iobuf_live(&client->in) > 0)
		process_input(client);
	else
		hd_iobuf_trim(&client->in);
}

/* A command that needs the origin: a server (the held one, or from the pool), then synced. */
static void
needs_server(HdMyClient *client)
{
	hd_my_pool_request(client);
}

static void
prepare_command(HdMyClient *client, const unsigned char *p, size_t len)
{
	/* the definition's reference is the client statement's */
	HdMyStmtDef *def = hd_my_stmt_def(client->pool, (const char *) p + 1, len - 1, client);
	HdMyClientStmt *stmt = def ? hd_my_client_stmt_add(client, def) : NULL;

	if (stmt == NULL)
	{
		hd_my_stmt_def_unref(def);
		answer_err(client, 1461, "42000", "Can't create more than max_prepared_stmt_count "
				   "statements (hyperdrive: 16384 per session)");
		return;
	}
	client->exec_stmt = stmt;
	client->prepare_answered = false;
	needs_server(client);
}

/* A statement id's command (execute, reset, close, long data, fetch): the client's statement. */
static HdMyClientStmt *
statement_of(HdMyClient *client, const unsigned char *p, size_t len)
{
	if (len < 5)
		return NULL;
	return hd_my_client_stmt_find(client, hd_my_get_u32(p + 1));
}

/*
 * KILL [QUERY | CONNECTION] id: the ids clients know are the agent's (its
 * greeting's thread ids), never passed to the origin, where they would name
 * another session's connection. A session of the same user and config may
 * be killed, as MySQL lets a user kill their own threads.
 */
static void
kill_command(HdMyClient *client)
{
	HdList	   *item;
	HdList	   *tmp;
	HdMyClient *target = NULL;
	char		msg[128];

	hd_list_foreach_safe(item, tmp, &client->my->clients)
	{
		HdMyClient *c = hd_container_of(item, HdMyClient, link);

		if (c->thread_id == client->cls.kill_id && c->state == HD_MY_CLIENT_ACTIVE &&
			c->pool && c->pool->pool.config.id[0] &&
			strcmp(c->config_id, client->config_id) == 0 && strcmp(c->user, client->user) == 0)
		{
			target = c;
			break;
		}
	}
	if (target == NULL)
	{
		snprintf(msg, sizeof(msg), "Unknown thread id: %llu", client->cls.kill_id);
		answer_err(client, 1094, "HY000", msg);
		return;
	}
	if (target->server && target->sent)
		hd_my_server_kill_query(target->server);
	if (client->cls.kill_query)
	{
		answer_ok(client);
		return;
	}
	if (target == client)
	{
		consume_command(client);
		client->command = -1;
		hd_my_client_fatal(client, 1927, "70100", "Connection was killed");
		return;
	}
	hd_my_client_fatal(target, 1927, "70100", "Connection was killed");
	answer_ok(client);
}

static void
query_command(HdMyClient *client, const unsigned char *p, size_t len)
{
	hd_my_sql_classify((const char *) p + 1, len - 1, &client->cls);
	if (client->cls.kill)
	{
		kill_command(client);
		return;
	}
	if (client->cls.load_local && !client->pool->pool.config.allow_load_local)
	{
		char		msg[300];

		snprintf(msg, sizeof(msg), "hyperdrive: LOAD DATA LOCAL is not allowed through config "
				 "\"%s\" (hyperdrive update %s --allow-load-local=true allows it)",
				 client->pool->pool.config.name, client->pool->pool.config.name);
		answer_err(client, ER_NOT_ALLOWED_COMMAND, "42000", msg);
		return;
	}
	if (client->cls.kind == HD_MY_SQL_PIN && !client->pinned &&
		client->pool->pool.config.pool_mode == HD_POOL_TRANSACTION)
		hd_debug("MySQL client %s: a statement that pins: %s", client->addr, client->cls.why);
	if (client->cls.kind == HD_MY_SQL_DIAGNOSTICS && client->server == NULL)
	{
		/* only the connection that ran the previous statement has its diagnostics */
		if (!hd_my_pool_take_last(client))
		{
			client->my->diagnostics_refused++;
			answer_err(client, ER_UNKNOWN_ERROR, "HY000",
					   "hyperdrive: this statement reads what the session's previous statement "
					   "left (LAST_INSERT_ID(), ROW_COUNT(), FOUND_ROWS(), warnings), and the "
					   "origin connection that ran it has served another client since (transaction "
					   "pooling): run both in one transaction, or use a session-pooling config");
			return;
		}
	}
	needs_server(client);
}

/*
 * COM_RESET_CONNECTION: the session as at login, but in its current
 * database (as the server keeps it): no settings, no statements, no
 * transaction, autocommit on. A server it held with state of its own is
 * reset before anyone else gets it.
 */
static void
forget_session(HdMyClient *client)
{
	if (client->server)
	{
		client->server->dirty = true;
		client->in_trans = false;
		client->long_data = false;
		hd_my_pool_release(client);
	}
	free(client->sets);
	client->sets = NULL;
	client->nsets = 0;
	client->autocommit = true;
	client->in_trans = false;
	client->status = HD_MY_STATUS_AUTOCOMMIT;
	client->pinned = NULL;
	client->last_thread = 0;
	hd_my_client_stmts_free(client);
}

static void
reset_session(HdMyClient *client)
{
	forget_session(client);
	answer_ok(client);
}

/*
 * COM_CHANGE_USER: the session is reset (as COM_RESET_CONNECTION) and logs
 * in again, as the user and to the config (database) it names, checked
 * against the session's first nonce, as a server does. A failed one ends
 * the session.
 */
static void
change_user(HdMyClient *client, const unsigned char *p, size_t len)
{
	HdMyLogin	login;
	char		why[200];

	login.collation = client->collation;
	if (!hd_my_parse_change_user(p, len, client->caps, &login, why, sizeof(why)))
	{
		answer_err(client, ER_MALFORMED_PACKET, "08S01", why);
		return;
	}
	forget_session(client);
	client->auth_seq = client->reply_seq;
	consume_command(client);
	client->command = -1;
	client->pool = NULL;
	client->state = HD_MY_CLIENT_HANDSHAKE;
	client->login_started_at = ev_now(client->my->loop);
	login_as(client, &login);
}

/*
 * caching_sha2_password's full authentication, for a user whose password
 * the agent checks against a looked-up hash: "perform full authentication"
 * (0x01 0x04); the client then sends the password, in the clear over TLS,
 * or, on a plain connection, asks for the agent's public key (0x02) and
 * sends it encrypted with it (password_packet()).
 */
static void
ask_password(HdMyClient *client)
{
	static const char full[2] = {0x01, 0x04};

	if (hd_my_put_packet(&client->out, client->auth_seq++, full, sizeof(full)) != 0)
	{
		hd_my_client_close(client);
		return;
	}
	client->state = HD_MY_CLIENT_SHA2_FULL;
	hd_my_client_flush(client);
}

/* The agent's RSA key pair, made at first use; NULL (logged) if OpenSSL fails. */
static struct HdMyRsaKey *
agent_rsa(HdMyAgent *my)
{
	char		err[256];

	if (my->rsa == NULL && (my->rsa = hd_my_rsa_generate(err, sizeof(err))) == NULL)
		hd_error("caching_sha2_password: cannot make an RSA key: %s", err);
	return my->rsa;
}

static void
password_packet(HdMyClient *client, const unsigned char *p, size_t len)
{
	char		pw[HD_PASSWORD_MAX + 1];
	size_t		pwlen = 0;
	char		err[256];

	if (client->state == HD_MY_CLIENT_SHA2_FULL && client->tls)
	{
		/* the password and a NUL, over TLS */
		if (len == 0 || len > HD_PASSWORD_MAX + 1 || p[len - 1] != '\0' ||
			memchr(p, '\0', len - 1) != NULL)
		{
			login_denied(client, true);
			return;
		}
		memcpy(pw, p, len);
		pwlen = len - 1;
	}
	else if (client->state == HD_MY_CLIENT_SHA2_FULL)
	{
		struct HdMyRsaKey *key = agent_rsa(client->my);
		const char *pem;
		size_t		mark;

		/* in the clear only the public key request: never a password */
		if (len != 1 || p[0] != 0x02 || key == NULL)
		{
			hd_my_client_fatal(client, ER_ACCESS_DENIED_ERROR, "28000",
							   "caching_sha2_password sends the password only over TLS or "
							   "encrypted with the server's public key");
			return;
		}
		pem = hd_my_rsa_public_pem(key);
		if (hd_my_packet_begin(&client->out, &mark) != 0 ||
			hd_iobuf_append(&client->out, "\x01", 1) != 0 ||
			hd_iobuf_append(&client->out, pem, strlen(pem)) != 0)
		{
			hd_my_client_close(client);
			return;
		}
		hd_my_packet_end(&client->out, mark, client->auth_seq++);
		client->state = HD_MY_CLIENT_SHA2_RSA;
		hd_my_client_flush(client);
		return;
	}
	else if (hd_my_rsa_decrypt_password(agent_rsa(client->my), p, len, client->nonce, pw,
										sizeof(pw), &pwlen, err, sizeof(err)) != 0)
	{
		hd_debug("MySQL client %s: caching_sha2_password: %s", client->addr, err);
		login_denied(client, true);
		return;
	}
	pw[pwlen] = '\0';
	if ((client->plain_password = strdup(pw)) == NULL)
	{
		explicit_bzero(pw, sizeof(pw));
		hd_my_client_close(client);
		return;
	}
	explicit_bzero(pw, sizeof(pw));
	client->state = HD_MY_CLIENT_HANDSHAKE;
	start_lookup(client, NULL, 0);
}

/* One whole command at the head of client->in. */
static void
process_command(HdMyClient *client)
{
	size_t		len;
	const unsigned char *p = command_payload(client, &len);
	char		name[32];

	if (len == 0)
	{
		answer_err(client, ER_MALFORMED_PACKET, "08S01", "Malformed communication packet (an empty command)");
		return;
	}
	client->command = p[0];
	client->reply_seq = reply_seq(client);
	client->exec_stmt = NULL;
	memset(&client->cls, 0, sizeof(client->cls));
	switch (p[0])
	{
		case HD_MY_COM_QUIT:
			consume_command(client);
			hd_my_client_close(client);
			return;
		case HD_MY_COM_PING:
			answer_ok(client);
			return;
		case HD_MY_COM_QUERY:
			query_command(client, p, len);
			return;
		case HD_MY_COM_INIT_DB:
			if (len - 1 >= sizeof(client->db))
			{
				answer_err(client, 1102, "42000", "Incorrect database name");
				return;
			}
			/* the origin checks it; the session's database is set only if it says OK */
			memcpy(client->cls.database, p + 1, len - 1);
			client->cls.database[len - 1] = '\0';
			client->cls.kind = HD_MY_SQL_USE;
			needs_server(client);
			return;
		case HD_MY_COM_STMT_PREPARE:
			prepare_command(client, p, len);
			return;
		case HD_MY_COM_STMT_EXECUTE:
		case HD_MY_COM_STMT_RESET:
		case HD_MY_COM_STMT_SEND_LONG_DATA:
		case HD_MY_COM_STMT_FETCH:
			if ((client->exec_stmt = statement_of(client, p, len)) == NULL)
			{
				if (p[0] == HD_MY_COM_STMT_SEND_LONG_DATA)
				{
					/* no reply, as the server would give none */
					consume_command(client);
					client->command = -1;
					return;
				}
				answer_err(client, ER_UNKNOWN_STMT_HANDLER, "HY000",
						   "Unknown prepared statement handler given to mysqld_stmt_execute");
				return;
			}
			if (p[0] == HD_MY_COM_STMT_RESET && (client->server == NULL ||
												 hd_my_server_stmt_find(client->server, client->exec_stmt->def) == NULL))
			{
				/* nothing of it on any connection the session holds: nothing to reset */
				answer_ok(client);
				return;
			}
			if (p[0] == HD_MY_COM_STMT_FETCH && client->server == NULL)
			{
				answer_err(client, ER_UNKNOWN_STMT_HANDLER, "HY000", "The statement has no open cursor");
				return;
			}
			needs_server(client);
			return;
		case HD_MY_COM_STMT_CLOSE:
			if (len >= 5)
				hd_my_client_stmt_close(client, hd_my_get_u32(p + 1));
			consume_command(client);
			client->command = -1;
			return;
		case HD_MY_COM_FIELD_LIST:
		case HD_MY_COM_STATISTICS:
			needs_server(client);
			return;
		case HD_MY_COM_RESET_CONNECTION:
			reset_session(client);
			return;
		case HD_MY_COM_PROCESS_KILL:
			if (len < 5)
			{
				answer_err(client, ER_MALFORMED_PACKET, "08S01", "Malformed communication packet");
				return;
			}
			client->cls.kill = true;
			client->cls.kill_id = hd_my_get_u32(p + 1);
			kill_command(client);
			return;
		case HD_MY_COM_SET_OPTION:
			/* multiple statements on or off: the connection's own, not carried */
			pin(client, "COM_SET_OPTION (multiple statements switched on or off)");
			needs_server(client);
			return;
		case HD_MY_COM_CHANGE_USER:
			change_user(client, p + 1, len - 1);
			return;
		default:
			{
				char		msg[128];

				snprintf(msg, sizeof(msg), "Unknown command (hyperdrive does not pass on %s)",
						 hd_my_command_name(p[0], name, sizeof(name)));
				answer_err(client, ER_UNKNOWN_COM_ERROR, "08S01", msg);
				return;
			}
	}
}

/* ---------------------------------------------------------------------------
 * Input
 */

/* A LOAD DATA LOCAL file's packets go to the server as they come, up to the empty one. */
static bool
pass_local_infile(HdMyClient *client)
{
	HdMyServer *server = client->server;

	while (server && server->local_infile)
	{
		const unsigned char *payload;
		size_t		plen;
		uint8_t		seq;

		if (!hd_my_packet_peek(hd_iobuf_head(&client->in), hd_iobuf_live(&client->in), &payload,
							   &plen, &seq))
			return false;
		if (hd_iobuf_append(&server->out, hd_iobuf_head(&client->in), HD_MY_HEADER + plen) != 0)
		{
			hd_my_client_close(client);
			return false;
		}
		hd_iobuf_consume(&client->in, HD_MY_HEADER + plen);
		if (plen == 0)
			server->local_infile = false;
		hd_my_server_flush(server);
	}
	return true;
}

static void
process_input(HdMyClient *client)
{
	while (client->state != HD_MY_CLIENT_CLOSED && !client->close_after_flush)
	{
		const unsigned char *payload;
		size_t		plen;
		uint8_t		seq;
		HdClientFrame frame;
		HdFrameStatus fs;

		if (client->server && client->server->local_infile && client->sent)
		{
			if (!pass_local_infile(client))
				return;
			continue;
		}
		/* one command at a time: the next waits for this one's reply */
		if (client->command >= 0 || client->looking_up)
			return;
		if (client->state != HD_MY_CLIENT_ACTIVE)
		{
			if (!hd_my_packet_peek(hd_iobuf_head(&client->in), hd_iobuf_live(&client->in),
								   &payload, &plen, &seq))
			{
				if (hd_iobuf_live(&client->in) > 64 * 1024)
					hd_my_client_fatal(client, ER_NET_PACKET_TOO_LARGE, "08S01",
									   "a login packet larger than 64 kB");
				return;
			}
			client->auth_seq = (uint8_t) (seq + 1);
			if (client->state == HD_MY_CLIENT_HANDSHAKE)
				handshake_response(client, payload, plen);
			else if (client->state == HD_MY_CLIENT_SHA2_FULL || client->state == HD_MY_CLIENT_SHA2_RSA)
				password_packet(client, payload, plen);
			else if (client->switched_to_sha2 && client->pool == NULL)
				ask_password(client);	/* (the fast path's answer cannot be checked) */
			else if (client->switched_to_sha2)
				check_sha2(client, payload, plen);
			else
				check_password(client, payload, plen);
			hd_iobuf_consume(&client->in, HD_MY_HEADER + plen);
			continue;
		}
		fs = my_frame(hd_iobuf_head(&client->in), hd_iobuf_live(&client->in), &frame);
		if (fs == HD_FRAME_INVALID)
		{
			hd_my_client_fatal(client, ER_NET_PACKET_TOO_LARGE, "08S01", frame.reason);
			return;
		}
		if (fs == HD_FRAME_NEED_MORE)
			return;
		process_command(client);
	}
}

void
hd_my_client_resume_reading(HdMyClient *client)
{
	if (client->state == HD_MY_CLIENT_CLOSED || client->close_after_flush)
		return;
	ev_io_start(client->my->loop, &client->read_watcher);
	hd_conn_resume_reading(&client->sock);
}

static void
client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdMyClient *client = w->data;
	long		n;

	(void) loop;
	(void) revents;
	/* the TLS handshake first; it reads and writes on its own */
	if (hd_conn_negotiating(&client->sock) && !tls_handshake(client))
		return;
	n = hd_conn_read(&client->sock, &client->in, 256 * 1024);
	if (n == -2)
		return;
	if (n <= 0)
	{
		hd_debug("MySQL client %s: %s", client->addr, n == 0 ? "disconnected" : "read failed");
		hd_my_client_close(client);
		return;
	}
	client->last_activity = ev_now(client->my->loop);
	process_input(client);
	/* a whole command is buffered at most (HD_MY_MAX_COMMAND): stop reading beyond a pending one */
	if (client->state != HD_MY_CLIENT_CLOSED && client->command >= 0 &&
		hd_iobuf_live(&client->in) > HD_MY_MAX_COMMAND + 1024 * 1024)
		ev_io_stop(client->my->loop, &client->read_watcher);
}

static void
client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void) loop;
	(void) revents;
	if (hd_conn_negotiating(&((HdMyClient *) w->data)->sock))
		(void) tls_handshake(w->data);
	else
		hd_my_client_flush(w->data);
}
