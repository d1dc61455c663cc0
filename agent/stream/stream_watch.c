/*
 * stream_watch.c
 *    hyperdrive stream-watch: the change stream consumer (stream.h) from the
 *    command line, for operators and tests. Prints each record, confirms it
 *    as applied once printed, and reports state changes on stderr.
 */
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/configs.h"
#include "base/log.h"
#include "config/settings.h"
#include "stream/stream.h"
#include "stream/stream_record.h"

typedef struct Watch
{
	struct ev_loop *loop;
	HdStream   *stream;
	FILE	   *out;
	FILE	   *err;
	bool		text;			/* plain text format, no separators */
	uint64_t	count;			/* 0: until a signal */
	uint64_t	printed;
} Watch;

void
hd_stream_watch_usage(FILE *out)
{
	fprintf(out,
			"Usage: hyperdrive stream-watch NAME [-c FILE] [--slot S] [--from-lsn X/Y]\n"
			"                               [--count N] [--text] [--status-interval SECS]\n"
			"\n"
			"Streams the change records of config NAME (an id or a name) from its origin\n"
			"over logical replication, prints each one and confirms it to the server.\n"
			"Creates the replication slot if it is missing. State changes go to stderr.\n"
			"\n"
			"  -c FILE             the agent's settings file (default: $%s, else %s)\n"
			"  --slot S            replication slot (default: hyperdrive_<config name>)\n"
			"  --from-lsn X/Y      start at this LSN (default: the slot's confirmed_flush_lsn)\n"
			"  --count N           exit after N records (default: until SIGINT or SIGTERM)\n"
			"  --text              the plugin's text format exactly, one record after the\n"
			"                      other (default: each record followed by an empty line)\n"
			"  --status-interval SECS  confirm to the server this often (default 1)\n",
			HD_SETTINGS_ENV, HD_SETTINGS_DEFAULT_FILE);
}

static int
on_record(void *arg, const HdRecord *record)
{
	Watch	   *w = arg;
	HdTextOptions opts = {true, true, true, true};
	char	   *text = hd_record_render_text(record, &opts);

	if (text == NULL)
		return -1;
	fputs(text, w->out);
	fputs(w->text ? "\n" : "\n\n", w->out);
	free(text);
	if (fflush(w->out) != 0 || ferror(w->out))
		return -1;				/* not printed: not applied */
	w->printed++;
	if (w->count > 0 && w->printed >= w->count)
	{
		/* after this record: it is confirmed in the final status update */
		hd_stream_stop(w->stream);
		ev_break(w->loop, EVBREAK_ALL);
	}
	return 0;
}

static void
on_state(void *arg, HdStreamState state, const char *why)
{
	Watch	   *w = arg;

	fprintf(w->err, "stream-watch: %s: %s\n", hd_stream_state_name(state), why);
	fflush(w->err);
}

static void
on_signal(struct ev_loop *loop, ev_signal *sig, int revents)
{
	Watch	   *w = sig->data;

	(void) revents;
	hd_stream_stop(w->stream);
	ev_break(loop, EVBREAK_ALL);
}

static int
parse_count(const char *text, uint64_t *out)
{
	char	   *end;
	unsigned long long v;

	if (text[0] < '0' || text[0] > '9')
		return -1;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return -1;
	*out = v;
	return 0;
}

/* --name VALUE or --name=VALUE; NULL (and *bad) if VALUE is missing. */
static const char *
option_value(int argc, char **argv, int *i, const char *name, bool *matched)
{
	size_t		len = strlen(name);
	const char *arg = argv[*i];

	*matched = false;
	if (strncmp(arg, name, len) != 0)
		return NULL;
	if (arg[len] == '=')
	{
		*matched = true;
		return arg + len + 1;
	}
	if (arg[len] != '\0')
		return NULL;
	*matched = true;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

int
hd_stream_watch_main(int argc, char **argv, FILE *out, FILE *err)
{
	const char *conf = NULL;
	const char *slot = NULL;
	const char *name = NULL;
	uint64_t	from = 0;
	double		interval = 1.0;
	Watch		w = {0};
	HdSettings	settings = {0};
	HdConfigList configs = {0};
	const HdConfig *config;
	char		msg[1024];
	HdStreamParams params = {0};
	HdStreamCallbacks cbs = {0};
	ev_signal	sigint_w;
	ev_signal	sigterm_w;

	w.out = out;
	w.err = err;
	for (int i = 1; i < argc; i++)
	{
		const char *arg = argv[i];
		const char *v;
		bool		m;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
		{
			hd_stream_watch_usage(out);
			return 0;
		}
		if (strcmp(arg, "-c") == 0)
		{
			if (i + 1 >= argc)
			{
				fprintf(err, "stream-watch: -c needs a file name\n");
				return 1;
			}
			conf = argv[++i];
			continue;
		}
		if (strcmp(arg, "--text") == 0)
		{
			w.text = true;
			continue;
		}
		if ((v = option_value(argc, argv, &i, "--slot", &m)) != NULL || m)
		{
			if (v == NULL || hd_stream_check_slot_name(v, msg, sizeof(msg)) < 0)
			{
				fprintf(err, "stream-watch: --slot: %s\n", v ? msg : "needs a slot name");
				return 1;
			}
			slot = v;
			continue;
		}
		if ((v = option_value(argc, argv, &i, "--from-lsn", &m)) != NULL || m)
		{
			if (v == NULL || hd_lsn_parse(v, &from) < 0)
			{
				fprintf(err, "stream-watch: --from-lsn needs an LSN such as 0/16B3748\n");
				return 1;
			}
			continue;
		}
		if ((v = option_value(argc, argv, &i, "--count", &m)) != NULL || m)
		{
			if (v == NULL || parse_count(v, &w.count) < 0)
			{
				fprintf(err, "stream-watch: --count needs a positive whole number\n");
				return 1;
			}
			continue;
		}
		if ((v = option_value(argc, argv, &i, "--status-interval", &m)) != NULL || m)
		{
			char	   *end = NULL;

			if (v != NULL)
				interval = strtod(v, &end);
			if (v == NULL || end == v || *end != '\0' || !(interval >= 0.01 && interval <= 3600))
			{
				fprintf(err, "stream-watch: --status-interval needs a number of seconds "
						"from 0.01 to 3600\n");
				return 1;
			}
			continue;
		}
		if (arg[0] == '-' || name != NULL)
		{
			fprintf(err, "stream-watch: unexpected argument \"%s\" (see hyperdrive stream-watch "
					"--help)\n", arg);
			return 1;
		}
		name = arg;
	}
	if (name == NULL)
	{
		fprintf(err, "stream-watch: missing config NAME (see hyperdrive stream-watch --help)\n");
		return 1;
	}

	/* -c FILE, else $HYPERDRIVE_CONF, else ./hyperdrive.ini (as the other subcommands) */
	if (conf == NULL)
	{
		const char *env = getenv(HD_SETTINGS_ENV);

		conf = env != NULL && env[0] != '\0' ? env : HD_SETTINGS_DEFAULT_FILE;
	}
	if (hd_settings_load(conf, &settings, msg, sizeof(msg)) < 0)
	{
		fprintf(err, "stream-watch: %s%s\n", msg,
				access(conf, F_OK) != 0 ? " (name the agent's settings file with -c FILE or "
				"$" HD_SETTINGS_ENV ")" : "");
		return 1;
	}
	hd_log_set_level(settings.log_level);
	if (hd_configs_load(settings.state_dir, &configs, msg, sizeof(msg)) < 0)
	{
		fprintf(err, "stream-watch: %s\n", msg);
		hd_settings_free(&settings);
		return 1;
	}
	config = hd_configs_find(&configs, name);
	if (config == NULL)
	{
		fprintf(err, "stream-watch: no config \"%s\" (see hyperdrive list)\n", name);
		hd_configs_free(&configs);
		hd_settings_free(&settings);
		return 1;
	}
	if (config->protocol != HD_PROTOCOL_POSTGRESQL)
	{
		fprintf(err, "stream-watch: config \"%s\" is a %s origin: it has no change stream\n",
				config->name, hd_protocol_name(config->protocol));
		hd_configs_free(&configs);
		hd_settings_free(&settings);
		return 1;
	}

	w.loop = ev_default_loop(EVFLAG_AUTO);
	params.loop = w.loop;
	params.config = config;
	params.state_dir = settings.state_dir;
	params.slot = slot;
	params.start_lsn = from;
	params.connect_timeout_ms = settings.server_connect_timeout_ms;
	params.status_interval_ms = (int64_t) (interval * 1000);
	params.application_name = "hyperdrive stream-watch";
	cbs.on_record = on_record;
	cbs.on_state = on_state;
	cbs.arg = &w;
	w.stream = hd_stream_start(&params, &cbs, msg, sizeof(msg));
	if (w.stream == NULL)
	{
		fprintf(err, "stream-watch: %s\n", msg);
		hd_configs_free(&configs);
		hd_settings_free(&settings);
		return 1;
	}
	ev_signal_init(&sigint_w, on_signal, SIGINT);
	sigint_w.data = &w;
	ev_signal_start(w.loop, &sigint_w);
	ev_signal_init(&sigterm_w, on_signal, SIGTERM);
	sigterm_w.data = &w;
	ev_signal_start(w.loop, &sigterm_w);

	ev_run(w.loop, 0);

	ev_signal_stop(w.loop, &sigint_w);
	ev_signal_stop(w.loop, &sigterm_w);
	{
		HdStreamStatus st;
		char		applied[24] = "";

		hd_stream_status(w.stream, &st);
		if (st.confirmed_lsn != 0)
			hd_lsn_format(st.confirmed_lsn, applied, sizeof(applied));
		fprintf(err, "stream-watch: stopped after %" PRIu64 " records; %s%s\n", w.printed,
				st.confirmed_lsn != 0 ? "confirmed up to " : "nothing confirmed",
				st.confirmed_lsn != 0 ? applied : "");
	}
	hd_stream_free(w.stream);
	ev_loop_destroy(w.loop);
	hd_configs_free(&configs);
	hd_settings_free(&settings);
	return 0;
}
