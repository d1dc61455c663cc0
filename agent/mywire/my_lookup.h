/*
 * my_lookup.h
 *    Logins of other origin users (MySQL configs): the lookup of a user's
 *    stored mysql_native_password hash on the origin, so that the agent can
 *    check the client's scramble against it (mysql_auth.h) and its pool can
 *    then log in to the origin as that user with SHA1(password).
 *
 * The lookup runs on a control connection per config, logged in as the
 * config's user with the config's password, through Connector/C's
 * non-blocking API mapped onto the agent's loop (ev_io + ev_timer): nothing
 * here ever waits for the origin, except what Connector/C itself cannot do
 * without blocking (resolving a host name, as hd_origin_connect() does too,
 * and the COM_QUIT write of mysql_close(), a few bytes on an idle socket).
 *
 * What is looked up: every account row of the user name (mysql.global_priv
 * on MariaDB, else mysql.user), whatever its Host: which row the
 * origin would pick depends on the address it sees, so the agent accepts a
 * user only when every login row of that name has the same plugin, hash and
 * lock state, and refuses (saying so in the log) when they differ. The user
 * name goes into the query as a hexadecimal literal: no quoting, and nothing
 * that depends on sql_mode (NO_BACKSLASH_ESCAPES) or the connection's
 * character set.
 *
 * Contract:
 *   - hd_my_lookup(my, config, user, done, arg): 0 and done(arg, status,
 *     stage2, message) is called exactly once, later, from the loop (never
 *     from within hd_my_lookup()), unless hd_my_lookup_cancel(my, arg) comes
 *     first; -1 (out of memory, an empty or too long user name) and done is
 *     never called. Statuses (HdMyLookupStatus): FOUND: stage2 is the stored
 *     hash; NO_PASSWORD: an account without a password (only the empty
 *     token logs in; stage2 NULL); NOT_FOUND: no login account of that name
 *     (the caller answers exactly as for a wrong password); REFUSED: the
 *     account exists but cannot log in through the agent (another plugin,
 *     rows that differ, locked, expired, several methods); FAILED: the lookup could
 *     not be made (the origin unreachable, the config's user lacks the
 *     grant, a timeout). message says why, for the agent's log only: it
 *     tells apart accounts that exist from those that do not.
 *   - Requests of one config run one query at a time, in order; requests
 *     for the same user queued together share one query. Each operation
 *     (connect and log in, query and result) is bounded by
 *     server_connect_timeout. A reused connection the origin dropped (its
 *     wait_timeout, a restart) is reopened once for the request.
 *   - FOUND and NO_PASSWORD are cached per (config, user) for
 *     HD_MY_LOOKUP_CACHE_SECONDS; nothing else is. The cache holds the hash,
 *     not a login's outcome: every client still proves its password, and a
 *     caller whose client failed against a cached hash calls
 *     hd_my_lookup_forget() so that the next attempt reads the origin again
 *     (the password may have changed there).
 *   - A config whose origin, user, database or TLS settings changed gets a
 *     new connection and an empty cache; a deleted config's requests fail.
 *     A connection idle for HD_MY_LOOKUP_IDLE_SECONDS is closed.
 *   - hd_my_lookup_shutdown(my): every control connection closed, every
 *     pending request dropped without its done() (the wing closes its
 *     clients first), the state freed; idempotent, and lookups may start
 *     again after it.
 *
 * The pure parts (the query, the rule that decides from the rows) are
 * exported for the unit test (agent/tests/test_my_lookup.c).
 */
#ifndef HD_MY_LOOKUP_H
#define HD_MY_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "config/configs.h"
#include "mywire/mywire.h"

#define HD_MY_LOOKUP_CACHE_SECONDS 10.0
#define HD_MY_LOOKUP_IDLE_SECONDS 60.0
/* The longest user name looked up (MySQL 8: 32 characters, MariaDB: 80; in bytes). */
#define HD_MY_LOOKUP_USER_MAX 127

typedef enum HdMyLookupStatus
{
	HD_MY_LOOKUP_FOUND,
	HD_MY_LOOKUP_NO_PASSWORD,
	HD_MY_LOOKUP_NOT_FOUND,
	HD_MY_LOOKUP_REFUSED,
	HD_MY_LOOKUP_FAILED
} HdMyLookupStatus;

typedef void (*HdMyLookupDone) (void *arg, int status, const uint8_t stage2[20],
								const char *message);

extern int	hd_my_lookup(HdMyAgent *my, const HdConfig *config, const char *user,
						 HdMyLookupDone done, void *arg);
extern void hd_my_lookup_cancel(HdMyAgent *my, void *arg);
extern void hd_my_lookup_forget(HdMyAgent *my, const HdConfig *config, const char *user);
extern void hd_my_lookup_shutdown(HdMyAgent *my);

/* ---- pure parts, for the unit test ---- */

/*
 * Where the hashes are read: MariaDB 10.4+'s table; MariaDB's mysql.user
 * view over it (a config's user may have been granted only that); MySQL's
 * mysql.user table.
 */
typedef enum HdMyLookupTable
{
	HD_MY_LOOKUP_GLOBAL_PRIV,
	HD_MY_LOOKUP_MARIADB_USER,
	HD_MY_LOOKUP_MYSQL_USER
} HdMyLookupTable;

/*
 * The query for user's rows in table, NUL-terminated into buf: its length,
 * or -1 if it does not fit (or user is empty or longer than
 * HD_MY_LOOKUP_USER_MAX). Columns: plugin, authentication_string, locked,
 * expired, is_role, several methods (MariaDB's auth_or); what a table does
 * not have is NULL (MariaDB's view has no lock, MySQL's table no roles and
 * no alternatives).
 */
extern int	hd_my_lookup_query(HdMyLookupTable table, const char *user, char *buf, size_t buflen);

/* One row as the query returns it (NULL: SQL NULL). */
typedef struct HdMyLookupRow
{
	const char *plugin;
	const char *auth;
	const char *locked;			/* "1"/"Y": locked */
	const char *expired;		/* "1"/"Y": the password expired */
	const char *role;			/* "1"/"Y": a role, not a login */
	const char *several;		/* "1": several methods (auth_or) */
} HdMyLookupRow;

/*
 * The rule: what the rows of user say. stage2 filled for FOUND (else
 * zeroed); message says why for every status but FOUND and NO_PASSWORD.
 */
extern HdMyLookupStatus hd_my_lookup_decide(const char *user, const HdMyLookupRow *rows, int nrows,
											uint8_t stage2[20], char *message, size_t msglen);

/* The log line's text for a config's user that cannot read the table. */
extern void hd_my_lookup_grant_message(bool mariadb, const char *config_user, const char *error,
									   char *message, size_t msglen);

/*
 * Connector/C's TLS options for a config's sslmode (the lookup's control
 * connections, and `hyperdrive check`): the same rules as the agent's own
 * origin connections (my_server.c) and libpq's sslmode.
 */
extern void hd_my_connector_tls_options(MYSQL *mysql, const HdConfig *config);

#endif							/* HD_MY_LOOKUP_H */
