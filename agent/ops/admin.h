/*
 * admin.h
 *    The admin console (database "hyperdrive" on the agent's port), as
 *    PgBouncer's "pgbouncer": the commands listed at the top of admin.c,
 *    for the users named in admin_users (docs/operations.md).
 *
 * Contract: the console is a PostgreSQL session that pgwire/client.c hands
 * over through the table it defines (HdConsoleOps, pgwire/pooler.h);
 * agent.c points agent->console at hd_admin_console at start. The console
 * authenticates against auth_file with the pooler's password exchange,
 * answers with the simple query protocol only, and never holds an origin
 * connection.
 */
#ifndef HD_ADMIN_H
#define HD_ADMIN_H

#include "pgwire/pooler.h"

extern const HdConsoleOps hd_admin_console;

#endif							/* HD_ADMIN_H */
