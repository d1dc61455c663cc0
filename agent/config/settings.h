/*
 * settings.h
 *    The agent's settings file: an ini file with one section, [agent], whose
 *    names follow PgBouncer's where they mean the same thing.
 *
 *    [agent]
 *    listen_addr = 127.0.0.1        address the agent accepts clients on
 *    listen_port = 6432             1..65535
 *    mysql_listen_port =            1..65535, not listen_port: the port (on
 *                                   listen_addr) of MySQL/MariaDB clients, for
 *                                   the configs of protocol mysql; empty: no
 *                                   MySQL listener
 *    unix_socket_dir =              also listen on DIR/.s.PGSQL.<listen_port>
 *                                   (absolute, at most HD_UNIX_SOCKET_DIR_MAX
 *                                   bytes, so that the socket's path fits in
 *                                   sun_path); empty: no Unix-domain socket
 *    state_dir = /var/lib/hyperdrive   required, absolute: configs and cache
 *    admin_users =                  comma list of users allowed on the admin
 *                                   console (database "hyperdrive"); empty: none
 *    metrics_addr =                 host:port of the metrics endpoint; empty: off
 *    log_level = info               error | warning | info | debug
 *    max_client_conn = 1000         1..1000000
 *    query_wait_timeout = 120       a client waiting for an origin connection
 *                                   gives up after this; 0: waits forever
 *    server_connect_timeout = 5     connecting to the origin; > 0
 *    server_idle_timeout = 600      close origin connections idle this long; 0: never
 *    server_lifetime = 3600         close origin connections this old when
 *                                   released; 0: never
 *    client_idle_timeout = 0        close clients idle this long; 0: never
 *    client_login_timeout = 60      close clients not logged in this long after
 *                                   connecting (startup packet, TLS, password
 *                                   exchange, the pool's first origin
 *                                   connection); 0: never
 *    server_login_retry = 1         after a failed origin connection or login,
 *                                   the next attempt (for waiting clients) comes
 *                                   this much later; 1ms..30s
 *    auth_recheck_interval = 10     a client of a config's own user is let in
 *                                   only if an origin login with the config's
 *                                   credentials succeeded this recently (else
 *                                   the agent makes one first); 0: at every
 *                                   login; 0..1h
 *    tls_cert_file =                client-facing TLS: both files, or neither
 *    tls_key_file =
 *    auth_type = scram-sha-256      what the agent asks clients for:
 *                                   scram-sha-256 | md5 | password
 *    mysql_auth_plugin = mysql_native_password
 *                                   what the agent's greeting asks MySQL clients
 *                                   for: mysql_native_password |
 *                                   caching_sha2_password
 *    auth_file =                    the admin console's users and passwords, in
 *                                   PgBouncer's userlist.txt format (auth_file.h);
 *                                   empty: nobody can log in to the console
 *    cache_map_size = 1GB           the cache's LMDB map (<state_dir>/cache): the
 *                                   most its file can grow to; at start only
 *    cache_max_bytes = 0            entries' bytes kept (LRU); 0: a third of the map
 *    cache_max_entry_bytes = 1MB    a result larger than this is returned, not stored
 *    max_lag = 1s                   no cache hit is served while the change stream
 *                                   of the config is further behind than this
 *
 * Times are whole numbers of seconds, or a whole number with a unit: ms, s,
 * min or h ("500ms", "2min"); at most 720h. Comments are lines starting
 * with ; or #. Names are case-sensitive; each may be set once.
 *
 * Contract:
 *   - hd_settings_load() reads path into *out. It returns 0, or -1 with a
 *     message in err naming the file, the line and the fix, e.g.
 *       hyperdrive.ini:7: unknown setting "listen_prot"; did you mean "listen_port"?
 *       hyperdrive.ini:3: listen_port must be an integer from 1 to 65535, not "99999"
 *       hyperdrive.ini: state_dir is required (the directory where configs and the cache live)
 *     On failure *out holds nothing to free (hd_settings_free() is safe on it).
 *     On success the caller releases *out with hd_settings_free().
 *   - No global state: a reload loads into a fresh HdSettings and keeps the
 *     old one if that fails.
 *   - The file is only read: state_dir need not exist yet, and the TLS files
 *     are not opened (whoever uses them reports their problems).
 */
#ifndef HD_SETTINGS_H
#define HD_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "base/log.h"				/* HdLogLevel */

#define HD_SETTINGS_DEFAULT_FILE "hyperdrive.ini"
#define HD_SETTINGS_ENV "HYPERDRIVE_CONF"
/* sun_path holds 108 bytes: the directory, "/.s.PGSQL.65535" and a NUL */
#define HD_UNIX_SOCKET_DIR_MAX 92

typedef enum HdAuthType
{
	HD_AUTH_SCRAM_SHA_256,
	HD_AUTH_MD5,
	HD_AUTH_PASSWORD
} HdAuthType;

/* The plugin a MySQL client is asked for first (both are answered either way). */
typedef enum HdMyAuthPlugin
{
	HD_MY_AUTH_NATIVE,			/* mysql_native_password */
	HD_MY_AUTH_SHA2				/* caching_sha2_password */
} HdMyAuthPlugin;

typedef struct HdSettings
{
	char	   *listen_addr;
	int			listen_port;
	int			mysql_listen_port;	/* 0: no MySQL listener */
	char	   *unix_socket_dir;	/* NULL: no Unix-domain socket */
	char	   *state_dir;
	char	  **admin_users;	/* nadmin_users names, none empty */
	size_t		nadmin_users;
	char	   *metrics_host;	/* NULL: no metrics endpoint */
	int			metrics_port;	/* 0 when metrics_host is NULL */
	HdLogLevel	log_level;
	int			max_client_conn;
	/* times, in milliseconds; 0 means "off" where settings.h says so */
	int64_t		query_wait_timeout_ms;
	int64_t		server_connect_timeout_ms;
	int64_t		server_idle_timeout_ms;
	int64_t		server_lifetime_ms;
	int64_t		client_idle_timeout_ms;
	int64_t		client_login_timeout_ms;
	int64_t		server_login_retry_ms;
	int64_t		auth_recheck_interval_ms;
	char	   *tls_cert_file;	/* both NULL, or both set */
	char	   *tls_key_file;
	HdAuthType	auth_type;
	HdMyAuthPlugin mysql_auth_plugin;
	char	   *auth_file;		/* NULL: not set */
	int64_t		cache_map_size; /* bytes */
	int64_t		cache_max_bytes;	/* 0: derived */
	int64_t		cache_max_entry_bytes;	/* 0: derived */
	int64_t		max_lag_ms;
} HdSettings;

extern int	hd_settings_load(const char *path, HdSettings *out, char *err, size_t errlen);
extern void hd_settings_free(HdSettings *settings);

extern const char *hd_log_level_name(HdLogLevel level);
extern const char *hd_auth_type_name(HdAuthType type);
extern const char *hd_my_auth_plugin_name(HdMyAuthPlugin plugin);

#endif							/* HD_SETTINGS_H */
