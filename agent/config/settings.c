/*
 * settings.c
 *    The agent's settings file (see settings.h).
 *
 * Every setting is a row of one table, saying how its value is checked and
 * where it is stored; the ini reader (ini.h) hands us lines and we fill a
 * caller-owned HdSettings, so two loads never share anything.
 */
#include "config/settings.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ini.h"
#include "base/suggest.h"

#define MS_PER_S 1000
#define MS_PER_MIN (60 * MS_PER_S)
#define MS_PER_H (60 * MS_PER_MIN)
#define MAX_TIME_MS ((int64_t) 720 * MS_PER_H)

typedef enum Kind
{
	K_ADDR,						/* an IP address or host name */
	K_INT,						/* an integer in [min, max] */
	K_PORT_OR_OFF,				/* a port in [min, max]; empty: 0, off */
	K_TIME,						/* a time in [min, max] milliseconds */
	K_SIZE,						/* bytes in [min, max]: a number with kB, MB, GB */
	K_DIR,						/* an absolute path */
	K_SOCKET_DIR,				/* an absolute path short enough for a socket; empty: off */
	K_FILE,						/* a path; empty: not set */
	K_USERS,					/* a comma list of user names */
	K_HOSTPORT,					/* host:port; empty: off */
	K_LOG_LEVEL,
	K_AUTH,
	K_MY_AUTH
} Kind;

typedef struct Setting
{
	const char *name;
	Kind		kind;
	size_t		offset;			/* of the field in HdSettings */
	int64_t		min;
	int64_t		max;
} Setting;

#define FIELD(f) offsetof(HdSettings, f)

static const Setting setting_table[] = {
	{"listen_addr", K_ADDR, FIELD(listen_addr), 0, 0},
	{"listen_port", K_INT, FIELD(listen_port), 1, 65535},
	{"mysql_listen_port", K_PORT_OR_OFF, FIELD(mysql_listen_port), 1, 65535},
	{"unix_socket_dir", K_SOCKET_DIR, FIELD(unix_socket_dir), 0, 0},
	{"state_dir", K_DIR, FIELD(state_dir), 0, 0},
	{"admin_users", K_USERS, FIELD(admin_users), 0, 0},
	{"metrics_addr", K_HOSTPORT, FIELD(metrics_host), 0, 0},
	{"log_level", K_LOG_LEVEL, FIELD(log_level), 0, 0},
	{"max_client_conn", K_INT, FIELD(max_client_conn), 1, 1000000},
	{"query_wait_timeout", K_TIME, FIELD(query_wait_timeout_ms), 0, MAX_TIME_MS},
	{"server_connect_timeout", K_TIME, FIELD(server_connect_timeout_ms), 1, MAX_TIME_MS},
	{"server_idle_timeout", K_TIME, FIELD(server_idle_timeout_ms), 0, MAX_TIME_MS},
	{"server_lifetime", K_TIME, FIELD(server_lifetime_ms), 0, MAX_TIME_MS},
	{"client_idle_timeout", K_TIME, FIELD(client_idle_timeout_ms), 0, MAX_TIME_MS},
	{"client_login_timeout", K_TIME, FIELD(client_login_timeout_ms), 0, MAX_TIME_MS},
	{"server_login_retry", K_TIME, FIELD(server_login_retry_ms), 1, 30 * MS_PER_S},
	{"auth_recheck_interval", K_TIME, FIELD(auth_recheck_interval_ms), 0, 3600 * MS_PER_S},
	{"tls_cert_file", K_FILE, FIELD(tls_cert_file), 0, 0},
	{"tls_key_file", K_FILE, FIELD(tls_key_file), 0, 0},
	{"auth_type", K_AUTH, FIELD(auth_type), 0, 0},
	{"mysql_auth_plugin", K_MY_AUTH, FIELD(mysql_auth_plugin), 0, 0},
	{"auth_file", K_FILE, FIELD(auth_file), 0, 0},
	{"cache_map_size", K_SIZE, FIELD(cache_map_size), 1024 * 1024, (int64_t) 1 << 40},
	{"cache_max_bytes", K_SIZE, FIELD(cache_max_bytes), 0, (int64_t) 1 << 40},
	{"cache_max_entry_bytes", K_SIZE, FIELD(cache_max_entry_bytes), 0, (int64_t) 1 << 30},
	{"max_lag", K_TIME, FIELD(max_lag_ms), 1, 3600 * MS_PER_S},
};

#define NSETTINGS (sizeof(setting_table) / sizeof(setting_table[0]))

static const char *const log_level_names[] = {"error", "warning", "info", "debug", NULL};
static const char *const auth_type_names[] = {"scram-sha-256", "md5", "password", NULL};
static const char *const my_auth_plugin_names[] = {"mysql_native_password", "caching_sha2_password",
NULL};

/* The state of one load; lives on hd_settings_load()'s stack. */
typedef struct Loader
{
	HdSettings *out;
	bool		in_agent;		/* the current section is [agent] */
	unsigned	set_on[NSETTINGS];	/* line that set each setting; 0: not set */
} Loader;

const char *
hd_log_level_name(HdLogLevel level)
{
	return log_level_names[level];
}

const char *
hd_my_auth_plugin_name(HdMyAuthPlugin plugin)
{
	return my_auth_plugin_names[plugin];
}

const char *
hd_auth_type_name(HdAuthType type)
{
	return auth_type_names[type];
}

/* ------------------------------------------------------------------------
 * Values.
 */

/* Lenient about nothing: digits only, no sign, no blanks. */
static bool
parse_digits(const char *s, size_t len, int64_t *value)
{
	int64_t		v = 0;

	if (len == 0 || len > 12)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*value = v;
	return true;
}

/* "120", "500ms", "30s", "2min", "1h" (a blank before the unit is allowed). */
static bool
parse_time_ms(const char *s, int64_t *ms)
{
	static const struct
	{
		const char *unit;
		int64_t		factor;
	}			units[] = {{"", MS_PER_S}, {"ms", 1}, {"s", MS_PER_S},
	{"min", MS_PER_MIN}, {"h", MS_PER_H}};
	size_t		ndigits = strspn(s, "0123456789");
	const char *unit = s + ndigits;
	int64_t		n;

	if (!parse_digits(s, ndigits, &n))
		return false;
	while (*unit == ' ' || *unit == '\t')
		unit++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
	{
		if (strcmp(unit, units[i].unit) == 0)
		{
			*ms = n * units[i].factor;	/* n < 10^12: cannot overflow */
			return true;
		}
	}
	return false;
}

/* A time in the largest unit that shows it exactly. */
static void
format_time(int64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % MS_PER_H == 0)
		snprintf(buf, len, "%lldh", (long long) (ms / MS_PER_H));
	else if (ms % MS_PER_MIN == 0)
		snprintf(buf, len, "%lldmin", (long long) (ms / MS_PER_MIN));
	else if (ms % MS_PER_S == 0)
		snprintf(buf, len, "%llds", (long long) (ms / MS_PER_S));
	else
		snprintf(buf, len, "%lldms", (long long) ms);
}

/* Characters of an IP address (v4, v6 with a %zone) or host name, or "*". */
static bool
valid_addr(const char *s)
{
	if (strcmp(s, "*") == 0)
		return true;
	return s[0] != '\0' &&
		s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-_%")] == '\0';
}

/* "host:port" or "[v6]:port" into a new host string and a port. */
static bool
parse_hostport(const char *s, char **host, int *port)
{
	const char *colon = strrchr(s, ':');
	const char *h = s;
	size_t		hlen;
	int64_t		p;

	if (colon == NULL || !parse_digits(colon + 1, strlen(colon + 1), &p) ||
		p < 1 || p > 65535)
		return false;
	hlen = (size_t) (colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']')
	{
		h++;
		hlen -= 2;
	}
	*host = strndup(h, hlen);
	if (*host == NULL || !valid_addr(*host) || strcmp(*host, "*") == 0)
	{
		free(*host);
		*host = NULL;
		return false;
	}
	*port = (int) p;
	return true;
}

static int
index_of(const char *value, const char *const *names)
{
	for (int i = 0; names[i] != NULL; i++)
		if (strcmp(value, names[i]) == 0)
			return i;
	return -1;
}

static void
free_users(HdSettings *s)
{
	for (size_t i = 0; i < s->nadmin_users; i++)
		free(s->admin_users[i]);
	free(s->admin_users);
	s->admin_users = NULL;
	s->nadmin_users = 0;
}

/* A comma list of names; an empty item is refused (a stray comma is a typo). */
static bool
parse_users(const char *value, HdSettings *s, char *problem, size_t problemlen)
{
	const char *p = value;

	free_users(s);
	if (*value == '\0')
		return true;
	for (;;)
	{
		size_t		len = strcspn(p, ",");
		const char *start = p;
		char	  **grown;

		while (len > 0 && (*start == ' ' || *start == '\t'))
			start++, len--;
		while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
			len--;
		if (len == 0)
		{
			snprintf(problem, problemlen,
					 "admin_users has an empty name; write user names separated by commas, as in \"alice, bob\"");
			return false;
		}
		grown = realloc(s->admin_users, (s->nadmin_users + 1) * sizeof(char *));
		if (grown == NULL || (grown[s->nadmin_users] = strndup(start, len)) == NULL)
		{
			if (grown != NULL)
				s->admin_users = grown;
			snprintf(problem, problemlen, "out of memory");
			return false;
		}
		s->admin_users = grown;
		s->nadmin_users++;
		p += strcspn(p, ",");
		if (*p == '\0')
			return true;
		p++;
	}
}

/* ------------------------------------------------------------------------
 * One setting.
 */

/* An owned copy of value in *field, replacing what was there. */
static bool
store_string(char **field, const char *value, char *problem, size_t problemlen)
{
	char	   *copy = strdup(value);

	if (copy == NULL)
	{
		snprintf(problem, problemlen, "out of memory");
		return false;
	}
	free(*field);
	*field = copy;
	return true;
}

/* The expected form of a setting, for "X must be FORM, not VALUE". */
static void
describe(const Setting *st, char *buf, size_t len)
{
	char		lo[32];
	char		hi[32];

	switch (st->kind)
	{
		case K_ADDR:
			snprintf(buf, len, "an IP address or host name (e.g. 127.0.0.1, ::1, or * for all)");
			break;
		case K_INT:
			snprintf(buf, len, "an integer from %lld to %lld",
					 (long long) st->min, (long long) st->max);
			break;
		case K_PORT_OR_OFF:
			snprintf(buf, len, "an integer from %lld to %lld, or empty to turn it off",
					 (long long) st->min, (long long) st->max);
			break;
		case K_TIME:
			format_time(st->min, lo, sizeof(lo));
			format_time(st->max, hi, sizeof(hi));
			snprintf(buf, len, "a time from %s to %s (seconds, or a number with a unit: ms, s, min, h)",
					 lo, hi);
			break;
		case K_SIZE:
			snprintf(buf, len, "a size from %lld to %lld bytes (a number, or with a unit: kB, MB, GB, TB)",
					 (long long) st->min, (long long) st->max);
			break;
		case K_DIR:
			snprintf(buf, len, "an absolute path (starting with /)");
			break;
		case K_SOCKET_DIR:
			snprintf(buf, len, "an absolute path (starting with /) of at most %d bytes, "
					 "or empty to turn it off", HD_UNIX_SOCKET_DIR_MAX);
			break;
		case K_HOSTPORT:
			snprintf(buf, len, "host:port (e.g. 127.0.0.1:9127), or empty to turn it off");
			break;
		case K_LOG_LEVEL:
			snprintf(buf, len, "one of error, warning, info, debug");
			break;
		case K_AUTH:
			snprintf(buf, len, "one of scram-sha-256, md5, password");
			break;
		case K_MY_AUTH:
			snprintf(buf, len, "one of mysql_native_password, caching_sha2_password");
			break;
		case K_FILE:
		case K_USERS:
			snprintf(buf, len, "a valid value");
			break;
	}
}

/* "1024", "64kB", "512MB", "1GB" (powers of 1024) */
static bool
parse_size(const char *s, int64_t *bytes)
{
	static const struct
	{
		const char *unit;
		int64_t		factor;
	}			units[] = {{"", 1}, {"B", 1}, {"kB", 1024}, {"MB", 1024 * 1024},
	{"GB", (int64_t) 1024 * 1024 * 1024}, {"TB", (int64_t) 1024 * 1024 * 1024 * 1024}};
	size_t		digits = 0;
	int64_t		n;

	while (s[digits] >= '0' && s[digits] <= '9')
		digits++;
	if (digits == 0 || digits > 12 || !parse_digits(s, digits, &n))
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(s + digits, units[i].unit) == 0)
		{
			*bytes = n * units[i].factor;
			return true;
		}
	return false;
}

/* Parse value into the field; false if it is not of the setting's form. */
static bool
apply(const Setting *st, const char *value, HdSettings *s, char *problem, size_t problemlen)
{
	char	   *field = (char *) s + st->offset;
	int64_t		n;
	int			i;

	switch (st->kind)
	{
		case K_ADDR:
			return valid_addr(value) && store_string((char **) field, value, problem, problemlen);
		case K_INT:
			if (!parse_digits(value, strlen(value), &n) || n < st->min || n > st->max)
				return false;
			*(int *) field = (int) n;
			return true;
		case K_PORT_OR_OFF:
			*(int *) field = 0;
			if (value[0] == '\0')
				return true;
			if (!parse_digits(value, strlen(value), &n) || n < st->min || n > st->max)
				return false;
			*(int *) field = (int) n;
			return true;
		case K_TIME:
			if (!parse_time_ms(value, &n) || n < st->min || n > st->max)
				return false;
			*(int64_t *) field = n;
			return true;
		case K_SIZE:
			if (!parse_size(value, &n) || n < st->min || n > st->max)
				return false;
			*(int64_t *) field = n;
			return true;
		case K_DIR:
			return value[0] == '/' && store_string((char **) field, value, problem, problemlen);
		case K_SOCKET_DIR:
			free(*(char **) field);
			*(char **) field = NULL;
			if (value[0] == '\0')
				return true;
			return value[0] == '/' && strlen(value) <= HD_UNIX_SOCKET_DIR_MAX &&
				store_string((char **) field, value, problem, problemlen);
		case K_FILE:
			free(*(char **) field);
			*(char **) field = NULL;
			return value[0] == '\0' || store_string((char **) field, value, problem, problemlen);
		case K_USERS:
			return parse_users(value, s, problem, problemlen);
		case K_HOSTPORT:
			free(s->metrics_host);
			s->metrics_host = NULL;
			s->metrics_port = 0;
			return value[0] == '\0' || parse_hostport(value, &s->metrics_host, &s->metrics_port);
		case K_LOG_LEVEL:
			if ((i = index_of(value, log_level_names)) < 0)
				return false;
			s->log_level = (HdLogLevel) i;
			return true;
		case K_AUTH:
			if ((i = index_of(value, auth_type_names)) < 0)
				return false;
			s->auth_type = (HdAuthType) i;
			return true;
		case K_MY_AUTH:
			if ((i = index_of(value, my_auth_plugin_names)) < 0)
				return false;
			s->mysql_auth_plugin = (HdMyAuthPlugin) i;
			return true;
	}
	return false;
}

static int
set_value(const Setting *st, const char *value, HdSettings *s, char *problem, size_t problemlen)
{
	char		form[160];
	bool		looks_commented;

	problem[0] = '\0';
	if (apply(st, value, s, problem, problemlen))
		return 0;
	if (problem[0] != '\0')		/* apply() said what was wrong */
		return -1;
	describe(st, form, sizeof(form));
	looks_commented = strstr(value, " ;") != NULL || strstr(value, " #") != NULL ||
		strstr(value, "\t;") != NULL || strstr(value, "\t#") != NULL;
	snprintf(problem, problemlen, "%s must be %s, not \"%.80s%s\"%s", st->name, form,
			 value, strlen(value) > 80 ? "..." : "",
			 looks_commented ? " (comments must be on a line of their own)" : "");
	return -1;
}

/* ------------------------------------------------------------------------
 * The ini handler.
 */

static int
on_section(void *arg, const char *section, unsigned lineno, char *problem, size_t problemlen)
{
	Loader	   *loader = arg;

	(void) lineno;
	loader->in_agent = strcmp(section, "agent") == 0;
	if (loader->in_agent)
		return 0;
	snprintf(problem, problemlen,
			 "unknown section [%.60s]; hyperdrive's settings go in [agent]", section);
	return -1;
}

static void
unknown_setting(const char *key, char *problem, size_t problemlen)
{
	const char *names[NSETTINGS + 1];
	const char *guess;

	for (size_t i = 0; i < NSETTINGS; i++)
		names[i] = setting_table[i].name;
	names[NSETTINGS] = NULL;
	guess = hd_suggest(key, names);
	if (guess != NULL)
		snprintf(problem, problemlen, "unknown setting \"%.60s\"; did you mean \"%s\"?",
				 key, guess);
	else
		snprintf(problem, problemlen, "unknown setting \"%.60s\"", key);
}

static int
on_entry(void *arg, const char *key, const char *value, unsigned lineno,
		 char *problem, size_t problemlen)
{
	Loader	   *loader = arg;

	if (!loader->in_agent)
	{
		snprintf(problem, problemlen,
				 "\"%.60s\" is outside a section; put an [agent] line above it", key);
		return -1;
	}
	for (size_t i = 0; i < NSETTINGS; i++)
	{
		if (strcmp(key, setting_table[i].name) != 0)
			continue;
		if (loader->set_on[i] != 0)
		{
			snprintf(problem, problemlen, "%s is already set on line %u; set it once",
					 key, loader->set_on[i]);
			return -1;
		}
		loader->set_on[i] = lineno;
		return set_value(&setting_table[i], value, loader->out, problem, problemlen);
	}
	unknown_setting(key, problem, problemlen);
	return -1;
}

/* ------------------------------------------------------------------------
 * Loading.
 */

static bool
set_defaults(HdSettings *s)
{
	memset(s, 0, sizeof(*s));
	s->listen_port = 6432;
	s->log_level = HD_LOG_INFO;
	s->max_client_conn = 1000;
	s->query_wait_timeout_ms = 120 * MS_PER_S;
	s->server_connect_timeout_ms = 5 * MS_PER_S;
	s->server_idle_timeout_ms = 600 * MS_PER_S;
	s->server_lifetime_ms = 3600 * MS_PER_S;
	s->client_idle_timeout_ms = 0;
	s->client_login_timeout_ms = 60 * MS_PER_S;
	s->server_login_retry_ms = 1 * MS_PER_S;
	s->auth_recheck_interval_ms = 10 * MS_PER_S;
	s->auth_type = HD_AUTH_SCRAM_SHA_256;
	s->cache_map_size = (int64_t) 1024 * 1024 * 1024;
	s->cache_max_bytes = 0;		/* derived from the map size (cache/store.h) */
	s->cache_max_entry_bytes = 1024 * 1024;
	s->max_lag_ms = 1 * MS_PER_S;
	s->listen_addr = strdup("127.0.0.1");
	return s->listen_addr != NULL;
}

/* What only the whole file can tell: required settings, settings that pair. */
static int
check_complete(const char *path, const HdSettings *s, char *err, size_t errlen)
{
	if (s->state_dir == NULL)
	{
		snprintf(err, errlen,
				 "%s: state_dir is required (the directory where configs and the cache live); "
				 "add e.g. \"state_dir = /var/lib/hyperdrive\" under [agent]", path);
		return -1;
	}
	if (s->mysql_listen_port == s->listen_port)
	{
		snprintf(err, errlen,
				 "%s: mysql_listen_port is listen_port (%d); the MySQL listener needs a port "
				 "of its own (e.g. 3307), or leave mysql_listen_port empty", path, s->listen_port);
		return -1;
	}
	if ((s->tls_cert_file == NULL) != (s->tls_key_file == NULL))
	{
		snprintf(err, errlen,
				 "%s: %s is set but %s is not; client TLS needs both files (or set neither)",
				 path, s->tls_cert_file ? "tls_cert_file" : "tls_key_file",
				 s->tls_cert_file ? "tls_key_file" : "tls_cert_file");
		return -1;
	}
	return 0;
}

int
hd_settings_load(const char *path, HdSettings *out, char *err, size_t errlen)
{
	Loader		loader = {.out = out};
	HdIniHandler handler = {&loader, on_section, on_entry};

	if (!set_defaults(out))
	{
		snprintf(err, errlen, "%s: out of memory", path);
		hd_settings_free(out);
		return -1;
	}
	if (hd_ini_parse(path, &handler, err, errlen) != 0 ||
		check_complete(path, out, err, errlen) != 0)
	{
		hd_settings_free(out);
		return -1;
	}
	return 0;
}

void
hd_settings_free(HdSettings *s)
{
	free(s->listen_addr);
	free(s->state_dir);
	free(s->unix_socket_dir);
	free_users(s);
	free(s->metrics_host);
	free(s->tls_cert_file);
	free(s->tls_key_file);
	free(s->auth_file);
	memset(s, 0, sizeof(*s));
}
