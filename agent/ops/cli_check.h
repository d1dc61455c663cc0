/*
 * cli_check.h
 *    `hyperdrive check [-c FILE] [ID|NAME]`: the first thing to run after
 *    installing. It validates the settings file, the state directory and the
 *    configs, then connects to each config's origin (or the one named) as
 *    the agent would, with the config's user and stored password, and checks
 *    what the agent needs there (docs/operations.md):
 *        the connection itself
 *        wal_level = logical
 *        the extension created in the database, at the version installed
 *        the config user's REPLICATION attribute (or superuser)
 *        USAGE on schema hyperdrive
 *        a replication slot and a WAL sender free for the agent (or its own
 *        already: its slot exists, its stream is connected)
 *        the output plugin usable by that user: a temporary logical slot
 *        with plugin hyperdrive, created on a replication connection (as the
 *        agent's stream does) and dropped when that connection closes
 *    For a MySQL/MariaDB config (protocol mysql) instead:
 *        that the agent has a MySQL listener (mysql_listen_port)
 *        the login (Connector/C, with the TLS of the config's sslmode)
 *        the server's version: known (MariaDB 10.3+, MySQL 5.7+) or a warning
 *        whether the config's user can read mysql.global_priv (MariaDB) or
 *        mysql.user (MySQL), which other users' logins need: a warning
 *        with the GRANT to run when it cannot
 *        with allow_load_local: that the origin has local_infile ON (else
 *        a warning)
 *
 * Contract:
 *   - One line per check on `out`: "ok: WHAT", "FAIL: WHAT; fix: HOW",
 *     "skip: WHAT (why)" for a check that cannot run until a failed one is
 *     fixed, or "warning: WHAT; HOW" for what is worth fixing but not a
 *     failure; config lines start with the config's name. A last line counts
 *     the problems (the FAIL lines). Nothing is written to the origin but
 *     the temporary slot.
 *   - Returns 0 when nothing failed, 1 otherwise (a bad command line too,
 *     with its message on `err`).
 *   - No line contains a password. No global state.
 */
#ifndef HD_CLI_CHECK_H
#define HD_CLI_CHECK_H

#include <stdio.h>

extern int	hd_cli_check_main(int argc, char **argv, FILE *out, FILE *err);

#endif							/* HD_CLI_CHECK_H */
