/*
 * lookup.h
 *    Looking up a role's password secret on the origin, for clients that log
 *    in as a role other than the config's user (like PgBouncer's auth_query).
 *
 * Each config gets one control connection (libpq, non-blocking, driven by
 * the loop) as the config's user, opened on first need. It runs
 * `SELECT hyperdrive.get_role_secret($1)` (extension/hyperdrive--*.sql) for
 * one request at a time, in FIFO order. The answer is the stored secret
 * (SCRAM or md5), or NULL when the role may not log in through the agent;
 * error is set when the lookup itself failed (origin down, extension or
 * GRANT missing) and says what to fix.
 *
 * Contract: the callback runs from the loop, exactly once per request, unless
 * hd_lookup_cancel() was called for it first (a client that went away).
 */
#ifndef HD_LOOKUP_H
#define HD_LOOKUP_H

typedef struct HdAgent HdAgent;
typedef struct HdConfig HdConfig;

typedef void (*HdLookupDone) (void *arg, const char *secret, const char *error);

extern int	hd_lookup_role_secret(HdAgent *agent, const HdConfig *config, const char *role,
								  HdLookupDone done, void *arg);
extern void hd_lookup_cancel(HdAgent *agent, void *arg);
extern void hd_lookup_forget_config(HdAgent *agent, const char *config_id);
extern void hd_lookup_shutdown(HdAgent *agent);

#endif							/* HD_LOOKUP_H */
