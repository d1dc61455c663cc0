/*
 * mysql_uri.h
 *    A MySQL/MariaDB origin's connection string, a URI, read into a config's
 *    fields (configs.h): the MySQL half of hd_conninfo_apply() (conninfo.h),
 *    which libpq cannot parse.
 *
 *      mysql://USER:PASSWORD@HOST:PORT/DATABASE?OPTION=VALUE&...
 *      mariadb://...   (the same)
 *
 * Contract:
 *   - hd_mysql_uri_is() says whether a string is meant as such a URI: it
 *     starts with "mysql://" or "mariadb://" (any case).
 *   - hd_mysql_uri_apply() sets cfg's protocol (mysql), host, port (3306
 *     when the URI has none), database and user, and caching_disabled true
 *     (caching is not available for MySQL origins yet); sslmode and
 *     sslrootcert only when the URI has them. USER, PASSWORD, HOST, DATABASE
 *     and option values are percent-decoded (%2F, %40, %3A, %25 ...; "+" is
 *     a plus sign). HOST is a name, an IPv4 address or a bracketed IPv6
 *     address ("[::1]"); a Unix socket is refused. USER, HOST and DATABASE
 *     are required. Options:
 *       ssl-mode=DISABLED|PREFERRED|REQUIRED|VERIFY_CA|VERIFY_IDENTITY (any
 *         case) -> sslmode disable|prefer|require|verify-ca|verify-full
 *       ssl-ca=FILE -> sslrootcert (the file's absolute path; it must exist)
 *       sslmode=, sslrootcert= as in a postgresql:// URI
 *     Any other option, an option given twice, a fragment ("#...") or a
 *     malformed percent sequence (or one that decodes to a NUL byte) is
 *     refused, naming the option (only when its name is a plain word).
 *     *password is set to a malloc'd copy of the decoded password (free it
 *     with hd_free_secret()), or NULL when the URI has none or an empty one.
 *     Returns 0, or -1 with a message in err and cfg partly set.
 *   - No message contains any value taken from the URI: a password with an
 *     unescaped "/", "@" or "?" ends up in another part, so none is echoed.
 */
#ifndef HD_MYSQL_URI_H
#define HD_MYSQL_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "config/configs.h"

extern bool hd_mysql_uri_is(const char *conninfo);
extern int	hd_mysql_uri_apply(const char *uri, HdConfig *cfg, char **password,
							   char *err, size_t errlen);

#endif							/* HD_MYSQL_URI_H */
