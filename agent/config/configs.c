/*
 * configs.c
 *    The config store (see configs.h).
 *
 * Files are read with the ini reader (ini.h) and written whole, atomically,
 * so that a crash leaves either the old file or the new one. A config's
 * fields are set only through hd_config_set(), the one place that knows each
 * field's form, whether the text comes from a file or from the command line.
 */
#include "config/configs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/ini.h"
#include "base/suggest.h"
#include "base/text_buf.h"

#define CONFIGS_SUBDIR "configs"
#define CONF_SUFFIX ".conf"
#define PASSWORD_SUFFIX ".password"
#define LOCK_FILE ".lock"
/* PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes */
#define MAX_IDENT 63
#define MAX_HOST 255

static const char *const sslmode_names[] = {
	"disable", "allow", "prefer", "require", "verify-ca", "verify-full", NULL
};
static const char *const pool_mode_names[] = {"transaction", "session", NULL};
static const char *const consistency_names[] = {"bounded", "strict", NULL};
static const char *const protocol_names[] = {"postgresql", "mysql", NULL};

/* The .conf keys, in the order they are written; "id" is handled apart. */
static const char *const conf_keys[] = {
	"id", "name", "host", "port", "database", "user", "protocol", "sslmode", "sslrootcert",
	"origin_connection_limit", "pool_mode", "caching_disabled", "max_age",
	"stale_while_revalidate", "consistency", "allow_load_local", NULL
};

#define NKEYS (sizeof(conf_keys) / sizeof(conf_keys[0]) - 1)
/* id, name, host, port, database and user: a file without them is incomplete */
#define NREQUIRED 6

const char *
hd_sslmode_name(HdSslMode mode)
{
	return sslmode_names[mode];
}

const char *
hd_pool_mode_name(HdPoolMode mode)
{
	return pool_mode_names[mode];
}

const char *
hd_consistency_name(HdConsistency consistency)
{
	return consistency_names[consistency];
}

const char *
hd_protocol_name(HdOriginProtocol protocol)
{
	return protocol_names[protocol];
}

int
hd_protocol_default_port(HdOriginProtocol protocol)
{
	return protocol == HD_PROTOCOL_MYSQL ? HD_MYSQL_DEFAULT_PORT : HD_POSTGRESQL_DEFAULT_PORT;
}

bool
hd_config_caches(const HdConfig *cfg)
{
	return !cfg->caching_disabled && cfg->protocol == HD_PROTOCOL_POSTGRESQL;
}

void
hd_config_wrong_listener(const HdConfig *cfg, int port, char *buf, size_t len)
{
	bool		mysql = cfg->protocol == HD_PROTOCOL_MYSQL;
	const char *kind = mysql ? "MySQL" : "PostgreSQL";

	if (port == 0)
		snprintf(buf, len, "config \"%s\" is a %s origin, and the agent has no %s listener "
				 "(set %s)", cfg->name, kind, kind, mysql ? "mysql_listen_port" : "listen_port");
	else
		snprintf(buf, len, "config \"%s\" is a %s origin: connect to port %d with a %s client",
				 cfg->name, kind, port, kind);
}

bool
hd_config_same_origin(const HdConfig *a, const HdConfig *b)
{
	return a->protocol == b->protocol && strcmp(a->host, b->host) == 0 && a->port == b->port &&
		strcmp(a->database, b->database) == 0 && strcmp(a->user, b->user) == 0 &&
		a->sslmode == b->sslmode && a->pool_mode == b->pool_mode &&
		a->allow_load_local == b->allow_load_local &&
		strcmp(a->sslrootcert ? a->sslrootcert : "", b->sslrootcert ? b->sslrootcert : "") == 0;
}

bool
hd_config_password_differs(const char *state_dir, const char *id, const char *current)
{
	char	   *password = NULL;
	char		err[256];
	bool		differs;

	(void) hd_config_read_password(state_dir, id, &password, err, sizeof(err));
	differs = (password == NULL) != (current == NULL) ||
		(password && strcmp(password, current) != 0);
	hd_free_secret(password);
	return differs;
}

void
hd_free_secret(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

void
hd_config_init(HdConfig *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = HD_POSTGRESQL_DEFAULT_PORT;
	cfg->sslmode = HD_SSL_PREFER;
	cfg->origin_connection_limit = 20;
	cfg->pool_mode = HD_POOL_TRANSACTION;
	cfg->max_age = 60;
	cfg->stale_while_revalidate = 15;
}

void
hd_config_free(HdConfig *cfg)
{
	free(cfg->host);
	free(cfg->database);
	free(cfg->user);
	free(cfg->sslrootcert);
	hd_config_init(cfg);
}

/* ------------------------------------------------------------------------
 * Fields.
 */

bool
hd_config_is_id(const char *s)
{
	return strlen(s) == HD_CONFIG_ID_LEN &&
		strspn(s, "0123456789abcdef") == HD_CONFIG_ID_LEN;
}

/* Described, never echoed: a mistyped command line could put a secret here. */
int
hd_config_check_name(const char *name, char *err, size_t errlen)
{
	size_t		len = strlen(name);
	size_t		ok = strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-");
	unsigned char bad = (unsigned char) name[ok];

	if (len == 0)
		snprintf(err, errlen, "the name is empty; use 1 to %d characters of a-z, 0-9, _ and -",
				 HD_CONFIG_NAME_MAX);
	else if (len > HD_CONFIG_NAME_MAX)
		snprintf(err, errlen, "the name is %zu characters long; at most %d are allowed",
				 len, HD_CONFIG_NAME_MAX);
	else if (ok < len && bad > ' ' && bad < 0x7f)
		snprintf(err, errlen, "the name may only hold a-z, 0-9, _ and -, but has \"%c\" at position %zu%s",
				 bad, ok + 1, bad >= 'A' && bad <= 'Z' ? " (use lowercase)" : "");
	else if (ok < len)
		snprintf(err, errlen, "the name may only hold a-z, 0-9, _ and -, but has byte 0x%02x at position %zu",
				 bad, ok + 1);
	else if (strcmp(name, HD_CONSOLE_DATABASE) == 0)
		snprintf(err, errlen, "the name \"%s\" is reserved for the admin console; choose another",
				 HD_CONSOLE_DATABASE);
	else if (hd_config_is_id(name))
		snprintf(err, errlen, "the name must not look like a config id (32 hex digits); choose another");
	else
		return 0;
	return -1;
}

/* Host, database, user: one line of text that survives a round trip through
 * a .conf file (no control characters, no blanks at either end). */
static int
check_text(const char *label, const char *value, size_t max, char *err, size_t errlen)
{
	size_t		len = strlen(value);

	if (len == 0)
		snprintf(err, errlen, "%s must not be empty", label);
	else if (len > max)
		snprintf(err, errlen, "%s is %zu bytes long; at most %zu are allowed", label, len, max);
	else if (value[0] == ' ' || value[0] == '\t' || value[len - 1] == ' ' || value[len - 1] == '\t')
		snprintf(err, errlen, "%s must not start or end with a blank", label);
	else
	{
		for (const unsigned char *p = (const unsigned char *) value; *p; p++)
		{
			if (*p < ' ' || *p == 0x7f)
			{
				snprintf(err, errlen, "%s must not contain control characters", label);
				return -1;
			}
		}
		return 0;
	}
	return -1;
}

static int
set_text(char **field, const char *label, const char *value, size_t max,
		 char *err, size_t errlen)
{
	char	   *copy;

	if (check_text(label, value, max, err, errlen) != 0)
		return -1;
	if ((copy = strdup(value)) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*field);
	*field = copy;
	return 0;
}

static int
set_int(int *field, const char *label, const char *value, int min, int max,
		const char *unit, char *err, size_t errlen)
{
	size_t		len = strlen(value);
	bool		digits = len > 0 && len <= 9 && strspn(value, "0123456789") == len;
	long		n = digits ? strtol(value, NULL, 10) : -1;

	if (!digits || n < min || n > max)
	{
		snprintf(err, errlen, "%s must be an integer from %d to %d%s, not \"%.40s%s\"",
				 label, min, max, unit, value, len > 40 ? "..." : "");
		return -1;
	}
	*field = (int) n;
	return 0;
}

static int
set_enum(int *field, const char *label, const char *value, const char *const *names,
		 char *err, size_t errlen)
{
	HdTextBuf	list = HD_TEXT_BUF_INIT;
	char	   *text;

	for (int i = 0; names[i] != NULL; i++)
	{
		if (strcmp(value, names[i]) == 0)
		{
			*field = i;
			return 0;
		}
	}
	for (int i = 0; names[i] != NULL; i++)
		hd_text_buf_printf(&list, "%s%s", i > 0 ? ", " : "", names[i]);
	text = hd_text_buf_finish(&list);
	snprintf(err, errlen, "%s must be one of %s, not \"%.40s%s\"", label,
			 text ? text : "(out of memory)", value, strlen(value) > 40 ? "..." : "");
	free(text);
	return -1;
}

static int
set_bool(bool *field, const char *label, const char *value, char *err, size_t errlen)
{
	static const char *const yes[] = {"true", "on", "yes", "1", NULL};
	static const char *const no[] = {"false", "off", "no", "0", NULL};

	for (int i = 0; yes[i] != NULL; i++)
	{
		if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0)
		{
			*field = strcmp(value, yes[i]) == 0;
			return 0;
		}
	}
	snprintf(err, errlen, "%s must be true or false, not \"%.40s%s\"", label, value,
			 strlen(value) > 40 ? "..." : "");
	return -1;
}

/* An absolute path or libpq's "system"; "" unsets it. */
static int
set_sslrootcert(HdConfig *cfg, const char *label, const char *value, char *err, size_t errlen)
{
	if (value[0] == '\0')
	{
		free(cfg->sslrootcert);
		cfg->sslrootcert = NULL;
		return 0;
	}
	if (value[0] != '/' && strcmp(value, "system") != 0)
	{
		snprintf(err, errlen, "%s must be an absolute path (or \"system\"), not \"%.80s\"",
				 label, value);
		return -1;
	}
	return set_text(&cfg->sslrootcert, label, value, PATH_MAX, err, errlen);
}

static int
set_host(HdConfig *cfg, const char *label, const char *value, char *err, size_t errlen)
{
	if (strchr(value, ',') != NULL)
	{
		snprintf(err, errlen, "%s must be one host, not a list (\"%.80s\")", label, value);
		return -1;
	}
	return set_text(&cfg->host, label, value, MAX_HOST, err, errlen);
}

static int
set_name(HdConfig *cfg, const char *label, const char *value, char *err, size_t errlen)
{
	char		why[200];

	if (hd_config_check_name(value, why, sizeof(why)) != 0)
	{
		snprintf(err, errlen, "%s: %s", label, why);
		return -1;
	}
	strcpy(cfg->name, value);
	return 0;
}

int
hd_config_set(HdConfig *cfg, const char *key, const char *value, const char *label,
			  char *err, size_t errlen)
{
	int			e;
	int			status;

	if (strcmp(key, "name") == 0)
		return set_name(cfg, label, value, err, errlen);
	if (strcmp(key, "host") == 0)
		return set_host(cfg, label, value, err, errlen);
	if (strcmp(key, "port") == 0)
		return set_int(&cfg->port, label, value, 1, 65535, "", err, errlen);
	if (strcmp(key, "database") == 0)
		return set_text(&cfg->database, label, value, MAX_IDENT, err, errlen);
	if (strcmp(key, "user") == 0)
		return set_text(&cfg->user, label, value, MAX_IDENT, err, errlen);
	if (strcmp(key, "sslrootcert") == 0)
		return set_sslrootcert(cfg, label, value, err, errlen);
	if (strcmp(key, "origin_connection_limit") == 0)
		return set_int(&cfg->origin_connection_limit, label, value, 1, 10000, "", err, errlen);
	if (strcmp(key, "caching_disabled") == 0)
		return set_bool(&cfg->caching_disabled, label, value, err, errlen);
	if (strcmp(key, "allow_load_local") == 0)
		return set_bool(&cfg->allow_load_local, label, value, err, errlen);
	if (strcmp(key, "max_age") == 0)
		return set_int(&cfg->max_age, label, value, 0, 3600, " (seconds)", err, errlen);
	if (strcmp(key, "stale_while_revalidate") == 0)
		return set_int(&cfg->stale_while_revalidate, label, value, 0, 3600, " (seconds)", err, errlen);
	if (strcmp(key, "sslmode") == 0)
	{
		status = set_enum(&e, label, value, sslmode_names, err, errlen);
		if (status == 0)
			cfg->sslmode = (HdSslMode) e;
		return status;
	}
	if (strcmp(key, "pool_mode") == 0)
	{
		status = set_enum(&e, label, value, pool_mode_names, err, errlen);
		if (status == 0)
			cfg->pool_mode = (HdPoolMode) e;
		return status;
	}
	if (strcmp(key, "consistency") == 0)
	{
		status = set_enum(&e, label, value, consistency_names, err, errlen);
		if (status == 0)
			cfg->consistency = (HdConsistency) e;
		return status;
	}
	if (strcmp(key, "protocol") == 0)
	{
		status = set_enum(&e, label, value, protocol_names, err, errlen);
		if (status == 0)
			cfg->protocol = (HdOriginProtocol) e;
		return status;
	}
	snprintf(err, errlen, "unknown config field \"%.60s\"", key);
	return -1;
}

/* What one protocol's origins cannot do (see the contract). */
static int
check_protocol_fields(const HdConfig *cfg, char *err, size_t errlen)
{
	if (cfg->protocol == HD_PROTOCOL_POSTGRESQL)
	{
		if (!cfg->allow_load_local)
			return 0;
		snprintf(err, errlen, "allow_load_local is for MySQL origins (LOAD DATA LOCAL); "
				 "this config's origin is PostgreSQL: set it to false");
		return -1;
	}
	if (!cfg->caching_disabled)
		snprintf(err, errlen, "caching is not available for MySQL origins yet (it comes in a "
				 "later release): a MySQL config has caching_disabled true");
	else if (cfg->sslmode == HD_SSL_ALLOW)
		snprintf(err, errlen, "sslmode allow has no MySQL equivalent; use disable, prefer, "
				 "require, verify-ca or verify-full (ssl-mode DISABLED, PREFERRED, REQUIRED, "
				 "VERIFY_CA or VERIFY_IDENTITY)");
	else
		return 0;
	return -1;
}

int
hd_config_check(const HdConfig *cfg, char *err, size_t errlen)
{
	const char *missing = cfg->host == NULL ? "host" :
		cfg->database == NULL ? "database" :
		cfg->user == NULL ? "user" : NULL;

	if (missing != NULL)
	{
		snprintf(err, errlen, "the origin's %s is missing", missing);
		return -1;
	}
	return check_protocol_fields(cfg, err, errlen);
}

/* ------------------------------------------------------------------------
 * Randomness and paths.
 */

static int
random_bytes(unsigned char *buf, size_t len, char *err, size_t errlen)
{
	size_t		got = 0;

	while (got < len)
	{
		ssize_t		n = getrandom(buf + got, len - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			snprintf(err, errlen, "cannot get random bytes: %s", strerror(errno));
			return -1;
		}
		got += (size_t) n;
	}
	return 0;
}

static void
to_hex(const unsigned char *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0xf];
	}
	out[2 * len] = '\0';
}

int
hd_config_new_id(char id[HD_CONFIG_ID_LEN + 1], char *err, size_t errlen)
{
	unsigned char bytes[HD_CONFIG_ID_LEN / 2];

	if (random_bytes(bytes, sizeof(bytes), err, errlen) != 0)
		return -1;
	to_hex(bytes, sizeof(bytes), id);
	return 0;
}

/* state_dir/configs[/NAME]; false (with a message) if it does not fit. */
static bool
configs_path(char *buf, size_t len, const char *state_dir, const char *name,
			 char *err, size_t errlen)
{
	int			n = snprintf(buf, len, "%s/%s%s%s", state_dir, CONFIGS_SUBDIR,
							 name ? "/" : "", name ? name : "");

	if (n < 0 || (size_t) n >= len)
	{
		snprintf(err, errlen, "%s: state_dir is too long", state_dir);
		return false;
	}
	return true;
}

static bool
file_path(char *buf, size_t len, const char *state_dir, const char *id, const char *suffix,
		  char *err, size_t errlen)
{
	char		name[HD_CONFIG_ID_LEN + 16];

	snprintf(name, sizeof(name), "%s%s", id, suffix);
	return configs_path(buf, len, state_dir, name, err, errlen);
}

/* ------------------------------------------------------------------------
 * Directories, the lock and atomic writes.
 */

static int
make_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0700) == 0 || errno == EEXIST)
	{
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, errlen, "%s exists but is not a directory", path);
		return -1;
	}
	snprintf(err, errlen, "cannot create directory %s: %s%s", path, strerror(errno),
			 errno == ENOENT ? " (create its parent first, or change state_dir)" : "");
	return -1;
}

/* state_dir and state_dir/configs; the latter always ends up 0700. */
static int
ensure_dirs(const char *state_dir, char *err, size_t errlen)
{
	char		dir[PATH_MAX];

	if (!configs_path(dir, sizeof(dir), state_dir, NULL, err, errlen) ||
		make_dir(state_dir, err, errlen) != 0 || make_dir(dir, err, errlen) != 0)
		return -1;
	/* it may predate us, or mkdir's mode may have met an odd umask */
	if (chmod(dir, 0700) != 0)
	{
		snprintf(err, errlen, "cannot make %s private (chmod 0700): %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
hd_configs_lock(const char *state_dir, char *err, size_t errlen)
{
	char		path[PATH_MAX];
	int			fd;

	if (ensure_dirs(state_dir, err, errlen) != 0 ||
		!configs_path(path, sizeof(path), state_dir, LOCK_FILE, err, errlen))
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
	{
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0)
	{
		if (errno == EINTR)
			continue;
		snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* So that a rename survives a crash. */
static int
fsync_dir(const char *dir, char *err, size_t errlen)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) != 0)
	{
		snprintf(err, errlen, "cannot sync directory %s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
write_all(int fd, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t) n;
	}
	return 0;
}

/* data into a new file at temp, mode 0600 exactly, synced to disk. */
static int
write_temp(const char *temp, const char *data, size_t len, char *err, size_t errlen)
{
	int			fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
	{
		snprintf(err, errlen, "cannot create %s: %s", temp, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
	{
		snprintf(err, errlen, "cannot write %s: %s", temp, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) != 0)
	{
		snprintf(err, errlen, "cannot write %s: %s", temp, strerror(errno));
		return -1;
	}
	return 0;
}

/* configs/NAME := data, atomically (see configs.h). */
static int
atomic_write(const char *state_dir, const char *name, const char *data, size_t len,
			 char *err, size_t errlen)
{
	char		dir[PATH_MAX];
	char		target[PATH_MAX];
	char		temp[PATH_MAX];
	char		tempname[128];
	unsigned char salt[4];
	char		salthex[9];

	if (ensure_dirs(state_dir, err, errlen) != 0 ||
		random_bytes(salt, sizeof(salt), err, errlen) != 0)
		return -1;
	to_hex(salt, sizeof(salt), salthex);
	/* a dot name: never mistaken for a config by hd_configs_load() */
	snprintf(tempname, sizeof(tempname), ".%s.%ld.%s.tmp", name, (long) getpid(), salthex);
	if (!configs_path(dir, sizeof(dir), state_dir, NULL, err, errlen) ||
		!configs_path(target, sizeof(target), state_dir, name, err, errlen) ||
		!configs_path(temp, sizeof(temp), state_dir, tempname, err, errlen))
		return -1;
	if (write_temp(temp, data, len, err, errlen) != 0)
	{
		unlink(temp);
		return -1;
	}
	if (rename(temp, target) != 0)
	{
		snprintf(err, errlen, "cannot rename %s to %s: %s", temp, target, strerror(errno));
		unlink(temp);
		return -1;
	}
	return fsync_dir(dir, err, errlen);
}

/* ------------------------------------------------------------------------
 * Saving, passwords, deleting.
 */

static char *
conf_text(const HdConfig *cfg)
{
	HdTextBuf	buf = HD_TEXT_BUF_INIT;

	hd_text_buf_printf(&buf, "# hyperdrive config \"%s\", written by the hyperdrive command.\n"
					   "# The origin password, if any, is in %s%s next to this file.\n",
					   cfg->name, cfg->id, PASSWORD_SUFFIX);
	hd_text_buf_printf(&buf, "id = %s\nname = %s\n", cfg->id, cfg->name);
	hd_text_buf_printf(&buf, "host = %s\nport = %d\n", cfg->host, cfg->port);
	hd_text_buf_printf(&buf, "database = %s\nuser = %s\n", cfg->database, cfg->user);
	hd_text_buf_printf(&buf, "protocol = %s\n", hd_protocol_name(cfg->protocol));
	hd_text_buf_printf(&buf, "sslmode = %s\nsslrootcert = %s\n", hd_sslmode_name(cfg->sslmode),
					   cfg->sslrootcert ? cfg->sslrootcert : "");
	hd_text_buf_printf(&buf, "origin_connection_limit = %d\npool_mode = %s\n",
					   cfg->origin_connection_limit, hd_pool_mode_name(cfg->pool_mode));
	hd_text_buf_printf(&buf, "caching_disabled = %s\nmax_age = %d\nstale_while_revalidate = %d\n",
					   cfg->caching_disabled ? "true" : "false", cfg->max_age,
					   cfg->stale_while_revalidate);
	hd_text_buf_printf(&buf, "consistency = %s\n", hd_consistency_name(cfg->consistency));
	hd_text_buf_printf(&buf, "allow_load_local = %s\n", cfg->allow_load_local ? "true" : "false");
	return hd_text_buf_finish(&buf);
}

int
hd_config_save(const char *state_dir, const HdConfig *cfg, char *err, size_t errlen)
{
	char		name[HD_CONFIG_ID_LEN + 16];
	char	   *text;
	int			status;

	if (!hd_config_is_id(cfg->id))
	{
		snprintf(err, errlen, "the config has no valid id");
		return -1;
	}
	if (hd_config_check_name(cfg->name, err, errlen) != 0 ||
		hd_config_check(cfg, err, errlen) != 0)
		return -1;
	if ((text = conf_text(cfg)) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(name, sizeof(name), "%s%s", cfg->id, CONF_SUFFIX);
	status = atomic_write(state_dir, name, text, strlen(text), err, errlen);
	free(text);
	return status;
}

/* Remove configs/NAME; 1 if removed, 0 if it was not there, -1 on error. */
static int
remove_file(const char *path, char *err, size_t errlen)
{
	if (unlink(path) == 0)
		return 1;
	if (errno == ENOENT)
		return 0;
	snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
	return -1;
}

int
hd_config_set_password(const char *state_dir, const char *id, const char *password,
					   char *err, size_t errlen)
{
	char		name[HD_CONFIG_ID_LEN + 16];
	char		path[PATH_MAX];
	char		dir[PATH_MAX];
	size_t		len = password ? strlen(password) : 0;

	if (len > HD_PASSWORD_MAX)
	{
		snprintf(err, errlen, "the password is longer than %d bytes", HD_PASSWORD_MAX);
		return -1;
	}
	if (len > 0 && strpbrk(password, "\r\n") != NULL)
	{
		snprintf(err, errlen, "the password must be one line (it holds a line break)");
		return -1;
	}
	snprintf(name, sizeof(name), "%s%s", id, PASSWORD_SUFFIX);
	if (len > 0)
		return atomic_write(state_dir, name, password, len, err, errlen);
	if (!configs_path(path, sizeof(path), state_dir, name, err, errlen) ||
		!configs_path(dir, sizeof(dir), state_dir, NULL, err, errlen))
		return -1;
	switch (remove_file(path, err, errlen))
	{
		case 0:
			return 0;			/* there was none */
		case 1:
			return fsync_dir(dir, err, errlen);
		default:
			return -1;
	}
}

/* The whole of a small regular file, NUL-terminated; NULL with a message. */
static char *
read_small_file(int fd, const char *path, size_t max, char *err, size_t errlen)
{
	struct stat st;
	char	   *buf;
	ssize_t		n;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t) st.st_size > max)
	{
		snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path, max);
		return NULL;
	}
	if ((buf = malloc(max + 2)) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	do
		n = read(fd, buf, max + 1);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t) n > max)
	{
		snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "file grew while read");
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (strlen(buf) != (size_t) n)
	{
		snprintf(err, errlen, "%s: contains a NUL byte (the file is damaged; set the password again)", path);
		hd_free_secret(buf);
		return NULL;
	}
	return buf;
}

int
hd_config_read_password(const char *state_dir, const char *id, char **password,
						char *err, size_t errlen)
{
	char		path[PATH_MAX];
	int			fd;
	size_t		len;

	*password = NULL;
	if (!file_path(path, sizeof(path), state_dir, id, PASSWORD_SUFFIX, err, errlen))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
	{
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	*password = read_small_file(fd, path, HD_PASSWORD_MAX + 2, err, errlen);
	close(fd);
	if (*password == NULL)
		return -1;
	/* a newline added by hand (echo pw > file) is not part of the password */
	len = strlen(*password);
	if (len > 0 && (*password)[len - 1] == '\n')
		(*password)[--len] = '\0';
	if (len > 0 && (*password)[len - 1] == '\r')
		(*password)[--len] = '\0';
	return 1;
}

int
hd_config_delete(const char *state_dir, const char *id, char *err, size_t errlen)
{
	char		conf[PATH_MAX];
	char		password[PATH_MAX];
	char		dir[PATH_MAX];
	int			removed_conf;
	int			removed_password;

	if (!file_path(conf, sizeof(conf), state_dir, id, CONF_SUFFIX, err, errlen) ||
		!file_path(password, sizeof(password), state_dir, id, PASSWORD_SUFFIX, err, errlen) ||
		!configs_path(dir, sizeof(dir), state_dir, NULL, err, errlen))
		return -1;
	/* the .conf first: once it is gone the config is gone */
	if ((removed_conf = remove_file(conf, err, errlen)) < 0 ||
		(removed_password = remove_file(password, err, errlen)) < 0)
		return -1;
	if (removed_conf + removed_password == 0)
	{
		snprintf(err, errlen, "no config with id %s", id);
		return -1;
	}
	return fsync_dir(dir, err, errlen);
}

bool
hd_config_files_exist(const char *state_dir, const char *id)
{
	char		path[PATH_MAX];
	char		ignored[256];
	struct stat st;

	return (file_path(path, sizeof(path), state_dir, id, CONF_SUFFIX, ignored, sizeof(ignored)) &&
			lstat(path, &st) == 0) ||
		(file_path(path, sizeof(path), state_dir, id, PASSWORD_SUFFIX, ignored, sizeof(ignored)) &&
		 lstat(path, &st) == 0);
}

/* ------------------------------------------------------------------------
 * Loading one .conf file.
 */

typedef struct ConfLoader
{
	HdConfig   *cfg;
	const char *file_id;		/* the id the file name says */
	unsigned	set_on[NKEYS];	/* line that set each key; 0: not set */
} ConfLoader;

static int
conf_on_section(void *arg, const char *section, unsigned lineno, char *problem, size_t problemlen)
{
	(void) arg;
	(void) lineno;
	snprintf(problem, problemlen, "a config file has no sections, not [%.60s]", section);
	return -1;
}

static int
conf_set_id(ConfLoader *loader, const char *value, char *problem, size_t problemlen)
{
	if (strcmp(value, loader->file_id) != 0)
	{
		snprintf(problem, problemlen, "id \"%.40s\" does not match the file name", value);
		return -1;
	}
	strcpy(loader->cfg->id, value);
	return 0;
}

static int
conf_on_entry(void *arg, const char *key, const char *value, unsigned lineno,
			  char *problem, size_t problemlen)
{
	ConfLoader *loader = arg;
	const char *guess;

	for (size_t i = 0; i < NKEYS; i++)
	{
		if (strcmp(key, conf_keys[i]) != 0)
			continue;
		if (loader->set_on[i] != 0)
		{
			snprintf(problem, problemlen, "%s is already set on line %u", key, loader->set_on[i]);
			return -1;
		}
		loader->set_on[i] = lineno;
		if (i == 0)
			return conf_set_id(loader, value, problem, problemlen);
		return hd_config_set(loader->cfg, key, value, key, problem, problemlen);
	}
	guess = hd_suggest(key, conf_keys);
	snprintf(problem, problemlen, "unknown key \"%.60s\"%s%s%s", key,
			 guess ? "; did you mean \"" : "", guess ? guess : "", guess ? "\"?" : "");
	return -1;
}

/* The way out of a damaged file, appended to every message about one. */
#define DAMAGED_HINT "fix the file, or remove the config with: hyperdrive delete %s"

static int
load_one(const char *state_dir, const char *id, HdConfig *cfg, char *err, size_t errlen)
{
	char		path[PATH_MAX];
	char		message[768];
	ConfLoader	loader = {.cfg = cfg, .file_id = id};
	HdIniHandler handler = {&loader, conf_on_section, conf_on_entry};
	struct stat st;
	size_t		nset = 0;

	hd_config_init(cfg);
	if (!file_path(path, sizeof(path), state_dir, id, CONF_SUFFIX, err, errlen))
		return -1;
	if (hd_ini_parse(path, &handler, message, sizeof(message)) != 0)
	{
		snprintf(err, errlen, "%s (" DAMAGED_HINT ")", message, id);
		return -1;
	}
	for (size_t i = 0; i < NKEYS; i++)
		nset += loader.set_on[i] != 0;
	for (size_t i = 0; i < NREQUIRED; i++)
	{
		if (loader.set_on[i] != 0)
			continue;
		if (nset == 0)
			snprintf(err, errlen, "%s: the file is empty (half-written or damaged?); " DAMAGED_HINT,
					 path, id);
		else
			snprintf(err, errlen, "%s: \"%s\" is missing (half-written or damaged?); " DAMAGED_HINT,
					 path, conf_keys[i], id);
		return -1;
	}
	/* fields that each hold a valid value but do not go together (protocol) */
	if (hd_config_check(cfg, message, sizeof(message)) != 0)
	{
		snprintf(err, errlen, "%s: %s; " DAMAGED_HINT, path, message, id);
		return -1;
	}
	cfg->has_password = file_path(path, sizeof(path), state_dir, id, PASSWORD_SUFFIX, err, errlen) &&
		stat(path, &st) == 0 && S_ISREG(st.st_mode);
	return 0;
}

/* ------------------------------------------------------------------------
 * Loading them all.
 */

static bool
is_conf_name(const char *name)
{
	return strlen(name) == HD_CONFIG_ID_LEN + strlen(CONF_SUFFIX) &&
		strspn(name, "0123456789abcdef") == HD_CONFIG_ID_LEN &&
		strcmp(name + HD_CONFIG_ID_LEN, CONF_SUFFIX) == 0;
}

static int
compare_ids(const void *a, const void *b)
{
	return strcmp((const char *) a, (const char *) b);
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(((const HdConfig *) a)->name, ((const HdConfig *) b)->name);
}

typedef char IdBuf[HD_CONFIG_ID_LEN + 1];

/* The ids of the .conf files in dir, sorted; *count 0 if dir is missing. */
static int
list_ids(const char *dir, IdBuf **ids, size_t *count, char *err, size_t errlen)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;
	size_t		cap = 0;

	*ids = NULL;
	*count = 0;
	if (d == NULL)
	{
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL)
	{
		if (!is_conf_name(e->d_name))
			continue;
		if (*count == cap)
		{
			IdBuf	   *grown = realloc(*ids, (cap = cap ? cap * 2 : 16) * sizeof(IdBuf));

			if (grown == NULL)
			{
				snprintf(err, errlen, "out of memory");
				closedir(d);
				return -1;
			}
			*ids = grown;
		}
		memcpy((*ids)[*count], e->d_name, HD_CONFIG_ID_LEN);
		(*ids)[(*count)++][HD_CONFIG_ID_LEN] = '\0';
	}
	closedir(d);
	if (*count > 0)
		qsort(*ids, *count, sizeof(IdBuf), compare_ids);
	return 0;
}

/* Names are unique; the list is sorted by name, so twins are neighbours. */
static int
check_unique_names(const char *dir, const HdConfigList *list, char *err, size_t errlen)
{
	for (size_t i = 1; i < list->count; i++)
	{
		const HdConfig *a = &list->items[i - 1];
		const HdConfig *b = &list->items[i];

		if (strcmp(a->name, b->name) == 0)
		{
			snprintf(err, errlen, "%s/%s%s: name \"%s\" is also used by %s%s; "
					 "rename or remove one (hyperdrive delete %s)",
					 dir, b->id, CONF_SUFFIX, b->name, a->id, CONF_SUFFIX, b->id);
			return -1;
		}
	}
	return 0;
}

int
hd_configs_load(const char *state_dir, HdConfigList *out, char *err, size_t errlen)
{
	char		dir[PATH_MAX];
	IdBuf	   *ids;
	size_t		count;

	out->items = NULL;
	out->count = 0;
	if (!configs_path(dir, sizeof(dir), state_dir, NULL, err, errlen) ||
		list_ids(dir, &ids, &count, err, errlen) != 0)
		return -1;
	if (count > 0 && (out->items = calloc(count, sizeof(HdConfig))) == NULL)
	{
		snprintf(err, errlen, "out of memory");
		free(ids);
		return -1;
	}
	for (size_t i = 0; i < count; i++)
	{
		out->count++;			/* so that hd_configs_free() frees a half-loaded one */
		if (load_one(state_dir, ids[i], &out->items[i], err, errlen) != 0)
		{
			free(ids);
			hd_configs_free(out);
			return -1;
		}
	}
	free(ids);
	if (out->count > 0)
		qsort(out->items, out->count, sizeof(HdConfig), compare_names);
	if (check_unique_names(dir, out, err, errlen) != 0)
	{
		hd_configs_free(out);
		return -1;
	}
	return 0;
}

void
hd_configs_free(HdConfigList *list)
{
	for (size_t i = 0; i < list->count; i++)
		hd_config_free(&list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

HdConfig *
hd_configs_find_name(const HdConfigList *list, const char *name)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->items[i].name, name) == 0)
			return &list->items[i];
	return NULL;
}

HdConfig *
hd_configs_find(const HdConfigList *list, const char *id_or_name)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->items[i].id, id_or_name) == 0)
			return &list->items[i];
	return hd_configs_find_name(list, id_or_name);
}
