/*
 * configs.h
 *    The store of "configs": each config is a named origin database that
 *    clients reach through the agent by using the config's name as the
 *    database name in their connection string.
 *
 * On disk, under the settings' state_dir:
 *     configs/              mode 0700
 *     configs/ID.conf       the config, "key = value" lines (ini.h), no password
 *     configs/ID.password   the origin password's bytes, mode 0600; absent if none
 * ID is 32 lowercase hex digits from getrandom(). The .conf keys are the
 * field names of HdConfig (id, name, host, port, database, user, protocol,
 * sslmode, sslrootcert, origin_connection_limit, pool_mode, caching_disabled,
 * max_age, stale_while_revalidate, consistency, allow_load_local; a file
 * written before a key existed means its default: no protocol is postgresql,
 * no consistency bounded, no allow_load_local false). A config exists when
 * its .conf file does; other files in the directory (e.g. leftover temporary
 * files) are ignored.
 *
 * Contract:
 *   - Every write is atomic: a temporary file created with O_EXCL and mode
 *     0600, written, fsync'ed, renamed over the target, and the directory
 *     fsync'ed. Readers see the old file or the new one, never a mix. Saving
 *     a config and setting its password are two such writes: callers set the
 *     password first, so a config never appears before its password.
 *   - hd_configs_load() loads every config of a state directory, sorted by
 *     name (a missing directory holds no configs). It refuses the whole set
 *     if any file is unreadable, malformed, incomplete (half-written) or out
 *     of range, or if two configs share a name, with a message naming the
 *     file and, where there is one, the line, and the way out.
 *   - hd_config_set() sets one field from text, checked exactly as loading
 *     checks it; `label` names the field in its message ("max_age", or a CLI
 *     flag such as "--max-age"). Messages never repeat a value that could be
 *     a secret: an invalid name is described, not echoed.
 *   - A config's protocol says which wire protocol its origin speaks, and so
 *     which of the agent's listeners serves it (PostgreSQL: listen_port;
 *     MySQL/MariaDB: mysql_listen_port). hd_config_check() refuses what a
 *     MySQL config cannot do yet or ever: caching (not available for MySQL
 *     origins yet: such a config has caching_disabled true), sslmode allow
 *     (MySQL has no "try without, then with TLS"); and allow_load_local on a
 *     PostgreSQL config (LOAD DATA LOCAL is MySQL's).
 *   - Passwords are only ever read by hd_config_read_password(); nothing in
 *     this module prints or logs one.
 *   - Modifying commands hold hd_configs_lock() around load-check-save, so
 *     that two concurrent creates cannot both take a name.
 *   - All functions return 0 on success and -1 with a message in err on
 *     failure, unless stated otherwise. No global state.
 */
#ifndef HD_CONFIGS_H
#define HD_CONFIGS_H

#include <stdbool.h>
#include <stddef.h>

#define HD_CONFIG_ID_LEN 32
#define HD_CONFIG_NAME_MAX 63
#define HD_CONSOLE_DATABASE "hyperdrive"	/* the admin console: not a config name */
#define HD_PASSWORD_MAX 1024

typedef enum HdSslMode
{
	HD_SSL_DISABLE,
	HD_SSL_ALLOW,
	HD_SSL_PREFER,
	HD_SSL_REQUIRE,
	HD_SSL_VERIFY_CA,
	HD_SSL_VERIFY_FULL
} HdSslMode;

typedef enum HdPoolMode
{
	HD_POOL_TRANSACTION,
	HD_POOL_SESSION
} HdPoolMode;

/* The wire protocol of a config's origin (and of its clients). */
typedef enum HdOriginProtocol
{
	HD_PROTOCOL_POSTGRESQL,
	HD_PROTOCOL_MYSQL			/* MySQL or MariaDB */
} HdOriginProtocol;

#define HD_POSTGRESQL_DEFAULT_PORT 5432
#define HD_MYSQL_DEFAULT_PORT 3306

/* What a cache hit promises (docs/cache.md, "Consistency"). */
typedef enum HdConsistency
{
	HD_CONSISTENCY_BOUNDED,		/* at most max_lag behind the origin's commits */
	HD_CONSISTENCY_STRICT		/* every commit acknowledged before the request arrived */
} HdConsistency;

typedef struct HdConfig
{
	char		id[HD_CONFIG_ID_LEN + 1];
	char		name[HD_CONFIG_NAME_MAX + 1];	/* [a-z0-9_-]{1,63}, unique */
	char	   *host;			/* a host name, an address, or a socket directory */
	int			port;			/* 1..65535, default 5432 */
	char	   *database;
	char	   *user;
	HdOriginProtocol protocol;	/* default postgresql */
	HdSslMode	sslmode;		/* default prefer */
	char	   *sslrootcert;	/* absolute path or "system"; NULL: not set */
	int			origin_connection_limit;	/* 1..10000, default 20 */
	HdPoolMode	pool_mode;		/* default transaction */
	bool		caching_disabled;	/* default false */
	int			max_age;		/* seconds, 0..3600, default 60 */
	int			stale_while_revalidate; /* seconds, 0..3600, default 15 */
	HdConsistency consistency;	/* default bounded */
	bool		allow_load_local;	/* MySQL: LOAD DATA LOCAL may pass; default false */
	bool		has_password;	/* set by hd_configs_load() */
} HdConfig;

typedef struct HdConfigList
{
	HdConfig   *items;
	size_t		count;
} HdConfigList;

/* Defaults everywhere, no strings, empty id and name. */
extern void hd_config_init(HdConfig *cfg);
extern void hd_config_free(HdConfig *cfg);

extern int	hd_config_set(HdConfig *cfg, const char *key, const char *value,
						  const char *label, char *err, size_t errlen);
extern int	hd_config_check_name(const char *name, char *err, size_t errlen);
/* Host, database and user are set (the rest always holds a valid value
 * alone), and the fields agree with the protocol (see the contract). */
extern int	hd_config_check(const HdConfig *cfg, char *err, size_t errlen);
extern int	hd_config_new_id(char id[HD_CONFIG_ID_LEN + 1], char *err, size_t errlen);
extern bool hd_config_is_id(const char *s);

extern const char *hd_sslmode_name(HdSslMode mode);
extern const char *hd_pool_mode_name(HdPoolMode mode);
extern const char *hd_consistency_name(HdConsistency consistency);
/* "postgresql" or "mysql", as in the .conf file */
extern const char *hd_protocol_name(HdOriginProtocol protocol);
/* The origin's default port: 5432 or 3306. */
extern int	hd_protocol_default_port(HdOriginProtocol protocol);
/*
 * Whether the cache serves cfg: caching on, and a PostgreSQL origin (the
 * only one with a change stream). Nothing of the cache (stream, freshness
 * probe, control connection) is started for a config that it does not serve.
 */
extern bool hd_config_caches(const HdConfig *cfg);
/*
 * What a client that named cfg on the other protocol's listener is told:
 * which port serves cfg. port: the agent's listener of cfg's protocol
 * (listen_port or mysql_listen_port), 0 if it has none.
 */
extern void hd_config_wrong_listener(const HdConfig *cfg, int port, char *buf, size_t len);

extern int	hd_configs_load(const char *state_dir, HdConfigList *out, char *err, size_t errlen);
extern void hd_configs_free(HdConfigList *list);
/* By id, else by name; NULL if neither. */
extern HdConfig *hd_configs_find(const HdConfigList *list, const char *id_or_name);
extern HdConfig *hd_configs_find_name(const HdConfigList *list, const char *name);

/* Creates state_dir and its configs directory (0700) if missing, then takes
 * an exclusive lock; returns the lock's fd (close() releases it) or -1. */
extern int	hd_configs_lock(const char *state_dir, char *err, size_t errlen);

/* Writes ID.conf (create or replace). */
extern int	hd_config_save(const char *state_dir, const HdConfig *cfg, char *err, size_t errlen);
/* Writes ID.password; NULL or "" removes it. One line, at most HD_PASSWORD_MAX bytes. */
extern int	hd_config_set_password(const char *state_dir, const char *id, const char *password,
								   char *err, size_t errlen);
/* 1 and a malloc'd *password (caller frees), 0 if none is stored, -1 on error. */
extern int	hd_config_read_password(const char *state_dir, const char *id, char **password,
									char *err, size_t errlen);
/* Removes ID.conf and ID.password; -1 if neither existed. */
extern int	hd_config_delete(const char *state_dir, const char *id, char *err, size_t errlen);
/* Whether ID.conf or ID.password exists (to delete a config too damaged to load). */
extern bool hd_config_files_exist(const char *state_dir, const char *id);

/*
 * Whether two versions of a config reach the same origin the same way: the
 * protocol, host, port, database, user, sslmode, sslrootcert, pool mode and
 * allow_load_local. A pool whose config changed any of them drains (its
 * clients logged in to something else); a change of anything else (name,
 * limits, caching) leaves the pool as it is.
 */
extern bool hd_config_same_origin(const HdConfig *a, const HdConfig *b);
/*
 * Whether config id's stored password now differs from current (NULL: none),
 * the one a pool of the config's own user logs in with.
 */
extern bool hd_config_password_differs(const char *state_dir, const char *id, const char *current);

/* Overwrites a secret before it is freed. */
extern void hd_free_secret(char *secret);

#endif							/* HD_CONFIGS_H */
