/*
 * conninfo.h
 *    An origin's connection string, as libpq takes it (a postgresql:// URI
 *    or "key=value ..."), read into a config's fields (configs.h).
 *
 * Contract:
 *   - A mysql:// or mariadb:// URI is a MySQL origin's: hd_conninfo_apply()
 *     hands it to hd_mysql_uri_apply() (mysql_uri.h), whose contract applies.
 *     What follows is about every other string, a PostgreSQL origin's.
 *   - hd_conninfo_apply() parses conninfo with libpq's PQconninfoParse(),
 *     which applies no defaults, environment variables or service file, so
 *     the result is what the string says. It sets cfg's protocol
 *     (postgresql), host, port (5432 when the string has none), database and
 *     user, and allow_load_local false; sslmode and sslrootcert only
 *     when the string has them. A string without host, user or dbname, with
 *     several hosts, or with an option hyperdrive cannot honour (sslcert,
 *     options, service, ...) is refused; application_name,
 *     fallback_application_name and connect_timeout are ignored.
 *     *password is set to a malloc'd copy of the string's password
 *     (free it with hd_free_secret()), or NULL if it has none.
 *     Returns 0, or -1 with a message in err and cfg partly set.
 *   - No message contains the password: libpq's own messages may quote the
 *     string, so every piece of it that could be the password is masked
 *     (as "***") in them.
 *   - HdOriginParams are the libpq keywords and values with which the agent
 *     reaches a config's origin as the config's user (host, port, dbname,
 *     user, sslmode, sslrootcert when set, application_name, the password
 *     when there is one), for PQconnectdbParams() and PQconnectStartParams():
 *     each connection adds its own (replication, keepalives, timeouts) with
 *     hd_origin_params_add(), then hd_origin_params_end() ends the lists.
 *     They point into cfg and the password, which must outlive the connect.
 *   - hd_resolve_sslrootcert() turns a CA file name given on this machine
 *     into the absolute path the agent will open (it must exist); "system"
 *     (libpq's trusted roots) and "" (unset) stay as they are.
 */
#ifndef HD_CONNINFO_H
#define HD_CONNINFO_H

#include <stddef.h>

#include "config/configs.h"

#define HD_ORIGIN_PARAMS_MAX 20

typedef struct HdOriginParams
{
	const char *keys[HD_ORIGIN_PARAMS_MAX + 1];
	const char *values[HD_ORIGIN_PARAMS_MAX + 1];
	int			n;
	char		port[16];
} HdOriginParams;

/* password: NULL for none */
extern void hd_origin_params_init(HdOriginParams *p, const HdConfig *cfg,
								  const char *application_name, const char *password);
extern void hd_origin_params_add(HdOriginParams *p, const char *key, const char *value);
extern void hd_origin_params_end(HdOriginParams *p);

extern int	hd_conninfo_apply(const char *conninfo, HdConfig *cfg, char **password,
							  char *err, size_t errlen);
/* A malloc'd path, or NULL with a message in err. */
extern char *hd_resolve_sslrootcert(const char *label, const char *file, char *err, size_t errlen);

#endif							/* HD_CONNINFO_H */
