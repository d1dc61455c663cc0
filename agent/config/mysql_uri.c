/*
 * mysql_uri.c
 *    A mysql:// or mariadb:// connection string read into a config (see
 *    mysql_uri.h).
 *
 * The URI is cut into its parts first (user info, host, port, path,
 * query), each part percent-decoded on its own, then every field goes
 * through hd_config_set(), as the PostgreSQL side's does. Decoded copies of
 * the password are overwritten before they are freed.
 */
#include "config/mysql_uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/hex.h"
#include "config/conninfo.h"

#define URI_FORM "mysql://USER:PASSWORD@HOST:PORT/DATABASE"
#define ENCODE_HINT "percent-encode \"/\", \"@\", \":\", \"?\", \"#\" and \"%\" in a URI's " \
	"user and password as %2F, %40, %3A, %3F, %23 and %25"

static const char *const schemes[] = {"mysql://", "mariadb://", NULL};

/* MySQL's ssl-mode names and the sslmode each means. */
static const char *const ssl_modes[][2] = {
	{"DISABLED", "disable"}, {"PREFERRED", "prefer"}, {"REQUIRED", "require"},
	{"VERIFY_CA", "verify-ca"}, {"VERIFY_IDENTITY", "verify-full"}
};

/* A piece of the URI: [start, start + len). */
typedef struct Span
{
	const char *start;
	size_t		len;
} Span;

/* The options given, so that one given twice is refused. */
typedef struct SeenOptions
{
	bool		ssl_mode;		/* ssl-mode or sslmode */
	bool		ssl_ca;			/* ssl-ca or sslrootcert */
} SeenOptions;

bool
hd_mysql_uri_is(const char *conninfo)
{
	for (int i = 0; schemes[i] != NULL; i++)
		if (strncasecmp(conninfo, schemes[i], strlen(schemes[i])) == 0)
			return true;
	return false;
}

/*
 * A malloc'd, NUL-terminated, percent-decoded copy of span; NULL with a
 * message naming `what` (never its text) if it is malformed.
 */
static char *
decode(Span span, const char *what, char *err, size_t errlen)
{
	char	   *out = malloc(span.len + 1);
	size_t		n = 0;

	if (out == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < span.len; i++)
	{
		int			hi,
					lo;

		if (span.start[i] != '%')
		{
			out[n++] = span.start[i];
			continue;
		}
		hi = i + 2 < span.len ? hd_hex_value(span.start[i + 1]) : -1;
		lo = hi >= 0 ? hd_hex_value(span.start[i + 2]) : -1;
		if (lo < 0 || (hi == 0 && lo == 0))
		{
			explicit_bzero(out, span.len + 1);
			free(out);
			snprintf(err, errlen, "the connection string's %s has a malformed percent-encoding "
					 "(\"%%\" must start %%XX with two hex digits, not %%00; write %%25 for \"%%\")",
					 what);
			return NULL;
		}
		out[n++] = (char) (hi * 16 + lo);
		i += 2;
	}
	out[n] = '\0';
	return out;
}

static void
free_decoded(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* Sets cfg's key to the decoded span; the message never has the value. */
static int
set_decoded(HdConfig *cfg, const char *key, Span span, const char *what,
			char *err, size_t errlen)
{
	char	   *value = decode(span, what, err, errlen);
	char		why[256];
	int			status;

	if (value == NULL)
		return -1;
	status = hd_config_set(cfg, key, value, what, why, sizeof(why));
	free_decoded(value);
	if (status != 0)
		snprintf(err, errlen, "the connection string's %s is not valid (not shown: it may be part "
				 "of the password; %s)", what, ENCODE_HINT);
	return status;
}

/* "[v6]" or a name, then ":PORT" or nothing. */
static int
take_host_port(Span hp, HdConfig *cfg, char *err, size_t errlen)
{
	Span		host = hp;
	Span		port = {NULL, 0};
	const char *colon;

	if (hp.len > 0 && hp.start[0] == '[')
	{
		const char *close = memchr(hp.start, ']', hp.len);

		if (close == NULL || (close + 1 < hp.start + hp.len && close[1] != ':'))
		{
			snprintf(err, errlen, "the connection string's host is not valid: an IPv6 address is "
					 "written in brackets, as mysql://USER@[::1]:3306/DATABASE");
			return -1;
		}
		host = (Span) {hp.start + 1, (size_t) (close - hp.start - 1)};
		if (close + 1 < hp.start + hp.len)
			port = (Span) {close + 2, (size_t) (hp.start + hp.len - close - 2)};
	}
	else if ((colon = memchr(hp.start, ':', hp.len)) != NULL)
	{
		host = (Span) {hp.start, (size_t) (colon - hp.start)};
		port = (Span) {colon + 1, (size_t) (hp.start + hp.len - colon - 1)};
	}
	if (host.len == 0)
	{
		snprintf(err, errlen, "the connection string has no host; write it as " URI_FORM);
		return -1;
	}
	if (host.start[0] == '/' || (host.len >= 3 && strncasecmp(host.start, "%2F", 3) == 0))
	{
		snprintf(err, errlen, "the connection string's host is a Unix socket: not supported for "
				 "MySQL origins; use HOST:PORT (TCP)");
		return -1;
	}
	if (set_decoded(cfg, "host", host, "host", err, errlen) != 0)
		return -1;
	if (port.start == NULL)
		return 0;
	if (port.len == 0 || port.len > 5 || strspn(port.start, "0123456789") < port.len)
	{
		snprintf(err, errlen, "the connection string's port must be a number from 1 to 65535 "
				 "(not shown: it may be part of the password; %s)", ENCODE_HINT);
		return -1;
	}
	return set_decoded(cfg, "port", port, "port", err, errlen);
}

/* "USER:PASSWORD" or "USER". */
static int
take_userinfo(Span ui, HdConfig *cfg, char **password, char *err, size_t errlen)
{
	const char *colon = memchr(ui.start, ':', ui.len);
	Span		user = {ui.start, colon ? (size_t) (colon - ui.start) : ui.len};

	if (user.len == 0)
	{
		snprintf(err, errlen, "the connection string has no user; write it as " URI_FORM);
		return -1;
	}
	if (set_decoded(cfg, "user", user, "user", err, errlen) != 0)
		return -1;
	if (colon != NULL && colon + 1 < ui.start + ui.len)
	{
		Span		pw = {colon + 1, (size_t) (ui.start + ui.len - colon - 1)};

		if ((*password = decode(pw, "password", err, errlen)) == NULL)
			return -1;
	}
	return 0;
}

/* An option's name, echoed only when it is a plain word. */
static void
describe_option(const char *name, char *buf, size_t len)
{
	size_t		n = strlen(name);

	if (n > 0 && n <= 40 && strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n)
		snprintf(buf, len, "option \"%s\"", name);
	else
		snprintf(buf, len, "an option (its name is not shown)");
}

static int
take_ssl_mode(HdConfig *cfg, const char *value, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(ssl_modes) / sizeof(ssl_modes[0]); i++)
		if (strcasecmp(value, ssl_modes[i][0]) == 0)
			return hd_config_set(cfg, "sslmode", ssl_modes[i][1], "ssl-mode", err, errlen);
	snprintf(err, errlen, "the connection string's ssl-mode must be DISABLED, PREFERRED, REQUIRED, "
			 "VERIFY_CA or VERIFY_IDENTITY");
	return -1;
}

static int
take_sslmode(HdConfig *cfg, const char *value, char *err, size_t errlen)
{
	char		why[256];

	if (hd_config_set(cfg, "sslmode", value, "sslmode", why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "the connection string's sslmode must be disable, allow, prefer, "
			 "require, verify-ca or verify-full");
	return -1;
}

static int
take_ca(HdConfig *cfg, const char *name, const char *value, char *err, size_t errlen)
{
	char		label[64];
	char	   *path;
	int			status;

	snprintf(label, sizeof(label), "the connection string's %s", name);
	if ((path = hd_resolve_sslrootcert(label, value, err, errlen)) == NULL)
		return -1;
	status = hd_config_set(cfg, "sslrootcert", path, label, err, errlen);
	free(path);
	return status;
}

/* One "name=value" of the query, both decoded. */
static int
take_option(Span opt, HdConfig *cfg, SeenOptions *seen, char *err, size_t errlen)
{
	const char *eq = memchr(opt.start, '=', opt.len);
	Span		name_span = {opt.start, eq ? (size_t) (eq - opt.start) : opt.len};
	Span		value_span = {eq ? eq + 1 : opt.start + opt.len,
	eq ? (size_t) (opt.start + opt.len - eq - 1) : 0};
	char	   *name = decode(name_span, "option name", err, errlen);
	char	   *value = name ? decode(value_span, "option value", err, errlen) : NULL;
	char		described[96];
	bool		is_mode;
	bool		is_ca;
	int			status = -1;

	if (value == NULL)
	{
		free_decoded(name);
		return -1;
	}
	describe_option(name, described, sizeof(described));
	is_mode = strcmp(name, "ssl-mode") == 0 || strcmp(name, "sslmode") == 0;
	is_ca = strcmp(name, "ssl-ca") == 0 || strcmp(name, "sslrootcert") == 0;
	if (!is_mode && !is_ca)
		snprintf(err, errlen, "the connection string's %s is not supported; hyperdrive takes "
				 "ssl-mode and ssl-ca (or sslmode and sslrootcert) from a mysql:// URI", described);
	else if ((is_mode && seen->ssl_mode) || (is_ca && seen->ssl_ca))
		snprintf(err, errlen, "the connection string gives %s twice (ssl-mode and sslmode, ssl-ca "
				 "and sslrootcert are the same)", is_mode ? "the TLS mode" : "the CA file");
	else if (value[0] == '\0')
		snprintf(err, errlen, "the connection string's %s has no value", described);
	else if (strcmp(name, "ssl-mode") == 0)
		status = take_ssl_mode(cfg, value, err, errlen);
	else if (strcmp(name, "sslmode") == 0)
		status = take_sslmode(cfg, value, err, errlen);
	else
		status = take_ca(cfg, name, value, err, errlen);
	seen->ssl_mode |= is_mode;
	seen->ssl_ca |= is_ca;
	free_decoded(name);
	free_decoded(value);
	return status;
}

static int
take_query(Span query, HdConfig *cfg, char *err, size_t errlen)
{
	SeenOptions seen = {false, false};
	const char *p = query.start;
	const char *end = query.start + query.len;

	while (p < end)
	{
		const char *amp = memchr(p, '&', (size_t) (end - p));
		Span		opt = {p, (size_t) ((amp ? amp : end) - p)};

		if (opt.len > 0 && take_option(opt, cfg, &seen, err, errlen) != 0)
			return -1;
		p = amp ? amp + 1 : end;
	}
	return 0;
}

/* The authority (up to the path), cut at its last '@'. */
static int
take_authority(Span auth, HdConfig *cfg, char **password, char *err, size_t errlen)
{
	const char *at = NULL;

	for (const char *p = auth.start; p < auth.start + auth.len; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
	{
		snprintf(err, errlen, "the connection string has no user; write it as " URI_FORM
				 " (%s)", ENCODE_HINT);
		return -1;
	}
	if (take_userinfo((Span) {auth.start, (size_t) (at - auth.start)}, cfg, password, err, errlen) != 0)
		return -1;
	return take_host_port((Span) {at + 1, (size_t) (auth.start + auth.len - at - 1)}, cfg, err, errlen);
}

static int
apply_parts(const char *rest, HdConfig *cfg, char **password, char *err, size_t errlen)
{
	size_t		auth_len = strcspn(rest, "/?#");
	const char *path = rest + auth_len;
	size_t		path_len = *path == '/' ? strcspn(path, "?#") : 0;
	const char *query = path + path_len;

	if (strchr(rest, '#') != NULL)
	{
		snprintf(err, errlen, "the connection string has a fragment (\"#...\"), which means "
				 "nothing here (%s)", ENCODE_HINT);
		return -1;
	}
	if (take_authority((Span) {rest, auth_len}, cfg, password, err, errlen) != 0)
		return -1;
	if (path_len <= 1)
	{
		snprintf(err, errlen, "the connection string has no database; write it as " URI_FORM);
		return -1;
	}
	if (memchr(path + 1, '/', path_len - 1) != NULL)
	{
		snprintf(err, errlen, "the connection string's database is not valid: it holds a \"/\" "
				 "(not shown: it may be part of the password; %s)", ENCODE_HINT);
		return -1;
	}
	if (set_decoded(cfg, "database", (Span) {path + 1, path_len - 1}, "database", err, errlen) != 0)
		return -1;
	return *query == '?' ? take_query((Span) {query + 1, strlen(query + 1)}, cfg, err, errlen) : 0;
}

int
hd_mysql_uri_apply(const char *uri, HdConfig *cfg, char **password, char *err, size_t errlen)
{
	const char *rest = strstr(uri, "://");
	char		port[16];
	int			status;

	*password = NULL;
	if (!hd_mysql_uri_is(uri) || rest == NULL)
	{
		snprintf(err, errlen, "not a mysql:// or mariadb:// URI");
		return -1;
	}
	snprintf(port, sizeof(port), "%d", HD_MYSQL_DEFAULT_PORT);
	status = hd_config_set(cfg, "protocol", "mysql", "protocol", err, errlen);
	if (status == 0)
		status = hd_config_set(cfg, "port", port, "port", err, errlen);
	if (status == 0)
		status = apply_parts(rest + 3, cfg, password, err, errlen);
	if (status == 0)
		cfg->caching_disabled = true;
	if (status != 0 || (*password != NULL && (*password)[0] == '\0'))
	{
		hd_free_secret(*password);
		*password = NULL;
	}
	return status;
}
