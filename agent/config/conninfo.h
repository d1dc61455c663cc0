/*
 * conninfo.h
 *    An origin's connection string, as libpq takes it (a postgresql:// URI
 *    or "key=value ..."), read into a config's fields (configs.h).
 *
 * Contract:
 *   - hd_conninfo_apply() parses conninfo with libpq's PQconninfoParse(),
 *     which applies no defaults, environment variables or service file, so
 *     the result is what the string says. It sets cfg's host, port (5432 when
 *     the string has none), database and user; sslmode and sslrootcert only
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
 *   - hd_resolve_sslrootcert() turns a CA file name given on this machine
 *     into the absolute path the agent will open (it must exist); "system"
 *     (libpq's trusted roots) and "" (unset) stay as they are.
 */
#ifndef HD_CONNINFO_H
#define HD_CONNINFO_H

#include <stddef.h>

#include "config/configs.h"

extern int	hd_conninfo_apply(const char *conninfo, HdConfig *cfg, char **password,
							  char *err, size_t errlen);
/* A malloc'd path, or NULL with a message in err. */
extern char *hd_resolve_sslrootcert(const char *label, const char *file, char *err, size_t errlen);

#endif							/* HD_CONNINFO_H */
