/*
 * my_lookup.c
 *    Other origin users' password hashes, looked up on a control connection
 *    per MySQL config (the contract is in my_lookup.h).
 *
 * A connection (LookupConn) belongs to one config id and goes CLOSED ->
 * CONNECTING -> IDLE -> QUERY -> STORE -> IDLE ...; each of Connector/C's
 * non-blocking calls returns the events it waits for (MYSQL_WAIT_*), which
 * become the connection's ev_io (the socket can change while connecting, so
 * it is re-read at every wait) and its ev_timer: the operation's deadline,
 * or Connector/C's own timeout when sooner; the timer firing resumes the
 * call with MYSQL_WAIT_TIMEOUT, which makes it fail. While IDLE the same
 * timer closes the connection after a while.
 *
 * Answers are never given from inside a Connector/C step or inside
 * hd_my_lookup(): they go to a ready list that a zero timer delivers, so a
 * done() may start or cancel lookups without finding a connection halfway
 * through a step.
 */
#include "mywire/my_lookup.h"

#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/mysql_auth.h"
#include "base/log.h"
#include "mywire/my_int.h"

#define NATIVE "mysql_native_password"
/* Cached hashes per config (oldest dropped first). */
#define CACHE_MAX 256

#define ER_TABLEACCESS_DENIED_ERROR 1142
#define ER_NO_SUCH_TABLE 1146
#define CR_SERVER_GONE_ERROR 2006
#define CR_SERVER_LOST 2013

typedef enum LookupState
{
	LK_CLOSED,
	LK_CONNECTING,
	LK_IDLE,
	LK_QUERY,
	LK_STORE
} LookupState;

typedef struct LookupReq
{
	HdList		link;			/* conn->queue, then lookups->ready */
	char		user[HD_MY_LOOKUP_USER_MAX + 1];
	HdMyLookupDone done;
	void	   *arg;
	bool		retried;		/* reopened once for it already */
	HdMyLookupStatus status;
	uint8_t		stage2[HD_MY_SHA1_LEN];
	char		message[800];
} LookupReq;

typedef struct CacheEntry
{
	HdList		link;			/* conn->cache, oldest first */
	char		user[HD_MY_LOOKUP_USER_MAX + 1];
	HdMyLookupStatus status;	/* FOUND or NO_PASSWORD */
	uint8_t		stage2[HD_MY_SHA1_LEN];
	ev_tstamp	expires;
} CacheEntry;

typedef struct HdMyLookups HdMyLookups;

typedef struct LookupConn
{
	HdList		link;			/* lookups->conns */
	HdMyLookups *lookups;
	char		config_id[HD_CONFIG_ID_LEN + 1];
	char	   *origin;			/* what it logged in to (origin_key()); NULL: never */
	bool		stale;			/* the config changed while busy: reopen when done */
	MYSQL	   *mysql;
	LookupState state;
	bool		fresh;			/* logged in, no query run on it yet */
	bool		reused;			/* the query in flight runs on a connection that ran one before */
	bool		mariadb;
	HdMyLookupTable table;		/* the table the next query reads */
	char		user[HD_MY_LOOKUP_USER_MAX + 1];	/* the query in flight's */
	char		query[1024];
	MYSQL	   *connect_ret;
	/* what the connect in progress reads (Connector/C keeps the pointers until it is done) */
	char	   *host;
	char	   *login;
	char	   *password;
	char	   *database;
	int			query_ret;
	MYSQL_RES  *result;
	ev_io		io;
	ev_timer	timer;
	ev_tstamp	deadline;
	bool		timed_out;
	HdList		queue;			/* LookupReq, in order */
	HdList		cache;			/* CacheEntry */
	int			ncache;
} LookupConn;

struct HdMyLookups
{
	HdMyAgent  *my;
	HdList		conns;
	HdList		ready;			/* answered, done() still to call */
	ev_timer	deliver;
};

static void conn_step(LookupConn *conn, int events);
static void conn_next(LookupConn *conn);

/* ---------------------------------------------------------------------------
 * The pure parts: the query and the rule
 */

int
hd_my_lookup_query(HdMyLookupTable table, const char *user, char *buf, size_t buflen)
{
	static const char *const heads[] = {
		[HD_MY_LOOKUP_GLOBAL_PRIV] =
		"SELECT JSON_VALUE(Priv, '$.plugin'), JSON_VALUE(Priv, '$.authentication_string'), "
		"JSON_VALUE(Priv, '$.account_locked'), JSON_VALUE(Priv, '$.password_last_changed') = 0, "
		"JSON_VALUE(Priv, '$.is_role'), JSON_EXISTS(Priv, '$.auth_or') "
		"FROM mysql.global_priv WHERE User = X'",
		[HD_MY_LOOKUP_MARIADB_USER] =
		"SELECT plugin, authentication_string, NULL, password_expired, is_role, NULL "
		"FROM mysql.user WHERE User = X'",
		[HD_MY_LOOKUP_MYSQL_USER] =
		"SELECT plugin, authentication_string, account_locked, password_expired, NULL, NULL "
		"FROM mysql.user WHERE User = X'",
	};
	size_t		ulen = strlen(user);
	size_t		hlen;
	size_t		n;

	if (ulen == 0 || ulen > HD_MY_LOOKUP_USER_MAX || (int) table < 0 || table > HD_MY_LOOKUP_MYSQL_USER)
		return -1;
	hlen = strlen(heads[table]);
	if (hlen + 2 * ulen + 2 > buflen)
		return -1;
	memcpy(buf, heads[table], hlen);
	n = hlen;
	/* a hexadecimal literal: the name's bytes, whatever they are, and nothing to escape */
	for (size_t i = 0; i < ulen; i++)
	{
		static const char hex[] = "0123456789ABCDEF";
		unsigned char c = (unsigned char) user[i];

		buf[n++] = hex[c >> 4];
		buf[n++] = hex[c & 15];
	}
	buf[n++] = '\'';
	buf[n] = '\0';
	return (int) n;
}

/* A flag column: JSON true comes back as "1", mysql.user's as "Y". */
static bool
flag(const char *value)
{
	return value && (strcmp(value, "1") == 0 || strcmp(value, "Y") == 0 ||
					 strcmp(value, "true") == 0);
}

static bool
same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Whether two login rows would let the same password in the same way. */
static bool
same_login(const HdMyLookupRow *a, const HdMyLookupRow *b)
{
	return same(a->plugin, b->plugin) && same(a->auth, b->auth) &&
		flag(a->locked) == flag(b->locked) && flag(a->expired) == flag(b->expired) &&
		flag(a->several) == flag(b->several);
}

HdMyLookupStatus
hd_my_lookup_decide(const char *user, const HdMyLookupRow *rows, int nrows, uint8_t stage2[20],
					char *message, size_t msglen)
{
	const HdMyLookupRow *first = NULL;
	int			nlogins = 0;
	int			parsed;

	memset(stage2, 0, HD_MY_SHA1_LEN);
	message[0] = '\0';
	/* a role has a row of its own but is no login */
	for (int i = 0; i < nrows; i++)
	{
		if (flag(rows[i].role))
			continue;
		nlogins++;
		if (first == NULL)
			first = &rows[i];
		else if (!same_login(first, &rows[i]))
		{
			snprintf(message, msglen, "user \"%s\" has accounts for several hosts that differ in "
					 "their plugin, password or state: the agent cannot tell which one the origin "
					 "would use, so it refuses them (give them the same password)", user);
			return HD_MY_LOOKUP_REFUSED;
		}
	}
	if (nlogins == 0)
	{
		snprintf(message, msglen, "no account of user \"%s\" on the origin", user);
		return HD_MY_LOOKUP_NOT_FOUND;
	}
	if (flag(first->several))
	{
		snprintf(message, msglen, "user \"%s\" has several authentication methods (IDENTIFIED VIA "
				 "... OR ...): only an account with mysql_native_password alone can log in through "
				 "the agent", user);
		return HD_MY_LOOKUP_REFUSED;
	}
	if (first->plugin == NULL || strcmp(first->plugin, NATIVE) != 0)
	{
		snprintf(message, msglen, "user \"%s\" authenticates with %s, which cannot be checked by a "
				 "proxy: refused (only mysql_native_password accounts can log in through the agent "
				 "as other users than the config's)", user,
				 first->plugin && first->plugin[0] ? first->plugin : "no recorded plugin");
		return HD_MY_LOOKUP_REFUSED;
	}
	if (flag(first->locked))
	{
		snprintf(message, msglen, "user \"%s\": the account is locked", user);
		return HD_MY_LOOKUP_REFUSED;
	}
	if (flag(first->expired))
	{
		snprintf(message, msglen, "user \"%s\": the password has expired (change it on the origin)",
				 user);
		return HD_MY_LOOKUP_REFUSED;
	}
	parsed = hd_my_native_parse_hash(first->auth ? first->auth : "", stage2);
	if (parsed == HD_MY_HASH_OK)
		return HD_MY_LOOKUP_FOUND;
	if (parsed == HD_MY_HASH_NONE)
		return HD_MY_LOOKUP_NO_PASSWORD;
	snprintf(message, msglen, "user \"%s\": its mysql_native_password authentication_string is "
			 "not a password hash (\"*\" and 40 hex digits): refused", user);
	return HD_MY_LOOKUP_REFUSED;
}

void
hd_my_lookup_grant_message(bool mariadb, const char *config_user, const char *error,
						   char *message, size_t msglen)
{
	snprintf(message, msglen, "the config's user \"%s\" cannot read the password hashes other "
			 "users' logins need (%s): run as an administrator GRANT SELECT ON %s TO '%s'@'HOST' "
			 "('hyperdrive check' prints the exact statement); until then only \"%s\" logs in",
			 config_user, error, mariadb ? "mysql.global_priv" : "mysql.user", config_user,
			 config_user);
}

/* ---------------------------------------------------------------------------
 * Requests and answers
 */

static void
deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdMyLookups *lookups = w->data;
	HdList	   *item;

	(void) loop;
	(void) revents;
	/* done() may add to the list (a cached answer): those wait for the next round */
	while ((item = hd_list_first(&lookups->ready)) != NULL)
	{
		LookupReq  *req = hd_container_of(item, LookupReq, link);
		bool		hash = req->status == HD_MY_LOOKUP_FOUND;

		hd_list_del(item);
		req->done(req->arg, (int) req->status, hash ? req->stage2 : NULL, req->message);
		free(req);
	}
}

static void
ready(HdMyLookups *lookups, LookupReq *req, HdMyLookupStatus status, const uint8_t *stage2,
	  const char *message)
{
	req->status = status;
	if (stage2)
		memcpy(req->stage2, stage2, HD_MY_SHA1_LEN);
	snprintf(req->message, sizeof(req->message), "%s", message ? message : "");
	hd_list_del(&req->link);
	hd_list_append(&lookups->ready, &req->link);
	if (!ev_is_active(&lookups->deliver))
	{
		ev_timer_set(&lookups->deliver, 0, 0);
		ev_timer_start(lookups->my->loop, &lookups->deliver);
	}
}

/* Every queued request for user gets this answer. */
static void
answer_user(LookupConn *conn, const char *user, HdMyLookupStatus status, const uint8_t *stage2,
			const char *message)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &conn->queue)
	{
		LookupReq  *req = hd_container_of(item, LookupReq, link);

		if (strcmp(req->user, user) == 0)
			ready(conn->lookups, req, status, stage2, message);
	}
}

static void
answer_all(LookupConn *conn, HdMyLookupStatus status, const char *message)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &conn->queue)
		ready(conn->lookups, hd_container_of(item, LookupReq, link), status, NULL, message);
}

/* ---------------------------------------------------------------------------
 * The cache
 */

static void
cache_clear(LookupConn *conn)
{
	HdList	   *item;

	while ((item = hd_list_first(&conn->cache)) != NULL)
	{
		hd_list_del(item);
		free(hd_container_of(item, CacheEntry, link));
	}
	conn->ncache = 0;
}

static CacheEntry *
cache_find(LookupConn *conn, const char *user, ev_tstamp now)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &conn->cache)
	{
		CacheEntry *entry = hd_container_of(item, CacheEntry, link);

		if (entry->expires <= now)
		{
			hd_list_del(item);
			free(entry);
			conn->ncache--;
		}
		else if (strcmp(entry->user, user) == 0)
			return entry;
	}
	return NULL;
}

static void
cache_put(LookupConn *conn, const char *user, HdMyLookupStatus status, const uint8_t *stage2)
{
	ev_tstamp	now = ev_now(conn->lookups->my->loop);
	CacheEntry *entry = cache_find(conn, user, now);

	if (entry == NULL)
	{
		if (conn->ncache >= CACHE_MAX)
		{
			HdList	   *oldest = hd_list_first(&conn->cache);

			hd_list_del(oldest);
			free(hd_container_of(oldest, CacheEntry, link));
			conn->ncache--;
		}
		if ((entry = calloc(1, sizeof(*entry))) == NULL)
			return;				/* not cached: the next lookup asks the origin */
		snprintf(entry->user, sizeof(entry->user), "%s", user);
		conn->ncache++;
	}
	else
		hd_list_del(&entry->link);
	entry->status = status;
	memcpy(entry->stage2, stage2, HD_MY_SHA1_LEN);
	entry->expires = now + HD_MY_LOOKUP_CACHE_SECONDS;
	hd_list_append(&conn->cache, &entry->link);
}

/* ---------------------------------------------------------------------------
 * The control connection
 */

/* What the connection depends on: a change means a new connection and an empty cache. */
static char *
origin_key(const HdConfig *config)
{
	char	   *key = NULL;

	if (asprintf(&key, "%s\n%d\n%s\n%s\n%d\n%s", config->host, config->port, config->user,
				 config->database, (int) config->sslmode,
				 config->sslrootcert ? config->sslrootcert : "") < 0)
		return NULL;
	return key;
}

/* The connect's strings, once it is over. */
static void
connect_strings_free(LookupConn *conn)
{
	free(conn->host);
	free(conn->login);
	free(conn->database);
	if (conn->password)
		hd_free_secret(conn->password);
	conn->host = conn->login = conn->database = conn->password = NULL;
}

static void
conn_close(LookupConn *conn)
{
	struct ev_loop *loop = conn->lookups->my->loop;

	ev_io_stop(loop, &conn->io);
	ev_timer_stop(loop, &conn->timer);
	if (conn->result)
		mysql_free_result(conn->result);
	conn->result = NULL;
	if (conn->mysql)
		mysql_close(conn->mysql);	/* COM_QUIT: a few bytes on an idle socket */
	conn->mysql = NULL;
	conn->state = LK_CLOSED;
	connect_strings_free(conn);
}

/*
 * Connector/C's options for the config's sslmode (my_lookup.h): prefer asks
 * for TLS when offered, require insists, verify-ca checks the chain,
 * verify-full the name as well.
 */
void
hd_my_connector_tls_options(MYSQL *mysql, const HdConfig *config)
{
	my_bool		yes = 1;
	my_bool		no = 0;
	bool		verify = config->sslmode == HD_SSL_VERIFY_CA || config->sslmode == HD_SSL_VERIFY_FULL;

	if (config->sslmode == HD_SSL_DISABLE)
		return;
	mysql_ssl_set(mysql, NULL, NULL, NULL, NULL, NULL);
	mysql_options(mysql, MYSQL_OPT_SSL_ENFORCE, config->sslmode >= HD_SSL_REQUIRE ? &yes : &no);
	mysql_options(mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
				  config->sslmode == HD_SSL_VERIFY_FULL ? &yes : &no);
	if (verify && config->sslrootcert && strcmp(config->sslrootcert, "system") == 0)
		mysql_options(mysql, MYSQL_OPT_SSL_CAPATH, "/etc/ssl/certs");
	else if (verify && config->sslrootcert)
		mysql_options(mysql, MYSQL_OPT_SSL_CA, config->sslrootcert);
}

/* The operation about to start gets server_connect_timeout. */
static void
start_deadline(LookupConn *conn)
{
	HdMyAgent  *my = conn->lookups->my;

	conn->deadline = ev_now(my->loop) + my->settings->server_connect_timeout_ms / 1000.0;
	conn->timed_out = false;
}

static void
conn_connect(LookupConn *conn)
{
	HdMyAgent  *my = conn->lookups->my;
	const HdConfig *config = hd_my_config_by_id(my, conn->config_id);
	unsigned int timeout = (unsigned int) ((my->settings->server_connect_timeout_ms + 999) / 1000);
	unsigned int local_infile = 0;
	char		err[256] = "out of memory";
	int			events;

	if (config == NULL || config->protocol != HD_PROTOCOL_MYSQL)
	{
		answer_all(conn, HD_MY_LOOKUP_FAILED, "the config was deleted");
		return;
	}
	free(conn->origin);
	conn->origin = origin_key(config);
	conn->stale = false;
	connect_strings_free(conn);
	if (hd_config_read_password(my->settings->state_dir, config->id, &conn->password, err,
								sizeof(err)) < 0 ||
		(conn->host = strdup(config->host)) == NULL ||
		(conn->login = strdup(config->user)) == NULL ||
		(conn->database = strdup(config->database)) == NULL ||
		(conn->mysql = mysql_init(NULL)) == NULL)
	{
		connect_strings_free(conn);
		answer_all(conn, HD_MY_LOOKUP_FAILED, err);
		return;
	}
	mysql_options(conn->mysql, MYSQL_OPT_NONBLOCK, 0);
	mysql_options(conn->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(conn->mysql, MYSQL_OPT_READ_TIMEOUT, &timeout);
	mysql_options(conn->mysql, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
	/* the origin may not ask the agent for a file */
	mysql_options(conn->mysql, MYSQL_OPT_LOCAL_INFILE, &local_infile);
	mysql_options(conn->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	hd_my_connector_tls_options(conn->mysql, config);
	conn->state = LK_CONNECTING;
	conn->fresh = true;
	conn->reused = false;
	start_deadline(conn);
	events = mysql_real_connect_start(&conn->connect_ret, conn->mysql, conn->host, conn->login,
									  conn->password ? conn->password : "", conn->database,
									  (unsigned int) config->port, NULL, 0);
	conn_step(conn, -events);
}

/* Waits for what Connector/C asked for, until the deadline at the latest. */
static void
conn_wait(LookupConn *conn, int wait)
{
	struct ev_loop *loop = conn->lookups->my->loop;
	int			events = 0;
	ev_tstamp	until = conn->deadline;

	if (wait & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
		events |= EV_READ;
	if (wait & MYSQL_WAIT_WRITE)
		events |= EV_WRITE;
	ev_io_stop(loop, &conn->io);
	if (events)
	{
		ev_io_set(&conn->io, mysql_get_socket(conn->mysql), events);
		ev_io_start(loop, &conn->io);
	}
	if (wait & MYSQL_WAIT_TIMEOUT)
	{
		ev_tstamp	own = ev_now(loop) + mysql_get_timeout_value_ms(conn->mysql) / 1000.0;

		if (own < until)
			until = own;
	}
	ev_timer_stop(loop, &conn->timer);
	ev_timer_set(&conn->timer, until > ev_now(loop) ? until - ev_now(loop) : 0, 0);
	ev_timer_start(loop, &conn->timer);
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	LookupConn *conn = w->data;
	int			events = 0;

	(void) loop;
	if (revents & EV_READ)
		events |= MYSQL_WAIT_READ;
	if (revents & EV_WRITE)
		events |= MYSQL_WAIT_WRITE;
	conn_step(conn, events);
}

static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	LookupConn *conn = w->data;

	(void) revents;
	if (conn->state == LK_IDLE)
	{
		hd_debug("config %s: closing the idle password-lookup connection", conn->config_id);
		conn_close(conn);
		return;
	}
	if (ev_now(loop) >= conn->deadline)
		conn->timed_out = true;
	conn_step(conn, MYSQL_WAIT_TIMEOUT);
}

static void
query_start(LookupConn *conn, const char *user)
{
	int			events;

	snprintf(conn->user, sizeof(conn->user), "%s", user);
	if (hd_my_lookup_query(conn->table, user, conn->query, sizeof(conn->query)) < 0)
	{
		answer_user(conn, user, HD_MY_LOOKUP_FAILED, NULL, "the user name is too long");
		conn_next(conn);
		return;
	}
	conn->state = LK_QUERY;
	conn->reused = !conn->fresh;
	conn->fresh = false;
	start_deadline(conn);
	events = mysql_real_query_start(&conn->query_ret, conn->mysql, conn->query,
									strlen(conn->query));
	conn_step(conn, -events);
}

/*
 * The connection failed under the request at the queue's head: a reused
 * one the origin may have dropped meanwhile (wait_timeout, a restart) is
 * reopened once; otherwise every queued request fails with why.
 */
static void
conn_failed(LookupConn *conn, const char *what)
{
	char		why[600];
	LookupReq  *head;
	unsigned int code = conn->mysql ? mysql_errno(conn->mysql) : 0;

	if (conn->timed_out)
		snprintf(why, sizeof(why), "%s: no answer within server_connect_timeout", what);
	else
		snprintf(why, sizeof(why), "%s: %s (error %u)", what,
				 conn->mysql ? mysql_error(conn->mysql) : "out of memory", code);
	conn_close(conn);
	head = hd_list_empty(&conn->queue) ? NULL :
		hd_container_of(hd_list_first(&conn->queue), LookupReq, link);
	if (head && conn->reused && !head->retried && !conn->timed_out)
	{
		hd_debug("config %s: the password-lookup connection was lost (%s): reconnecting",
				 conn->config_id, why);
		head->retried = true;
		conn_next(conn);
		return;
	}
	answer_all(conn, HD_MY_LOOKUP_FAILED, why);
}

static void
connected(LookupConn *conn)
{
	const char *info = mysql_get_server_info(conn->mysql);

	conn->mariadb = info && strstr(info, "MariaDB") != NULL;
	conn->table = conn->mariadb ? HD_MY_LOOKUP_GLOBAL_PRIV : HD_MY_LOOKUP_MYSQL_USER;
	conn->state = LK_IDLE;
	hd_debug("config %s: password-lookup connection to %s", conn->config_id, info ? info : "?");
	conn_next(conn);
}

/* The query failed with an SQL error (the connection lives on). */
static void
query_error(LookupConn *conn)
{
	unsigned int code = mysql_errno(conn->mysql);
	char		err[300];
	char		message[700];
	const HdConfig *config;

	if (code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST || conn->timed_out)
	{
		conn_failed(conn, "the password lookup's connection failed");
		return;
	}
	conn->state = LK_IDLE;
	if ((code == ER_TABLEACCESS_DENIED_ERROR || code == ER_NO_SUCH_TABLE) &&
		conn->table == HD_MY_LOOKUP_GLOBAL_PRIV)
	{
		/* MariaDB: the view over it may be granted instead */
		conn->table = HD_MY_LOOKUP_MARIADB_USER;
		query_start(conn, conn->user);
		return;
	}
	snprintf(err, sizeof(err), "%s (error %u)", mysql_error(conn->mysql), code);
	config = hd_my_config_by_id(conn->lookups->my, conn->config_id);
	if (code == ER_TABLEACCESS_DENIED_ERROR || code == ER_NO_SUCH_TABLE)
	{
		hd_my_lookup_grant_message(conn->mariadb, config ? config->user : "?", err, message,
								   sizeof(message));
		/* the next lookup tries the table again: the grant may come */
		conn->table = conn->mariadb ? HD_MY_LOOKUP_GLOBAL_PRIV : HD_MY_LOOKUP_MYSQL_USER;
	}
	else
		snprintf(message, sizeof(message), "the password lookup failed: %s", err);
	answer_user(conn, conn->user, HD_MY_LOOKUP_FAILED, NULL, message);
	conn_next(conn);
}

/* The rows are in: the rule decides, every request for that user gets it. */
static void
stored(LookupConn *conn)
{
	MYSQL_RES  *res = conn->result;
	HdMyLookupRow *rows;
	MYSQL_ROW	row;
	int			nrows = 0;
	uint8_t		stage2[HD_MY_SHA1_LEN];
	char		message[512];
	HdMyLookupStatus status;

	conn->result = NULL;
	conn->state = LK_IDLE;
	if (conn->stale)
	{
		/* the config changed meanwhile: this answer is the old origin's */
		mysql_free_result(res);
		conn_close(conn);
		cache_clear(conn);
		conn_next(conn);
		return;
	}
	if (mysql_num_fields(res) != 6 ||
		(rows = calloc(mysql_num_rows(res) + 1, sizeof(*rows))) == NULL)
	{
		mysql_free_result(res);
		answer_user(conn, conn->user, HD_MY_LOOKUP_FAILED, NULL,
					"out of memory, or an unexpected result of the password lookup");
		conn_next(conn);
		return;
	}
	while ((row = mysql_fetch_row(res)) != NULL)
	{
		rows[nrows].plugin = row[0];
		rows[nrows].auth = row[1];
		rows[nrows].locked = row[2];
		rows[nrows].expired = row[3];
		rows[nrows].role = row[4];
		rows[nrows].several = row[5];
		nrows++;
	}
	status = hd_my_lookup_decide(conn->user, rows, nrows, stage2, message, sizeof(message));
	free(rows);
	mysql_free_result(res);
	if (status == HD_MY_LOOKUP_FOUND || status == HD_MY_LOOKUP_NO_PASSWORD)
		cache_put(conn, conn->user, status, stage2);
	answer_user(conn, conn->user, status, status == HD_MY_LOOKUP_FOUND ? stage2 : NULL, message);
	memset(stage2, 0, sizeof(stage2));
	conn_next(conn);
}

/*
 * Resumes the operation in progress with the events that occurred (or, as
 * a negative number, what its _start() returned: nothing to resume yet).
 */
static void
conn_step(LookupConn *conn, int events)
{
	int			wait = 0;

	ev_io_stop(conn->lookups->my->loop, &conn->io);
	ev_timer_stop(conn->lookups->my->loop, &conn->timer);
	switch (conn->state)
	{
		case LK_CONNECTING:
			wait = events <= 0 ? -events :
				mysql_real_connect_cont(&conn->connect_ret, conn->mysql, events);
			if (wait)
				break;
			connect_strings_free(conn);
			if (conn->connect_ret == NULL)
				conn_failed(conn, "the password lookup cannot log in to the origin as the config's user");
			else
				connected(conn);
			return;
		case LK_QUERY:
			wait = events <= 0 ? -events :
				mysql_real_query_cont(&conn->query_ret, conn->mysql, events);
			if (wait)
				break;
			if (conn->query_ret != 0)
			{
				query_error(conn);
				return;
			}
			conn->state = LK_STORE;
			wait = mysql_store_result_start(&conn->result, conn->mysql);
			if (wait)
				break;
			/* stored at once: on as if resumed */
			events = 0;
			/* FALLTHROUGH */
		case LK_STORE:
			wait = events <= 0 ? -events :
				mysql_store_result_cont(&conn->result, conn->mysql, events);
			if (wait)
				break;
			if (conn->result == NULL)
				query_error(conn);
			else
				stored(conn);
			return;
		case LK_CLOSED:
		case LK_IDLE:
			return;
	}
	conn_wait(conn, wait);
}

/* What the connection does next: the head of its queue, else rest. */
static void
conn_next(LookupConn *conn)
{
	struct ev_loop *loop = conn->lookups->my->loop;
	LookupReq  *head;

	if (conn->stale && conn->state == LK_IDLE)
	{
		conn_close(conn);
		cache_clear(conn);
	}
	if (hd_list_empty(&conn->queue))
	{
		if (conn->state == LK_IDLE)
		{
			ev_timer_stop(loop, &conn->timer);
			ev_timer_set(&conn->timer, HD_MY_LOOKUP_IDLE_SECONDS, 0);
			ev_timer_start(loop, &conn->timer);
		}
		return;
	}
	if (conn->state == LK_CLOSED)
	{
		conn_connect(conn);
		return;
	}
	if (conn->state != LK_IDLE)
		return;
	head = hd_container_of(hd_list_first(&conn->queue), LookupReq, link);
	query_start(conn, head->user);
}

/* ---------------------------------------------------------------------------
 * The interface
 */

static HdMyLookups *
lookups_of(HdMyAgent *my)
{
	HdMyLookups *lookups = my->lookups;

	if (lookups)
		return lookups;
	if ((lookups = calloc(1, sizeof(*lookups))) == NULL)
		return NULL;
	lookups->my = my;
	hd_list_init(&lookups->conns);
	hd_list_init(&lookups->ready);
	ev_timer_init(&lookups->deliver, deliver_cb, 0, 0);
	lookups->deliver.data = lookups;
	my->lookups = lookups;
	return lookups;
}

static LookupConn *
conn_find(HdMyLookups *lookups, const char *config_id)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &lookups->conns)
	{
		LookupConn *conn = hd_container_of(item, LookupConn, link);

		if (strcmp(conn->config_id, config_id) == 0)
			return conn;
	}
	return NULL;
}

static LookupConn *
conn_get(HdMyLookups *lookups, const HdConfig *config)
{
	LookupConn *conn = conn_find(lookups, config->id);

	if (conn)
		return conn;
	if ((conn = calloc(1, sizeof(*conn))) == NULL)
		return NULL;
	conn->lookups = lookups;
	snprintf(conn->config_id, sizeof(conn->config_id), "%s", config->id);
	hd_list_init(&conn->queue);
	hd_list_init(&conn->cache);
	ev_init(&conn->io, io_cb);
	conn->io.data = conn;
	ev_init(&conn->timer, timer_cb);
	conn->timer.data = conn;
	hd_list_append(&lookups->conns, &conn->link);
	return conn;
}

/* The config changed since the connection logged in: its cache goes now, the connection when it can. */
static void
conn_check_origin(LookupConn *conn, const HdConfig *config)
{
	char	   *key = origin_key(config);

	if (conn->origin && key && strcmp(conn->origin, key) != 0)
	{
		cache_clear(conn);
		conn->stale = true;
		if (conn->state == LK_IDLE)
			conn_close(conn);
	}
	free(key);
}

int
hd_my_lookup(HdMyAgent *my, const HdConfig *config, const char *user, HdMyLookupDone done,
			 void *arg)
{
	HdMyLookups *lookups;
	LookupConn *conn;
	LookupReq  *req;
	CacheEntry *entry;
	size_t		ulen = strlen(user);

	if (ulen == 0 || ulen > HD_MY_LOOKUP_USER_MAX || (lookups = lookups_of(my)) == NULL ||
		(conn = conn_get(lookups, config)) == NULL || (req = calloc(1, sizeof(*req))) == NULL)
		return -1;
	memcpy(req->user, user, ulen + 1);
	req->done = done;
	req->arg = arg;
	hd_list_init(&req->link);
	conn_check_origin(conn, config);
	if ((entry = cache_find(conn, user, ev_now(my->loop))) != NULL)
	{
		ready(lookups, req, entry->status,
			  entry->status == HD_MY_LOOKUP_FOUND ? entry->stage2 : NULL, "");
		return 0;
	}
	hd_list_append(&conn->queue, &req->link);
	if (conn->state == LK_CLOSED || conn->state == LK_IDLE)
		conn_next(conn);
	return 0;
}

static void
drop_requests(HdList *list, void *arg)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, list)
	{
		LookupReq  *req = hd_container_of(item, LookupReq, link);

		if (req->arg == arg || arg == NULL)
		{
			hd_list_del(item);
			free(req);
		}
	}
}

void
hd_my_lookup_cancel(HdMyAgent *my, void *arg)
{
	HdMyLookups *lookups = my->lookups;
	HdList	   *item;
	HdList	   *tmp;

	if (lookups == NULL || arg == NULL)
		return;
	/* a query in flight goes on (its answer still fills the cache); only the request goes */
	hd_list_foreach_safe(item, tmp, &lookups->conns)
		drop_requests(&hd_container_of(item, LookupConn, link)->queue, arg);
	drop_requests(&lookups->ready, arg);
}

void
hd_my_lookup_forget(HdMyAgent *my, const HdConfig *config, const char *user)
{
	LookupConn *conn;
	CacheEntry *entry;

	if (my->lookups == NULL || (conn = conn_find(my->lookups, config->id)) == NULL)
		return;
	if ((entry = cache_find(conn, user, ev_now(my->loop))) != NULL)
	{
		hd_list_del(&entry->link);
		free(entry);
		conn->ncache--;
	}
}

void
hd_my_lookup_shutdown(HdMyAgent *my)
{
	HdMyLookups *lookups = my->lookups;
	HdList	   *item;

	if (lookups == NULL)
		return;
	while ((item = hd_list_first(&lookups->conns)) != NULL)
	{
		LookupConn *conn = hd_container_of(item, LookupConn, link);

		drop_requests(&conn->queue, NULL);
		/* an operation in progress is made to fail first (a timeout), then closed */
		conn->stale = true;
		for (int i = 0; i < 8 && conn->state != LK_CLOSED && conn->state != LK_IDLE; i++)
		{
			conn->timed_out = true;
			conn_step(conn, MYSQL_WAIT_TIMEOUT);
		}
		conn_close(conn);
		cache_clear(conn);
		free(conn->origin);
		hd_list_del(item);
		free(conn);
	}
	drop_requests(&lookups->ready, NULL);
	ev_timer_stop(my->loop, &lookups->deliver);
	free(lookups);
	my->lookups = NULL;
}
