/*
 * cli_configs.c
 *    The subcommands that manage configs (see cli_configs.h).
 *
 * Each subcommand is a row of a table: its operand, the options it takes and
 * the function that runs it. The command line is parsed once into a Cli,
 * which the run functions read; every error goes through fail(), so each
 * message starts with the subcommand's name and the exit status is always 1.
 */
#include "ops/cli_configs.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/configs.h"
#include "config/conninfo.h"
#include "config/settings.h"
#include "base/suggest.h"

typedef enum Opt
{
	OPT_CONF,
	OPT_HELP,
	OPT_CONNECTION_STRING,
	OPT_ORIGIN_PASSWORD,
	OPT_NAME,
	OPT_LIMIT,
	OPT_CACHING_DISABLED,
	OPT_MAX_AGE,
	OPT_SWR,
	OPT_SSLMODE,
	OPT_SSLROOTCERT,
	OPT_POOL_MODE,
	OPT_CONSISTENCY,
	OPT_ALLOW_LOAD_LOCAL,
	NOPTS
} Opt;

typedef struct OptionDef
{
	const char *name;			/* long name, with its dashes */
	char		short_name;		/* 0: none */
	bool		takes_value;
	const char *config_key;		/* the config field it sets; NULL: none */
} OptionDef;

static const OptionDef option_defs[NOPTS] = {
	[OPT_CONF] = {"--config", 'c', true, NULL},
	[OPT_HELP] = {"--help", 'h', false, NULL},
	[OPT_CONNECTION_STRING] = {"--connection-string", 0, true, NULL},
	[OPT_ORIGIN_PASSWORD] = {"--origin-password", 0, true, NULL},
	[OPT_NAME] = {"--name", 0, true, "name"},
	[OPT_LIMIT] = {"--origin-connection-limit", 0, true, "origin_connection_limit"},
	[OPT_CACHING_DISABLED] = {"--caching-disabled", 0, true, "caching_disabled"},
	[OPT_MAX_AGE] = {"--max-age", 0, true, "max_age"},
	[OPT_SWR] = {"--swr", 0, true, "stale_while_revalidate"},
	[OPT_SSLMODE] = {"--sslmode", 0, true, "sslmode"},
	[OPT_SSLROOTCERT] = {"--sslrootcert", 0, true, NULL},
	[OPT_POOL_MODE] = {"--pool-mode", 0, true, "pool_mode"},
	[OPT_CONSISTENCY] = {"--consistency", 0, true, "consistency"},
	[OPT_ALLOW_LOAD_LOCAL] = {"--allow-load-local", 0, true, "allow_load_local"},
};

#define BIT(o) (1u << (o))
#define COMMON_OPTS (BIT(OPT_CONF) | BIT(OPT_HELP))
/* the options that change a config, shared by create and update */
#define FIELD_OPTS (BIT(OPT_ORIGIN_PASSWORD) | BIT(OPT_LIMIT) | BIT(OPT_CACHING_DISABLED) | \
	BIT(OPT_MAX_AGE) | BIT(OPT_SWR) | BIT(OPT_SSLMODE) | BIT(OPT_SSLROOTCERT) | BIT(OPT_POOL_MODE) | \
	BIT(OPT_CONSISTENCY) | BIT(OPT_ALLOW_LOAD_LOCAL))

struct Command;

typedef struct Cli
{
	const struct Command *cmd;
	const char *operand;
	const char *values[NOPTS];	/* NULL: not given */
	FILE	   *in;
	FILE	   *out;
	FILE	   *err;
	HdSettings	settings;
	char		message[1024];	/* for the functions of other modules */
} Cli;

typedef struct Command
{
	const char *name;
	const char *operand;		/* "NAME", "ID|NAME", or NULL for none */
	unsigned	options;		/* BIT(OPT_...) */
	bool		caching_flag;	/* --caching-disabled takes no value */
	int			(*run) (Cli *cli);
	const char *usage;
} Command;

/* ------------------------------------------------------------------------
 * Messages.
 */

static int	fail(Cli *cli, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static int
fail(Cli *cli, const char *fmt,...)
{
	va_list		ap;

	fprintf(cli->err, "hyperdrive %s: ", cli->cmd->name);
	va_start(ap, fmt);
	vfprintf(cli->err, fmt, ap);
	va_end(ap);
	fputc('\n', cli->err);
	return 1;
}

/* An operand is echoed only if it could be a name or an id: never a secret. */
static bool
echoable(const char *operand)
{
	return operand[0] != '\0' && strlen(operand) <= HD_CONFIG_NAME_MAX &&
		strspn(operand, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(operand);
}

static int
not_found(Cli *cli)
{
	if (echoable(cli->operand))
		return fail(cli, "no config has the id or name \"%s\" (hyperdrive list shows them)",
					cli->operand);
	return fail(cli, "no config has that id or name (hyperdrive list shows them)");
}

/* ------------------------------------------------------------------------
 * The command line.
 */

static int
find_long(const Command *cmd, const char *name, size_t len)
{
	for (int o = 0; o < NOPTS; o++)
		if ((cmd->options & BIT(o)) && strlen(option_defs[o].name) == len &&
			strncmp(option_defs[o].name, name, len) == 0)
			return o;
	return -1;
}

static int
unknown_option(Cli *cli, const char *arg, size_t len)
{
	const char *names[NOPTS + 1];
	char		word[64];
	const char *guess;
	int			n = 0;

	for (int o = 0; o < NOPTS; o++)
		if (cli->cmd->options & BIT(o))
			names[n++] = option_defs[o].name;
	names[n] = NULL;
	snprintf(word, sizeof(word), "%.*s", (int) (len < 60 ? len : 60), arg);
	guess = hd_suggest(word, names);
	if (guess != NULL)
		return fail(cli, "unknown option \"%s\"; did you mean \"%s\"? (see --help)", word, guess);
	return fail(cli, "unknown option \"%s\" (see hyperdrive %s --help)", word, cli->cmd->name);
}

/* "--name=value", "--name value" or (for a flag) "--name"; *i moves past it. */
static int
parse_long(Cli *cli, int argc, char **argv, int *i)
{
	const char *arg = argv[*i];
	const char *eq = strchr(arg, '=');
	size_t		len = eq ? (size_t) (eq - arg) : strlen(arg);
	int			o = find_long(cli->cmd, arg, len);

	if (o < 0)
		return unknown_option(cli, arg, len);
	if (o == OPT_HELP || (o == OPT_CACHING_DISABLED && cli->cmd->caching_flag && !eq))
		cli->values[o] = "true";
	else if (eq)
		cli->values[o] = eq + 1;
	else if (*i + 1 < argc)
		cli->values[o] = argv[++*i];
	else
		return fail(cli, "%s needs a value (see hyperdrive %s --help)",
					option_defs[o].name, cli->cmd->name);
	return 0;
}

/* "-c FILE", "-cFILE", "-h". */
static int
parse_short(Cli *cli, int argc, char **argv, int *i)
{
	const char *arg = argv[*i];

	if (strcmp(arg, "-h") == 0)
		cli->values[OPT_HELP] = "true";
	else if (strncmp(arg, "-c", 2) == 0 && arg[2] != '\0')
		cli->values[OPT_CONF] = arg + 2;
	else if (strcmp(arg, "-c") == 0 && *i + 1 < argc)
		cli->values[OPT_CONF] = argv[++*i];
	else if (strcmp(arg, "-c") == 0)
		return fail(cli, "-c needs a value: the settings file");
	else
		return unknown_option(cli, arg, strlen(arg));
	return 0;
}

static int
take_operand(Cli *cli, const char *arg)
{
	/* not echoed: it may be a connection string that lost its option */
	if (cli->cmd->operand == NULL)
		return fail(cli, "takes no arguments, only options (see --help)");
	if (cli->operand != NULL)
		return fail(cli, "too many arguments: it takes one %s; options start with -- (see --help)",
					cli->cmd->operand);
	cli->operand = arg;
	return 0;
}

static int
parse_args(Cli *cli, int argc, char **argv)
{
	bool		only_operands = false;

	for (int i = 1; i < argc; i++)
	{
		const char *arg = argv[i];
		int			status;

		if (!only_operands && strcmp(arg, "--") == 0)
		{
			only_operands = true;
			continue;
		}
		if (only_operands || arg[0] != '-' || strcmp(arg, "-") == 0)
			status = take_operand(cli, arg);
		else if (arg[1] == '-')
			status = parse_long(cli, argc, argv, &i);
		else
			status = parse_short(cli, argc, argv, &i);
		if (status != 0)
			return status;
		if (cli->values[OPT_HELP] != NULL)
			return 0;
	}
	if (cli->cmd->operand != NULL && cli->operand == NULL)
		return fail(cli, "missing %s (see hyperdrive %s --help)", cli->cmd->operand, cli->cmd->name);
	return 0;
}

/* -c FILE, else $HYPERDRIVE_CONF, else ./hyperdrive.ini. */
static int
load_settings(Cli *cli)
{
	const char *path = cli->values[OPT_CONF];
	const char *env = getenv(HD_SETTINGS_ENV);

	if (path == NULL)
		path = env != NULL && env[0] != '\0' ? env : HD_SETTINGS_DEFAULT_FILE;
	if (path[0] == '\0')
		return fail(cli, "-c needs a file name");
	if (hd_settings_load(path, &cli->settings, cli->message, sizeof(cli->message)) == 0)
		return 0;
	if (access(path, F_OK) != 0)
		return fail(cli, "%s (name the agent's settings file with -c FILE or $%s)",
					cli->message, HD_SETTINGS_ENV);
	return fail(cli, "%s", cli->message);
}

/* ------------------------------------------------------------------------
 * Showing configs.
 */

/* Percent-encode what a URI's user part cannot hold as is. */
static void
put_uri_part(FILE *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			strchr("-._~", *p) != NULL)
			fputc(*p, out);
		else
			fprintf(out, "%%%02X", *p);
	}
}

/* A host in a URI or host:port: an IPv6 address needs brackets. */
static void
put_host(FILE *out, const char *host)
{
	fprintf(out, strchr(host, ':') != NULL ? "[%s]" : "%s", host);
}

/*
 * What clients put in their connection string to reach the config: the
 * listener of its protocol. A MySQL config while the agent has no MySQL
 * listener gets the setting that makes one instead.
 */
static void
put_client_uri(const Cli *cli, const HdConfig *cfg)
{
	const char *addr = cli->settings.listen_addr;
	bool		mysql = cfg->protocol == HD_PROTOCOL_MYSQL;
	int			port = mysql ? cli->settings.mysql_listen_port : cli->settings.listen_port;

	if (port == 0)
	{
		fputs("(none yet: the agent has no MySQL listener; set mysql_listen_port in the "
			  "settings file)\n", cli->out);
		return;
	}
	/* a wildcard is where the agent listens, not an address to connect to */
	if (strcmp(addr, "*") == 0 || strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0)
		addr = "localhost";
	fputs(mysql ? "mysql://" : "postgresql://", cli->out);
	put_uri_part(cli->out, cfg->user);
	fputc('@', cli->out);
	put_host(cli->out, addr);
	fprintf(cli->out, ":%d/%s\n", port, cfg->name);
}

static void
print_config(const Cli *cli, const HdConfig *cfg)
{
	FILE	   *out = cli->out;

	fprintf(out, "id: %s\nname: %s\n", cfg->id, cfg->name);
	fprintf(out, "protocol: %s\n", hd_protocol_name(cfg->protocol));
	fprintf(out, "host: %s\nport: %d\n", cfg->host, cfg->port);
	fprintf(out, "database: %s\nuser: %s\n", cfg->database, cfg->user);
	fprintf(out, "password: %s\n", cfg->has_password ? "(set)" : "(not set)");
	fprintf(out, "sslmode: %s\n", hd_sslmode_name(cfg->sslmode));
	fprintf(out, "sslrootcert: %s\n", cfg->sslrootcert ? cfg->sslrootcert : "(not set)");
	fprintf(out, "origin_connection_limit: %d\n", cfg->origin_connection_limit);
	fprintf(out, "pool_mode: %s\n", hd_pool_mode_name(cfg->pool_mode));
	fprintf(out, "caching_disabled: %s\n", cfg->caching_disabled ? "true" : "false");
	fprintf(out, "max_age: %d\n", cfg->max_age);
	fprintf(out, "stale_while_revalidate: %d\n", cfg->stale_while_revalidate);
	fprintf(out, "consistency: %s\n", hd_consistency_name(cfg->consistency));
	fprintf(out, "allow_load_local: %s\n", cfg->allow_load_local ? "true" : "false");
	fputs("connection string: ", out);
	put_client_uri(cli, cfg);
}

/* user@host:port/database, for list. */
static char *
origin_text(const HdConfig *cfg)
{
	char	   *text = NULL;
	bool		v6 = strchr(cfg->host, ':') != NULL;

	if (asprintf(&text, "%s@%s%s%s:%d/%s", cfg->user, v6 ? "[" : "", cfg->host, v6 ? "]" : "",
				 cfg->port, cfg->database) < 0)
		return NULL;
	return text;
}

static void
caching_text(const HdConfig *cfg, char *buf, size_t len)
{
	if (cfg->caching_disabled)
		snprintf(buf, len, "off");
	else
		snprintf(buf, len, "on (max_age %ds, swr %ds, %s)", cfg->max_age,
				 cfg->stale_while_revalidate, hd_consistency_name(cfg->consistency));
}

/* ------------------------------------------------------------------------
 * Fields from the command line.
 */

/* One line from `in`, without its line break; NULL (after a message) if none. */
static char *
read_password_line(Cli *cli)
{
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len = getline(&line, &cap, cli->in);
	char	   *password;

	if (len < 0)
	{
		free(line);
		fail(cli, "--origin-password -: no password on standard input (give one line)");
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	password = strdup(line);
	explicit_bzero(line, cap);
	free(line);
	if (password == NULL)
		fail(cli, "out of memory");
	return password;
}

/*
 * The password the command line gives, if any: *given says whether it gives
 * one, and *password is it (NULL or "" for none: remove a stored one).
 */
static int
password_option(Cli *cli, bool *given, char **password)
{
	const char *value = cli->values[OPT_ORIGIN_PASSWORD];

	if (value == NULL)
		return 0;
	hd_free_secret(*password);
	*password = strcmp(value, "-") == 0 ? read_password_line(cli) : strdup(value);
	if (*password == NULL)
		return strcmp(value, "-") == 0 ? 1 : fail(cli, "out of memory");
	*given = true;
	return 0;
}

static int
sslrootcert_option(Cli *cli, HdConfig *cfg)
{
	const char *value = cli->values[OPT_SSLROOTCERT];
	char	   *path;
	int			status;

	if (value == NULL)
		return 0;
	path = hd_resolve_sslrootcert("--sslrootcert", value, cli->message, sizeof(cli->message));
	if (path == NULL)
		return fail(cli, "%s", cli->message);
	status = hd_config_set(cfg, "sslrootcert", path, "--sslrootcert",
						   cli->message, sizeof(cli->message));
	free(path);
	return status == 0 ? 0 : fail(cli, "%s", cli->message);
}

/* The options that set a field directly, in option_defs order. */
static int
field_options(Cli *cli, HdConfig *cfg)
{
	for (int o = 0; o < NOPTS; o++)
	{
		const char *value = cli->values[o];

		if (value == NULL || option_defs[o].config_key == NULL)
			continue;
		if (hd_config_set(cfg, option_defs[o].config_key, value, option_defs[o].name,
						  cli->message, sizeof(cli->message)) != 0)
			return fail(cli, "%s", cli->message);
	}
	return sslrootcert_option(cli, cfg);
}

/* The connection string's fields and password, then the options over them. */
static int
apply_command_line(Cli *cli, HdConfig *cfg, bool *password_given, char **password)
{
	const char *conninfo = cli->values[OPT_CONNECTION_STRING];

	if (conninfo != NULL)
	{
		if (hd_conninfo_apply(conninfo, cfg, password, cli->message, sizeof(cli->message)) != 0)
			return fail(cli, "%s", cli->message);
		*password_given = *password != NULL;
	}
	if (field_options(cli, cfg) != 0 || password_option(cli, password_given, password) != 0)
		return 1;
	if (hd_config_check(cfg, cli->message, sizeof(cli->message)) != 0)
		return fail(cli, "%s", cli->message);
	return 0;
}

/* No config but cfg (which may be in the list, renamed) has cfg's name. */
static int
check_name_free(Cli *cli, const HdConfigList *list, const HdConfig *cfg)
{
	for (size_t i = 0; i < list->count; i++)
	{
		const HdConfig *other = &list->items[i];

		if (other != cfg && strcmp(other->name, cfg->name) == 0)
			return fail(cli, "a config named \"%s\" already exists (id %s); choose another name",
						cfg->name, other->id);
	}
	return 0;
}

static int
load_configs(Cli *cli, HdConfigList *list)
{
	if (hd_configs_load(cli->settings.state_dir, list, cli->message, sizeof(cli->message)) == 0)
		return 0;
	return fail(cli, "%s", cli->message);
}

/* Under the lock: the password first, so the config never appears without it. */
static int
store(Cli *cli, const HdConfig *cfg, bool password_given, const char *password)
{
	if ((password_given &&
		 hd_config_set_password(cli->settings.state_dir, cfg->id, password,
								cli->message, sizeof(cli->message)) != 0) ||
		hd_config_save(cli->settings.state_dir, cfg, cli->message, sizeof(cli->message)) != 0)
		return fail(cli, "%s", cli->message);
	return 0;
}

/* ------------------------------------------------------------------------
 * The subcommands.
 */

static int
create_checked(Cli *cli, HdConfig *cfg, bool password_given, const char *password)
{
	HdConfigList list;
	int			status;

	if (hd_config_new_id(cfg->id, cli->message, sizeof(cli->message)) != 0)
		return fail(cli, "%s", cli->message);
	if (load_configs(cli, &list) != 0)
		return 1;
	status = check_name_free(cli, &list, cfg);
	hd_configs_free(&list);
	if (status == 0)
		status = store(cli, cfg, password_given, password);
	return status;
}

static int
run_create(Cli *cli)
{
	HdConfig	cfg;
	char	   *password = NULL;
	bool		password_given = false;
	int			lock = -1;
	int			status;

	hd_config_init(&cfg);
	if (cli->values[OPT_CONNECTION_STRING] == NULL)
		status = fail(cli, "--connection-string=URI is required, e.g. "
					  "--connection-string=postgresql://USER:PASSWORD@HOST:5432/DATABASE");
	else if (hd_config_set(&cfg, "name", cli->operand, "NAME", cli->message, sizeof(cli->message)) != 0)
		status = fail(cli, "%s", cli->message);
	else if ((status = apply_command_line(cli, &cfg, &password_given, &password)) != 0)
		;
	else if ((lock = hd_configs_lock(cli->settings.state_dir, cli->message, sizeof(cli->message))) < 0)
		status = fail(cli, "%s", cli->message);
	else
		status = create_checked(cli, &cfg, password_given, password);
	if (lock >= 0)
		close(lock);
	if (status == 0)
	{
		fprintf(cli->out, "id: %s\nname: %s\nconnection string: ", cfg.id, cfg.name);
		put_client_uri(cli, &cfg);
	}
	hd_free_secret(password);
	hd_config_free(&cfg);
	return status;
}

static int
run_list(Cli *cli)
{
	HdConfigList list;
	char	  **origins;
	int			wname = 4;
	int			worigin = 6;

	if (load_configs(cli, &list) != 0)
		return 1;
	if (list.count == 0)
	{
		fprintf(cli->out, "no configs (add one with: hyperdrive create NAME --connection-string=URI)\n");
		return 0;
	}
	if ((origins = calloc(list.count, sizeof(char *))) == NULL)
	{
		hd_configs_free(&list);
		return fail(cli, "out of memory");
	}
	for (size_t i = 0; i < list.count; i++)
	{
		int			n = (int) strlen(list.items[i].name);

		wname = n > wname ? n : wname;
		origins[i] = origin_text(&list.items[i]);
		n = origins[i] ? (int) strlen(origins[i]) : 0;
		worigin = n > worigin ? n : worigin;
	}
	fprintf(cli->out, "%-*s  %-*s  %-10s  %-*s  %5s  %-11s  %s\n", HD_CONFIG_ID_LEN, "ID",
			wname, "NAME", "PROTOCOL", worigin, "ORIGIN", "LIMIT", "POOL", "CACHING");
	for (size_t i = 0; i < list.count; i++)
	{
		const HdConfig *cfg = &list.items[i];
		char		caching[64];

		caching_text(cfg, caching, sizeof(caching));
		fprintf(cli->out, "%-*s  %-*s  %-10s  %-*s  %5d  %-11s  %s\n", HD_CONFIG_ID_LEN, cfg->id,
				wname, cfg->name, hd_protocol_name(cfg->protocol), worigin, origins[i] ? origins[i] : "?",
				cfg->origin_connection_limit, hd_pool_mode_name(cfg->pool_mode), caching);
		free(origins[i]);
	}
	free(origins);
	hd_configs_free(&list);
	return 0;
}

static int
run_get(Cli *cli)
{
	HdConfigList list;
	const HdConfig *cfg;
	int			status = 0;

	if (load_configs(cli, &list) != 0)
		return 1;
	if ((cfg = hd_configs_find(&list, cli->operand)) == NULL)
		status = not_found(cli);
	else
		print_config(cli, cfg);
	hd_configs_free(&list);
	return status;
}

static bool
any_change(const Cli *cli)
{
	for (int o = 0; o < NOPTS; o++)
		if (o != OPT_CONF && o != OPT_HELP && cli->values[o] != NULL)
			return true;
	return false;
}

static int
update_locked(Cli *cli)
{
	HdConfigList list;
	HdConfig   *cfg;
	char	   *password = NULL;
	bool		password_given = false;
	int			status;

	if (load_configs(cli, &list) != 0)
		return 1;
	if ((cfg = hd_configs_find(&list, cli->operand)) == NULL)
		status = not_found(cli);
	else if ((status = apply_command_line(cli, cfg, &password_given, &password)) == 0 &&
			 (status = check_name_free(cli, &list, cfg)) == 0 &&
			 (status = store(cli, cfg, password_given, password)) == 0)
	{
		if (password_given)
			cfg->has_password = password != NULL && password[0] != '\0';
		print_config(cli, cfg);
	}
	hd_free_secret(password);
	hd_configs_free(&list);
	return status;
}

static int
run_update(Cli *cli)
{
	int			lock;
	int			status;

	if (!any_change(cli))
		return fail(cli, "nothing to change; give at least one option (see hyperdrive update --help)");
	lock = hd_configs_lock(cli->settings.state_dir, cli->message, sizeof(cli->message));
	if (lock < 0)
		return fail(cli, "%s", cli->message);
	status = update_locked(cli);
	close(lock);
	return status;
}

/* A config too damaged to load can still be deleted by its id. */
static int
delete_damaged(Cli *cli, const char *load_error)
{
	if (!hd_config_is_id(cli->operand) ||
		!hd_config_files_exist(cli->settings.state_dir, cli->operand))
		return fail(cli, "%s", load_error);
	if (hd_config_delete(cli->settings.state_dir, cli->operand,
						 cli->message, sizeof(cli->message)) != 0)
		return fail(cli, "%s", cli->message);
	fprintf(cli->out, "deleted config %s\n", cli->operand);
	return 0;
}

static int
delete_locked(Cli *cli)
{
	HdConfigList list;
	const HdConfig *cfg;
	int			status = 0;

	if (hd_configs_load(cli->settings.state_dir, &list, cli->message, sizeof(cli->message)) != 0)
	{
		char		load_error[sizeof(cli->message)];

		memcpy(load_error, cli->message, sizeof(load_error));
		return delete_damaged(cli, load_error);
	}
	if ((cfg = hd_configs_find(&list, cli->operand)) == NULL)
		status = not_found(cli);
	else if (hd_config_delete(cli->settings.state_dir, cfg->id, cli->message, sizeof(cli->message)) != 0)
		status = fail(cli, "%s", cli->message);
	else
		fprintf(cli->out, "deleted config %s (id %s)\n", cfg->name, cfg->id);
	hd_configs_free(&list);
	return status;
}

static int
run_delete(Cli *cli)
{
	int			lock = hd_configs_lock(cli->settings.state_dir, cli->message, sizeof(cli->message));
	int			status;

	if (lock < 0)
		return fail(cli, "%s", cli->message);
	status = delete_locked(cli);
	close(lock);
	return status;
}

/* ------------------------------------------------------------------------
 * The table and the entry points.
 */

#define SETTINGS_HELP \
	"  -c FILE                         the agent's settings file, for state_dir and the\n" \
	"                                  listen address (default: $HYPERDRIVE_CONF, else\n" \
	"                                  ./hyperdrive.ini)\n" \
	"  --help                          show this help\n"

#define FIELD_HELP(caching) \
	"  --origin-password=P             the origin's password; \"-\" reads one line from\n" \
	"                                  standard input (keeps it out of ps); \"\" removes it\n" \
	"  --origin-connection-limit=N     connections to the origin, at most (1-10000; default 20)\n" \
	caching \
	"  --max-age=S                     keep query results S seconds (0-3600; default 60)\n" \
	"  --swr=S                         then serve them stale, while refreshing, for S more\n" \
	"                                  seconds (stale-while-revalidate; 0-3600; default 15)\n" \
	"  --consistency=C                 what a cache hit promises: bounded (default: at most\n" \
	"                                  the agent's max_lag behind the origin) or strict\n" \
	"                                  (every commit acknowledged before the query\n" \
	"                                  arrived; a hit waits up to max_lag for the change\n" \
	"                                  stream, one origin round trip, else goes to the origin)\n" \
	"  --sslmode=M                     to the origin: disable, allow, prefer (default),\n" \
	"                                  require, verify-ca or verify-full\n" \
	"  --sslrootcert=FILE              CA certificates to verify the origin with, or \"system\"\n" \
	"  --pool-mode=M                   transaction (default: an origin connection per\n" \
	"                                  transaction) or session (one per client session)\n" \
	"  --allow-load-local=true|false   MySQL origins: let LOAD DATA LOCAL INFILE through\n" \
	"                                  (default false)\n"

static const Command commands[] = {
	{"create", "NAME", COMMON_OPTS | FIELD_OPTS | BIT(OPT_CONNECTION_STRING), true, run_create,
		"Usage: hyperdrive create NAME --connection-string=URI [options]\n"
		"  Adds a config: the origin database at URI, which clients reach through the\n"
		"  agent by using NAME as the database name. NAME: 1 to 63 of a-z, 0-9, _ and -,\n"
		"  not \"hyperdrive\" (the admin console). Prints the config's id and the\n"
		"  connection string for clients. The password is stored apart, readable only by\n"
		"  the agent's user, and never shown.\n"
		"Options:\n"
		"  --connection-string=URI         the origin (required):\n"
		"                                  postgresql://USER:PASSWORD@HOST:PORT/DATABASE or\n"
		"                                  \"host=H port=P dbname=D user=U password=W\";\n"
		"                                  sslmode and sslrootcert are taken from it too.\n"
		"                                  A MySQL/MariaDB origin: mysql://USER:PASSWORD@\n"
		"                                  HOST:PORT/DATABASE (or mariadb://; port 3306 by\n"
		"                                  default; ?ssl-mode=DISABLED|PREFERRED|REQUIRED|\n"
		"                                  VERIFY_CA|VERIFY_IDENTITY&ssl-ca=FILE); its clients\n"
		"                                  connect to mysql_listen_port, and caching is not\n"
		"                                  available for it yet (it is created disabled)\n"
		FIELD_HELP("  --caching-disabled              forward every query, cache nothing\n")
		"  Options override what the connection string says.\n"
	SETTINGS_HELP},
	{"list", NULL, COMMON_OPTS, false, run_list,
		"Usage: hyperdrive list [-c FILE]\n"
		"  Lists the configs, one a line: id, name, protocol (postgresql or mysql),\n"
		"  origin, connection limit, pool mode and caching.\n"
		"Options:\n"
	SETTINGS_HELP},
	{"get", "ID|NAME", COMMON_OPTS, false, run_get,
		"Usage: hyperdrive get ID|NAME [-c FILE]\n"
		"  Shows every field of a config, one \"key: value\" a line (the password only as\n"
		"  \"(set)\" or \"(not set)\"), and the connection string for clients.\n"
		"Options:\n"
	SETTINGS_HELP},
	{"update", "ID|NAME", COMMON_OPTS | FIELD_OPTS | BIT(OPT_CONNECTION_STRING) | BIT(OPT_NAME),
		false, run_update,
		"Usage: hyperdrive update ID|NAME [options]\n"
		"  Changes a config and shows it as get does. Fields not mentioned keep their values.\n"
		"Options:\n"
		"  --connection-string=URI         a new origin: protocol, host, port (default 5432,\n"
		"                                  or 3306 for mysql://), database and user;\n"
		"                                  sslmode, sslrootcert and the password change only\n"
		"                                  if it has them\n"
		"  --name=NEW                      rename the config (clients' database name)\n"
		FIELD_HELP("  --caching-disabled=true|false   forward every query, cache nothing\n")
		"  Options override what the connection string says.\n"
	SETTINGS_HELP},
	{"delete", "ID|NAME", COMMON_OPTS, false, run_delete,
		"Usage: hyperdrive delete ID|NAME [-c FILE]\n"
		"  Removes a config and its stored password. A config whose file is damaged can\n"
		"  be removed by its id.\n"
		"Options:\n"
	SETTINGS_HELP},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const Command *
find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

bool
hd_cli_configs_has(const char *command)
{
	return find_command(command) != NULL;
}

void
hd_cli_configs_summary(FILE *out)
{
	fprintf(out,
			"  hyperdrive create NAME --connection-string=URI [options]\n"
			"                         add a config: an origin database that clients reach\n"
			"                         through the agent as database NAME\n"
			"  hyperdrive list        list the configs\n"
			"  hyperdrive get ID|NAME show a config\n"
			"  hyperdrive update ID|NAME [options]\n"
			"                         change a config\n"
			"  hyperdrive delete ID|NAME\n"
			"                         remove a config\n"
			"                         (each takes -c FILE, the settings file, and --help)\n");
}

int
hd_cli_configs_main(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
	Cli			cli = {.cmd = find_command(argv[0]), .in = in, .out = out, .err = err};
	int			status;

	if (cli.cmd == NULL)
		return 1;
	if ((status = parse_args(&cli, argc, argv)) != 0)
		return status;
	if (cli.values[OPT_HELP] != NULL)
	{
		fputs(cli.cmd->usage, out);
		return 0;
	}
	if (load_settings(&cli) != 0)
		return 1;
	status = cli.cmd->run(&cli);
	hd_settings_free(&cli.settings);
	if (fflush(out) != 0 || ferror(out))
		status = fail(&cli, "error writing standard output");
	return status;
}
