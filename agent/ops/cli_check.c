/*
 * cli_check.c
 *    `hyperdrive check`: the settings, the configs and each origin's
 *    prerequisites, one line per check (see cli_check.h).
 *
 * The origin is asked everything a plain connection can answer in one
 * query (Facts); the output plugin is then tried for real on a replication
 * connection, because only the server knows whether this user may load it
 * (output_plugin_libraries, the library's presence, pg_hba.conf's rule for
 * replication connections, a free slot).
 *
 * A MySQL/MariaDB origin is reached with MariaDB Connector/C, blocking, with
 * the TLS the config's sslmode asks for; none of the PostgreSQL checks apply
 * to it (it has no change stream).
 */
#include "ops/cli_check.h"

#include <errno.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/configs.h"
#include "config/conninfo.h"
#include "config/settings.h"
#include "mywire/my_lookup.h"
#include "stream/stream.h"

typedef struct Check
{
	FILE	   *out;
	const char *prefix;			/* "NAME: " for a config's lines, else "" */
	int			failures;
	int			connect_timeout_s;
} Check;

/* What one query on a plain connection tells about an origin. */
typedef struct Facts
{
	char		wal_level[32];
	bool		replication;	/* REPLICATION or superuser */
	bool		extension_available;	/* the server has its files */
	char		extversion[32]; /* "" if not created in this database */
	char		default_version[32];
	bool		schema_usage;
	int			max_slots;
	int			used_slots;
	bool		own_slot;		/* the agent's slot for this config exists */
	bool		own_slot_active;	/* and its stream holds a WAL sender */
	int			max_senders;
	int			used_senders;
} Facts;

static void ok(Check *c, const char *fmt,...) __attribute__((format(printf, 2, 3)));
static void problem(Check *c, const char *fix, const char *fmt,...) __attribute__((format(printf, 3, 4)));
static void warning(Check *c, const char *how, const char *fmt,...) __attribute__((format(printf, 3, 4)));

/* "KIND: [NAME: ]WHAT", then "; TAIL" if there is one. */
static void
put_line(Check *c, const char *kind, const char *tail, const char *fmt, va_list ap)
{
	fprintf(c->out, "%s: %s", kind, c->prefix);
	vfprintf(c->out, fmt, ap);
	if (tail != NULL)
		fprintf(c->out, "; %s", tail);
	fputc('\n', c->out);
}

static void
ok(Check *c, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	put_line(c, "ok", NULL, fmt, ap);
	va_end(ap);
}

/* "FAIL: WHAT; fix: HOW", counted. */
static void
problem(Check *c, const char *fix, const char *fmt,...)
{
	va_list		ap;
	char		tail[1400];

	snprintf(tail, sizeof(tail), "fix: %s", fix);
	va_start(ap, fmt);
	put_line(c, "FAIL", tail, fmt, ap);
	va_end(ap);
	c->failures++;
}

/* "warning: WHAT; HOW": worth doing, but the agent works without it (not counted). */
static void
warning(Check *c, const char *how, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	put_line(c, "warning", how, fmt, ap);
	va_end(ap);
}

static void
skip(Check *c, const char *what, const char *why)
{
	fprintf(c->out, "skip: %s%s (%s)\n", c->prefix, what, why);
}

/* A libpq message on one line, without its "ERROR:  " and trailing newline. */
static void
one_line(char *dst, size_t len, const char *src)
{
	size_t		n;

	if (src && strncmp(src, "ERROR:  ", 8) == 0)
		src += 8;
	snprintf(dst, len, "%s", src && src[0] ? src : "unknown error");
	n = strlen(dst);
	while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
	for (char *p = dst; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	/* "...\nHINT:  ..." */
	for (char *p; (p = strstr(dst, "  ")) != NULL;)
		memmove(p, p + 1, strlen(p + 1) + 1);
}

/* ------------------------------------------------------------------------
 * The agent's side: settings, state directory, configs.
 */

static int
check_state_dir(Check *c, const char *dir)
{
	struct stat st;
	char		fix[1200];

	if (stat(dir, &st) != 0)
	{
		if (errno != ENOENT)
		{
			snprintf(fix, sizeof(fix), "make %s readable by the agent's user", dir);
			problem(c, fix, "state_dir %s: %s", dir, strerror(errno));
			return -1;
		}
		ok(c, "state_dir %s does not exist yet (the agent and hyperdrive create make it)", dir);
		return 0;
	}
	if (!S_ISDIR(st.st_mode))
	{
		problem(c, "point state_dir at a directory", "state_dir %s is not a directory", dir);
		return -1;
	}
	if (access(dir, R_OK | W_OK | X_OK) != 0)
	{
		snprintf(fix, sizeof(fix),
				 "run check as the agent's user, or give it the directory (chown -R USER %s)", dir);
		problem(c, fix, "state_dir %s is not writable by this user", dir);
		return -1;
	}
	ok(c, "state_dir %s", dir);
	return 0;
}

/* ------------------------------------------------------------------------
 * The origin's side.
 */

/* As the agent reaches this config's origin (conninfo.h), blocking. */
static PGconn *
connect_origin(Check *c, const char *state_dir, const HdConfig *cfg, bool replication,
			   char *err, size_t errlen)
{
	char		timeout[16];
	char	   *password = NULL;
	HdOriginParams params;
	PGconn	   *conn;

	if (hd_config_read_password(state_dir, cfg->id, &password, err, errlen) < 0)
		return NULL;
	snprintf(timeout, sizeof(timeout), "%d", c->connect_timeout_s);
	hd_origin_params_init(&params, cfg, "hyperdrive check", password);
	hd_origin_params_add(&params, "connect_timeout", timeout);
	if (replication)
		hd_origin_params_add(&params, "replication", "database");
	hd_origin_params_end(&params);
	conn = PQconnectdbParams(params.keys, params.values, 0);
	if (password)
		hd_free_secret(password);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		one_line(err, errlen, conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static const char FACTS_QUERY[] =
	"SELECT current_setting('wal_level'),"
	" (SELECT rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),"
	" (SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'hyperdrive'),"
	" (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'hyperdrive'),"
	" CASE WHEN pg_catalog.to_regnamespace('hyperdrive') IS NOT NULL"
	"  THEN pg_catalog.has_schema_privilege('hyperdrive', 'USAGE') END,"
	" current_setting('max_replication_slots')::int,"
	" (SELECT count(*) FROM pg_catalog.pg_replication_slots),"
	" EXISTS (SELECT FROM pg_catalog.pg_replication_slots WHERE slot_name = $1),"
	" EXISTS (SELECT FROM pg_catalog.pg_replication_slots WHERE slot_name = $1 AND active),"
	" current_setting('max_wal_senders')::int,"
	" (SELECT count(*) FROM pg_catalog.pg_stat_replication)";

static void
copy_value(char *dst, size_t len, const PGresult *res, int col)
{
	snprintf(dst, len, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

static bool
true_value(const PGresult *res, int col)
{
	return !PQgetisnull(res, 0, col) && strcmp(PQgetvalue(res, 0, col), "t") == 0;
}

static int
read_facts(PGconn *conn, const HdConfig *cfg, Facts *f, char *err, size_t errlen)
{
	char		slot[HD_SLOT_NAME_MAX + 1];
	const char *params[1] = {slot};
	PGresult   *res;

	hd_stream_default_slot(cfg->name, slot);
	res = PQexecParams(conn, FACTS_QUERY, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		one_line(err, errlen, PQerrorMessage(conn));
		PQclear(res);
		return -1;
	}
	copy_value(f->wal_level, sizeof(f->wal_level), res, 0);
	f->replication = true_value(res, 1);
	f->extension_available = !PQgetisnull(res, 0, 2);
	copy_value(f->default_version, sizeof(f->default_version), res, 2);
	copy_value(f->extversion, sizeof(f->extversion), res, 3);
	f->schema_usage = true_value(res, 4);
	f->max_slots = atoi(PQgetvalue(res, 0, 5));
	f->used_slots = atoi(PQgetvalue(res, 0, 6));
	f->own_slot = true_value(res, 7);
	f->own_slot_active = true_value(res, 8);
	f->max_senders = atoi(PQgetvalue(res, 0, 9));
	f->used_senders = atoi(PQgetvalue(res, 0, 10));
	PQclear(res);
	return 0;
}

static void
check_extension(Check *c, const HdConfig *cfg, const Facts *f)
{
	char		fix[512];

	if (f->extversion[0] == '\0')
	{
		if (!f->extension_available)
			problem(c, "install the extension's files on the origin server (the package "
					"postgresql-15-hyperdrive, or make install), then CREATE EXTENSION hyperdrive",
					"the extension hyperdrive is not installed on the origin server");
		else
		{
			snprintf(fix, sizeof(fix), "CREATE EXTENSION hyperdrive; in database %s, "
					 "as a superuser", cfg->database);
			problem(c, fix, "the extension hyperdrive is not created in database %s",
					cfg->database);
		}
		return;
	}
	if (strcmp(f->extversion, f->default_version) != 0)
	{
		snprintf(fix, sizeof(fix), "ALTER EXTENSION hyperdrive UPDATE; in database %s",
				 cfg->database);
		problem(c, fix, "the extension hyperdrive is at version %s, the server has %s",
				f->extversion, f->default_version);
		return;
	}
	ok(c, "extension hyperdrive %s", f->extversion);
	if (f->schema_usage)
		ok(c, "USAGE on schema hyperdrive");
	else
	{
		snprintf(fix, sizeof(fix), "GRANT USAGE ON SCHEMA hyperdrive TO %s;", cfg->user);
		problem(c, fix, "role %s has no USAGE on schema hyperdrive", cfg->user);
	}
}

/*
 * Room for the agent's slot and its WAL sender, unless it has them already
 * (its slot exists; its stream is connected).
 */
static void
check_capacity(Check *c, const Facts *f)
{
	if (f->own_slot)
		ok(c, "the agent's replication slot exists");
	else if (f->used_slots >= f->max_slots)
		problem(c, "raise max_replication_slots in the origin's postgresql.conf and restart it, "
				"or drop an unused slot",
				"no replication slot free (%d of max_replication_slots = %d in use)",
				f->used_slots, f->max_slots);
	else
		ok(c, "replication slots: %d of %d in use", f->used_slots, f->max_slots);
	if (f->own_slot_active)
		ok(c, "the agent's change stream is connected");
	else if (f->used_senders >= f->max_senders)
		problem(c, "raise max_wal_senders in the origin's postgresql.conf and restart it",
				"no WAL sender free (%d of max_wal_senders = %d in use)",
				f->used_senders, f->max_senders);
	else
		ok(c, "WAL senders: %d of %d in use", f->used_senders, f->max_senders);
}

/* What to change for an error from creating the slot. */
static const char *
plugin_fix(const char *msg)
{
	if (strstr(msg, "may not be used as an output plugin"))
		return "add hyperdrive to output_plugin_libraries in the origin's postgresql.conf "
			"(output_plugin_libraries = 'pgoutput, test_decoding, hyperdrive'), then reload it";
	if (strstr(msg, "could not access file") || strstr(msg, "could not load library"))
		return "install the extension's files on the origin server (postgresql-15-hyperdrive)";
	if (strstr(msg, "pg_hba.conf"))
		return "add a pg_hba.conf line for this user and database (logical replication "
			"connections match the database name, not \"replication\"), then reload the origin";
	if (strstr(msg, "replication slots are in use"))
		return "raise max_replication_slots in the origin's postgresql.conf and restart it";
	return "see docs/operations.md, \"Server settings\" and \"The agent's role\"";
}

/*
 * Waits for the result of a command sent on conn, at most `seconds`: creating
 * a logical slot waits for the transactions running on the origin to end.
 */
static PGresult *
wait_result(PGconn *conn, int seconds, bool *timed_out)
{
	time_t		deadline = time(NULL) + seconds;
	struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};

	*timed_out = false;
	while (PQisBusy(conn))
	{
		int			left = (int) (deadline - time(NULL));

		if (left <= 0 || (poll(&pfd, 1, left * 1000) == 0))
		{
			*timed_out = true;
			return NULL;
		}
		if (!PQconsumeInput(conn))
			break;
	}
	return PQgetResult(conn);
}

#define SLOT_WAIT_S 15

static void
check_plugin(Check *c, const char *state_dir, const HdConfig *cfg)
{
	char		err[512];
	char		sql[128];
	const char *what = "output plugin hyperdrive";
	PGconn	   *conn = connect_origin(c, state_dir, cfg, true, err, sizeof(err));
	PGresult   *res;
	bool		timed_out;

	if (conn == NULL)
	{
		problem(c, plugin_fix(err), "%s: replication connection refused: %s", what, err);
		return;
	}
	/* temporary: the server drops it when this connection ends */
	snprintf(sql, sizeof(sql),
			 "CREATE_REPLICATION_SLOT hyperdrive_check_%d TEMPORARY LOGICAL hyperdrive "
			 "(SNAPSHOT 'nothing')", (int) getpid());
	if (!PQsendQuery(conn, sql))
		res = NULL, timed_out = false;
	else
		res = wait_result(conn, SLOT_WAIT_S, &timed_out);
	if (timed_out)
		problem(c, "end the origin's long-running transactions (pg_stat_activity), then "
				"check again", "%s: creating a test slot still waits after %d s for the "
				"origin's running transactions to end", what, SLOT_WAIT_S);
	else if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		one_line(err, sizeof(err), PQerrorMessage(conn));
		problem(c, plugin_fix(err), "%s: cannot create a logical slot with it: %s", what, err);
	}
	else
		ok(c, "%s: a temporary logical slot was created (and dropped)", what);
	PQclear(res);
	PQfinish(conn);
}

static void
check_origin(Check *c, const char *state_dir, const HdConfig *cfg)
{
	char		err[512];
	char		fix[512];
	Facts		f;
	PGconn	   *conn = connect_origin(c, state_dir, cfg, false, err, sizeof(err));

	if (conn == NULL)
	{
		snprintf(fix, sizeof(fix), "make the origin reachable, or correct the config "
				 "(hyperdrive update %s --connection-string=URI, --origin-password=-)", cfg->name);
		problem(c, fix, "cannot connect to %s:%d database %s as %s: %s", cfg->host, cfg->port,
				cfg->database, cfg->user, err);
		return;
	}
	ok(c, "connects to %s:%d database %s as %s (PostgreSQL %s)", cfg->host, cfg->port,
	   cfg->database, cfg->user, PQparameterStatus(conn, "server_version"));
	if (read_facts(conn, cfg, &f, err, sizeof(err)) < 0)
	{
		problem(c, "see the origin's log", "cannot read the origin's settings: %s", err);
		PQfinish(conn);
		return;
	}
	PQfinish(conn);

	if (strcmp(f.wal_level, "logical") == 0)
		ok(c, "wal_level = logical");
	else
		problem(c, "set wal_level = logical in the origin's postgresql.conf and restart it",
				"wal_level is %s, not logical", f.wal_level);
	check_extension(c, cfg, &f);
	if (f.replication)
		ok(c, "role %s may replicate", cfg->user);
	else
	{
		snprintf(fix, sizeof(fix), "ALTER ROLE %s REPLICATION; (as a superuser)", cfg->user);
		problem(c, fix, "role %s has no REPLICATION attribute", cfg->user);
	}
	check_capacity(c, &f);
	if (strcmp(f.wal_level, "logical") != 0 || !f.replication)
		skip(c, "output plugin hyperdrive", "needs wal_level = logical and REPLICATION first");
	else if (!f.extension_available)
		skip(c, "output plugin hyperdrive", "needs the extension's files on the origin first");
	else if (f.used_slots >= f.max_slots || f.used_senders >= f.max_senders)
		skip(c, "output plugin hyperdrive", "no replication slot or WAL sender free for a test slot");
	else
		check_plugin(c, state_dir, cfg);
}

/* ------------------------------------------------------------------------
 * A MySQL/MariaDB origin.
 */

/* As the agent logs in to this config's origin, blocking; NULL with a message. */
static MYSQL *
connect_mysql(Check *c, const char *state_dir, const HdConfig *cfg, char *err, size_t errlen)
{
	MYSQL	   *my = mysql_init(NULL);
	unsigned int timeout = (unsigned int) c->connect_timeout_s;
	char	   *password = NULL;
	MYSQL	   *ok_conn;

	if (my == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (hd_config_read_password(state_dir, cfg->id, &password, err, errlen) < 0)
	{
		mysql_close(my);
		return NULL;
	}
	mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	hd_my_connector_tls_options(my, cfg);
	ok_conn = mysql_real_connect(my, cfg->host, cfg->user, password ? password : "", cfg->database,
								 (unsigned int) cfg->port, NULL, 0);
	hd_free_secret(password);
	if (ok_conn == NULL)
	{
		snprintf(err, errlen, "%s (error %u)", mysql_error(my), mysql_errno(my));
		mysql_close(my);
		return NULL;
	}
	return my;
}

/* The first column of the first row of sql, or NULL with mysql's error in err. */
static char *
mysql_value(MYSQL *my, const char *sql, char *err, size_t errlen)
{
	MYSQL_RES  *res;
	MYSQL_ROW	row;
	char	   *value = NULL;

	if (mysql_query(my, sql) != 0 || (res = mysql_store_result(my)) == NULL)
	{
		snprintf(err, errlen, "%s (error %u)", mysql_error(my), mysql_errno(my));
		return NULL;
	}
	row = mysql_fetch_row(res);
	value = strdup(row && row[0] ? row[0] : "");
	mysql_free_result(res);
	if (value == NULL)
		snprintf(err, errlen, "out of memory");
	return value;
}

/*
 * The versions the agent knows: MariaDB 10.3 and later, MySQL 5.7 and later
 * (mysql_get_server_version: major * 10000 + minor * 100 + patch).
 */
static void
check_mysql_version(Check *c, MYSQL *my)
{
	const char *info = mysql_get_server_info(my);
	unsigned long v = mysql_get_server_version(my);
	bool		mariadb = strstr(info, "MariaDB") != NULL;

	if ((mariadb && v >= 100300) || (!mariadb && v >= 50700))
		ok(c, "server version %s is known", info);
	else
		warning(c, mariadb ? "MariaDB 10.3 and later are known" : "MySQL 5.7 and later are known",
				"server version %s is not known to the agent", info);
}

/*
 * Other users' logins need their password hashes: mysql.global_priv
 * (MariaDB) or mysql.user (MySQL), readable by the config's user. Without
 * it only the config's own user can log in through the agent, so this is a
 * warning, with the GRANT that fixes it.
 */
static void
check_mysql_secrets(Check *c, MYSQL *my)
{
	bool		mariadb = strstr(mysql_get_server_info(my), "MariaDB") != NULL;
	const char *table = mariadb ? "mysql.global_priv" : "mysql.user";
	char		sql[128];
	char		err[512];
	char		how[768];
	char	   *account;
	char	   *probe;
	char	   *at;

	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
	if ((probe = mysql_value(my, sql, err, sizeof(err))) != NULL)
	{
		ok(c, "the config's user can read %s (other users can log in through the agent)", table);
		free(probe);
		return;
	}
	/* CURRENT_USER() is the account that matched: 'user'@'host' for the GRANT */
	account = mysql_value(my, "SELECT CURRENT_USER()", how, sizeof(how));
	at = account ? strrchr(account, '@') : NULL;
	if (at != NULL)
	{
		*at = '\0';
		snprintf(how, sizeof(how), "to let other users log in through the agent, run as an "
				 "administrator: GRANT SELECT ON %s TO '%s'@'%s';", table, account, at + 1);
	}
	else
		snprintf(how, sizeof(how), "to let other users log in through the agent, GRANT SELECT "
				 "ON %s to the config's user", table);
	warning(c, how, "the config's user cannot read %s (%s): only it can log in through the agent",
			table, err);
	free(account);
}

/* allow_load_local lets LOAD DATA LOCAL through: the origin must take it too. */
static void
check_mysql_local_infile(Check *c, MYSQL *my)
{
	char		err[512];
	char	   *on = mysql_value(my, "SELECT @@GLOBAL.local_infile", err, sizeof(err));

	if (on == NULL)
		warning(c, "see the origin's log", "cannot read the origin's local_infile: %s", err);
	else if (strcmp(on, "1") == 0)
		ok(c, "allow_load_local: the origin takes LOAD DATA LOCAL (local_infile ON)");
	else
		warning(c, "SET GLOBAL local_infile = ON on the origin (and in its configuration), or "
				"hyperdrive update --allow-load-local=false",
				"allow_load_local is true, but the origin has local_infile OFF: "
				"LOAD DATA LOCAL fails there");
	free(on);
}

static void
check_mysql_origin(Check *c, const char *state_dir, const HdConfig *cfg, int mysql_listen_port)
{
	char		err[768];
	char		fix[512];
	MYSQL	   *my;
	const char *cipher;

	if (mysql_listen_port == 0)
		problem(c, "set mysql_listen_port in the settings file (e.g. 3307)",
				"a MySQL origin, but the agent has no MySQL listener: its clients cannot reach it");
	if ((my = connect_mysql(c, state_dir, cfg, err, sizeof(err))) == NULL)
	{
		snprintf(fix, sizeof(fix), "make the origin reachable, or correct the config "
				 "(hyperdrive update %s --connection-string=URI, --origin-password=-)", cfg->name);
		problem(c, fix, "cannot connect to %s:%d database %s as %s: %s", cfg->host, cfg->port,
				cfg->database, cfg->user, err);
		return;
	}
	cipher = mysql_get_ssl_cipher(my);
	ok(c, "connects to %s:%d database %s as %s (%s, TLS %s)", cfg->host, cfg->port,
	   cfg->database, cfg->user, mysql_get_server_info(my), cipher ? cipher : "off");
	check_mysql_version(c, my);
	check_mysql_secrets(c, my);
	if (cfg->allow_load_local)
		check_mysql_local_infile(c, my);
	mysql_close(my);
}

/* ------------------------------------------------------------------------
 * The command.
 */

static const char USAGE[] =
	"Usage: hyperdrive check [-c FILE] [ID|NAME]\n"
	"  Checks the settings file, the state directory and every config (or the one\n"
	"  named): each origin is reached with the config's credentials and checked for\n"
	"  what the agent needs there (wal_level, the extension, REPLICATION, the output\n"
	"  plugin, free slots and WAL senders; for a MySQL origin: the login, its version,\n"
	"  and whether the config's user can read the password hashes other users' logins\n"
	"  need). One line per check: ok, FAIL with what to fix, skip, or warning (worth\n"
	"  fixing, not a failure). Exit status 0 when nothing failed, else 1.\n"
	"Options:\n"
	"  -c FILE   the agent's settings file (default: $HYPERDRIVE_CONF, else\n"
	"            ./hyperdrive.ini)\n"
	"  --help    show this help\n";

static int
parse(int argc, char **argv, const char **path, const char **only, FILE *out, FILE *err)
{
	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
		{
			fputs(USAGE, out);
			return 0;
		}
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			*path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			*path = argv[i] + 9;
		else if (argv[i][0] != '-' && *only == NULL)
			*only = argv[i];
		else
		{
			fprintf(err, "hyperdrive check: unexpected argument \"%s\"\n%s", argv[i], USAGE);
			return 1;
		}
	}
	return -1;
}

static void
check_configs(Check *c, const HdSettings *settings, const char *only)
{
	HdConfigList list = {0};
	char		msg[1024];
	char		prefix[HD_CONFIG_NAME_MAX + 3];

	if (hd_configs_load(settings->state_dir, &list, msg, sizeof(msg)) < 0)
	{
		problem(c, "correct or delete the file named (hyperdrive delete ID)", "configs: %s", msg);
		return;
	}
	if (only && hd_configs_find(&list, only) == NULL)
		problem(c, "name a config hyperdrive list shows", "no config has that id or name");
	else if (list.count == 0)
		ok(c, "no configs yet (add one: hyperdrive create NAME --connection-string=URI)");
	else
		ok(c, "%zu config(s) load", list.count);
	for (size_t i = 0; i < list.count; i++)
	{
		const HdConfig *cfg = &list.items[i];

		if (only && cfg != hd_configs_find(&list, only))
			continue;
		snprintf(prefix, sizeof(prefix), "%s: ", cfg->name);
		c->prefix = prefix;
		if (cfg->protocol == HD_PROTOCOL_MYSQL)
			check_mysql_origin(c, settings->state_dir, cfg, settings->mysql_listen_port);
		else
			check_origin(c, settings->state_dir, cfg);
		c->prefix = "";
	}
	hd_configs_free(&list);
}

int
hd_cli_check_main(int argc, char **argv, FILE *out, FILE *err)
{
	const char *path = NULL;
	const char *only = NULL;
	const char *env = getenv(HD_SETTINGS_ENV);
	HdSettings	settings = {0};
	char		msg[1024];
	Check		c = {.out = out, .prefix = ""};
	int			status = parse(argc, argv, &path, &only, out, err);

	if (status >= 0)
		return status;
	if (path == NULL)
		path = env != NULL && env[0] != '\0' ? env : HD_SETTINGS_DEFAULT_FILE;
	if (hd_settings_load(path, &settings, msg, sizeof(msg)) < 0)
		problem(&c, access(path, F_OK) == 0 ? "correct the line named" :
				"name the agent's settings file with -c FILE or $" HD_SETTINGS_ENV,
				"settings: %s", msg);
	else
	{
		ok(&c, "settings file %s", path);
		c.connect_timeout_s = (int) ((settings.server_connect_timeout_ms + 999) / 1000);
		if (check_state_dir(&c, settings.state_dir) == 0)
			check_configs(&c, &settings, only);
		hd_settings_free(&settings);
	}
	if (c.failures == 0)
		fprintf(out, "all checks passed\n");
	else
		fprintf(out, "%d problem%s to fix\n", c.failures, c.failures == 1 ? "" : "s");
	fflush(out);
	return c.failures == 0 ? 0 : 1;
}
