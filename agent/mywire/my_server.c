/*
 * my_server.c
 *    One MySQL origin connection: connect, log in, then the replies it owes.
 *
 * States (HdPoolConnState, pool.h): CONNECTING (non-blocking connect,
 * bounded by server_connect_timeout) -> LOGIN (the origin's greeting, the
 * agent's handshake response, an auth switch if the origin asks for one,
 * then SET session_track_state_change = ON: every OK then says whether the
 * statement changed the session, which is how a change the agent cannot see
 * in the text, a procedure's SET say, pins its client) -> IDLE <-> ACTIVE.
 *
 * The login needs no password: mysql_native_password's answer is computed
 * from SHA1(password), which the pool has (my_pool.c). caching_sha2_password
 * (MySQL 8) is answered with the config's password where the pool has it,
 * on its fast path only: its full authentication needs TLS or the server's
 * RSA key, which this connection does not do yet (the login fails, saying
 * so).
 *
 * Every packet the origin sends belongs to the reply at the head of owed[]:
 * the client's command (forwarded to the client as it comes), or the
 * agent's own statements (swallowed: a SET that brings the connection to
 * its client's state, a COM_STMT_PREPARE of a statement the client
 * executes, the setup after login, COM_RESET_CONNECTION).
 */
#include "mywire/my_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/mysql_auth.h"
#include "base/log.h"
#include "net/tcp.h"
#include "net/tls.h"

static void server_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void server_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void server_connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);

static void tls_step(HdMyServer *server);
static void send_kill(HdMyServer *server);

static const char setup_sql[] = "SET SESSION session_track_state_change = ON";

/* A connection to pool's origin, logging in as its user; kill_target: 0, or a KILL QUERY's. */
static HdMyServer *
open_server(HdMyPool *pool, uint32_t kill_target)
{
	HdMyAgent  *my = pool->my;
	HdMyServer *server;
	char		err[256];
	int			fd = hd_origin_connect(&pool->pool.config, err, sizeof(err));

	if (fd < 0)
	{
		if (kill_target)
			hd_warning("config %s: KILL QUERY %u: %s", pool->pool.config.name, kill_target, err);
		else
			hd_my_pool_server_failed(pool, NULL, "08001", err);
		return NULL;
	}
	if ((server = calloc(1, sizeof(*server))) == NULL)
	{
		close(fd);
		if (!kill_target)
			hd_my_pool_server_failed(pool, NULL, "53200", "out of memory");
		return NULL;
	}
	server->pool = pool;
	server->my = my;
	server->kill_target = kill_target;
	server->killer = kill_target != 0;
	server->autocommit = true;
	snprintf(server->db, sizeof(server->db), "%s", pool->pool.config.database);
	hd_list_init(&server->conn.link);
	hd_list_init(&server->conn.idle_link);
	hd_conn_init(&server->sock, my->loop, fd, &server->read_watcher, &server->write_watcher);
	ev_io_init(&server->read_watcher, server_read_cb, fd, EV_READ);
	ev_io_init(&server->write_watcher, server_write_cb, fd, EV_WRITE);
	server->read_watcher.data = server->write_watcher.data = server;
	ev_timer_init(&server->connect_timer, server_connect_timeout_cb,
				  my->settings->server_connect_timeout_ms / 1000.0, 0.);
	server->connect_timer.data = server;
	ev_timer_start(my->loop, &server->connect_timer);
	server->conn.state = HD_CONN_CONNECTING;
	server->conn.connected_at = ev_now(my->loop);
	/* a KILL's connection is not the pool's: it is not counted, and lives for one statement */
	if (!kill_target)
		hd_pool_conn_add(&pool->pool, &server->conn);
	ev_io_start(my->loop, &server->write_watcher);
	return server;
}

HdMyServer *
hd_my_server_connect(HdMyPool *pool)
{
	return open_server(pool, 0);
}

/*
 * KILL QUERY of the statement running on target (held by a client that
 * left mid-statement, or named by a client's KILL QUERY), on a connection
 * of its own. target is not handed to anyone before the KILL has run: it
 * could otherwise kill the next holder's statement.
 */
void
hd_my_server_kill_query(HdMyServer *target)
{
	if (target->conn.state == HD_CONN_CLOSED || target->thread_id == 0)
		return;
	if (open_server(target->pool, target->thread_id) != NULL)
		target->kills_pending++;
}

/* The KILL of target (by its origin id) ran or failed: target may go back to its pool. */
static void
kill_finished(HdMyServer *killer)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &killer->pool->pool.conns)
	{
		HdMyServer *target = hd_container_of(item, HdMyServer, conn.link);

		if (target->thread_id != killer->kill_target || target->kills_pending == 0)
			continue;
		target->kills_pending--;
		if (target->kills_pending == 0 && target->release_deferred)
		{
			target->release_deferred = false;
			hd_pool_release(&target->pool->pool, &target->conn);
		}
		break;
	}
	killer->kill_target = 0;
}

/* A login that failed: the pool hears of it once, the connection closes. */
static void
login_failed(HdMyServer *server, const char *sqlstate, const char *message)
{
	HdMyPool   *pool = server->pool;

	if (server->conn.state == HD_CONN_CLOSED)
		return;
	if (server->killer)
		hd_warning("config %s: KILL QUERY %u: %s", pool->pool.config.name, server->kill_target,
				   message);
	else
		hd_my_pool_server_failed(pool, server, sqlstate, message);
	hd_my_server_close(server, message);
}

void
hd_my_server_close(HdMyServer *server, const char *reason)
{
	HdMyAgent  *my = server->my;
	HdMyClient *client = server->client;

	if (server->conn.state == HD_CONN_CLOSED)
		return;
	hd_debug("config %s: MySQL origin connection %u closed: %s", server->pool->pool.config.name,
			 server->thread_id, reason);
	ev_timer_stop(my->loop, &server->connect_timer);
	if (server->sock.fd >= 0)
	{
		/* a polite COM_QUIT once logged in; failures ignored */
		if (server->login == HD_MY_SLOGIN_DONE)
		{
			static const char quit[5] = {1, 0, 0, 0, HD_MY_COM_QUIT};

			hd_conn_send_now(&server->sock, quit, sizeof(quit));
		}
		hd_conn_close(&server->sock);
	}
	server->client = NULL;
	if (client)
	{
		client->server = NULL;
		hd_my_client_server_lost(client, reason);
	}
	hd_my_server_stmts_forget(server);
	server->conn.state = HD_CONN_CLOSED;
	if (server->killer)
	{
		if (server->kill_target)
			kill_finished(server);
		hd_list_append(&my->dead_servers, &server->conn.link);
		return;
	}
	hd_pool_conn_gone(&server->pool->pool, &server->conn);
	hd_list_append(&my->dead_servers, &server->conn.link);
}

void
hd_my_server_free(HdMyServer *server)
{
	hd_list_del(&server->conn.link);
	hd_iobuf_free(&server->in);
	hd_iobuf_free(&server->out);
	hd_conn_free(&server->sock);
	free(server->sets);
	free(server->stmts);
	free(server);
}

void
hd_my_server_flush(HdMyServer *server)
{
	int			rc;

	if (server->conn.state == HD_CONN_CLOSED || server->conn.state == HD_CONN_CONNECTING)
		return;
	rc = hd_conn_flush(&server->sock, &server->out);
	if (rc < 0)
	{
		char		reason[300];

		snprintf(reason, sizeof(reason), "write failed: %s", hd_conn_error(&server->sock, errno));
		hd_my_server_close(server, reason);
	}
}

int
hd_my_server_owe(HdMyServer *server, HdMyOwed what, HdMyReplyKind kind, bool binary,
				 HdMyStmtDef *def)
{
	if (server->nowed == HD_MY_OWED_MAX)
		return -1;
	server->owed[server->nowed++] = (HdMyOwedReply) {what, kind, binary, def};
	return 0;
}

int
hd_my_server_command(HdMyServer *server, uint8_t command, const void *arg, size_t len)
{
	size_t		mark;

	if (hd_my_packet_begin(&server->out, &mark) != 0 ||
		hd_iobuf_append(&server->out, &command, 1) != 0 ||
		(len && hd_iobuf_append(&server->out, arg, len) != 0))
		return -1;
	hd_my_packet_end(&server->out, mark, 0);
	return 0;
}

bool
hd_my_server_idle(const HdMyServer *server)
{
	return server->nowed == 0 && !server->local_infile;
}

/*
 * COM_RESET_CONNECTION, then the setup again (the reset set it back): what
 * a client left (a transaction, user variables, temporary tables, locks,
 * settings, prepared statements) is gone. The database stays: the next
 * holder's sync sets its own.
 */
int
hd_my_server_reset(HdMyServer *server)
{
	if (hd_my_server_command(server, HD_MY_COM_RESET_CONNECTION, NULL, 0) != 0 ||
		hd_my_server_owe(server, HD_MY_OWED_RESET, HD_MY_REPLY_OK, false, NULL) != 0 ||
		hd_my_server_command(server, HD_MY_COM_QUERY, setup_sql, strlen(setup_sql)) != 0 ||
		hd_my_server_owe(server, HD_MY_OWED_SETUP, HD_MY_REPLY_QUERY, false, NULL) != 0)
		return -1;
	hd_my_server_stmts_forget(server);
	server->nsets = 0;
	server->autocommit = true;
	server->dirty = false;
	server->conn.state = HD_CONN_RESETTING;
	hd_my_server_flush(server);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Login
 */

static uint32_t
login_caps(const HdMyServer *server, uint32_t offered)
{
	uint32_t	want = HD_MY_CLIENT_LONG_FLAG |
		HD_MY_CLIENT_CONNECT_WITH_DB | HD_MY_CLIENT_PROTOCOL_41 | HD_MY_CLIENT_TRANSACTIONS |
		HD_MY_CLIENT_SECURE_CONNECTION | HD_MY_CLIENT_PLUGIN_AUTH |
		HD_MY_CLIENT_PLUGIN_AUTH_LENENC | HD_MY_CLIENT_SESSION_TRACK;

	/* the clients' variant: what changes the origin's answers */
	want |= server->pool->variant;
	/* CLIENT_LONG_PASSWORD as the clients sent it: MariaDB reads it as "a MySQL client" */
	return (want & offered) | (server->pool->variant & HD_MY_CLIENT_LONG_PASSWORD);
}

/* The answer to a nonce for plugin: 0, or -1 with why (a plugin it cannot answer). */
static int
auth_answer(HdMyServer *server, const char *plugin, uint8_t *out, size_t *len, char *why,
			size_t whylen)
{
	HdMyPool   *pool = server->pool;

	if (strcmp(plugin, "mysql_native_password") == 0)
	{
		if (!pool->has_stage1)
		{
			*len = 0;			/* an account without a password */
			return 0;
		}
		hd_my_native_token(pool->stage1, server->nonce, out);
		*len = 20;
		return 0;
	}
	if (strcmp(plugin, "caching_sha2_password") == 0 && pool->password)
	{
		size_t		pwlen = strlen(pool->password);

		if (pwlen == 0)
		{
			*len = 0;
			return 0;
		}
		hd_my_sha2_token(pool->password, pwlen, server->nonce, out);
		*len = 32;
		return 0;
	}
	snprintf(why, whylen, "the origin asks for authentication plugin \"%s\", which hyperdrive "
			 "cannot answer for user \"%s\" (it answers mysql_native_password, and "
			 "caching_sha2_password for the config's own user)", plugin, pool->user);
	return -1;
}

static void
send_login(HdMyServer *server, const HdMyGreeting *g, uint8_t seq)
{
	HdMyPool   *pool = server->pool;
	HdMyLogin	login;
	char		why[600];

	memset(&login, 0, sizeof(login));
	login.caps = server->caps;
	if (!(login.caps & HD_MY_CLIENT_LONG_PASSWORD))
		login.ext_caps = server->pool->ext_caps & g->ext_caps;
	login.max_packet = HD_MY_MAX_COMMAND;
	login.collation = pool->collation;
	snprintf(login.user, sizeof(login.user), "%s", pool->user);
	snprintf(login.database, sizeof(login.database), "%s", pool->pool.config.database);
	snprintf(login.plugin, sizeof(login.plugin), "%s", g->plugin);
	if (auth_answer(server, g->plugin, login.auth, &login.auth_len, why, sizeof(why)) != 0)
	{
		/* answer as native; the origin switches us if it must */
		snprintf(login.plugin, sizeof(login.plugin), "mysql_native_password");
		if (auth_answer(server, login.plugin, login.auth, &login.auth_len, why, sizeof(why)) != 0)
		{
			login_failed(server, "28000", why);
			return;
		}
	}
	if (!pool->version_known)
	{
		snprintf(pool->version, sizeof(pool->version), "%s", g->version);
		pool->version_known = true;
	}
	snprintf(server->my->version, sizeof(server->my->version), "%s", g->version);
	if (hd_my_put_login(&server->out, seq, &login) != 0)
	{
		login_failed(server, "53200", "out of memory");
		return;
	}
	server->auth_seq = (uint8_t) (seq + 1);
	server->login = HD_MY_SLOGIN_AUTH;
	hd_my_server_flush(server);
}

/*
 * The greeting is in: TLS first when the config's sslmode wants it and the
 * origin offers it (the SSLRequest is the handshake response's first 32
 * bytes), else the login in the clear; sslmode require and stronger refuse
 * an origin without TLS.
 */
static void
greeted(HdMyServer *server, const HdMyGreeting *g)
{
	const HdConfig *config = &server->pool->pool.config;
	bool		offered = (g->caps & HD_MY_CLIENT_SSL) != 0;
	HdMyLogin	request;
	char		err[300];

	server->greeting = *g;
	hd_my_agent_learn_origin(server->my, g);
	memcpy(server->nonce, g->nonce, sizeof(server->nonce));
	server->thread_id = g->thread_id;
	server->caps = login_caps(server, g->caps);
	if (config->sslmode == HD_SSL_DISABLE || (!offered && config->sslmode < HD_SSL_REQUIRE))
	{
		send_login(server, g, 1);
		return;
	}
	if (!offered)
	{
		login_failed(server, "08001", "the origin does not offer TLS, but the config's sslmode "
					 "requires it");
		return;
	}
	server->caps |= HD_MY_CLIENT_SSL;
	memset(&request, 0, sizeof(request));
	request.caps = server->caps;
	if (!(request.caps & HD_MY_CLIENT_LONG_PASSWORD))
		request.ext_caps = server->pool->ext_caps & g->ext_caps;
	request.max_packet = HD_MY_MAX_COMMAND;
	request.collation = server->pool->collation;
	request.ssl_only = true;
	if (hd_my_put_login(&server->out, 1, &request) != 0 ||
		hd_conn_write_clear(&server->sock, &server->out) != 0)
	{
		login_failed(server, "08006", "could not send the SSL request");
		return;
	}
	switch (hd_tls_connect_start(&server->sock, config, err, sizeof(err)))
	{
		case 0:
			break;
		case -2:
			login_failed(server, "53200", "out of memory");
			return;
		default:
			login_failed(server, "08001", err);
			return;
	}
	tls_step(server);
}

/* The TLS handshake with the origin: its next step; once done, the login goes over it. */
static void
tls_step(HdMyServer *server)
{
	char		why[400];

	switch (hd_conn_handshake(&server->sock))
	{
		case HD_CONN_WAIT:
			return;
		case HD_CONN_READY:
			send_login(server, &server->greeting, 2);
			return;
		case HD_CONN_FAILED:
			snprintf(why, sizeof(why), "TLS with the origin failed: %s",
					 hd_conn_error(&server->sock, 0));
			login_failed(server, "08001", why);
			return;
	}
}

static void
send_auth_packet(HdMyServer *server, const void *bytes, size_t len)
{
	if (hd_my_put_packet(&server->out, server->auth_seq++, bytes, len) != 0)
	{
		login_failed(server, "53200", "out of memory");
		return;
	}
	hd_my_server_flush(server);
}

/* An ERR during login: its words, with the SQLSTATE a PostgreSQL-side log would use. */
static void
login_refused(HdMyServer *server, const unsigned char *p, size_t len)
{
	uint16_t	code = 0;
	char		sqlstate[6];
	char		msg[512];
	char		text[800];

	if (!hd_my_parse_err(p, len, &code, sqlstate, msg, sizeof(msg)))
		snprintf(msg, sizeof(msg), "a malformed error packet");
	snprintf(text, sizeof(text), "the origin refused the login of user \"%s\": %s (MySQL error %u)",
			 server->pool->user, msg, code);
	login_failed(server, strcmp(sqlstate, "HY000") == 0 ? "28000" : sqlstate, text);
}

static void
logged_in(HdMyServer *server)
{
	server->login = HD_MY_SLOGIN_SETUP;
	if (hd_my_server_command(server, HD_MY_COM_QUERY, setup_sql, strlen(setup_sql)) != 0 ||
		hd_my_server_owe(server, HD_MY_OWED_SETUP, HD_MY_REPLY_QUERY, false, NULL) != 0)
	{
		login_failed(server, "53200", "out of memory");
		return;
	}
	hd_my_server_flush(server);
}

/*
 * caching_sha2_password's full authentication (the origin has not cached
 * the password): the password itself, over TLS only. In the clear it would
 * go encrypted with an RSA key the origin sends in the clear too, which
 * anyone on the path could replace: not done (sslmode require fixes it).
 * Only with the password: a pool of the config's own user.
 */
static void
full_authentication(HdMyServer *server)
{
	const char *pw = server->pool->password;

	if (pw == NULL)
	{
		login_failed(server, "28000", "the origin asks for caching_sha2_password's full "
					 "authentication, which needs the password: hyperdrive has it only for the "
					 "config's own user");
		return;
	}
	if (!hd_tls_active(&server->sock))
	{
		login_failed(server, "28000", "the origin asks for caching_sha2_password's full "
					 "authentication, which sends the password: hyperdrive does so only over "
					 "TLS (set ssl-mode=REQUIRED or stronger in the config's connection string)");
		return;
	}
	send_auth_packet(server, pw, strlen(pw) + 1);
}

/* One packet of the login exchange. */
static void
login_packet(HdMyServer *server, const unsigned char *p, size_t len, uint8_t seq)
{
	char		why[600];

	if (server->login == HD_MY_SLOGIN_GREETING)
	{
		HdMyGreeting g;

		if (!hd_my_parse_greeting(p, len, &g, why, sizeof(why)))
		{
			if (len > 0 && p[0] == 0xff)
				login_refused(server, p, len);
			else
				login_failed(server, "08P01", why);
			return;
		}
		greeted(server, &g);
		return;
	}
	server->auth_seq = (uint8_t) (seq + 1);
	if (len == 0)
		login_failed(server, "08P01", "an empty packet during the login");
	else if (p[0] == 0x00)
		logged_in(server);
	else if (p[0] == 0xff)
		login_refused(server, p, len);
	else if (p[0] == 0xfe)
	{
		/* an auth switch: the plugin, then its nonce */
		HdMyReader	r;
		const char *plugin;
		size_t		n;
		uint8_t		answer[64];
		size_t		alen;
		char		name[64];

		hd_my_reader_init(&r, p, len);
		hd_my_read_int(&r, 1);
		plugin = hd_my_read_cstr(&r, &n);
		if (plugin == NULL || n >= sizeof(name) || r.len - r.pos < HD_MY_NONCE_BYTES)
		{
			login_failed(server, "08P01", "a malformed authentication switch from the origin");
			return;
		}
		memcpy(name, plugin, n);
		name[n] = '\0';
		memcpy(server->nonce, r.p + r.pos, HD_MY_NONCE_BYTES);
		if (auth_answer(server, name, answer, &alen, why, sizeof(why)) != 0)
		{
			login_failed(server, "28000", why);
			return;
		}
		send_auth_packet(server, answer, alen);
	}
	else if (p[0] == 0x01 && len >= 2 && p[1] == 0x03)
		;						/* caching_sha2_password: fast authentication worked; OK follows */
	else if (p[0] == 0x01 && len >= 2 && p[1] == 0x04)
		full_authentication(server);
	else
		login_failed(server, "08P01", "an unexpected packet during the login");
}

/* A KILL's connection is logged in: the KILL QUERY, then it closes. */
static void
send_kill(HdMyServer *server)
{
	char		sql[64];

	snprintf(sql, sizeof(sql), "KILL QUERY %u", server->kill_target);
	if (hd_my_server_command(server, HD_MY_COM_QUERY, sql, strlen(sql)) != 0 ||
		hd_my_server_owe(server, HD_MY_OWED_SYNC, HD_MY_REPLY_QUERY, false, NULL) != 0)
	{
		hd_my_server_close(server, "out of memory");
		return;
	}
	hd_my_server_flush(server);
}

/* ---------------------------------------------------------------------------
 * Replies
 */

static void
owed_pop(HdMyServer *server)
{
	memmove(&server->owed[0], &server->owed[1], sizeof(server->owed[0]) * (size_t) (server->nowed - 1));
	server->nowed--;
	server->reply_started = false;
}

/* Whether a SYNC or PREPARE is still owed ahead of the client's command. */
static bool
syncing(const HdMyServer *server)
{
	return server->nowed > 0 &&
		(server->owed[0].what == HD_MY_OWED_SYNC || server->owed[0].what == HD_MY_OWED_PREPARE);
}

static void sync_failed(HdMyServer *server, const char *why);

/* The reply of owed[0] is complete. */
static void
reply_done(HdMyServer *server, const unsigned char *p, size_t len)
{
	HdMyOwedReply head = server->owed[0];
	HdMyReply	reply = server->reply;
	char		why[400];

	owed_pop(server);
	switch (head.what)
	{
		case HD_MY_OWED_CLIENT:
			if (server->client)
				hd_my_client_reply_done(server->client, &reply);
			break;
		case HD_MY_OWED_SYNC:
		case HD_MY_OWED_PREPARE:
			if (server->killer)
			{
				hd_debug("config %s: KILL QUERY %u %s", server->pool->pool.config.name,
						 server->kill_target, reply.error ? "failed (the statement had ended)" : "done");
				hd_my_server_close(server, "its KILL QUERY ran");
				return;
			}
			if (reply.error)
			{
				uint16_t	code = 0;
				char		sqlstate[6];
				char		msg[300];

				if (!hd_my_parse_err(p, len, &code, sqlstate, msg, sizeof(msg)))
					snprintf(msg, sizeof(msg), "(no message)");
				snprintf(why, sizeof(why), "bringing the origin connection to the session's "
						 "state failed: %s (MySQL error %u)", msg, code);
				sync_failed(server, why);
				return;
			}
			if (head.what == HD_MY_OWED_PREPARE)
			{
				if (reply.params != head.def->params || reply.columns != head.def->columns)
				{
					snprintf(why, sizeof(why), "the prepared statement's parameters or columns "
							 "changed (%u/%u, now %u/%u): prepare it again",
							 head.def->params, head.def->columns, reply.params, reply.columns);
					sync_failed(server, why);
					return;
				}
				if (hd_my_server_stmt_add(server, head.def, reply.stmt_id) != 0)
				{
					sync_failed(server, "out of memory");
					return;
				}
			}
			if (!syncing(server) && server->client)
				hd_my_client_synced(server->client, true, NULL);
			break;
		case HD_MY_OWED_SETUP:
			if (reply.error)
			{
				login_failed(server, "08P01", "the origin refused SET session_track_state_change "
							 "(MySQL 5.7 or MariaDB 10.2 and later are needed)");
				return;
			}
			if (server->login == HD_MY_SLOGIN_SETUP)
			{
				server->login = HD_MY_SLOGIN_DONE;
				ev_timer_stop(server->my->loop, &server->connect_timer);
				if (server->killer)
					send_kill(server);
				else
					hd_my_pool_server_ready(server);
			}
			else if (server->conn.state == HD_CONN_RESETTING && server->nowed == 0)
			{
				/* the reset the pool asked for is done: RESETTING tells it so (no second reset) */
				hd_pool_release(&server->pool->pool, &server->conn);
			}
			break;
		case HD_MY_OWED_RESET:
			if (reply.error)
				hd_my_server_close(server, "COM_RESET_CONNECTION failed");
			else if (reply.has_status)
				server->autocommit = (reply.status & HD_MY_STATUS_AUTOCOMMIT) != 0;
			break;
	}
}

/* A sync before a client's command failed: the rest of it is dropped with it. */
static void
sync_failed(HdMyServer *server, const char *why)
{
	HdMyClient *client = server->client;

	/* the client's command was not sent yet: what is still owed is the sync's */
	hd_warning("config %s: %s", server->pool->pool.config.name, why);
	if (client)
		hd_my_client_synced(client, false, why);
}

static void
reply_packet(HdMyServer *server, const unsigned char *packet, size_t len)
{
	const unsigned char *p = packet + HD_MY_HEADER;
	size_t		plen = len - HD_MY_HEADER;
	HdMyOwedReply *head;
	HdMyReplyStep step;

	if (server->nowed == 0)
	{
		hd_my_server_close(server, "a packet from the origin that answers nothing");
		return;
	}
	head = &server->owed[0];
	if (!server->reply_started)
	{
		hd_my_reply_start(&server->reply, head->kind,
						  (server->caps & HD_MY_CLIENT_DEPRECATE_EOF) != 0, head->binary);
		server->reply_started = true;
	}
	step = hd_my_reply_feed(&server->reply, p, plen);
	if (step == HD_MY_REPLY_INVALID)
	{
		char		why[128];

		snprintf(why, sizeof(why), "the origin's reply cannot be read: %s", server->reply.why);
		hd_my_server_close(server, why);
		return;
	}
	if (head->what == HD_MY_OWED_CLIENT && server->client &&
		hd_my_client_reply_packet(server->client, packet, len, &server->reply) != 0)
	{
		hd_my_client_fatal(server->client, 2008, "53200", "out of memory");
		return;
	}
	if (step == HD_MY_REPLY_LOCAL_INFILE)
	{
		server->local_infile = true;
		if (head->what == HD_MY_OWED_CLIENT && server->client)
			hd_my_client_local_infile(server->client);
		else
		{
			/* nobody to send the file: an empty one ends it */
			static const char empty[4] = {0, 0, 0, 0};

			(void) hd_iobuf_append(&server->out, empty, sizeof(empty));
			server->local_infile = false;
			hd_my_server_flush(server);
		}
		return;
	}
	if (step == HD_MY_REPLY_DONE)
		reply_done(server, p, plen);
}

static void
process_input(HdMyServer *server)
{
	/* a callback below may resume reading: the packet in hand is not read twice */
	if (server->processing)
		return;
	server->processing = true;
	while (server->conn.state != HD_CONN_CLOSED)
	{
		const unsigned char *payload;
		size_t		plen;
		uint8_t		seq;
		const unsigned char *head = (const unsigned char *) hd_iobuf_head(&server->in);

		if (!hd_my_packet_peek(head, hd_iobuf_live(&server->in), &payload, &plen, &seq))
			break;
		if (server->login == HD_MY_SLOGIN_GREETING || server->login == HD_MY_SLOGIN_AUTH)
			login_packet(server, payload, plen, seq);
		else
			reply_packet(server, head, HD_MY_HEADER + plen);
		if (server->conn.state == HD_CONN_CLOSED)
			break;
		hd_iobuf_consume(&server->in, HD_MY_HEADER + plen);
		/* a client whose output is full: wait for it to drain */
		if (server->client && hd_iobuf_live(&server->client->out) > 1024 * 1024)
		{
			ev_io_stop(server->my->loop, &server->read_watcher);
			server->paused = true;
			break;
		}
	}
	server->processing = false;
	/* what this read brought for the client goes out in one write */
	if (server->client)
		hd_my_client_flush(server->client);
	if (server->conn.state != HD_CONN_CLOSED)
		hd_iobuf_trim(&server->in);
}

void
hd_my_server_resume_reading(HdMyServer *server)
{
	if (server->conn.state == HD_CONN_CLOSED || server->conn.state == HD_CONN_CONNECTING ||
		!server->paused)
		return;
	server->paused = false;
	ev_io_start(server->my->loop, &server->read_watcher);
	hd_conn_resume_reading(&server->sock);
	if (hd_iobuf_live(&server->in) > 0)
		process_input(server);
}

static void
server_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdMyServer *server = w->data;
	long		n;

	(void) loop;
	(void) revents;
	if (hd_conn_negotiating(&server->sock))
	{
		tls_step(server);
		return;
	}
	n = hd_conn_read(&server->sock, &server->in, 256 * 1024);
	if (n == -2)
		return;
	if (n <= 0)
	{
		char		reason[300];

		if (n == 0)
			snprintf(reason, sizeof(reason), "the origin closed the connection");
		else
			snprintf(reason, sizeof(reason), "read failed: %s", hd_conn_error(&server->sock, errno));
		if (server->login != HD_MY_SLOGIN_DONE)
			login_failed(server, "08006", reason);
		else
			hd_my_server_close(server, reason);
		return;
	}
	process_input(server);
}

static void
connected(HdMyServer *server)
{
	int			error = 0;
	socklen_t	len = sizeof(error);

	if (getsockopt(server->sock.fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		error = errno;
	if (error != 0)
	{
		char		why[300];

		snprintf(why, sizeof(why), "could not connect to origin %s:%d: %s",
				 server->pool->pool.config.host, server->pool->pool.config.port, strerror(error));
		login_failed(server, "08001", why);
		return;
	}
	server->conn.state = HD_CONN_LOGIN;
	server->login = HD_MY_SLOGIN_GREETING;
	ev_io_stop(server->my->loop, &server->write_watcher);
	ev_io_start(server->my->loop, &server->read_watcher);
}

static void
server_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdMyServer *server = w->data;

	(void) loop;
	(void) revents;
	if (server->conn.state == HD_CONN_CONNECTING)
	{
		connected(server);
		return;
	}
	if (hd_conn_negotiating(&server->sock))
	{
		tls_step(server);
		return;
	}
	hd_my_server_flush(server);
}

static void
server_connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdMyServer *server = w->data;

	(void) loop;
	(void) revents;
	if (server->login != HD_MY_SLOGIN_DONE)
		login_failed(server, "08001", "connecting to the origin timed out (server_connect_timeout)");
}

/* ---------------------------------------------------------------------------
 * The greeting probe: what an origin says of itself before anyone logs in
 */

typedef struct HdMyProbe
{
	HdMyAgent  *my;
	int			fd;
	ev_io		io;
	ev_timer	timer;
	HdIoBuf		in;
} HdMyProbe;

void
hd_my_agent_learn_origin(HdMyAgent *my, const HdMyGreeting *g)
{
	snprintf(my->version, sizeof(my->version), "%s", g->version);
	my->origin_caps = g->caps;
	my->origin_ext_caps = g->ext_caps;
	my->origin_collation = g->collation;
	my->origin_known = true;
}

static void
probe_end(HdMyProbe *probe)
{
	HdMyAgent  *my = probe->my;

	ev_io_stop(my->loop, &probe->io);
	ev_timer_stop(my->loop, &probe->timer);
	close(probe->fd);
	hd_iobuf_free(&probe->in);
	free(probe);
	my->probing = false;
	hd_my_client_greet_waiting(my);
}

static void
probe_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdMyProbe  *probe = w->data;
	const unsigned char *payload;
	size_t		plen;
	uint8_t		seq;
	HdMyGreeting g;
	char		why[128];
	long		n;

	(void) loop;
	(void) revents;
	n = hd_iobuf_read_fd(&probe->in, probe->fd, 4096);
	if (n == -2)
		return;
	if (n > 0 && !hd_my_packet_peek(hd_iobuf_head(&probe->in), hd_iobuf_live(&probe->in),
									 &payload, &plen, &seq))
		return;
	if (n > 0 && hd_my_parse_greeting(payload, plen, &g, why, sizeof(why)))
		hd_my_agent_learn_origin(probe->my, &g);
	probe_end(probe);
}

static void
probe_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void) loop;
	(void) revents;
	probe_end(w->data);
}

bool
hd_my_probe_greeting(HdMyAgent *my, const HdConfig *config)
{
	HdMyProbe  *probe;
	char		err[256];
	int			fd;

	if (my->probing)
		return true;
	if ((fd = hd_origin_connect(config, err, sizeof(err))) < 0)
		return false;
	if ((probe = calloc(1, sizeof(*probe))) == NULL)
	{
		close(fd);
		return false;
	}
	probe->my = my;
	probe->fd = fd;
	/* the greeting comes once connected: readable covers both */
	ev_io_init(&probe->io, probe_read_cb, fd, EV_READ);
	probe->io.data = probe;
	ev_timer_init(&probe->timer, probe_timeout_cb, my->settings->server_connect_timeout_ms / 1000.0, 0.);
	probe->timer.data = probe;
	ev_io_start(my->loop, &probe->io);
	ev_timer_start(my->loop, &probe->timer);
	my->probing = true;
	return true;
}
