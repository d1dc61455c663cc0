/*
 * cli_configs.h
 *    The subcommands that manage configs (configs.h), modelled on
 *    `wrangler hyperdrive`:
 *        hyperdrive create NAME --connection-string=URI [options]
 *        hyperdrive list
 *        hyperdrive get ID|NAME
 *        hyperdrive update ID|NAME [options]
 *        hyperdrive delete ID|NAME
 *    Each takes -c FILE, the agent's settings file (settings.h), for its
 *    state_dir and listen address (default: $HYPERDRIVE_CONF, else
 *    ./hyperdrive.ini), and --help.
 *
 * Contract:
 *   - hd_cli_configs_main() runs the subcommand argv[0] (one for which
 *     hd_cli_configs_has() is true). It returns 0 on success, and 1 after
 *     writing to `err` what was wrong and how to fix it, for a bad command
 *     line, settings file, value or config file alike.
 *   - A password, from a connection string, --origin-password or a
 *     .password file, is never written to out or err: list and get say only
 *     whether one is set, and messages about a connection string libpq
 *     refused have its password masked. (A password given on the command
 *     line is visible to other local users through ps; "--origin-password -"
 *     reads it from `in` instead.)
 *   - No global state.
 */
#ifndef HD_CLI_CONFIGS_H
#define HD_CLI_CONFIGS_H

#include <stdbool.h>
#include <stdio.h>

extern bool hd_cli_configs_has(const char *command);
extern int	hd_cli_configs_main(int argc, char **argv, FILE *in, FILE *out, FILE *err);
/* The lines about these subcommands in `hyperdrive --help`. */
extern void hd_cli_configs_summary(FILE *out);

#endif							/* HD_CLI_CONFIGS_H */
