/*
 * auth_recheck.h
 *    Whether the origin still lets the config's own user in, before a client
 *    of that user is let in.
 *
 * Clients that log in as a config's user are checked against the password
 * the config stores, not by the origin (other roles are looked up on the
 * origin at every login: lookup.h). So that ALTER ROLE ... NOLOGIN, an
 * expired VALID UNTIL or a new password on the origin stop new clients too,
 * such a client is let in only when an origin login with the config's
 * credentials succeeded within auth_recheck_interval: any login of the
 * pool's connections, or a check. Without such a proof the client waits
 * (authenticated, before AuthenticationOk) for a check: a short-lived origin
 * connection made by server.c's login code (so with the same TLS and
 * authentication as the pool's), in a pool of its own that is not in
 * agent->pools, so that it is not counted in origin_connection_limit and a
 * full pool cannot hold it up. Clients that log in while a check runs share
 * it. A check that succeeds lets them in; one that fails gives each the
 * origin's error (28P01, 28000, ... as the origin said; 08001 when it cannot
 * be reached), and the next check is made no sooner than server_login_retry
 * later (clients that come meanwhile wait for it), so refused logins cost
 * the origin at most one attempt per interval. When the origin refuses the
 * credentials (SQLSTATE class 28, or 42501), the pool's idle connections are
 * closed so that no new login reuses them; clients already in keep their
 * sessions, as PostgreSQL keeps existing sessions after ALTER ROLE.
 *
 * Contract:
 *   - hd_auth_recheck_wait(client): after a successful password exchange.
 *     false: no check is needed (not the config's own user, a replication
 *     connection, a pool whose first login is still to come and proves it,
 *     or a fresh proof); the caller lets the client in. true: the client
 *     waits; it is later let in with hd_client_auth_admit(), or closed with
 *     the origin's error. A client that goes away meanwhile is dropped from
 *     the wait (client->wait.waiting, hd_pool_cancel_wait()).
 *   - pg_pool.c calls hd_auth_recheck_server_ready() and
 *     hd_auth_recheck_server_failed() first thing for every login that
 *     succeeds or fails: true means the server was a check's (handled:
 *     nothing else to do); for the config's own pool a login counts as a
 *     proof, and a refused one (class 28) voids it.
 *   - hd_auth_recheck_config_changed(pool): the credentials changed: the
 *     proof is void, and so is a check in flight (made before the pool's
 *     config_gen was bumped: pool.h).
 *   - hd_auth_recheck_init(pool) when a pool is made (a check's own too),
 *     hd_auth_recheck_free(pool) when it is freed (pg_pool.c, both).
 */
#ifndef HD_AUTH_RECHECK_H
#define HD_AUTH_RECHECK_H

#include <stdbool.h>

typedef struct HdClient HdClient;
typedef struct HdPool HdPool;
typedef struct HdServer HdServer;

extern bool hd_auth_recheck_wait(HdClient *client);
extern bool hd_auth_recheck_server_ready(HdPool *pool, HdServer *server);
extern bool hd_auth_recheck_server_failed(HdPool *pool, HdServer *server, const char *sqlstate,
										  const char *message);
extern void hd_auth_recheck_config_changed(HdPool *pool);
extern void hd_auth_recheck_init(HdPool *pool);
extern void hd_auth_recheck_free(HdPool *pool);

#endif							/* HD_AUTH_RECHECK_H */
