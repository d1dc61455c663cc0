/*
 * conninfo.c
 *    An origin's connection string read into a config (see conninfo.h).
 */
#include "config/conninfo.h"

#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/text_buf.h"
#include "config/mysql_uri.h"

#define MAX_SECRETS 4

/* Options libpq knows that we take, and those that change nothing for us. */
static const char *const ignored_options[] = {
	"application_name", "fallback_application_name", "connect_timeout", NULL
};

/* ------------------------------------------------------------------------
 * Masking the password in libpq's messages.
 */

typedef struct Secrets
{
	const char *start[MAX_SECRETS];
	size_t		len[MAX_SECRETS];
	int			count;
} Secrets;

static void
add_secret(Secrets *s, const char *start, const char *end)
{
	if (end > start && s->count < MAX_SECRETS)
	{
		s->start[s->count] = start;
		s->len[s->count++] = (size_t) (end - start);
	}
}

/*
 * What in a URI could be its password: from the first ':' of the part after
 * "://" to the '@' that ends the user info, where libpq looks for it (before
 * any '/'), and, in case the password holds an unescaped '/', to the last '@'
 * of the string; and the value of a "password=" query parameter.
 */
static void
uri_secrets(const char *s, Secrets *secrets)
{
	const char *auth = strstr(s, "://");
	const char *colon;
	const char *at;
	const char *param;

	if (auth == NULL)
		return;
	auth += 3;
	colon = strchr(auth, ':');
	at = auth + strcspn(auth, "@/");
	if (colon != NULL && *at == '@' && colon < at)
		add_secret(secrets, colon + 1, at);
	at = strrchr(auth, '@');
	if (colon != NULL && at != NULL && colon < at)
		add_secret(secrets, colon + 1, at);
	if ((param = strstr(s, "password=")) != NULL)
		add_secret(secrets, param + 9, param + 9 + strcspn(param + 9, "&"));
}

/* The value after "password =" in key=value form, quoted or not. */
static void
keyword_secrets(const char *s, Secrets *secrets)
{
	const char *p = s;

	while ((p = strstr(p, "password")) != NULL)
	{
		const char *v = p + 8;

		p = v;
		v += strspn(v, " \t\n\r");
		if (*v != '=')
			continue;
		v += 1 + strspn(v + 1, " \t\n\r");
		if (*v == '\'')
		{
			const char *end = v + 1;

			while (*end && *end != '\'')
				end += (end[0] == '\\' && end[1]) ? 2 : 1;
			add_secret(secrets, v + 1, end);
		}
		else
			add_secret(secrets, v, v + strcspn(v, " \t\n\r"));
	}
}

/* message with each secret (longest match first) replaced by "***". */
static char *
mask(const char *message, const Secrets *secrets)
{
	HdTextBuf	buf = HD_TEXT_BUF_INIT;
	const char *p = message;

	while (*p)
	{
		size_t		best = 0;

		for (int i = 0; i < secrets->count; i++)
			if (secrets->len[i] > best && strncmp(p, secrets->start[i], secrets->len[i]) == 0)
				best = secrets->len[i];
		if (best > 0)
			hd_text_buf_puts(&buf, "***");
		else
			hd_text_buf_putc(&buf, *p);
		p += best > 0 ? best : 1;
	}
	return hd_text_buf_finish(&buf);
}

/* Whether value is (part of) something that could be the password. */
static bool
within_secret(const char *value, const Secrets *secrets)
{
	for (int i = 0; i < secrets->count; i++)
		if (memmem(secrets->start[i], secrets->len[i], value, strlen(value)) != NULL)
			return true;
	return false;
}

static void
report_libpq_error(const Secrets *secrets, const char *message, char *err, size_t errlen)
{
	char	   *masked;
	size_t		len;

	masked = mask(message ? message : "libpq could not parse it", secrets);
	if (masked == NULL)
	{
		snprintf(err, errlen, "invalid connection string (and out of memory)");
		return;
	}
	len = strlen(masked);
	while (len > 0 && (masked[len - 1] == '\n' || masked[len - 1] == ' '))
		masked[--len] = '\0';
	snprintf(err, errlen, "invalid connection string: %s "
			 "(expected postgresql://USER:PASSWORD@HOST:PORT/DATABASE, or \"host=... user=... dbname=...\")",
			 masked);
	free(masked);
}

/* ------------------------------------------------------------------------
 * Taking the fields.
 */

static bool
in_list(const char *word, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(word, *list) == 0)
			return true;
	return false;
}

char *
hd_resolve_sslrootcert(const char *label, const char *file, char *err, size_t errlen)
{
	char	   *path;

	if (file[0] == '\0' || strcmp(file, "system") == 0)
		path = strdup(file);
	else
		path = realpath(file, NULL);
	if (path == NULL)
		snprintf(err, errlen, "%s: cannot use \"%.200s\": %s", label, file, strerror(errno));
	return path;
}

/* One libpq option into cfg (or *password); -1 with a message if refused. */
static int
take_option(const PQconninfoOption *opt, HdConfig *cfg, char **password,
			char *err, size_t errlen)
{
	static const char *const keys[][2] = {
		{"host", "host"}, {"port", "port"}, {"dbname", "database"}, {"user", "user"},
		{"sslmode", "sslmode"}
	};
	char		label[64];
	char	   *path;
	int			status;

	if (strcmp(opt->keyword, "password") == 0)
	{
		if ((*password = strdup(opt->val)) != NULL)
			return 0;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(label, sizeof(label), "the connection string's %s", opt->keyword);
	if (strcmp(opt->keyword, "sslrootcert") == 0)
	{
		if ((path = hd_resolve_sslrootcert(label, opt->val, err, errlen)) == NULL)
			return -1;
		status = hd_config_set(cfg, "sslrootcert", path, label, err, errlen);
		free(path);
		return status;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(opt->keyword, keys[i][0]) == 0)
			return hd_config_set(cfg, keys[i][1], opt->val, label, err, errlen);
	if (in_list(opt->keyword, ignored_options))
		return 0;
	snprintf(err, errlen, "the connection string's option \"%s\" is not supported; "
			 "hyperdrive takes host, port, dbname, user, password, sslmode and sslrootcert from it",
			 opt->keyword);
	return -1;
}

/* Whether the string gave keyword a non-empty value. */
static bool
has_value(const PQconninfoOption *opts, const char *keyword)
{
	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return o->val != NULL && o->val[0] != '\0';
	return false;
}

static int
check_required(const PQconninfoOption *opts, char *err, size_t errlen)
{
	static const char *const required[] = {"host", "user", "dbname"};

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
	{
		if (has_value(opts, required[i]))
			continue;
		snprintf(err, errlen, "the connection string has no %s; write it as "
				 "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (or \"host=... user=... dbname=...\")",
				 required[i]);
		return -1;
	}
	return 0;
}

/* libpq's copies of the password are overwritten before libpq frees them. */
static void
free_options(PQconninfoOption *opts)
{
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
}

/* A PostgreSQL origin's string, through libpq. */
static int
apply_libpq(const char *conninfo, HdConfig *cfg, char **password,
			char *err, size_t errlen)
{
	char	   *message = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &message);
	int			status;

	Secrets		secrets = {.count = 0};

	*password = NULL;
	uri_secrets(conninfo, &secrets);
	keyword_secrets(conninfo, &secrets);
	if (opts == NULL)
	{
		report_libpq_error(&secrets, message, err, errlen);
		PQfreemem(message);
		return -1;
	}
	status = check_required(opts, err, errlen);
	if (status == 0)
		status = hd_config_set(cfg, "protocol", "postgresql", "protocol", err, errlen);
	if (status == 0)
		status = hd_config_set(cfg, "port", "5432", "port", err, errlen);
	/* LOAD DATA LOCAL is MySQL's: nothing to allow on a PostgreSQL origin */
	cfg->allow_load_local = false;
	for (PQconninfoOption *o = opts; status == 0 && o->keyword != NULL; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		status = take_option(o, cfg, password, err, errlen);
		/* an unescaped / or @ in a URI's password moves part of it elsewhere */
		if (status != 0 && strcmp(o->keyword, "password") != 0 && within_secret(o->val, &secrets))
			snprintf(err, errlen, "the connection string's %s is not valid (not shown: it may be "
					 "part of the password; percent-encode \"/\", \"@\", \":\" and \"%%\" in a URI's password as %%2F, %%40, %%3A and %%25)",
					 o->keyword);
	}
	free_options(opts);
	if (status != 0)
	{
		hd_free_secret(*password);
		*password = NULL;
	}
	return status;
}

int
hd_conninfo_apply(const char *conninfo, HdConfig *cfg, char **password,
				  char *err, size_t errlen)
{
	if (hd_mysql_uri_is(conninfo))
		return hd_mysql_uri_apply(conninfo, cfg, password, err, errlen);
	return apply_libpq(conninfo, cfg, password, err, errlen);
}

/* ------------------------------------------------------------------------
 * Reaching an origin: the parameters every connection to it shares.
 */

void
hd_origin_params_add(HdOriginParams *p, const char *key, const char *value)
{
	assert(p->n < HD_ORIGIN_PARAMS_MAX);
	p->keys[p->n] = key;
	p->values[p->n++] = value;
}

void
hd_origin_params_init(HdOriginParams *p, const HdConfig *cfg, const char *application_name,
					  const char *password)
{
	p->n = 0;
	snprintf(p->port, sizeof(p->port), "%d", cfg->port);
	hd_origin_params_add(p, "host", cfg->host);
	hd_origin_params_add(p, "port", p->port);
	hd_origin_params_add(p, "dbname", cfg->database);
	hd_origin_params_add(p, "user", cfg->user);
	hd_origin_params_add(p, "sslmode", hd_sslmode_name(cfg->sslmode));
	hd_origin_params_add(p, "application_name", application_name);
	if (password)
		hd_origin_params_add(p, "password", password);
	if (cfg->sslrootcert)
		hd_origin_params_add(p, "sslrootcert", cfg->sslrootcert);
}

void
hd_origin_params_end(HdOriginParams *p)
{
	p->keys[p->n] = NULL;
	p->values[p->n] = NULL;
}
