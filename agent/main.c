/*
 * main.c
 *    Entry point of the hyperdrive agent.
 *
 * The agent's data path (wire protocol, pooling, cache) is built in later
 * steps; for now the binary reports its version and the libraries it is
 * linked against, so that the build and packaging are exercised end to end,
 * and offers the decode-stream subcommand (decode_stream.h), which renders
 * compact change-stream records as text, the subcommands that manage
 * configs (cli_configs.h) and check, which checks them and their origins
 * (cli_check.h).
 */
#include <ev.h>
#include <pg_config.h>
#include <stdio.h>
#include <string.h>

#include "ops/cli_check.h"
#include "ops/cli_configs.h"
#include "stream/decode_stream.h"
#include "pgwire/pooler.h"
#include "stream/stream.h"
#include "base/version.h"


static void
usage(FILE *out)
{
	fprintf(out,
			"hyperdrive %s: caching and pooling agent for PostgreSQL\n"
			"\n"
			"Usage:\n"
			"  hyperdrive --version   print version information\n"
			"  hyperdrive --help      show this help\n"
			"  hyperdrive agent [-c FILE]\n"
			"                         run the agent (see hyperdrive agent --help)\n"
			"  hyperdrive check [-c FILE] [ID|NAME]\n"
			"                         check the settings, the configs and what each\n"
			"                         origin needs (see hyperdrive check --help)\n"
			"  hyperdrive decode-stream [--no-xids] [--no-lsn] [--no-oids] [--timestamp]\n"
			"                         print compact change-stream records (hex bytea\n"
			"                         lines on stdin) in the text format\n"
			"  hyperdrive stream-watch NAME [-c FILE] [--slot S] [--from-lsn X/Y] [--count N] [--text]\n"
			"                         print a config's change stream, confirming each record\n"
			"\n"
			"Configs (origin databases that clients reach through the agent):\n",
			HYPERDRIVE_VERSION);
	hd_cli_configs_summary(out);
}

int
main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0)
	{
		printf("hyperdrive %s (libev %d.%d, built against PostgreSQL %s headers)\n",
			   HYPERDRIVE_VERSION, ev_version_major(), ev_version_minor(), PG_VERSION);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--help") == 0)
	{
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "agent") == 0)
		return hd_agent_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return hd_cli_check_main(argc - 1, argv + 1, stdout, stderr);
	if (argc >= 2 && strcmp(argv[1], "decode-stream") == 0)
	{
		if (argc == 3 && strcmp(argv[2], "--help") == 0)
		{
			hd_decode_stream_usage(stdout);
			return 0;
		}
		return hd_decode_stream_main(argc - 1, argv + 1, stdin, stdout, stderr);
	}
	if (argc >= 2 && strcmp(argv[1], "stream-watch") == 0)
		return hd_stream_watch_main(argc - 1, argv + 1, stdout, stderr);
	if (argc >= 2 && hd_cli_configs_has(argv[1]))
		return hd_cli_configs_main(argc - 1, argv + 1, stdin, stdout, stderr);
	usage(stderr);
	return 2;
}
