/*
 * mywire.h
 *    The MySQL/MariaDB wing: clients that speak the MySQL protocol, pooled
 *    onto origin connections of MySQL configs (configs.h protocol mysql).
 *    This header is what the composition root (agent.c) sees; the wing's
 *    own structures are in my_int.h.
 *
 * The wing is a sibling of pgwire/ and includes nothing of it. It has its
 * own list of pools (a MySQL config's pools: its limit spans them) and of
 * sessions, and reaches the root only through HdMyRoot.
 *
 * Contract:
 *   - hd_my_agent_new(): the wing's state for one agent; the listener of
 *     mysql_listen_port hands its connections to hd_my_client_protocol with
 *     the HdMyAgent as the protocol's agent argument.
 *   - hd_my_agent_configs_changed(): the root reloaded the configs (the list
 *     my points to), as the PostgreSQL side's (agent.c): a deleted config's
 *     pools, or those of one whose user, pool mode, protocol or
 *     allow_load_local changed, end their sessions and close their
 *     connections; any other change of its origin (host, TLS, ...), name or
 *     password: the sessions stay, new connections use the new settings
 *     (hd_pool_update_config()).
 *   - hd_my_agent_janitor(now, draining): once a second: the pools'
 *     timeouts, login and idle timeouts of sessions, and, draining, the
 *     sessions between transactions are closed. Returns whether a session
 *     is still busy (the root exits when no protocol is).
 *   - hd_my_agent_shutdown(): every session and origin connection closed.
 *   - hd_my_agent_free(): after shutdown, when the loop has stopped.
 *
 * What the admin console and /metrics see of the wing (my_ops.c), read-only
 * except for KILL; nothing here keeps a pointer past the call:
 *   - hd_my_agent_pools(): the wing's pools (HdPool.link; role is
 *     "user/variant/collation"), stale ones included, for SHOW POOLS,
 *     SHOW STATS, metrics and PAUSE/RESUME (hd_pool_pause/resume).
 *   - hd_my_agent_sessions(): one HdMySessionRow per session, logging in or
 *     logged in (closed ones are gone); hd_my_agent_servers(): one
 *     HdMyServerRow per origin connection of every pool.
 *   - hd_my_agent_counters(): the wing's own counters (agent-wide).
 *   - hd_my_agent_kill_config(): every session of the config gets ERR 1927
 *     and is closed, every origin connection of its pools closes.
 */
#ifndef HD_MYWIRE_H
#define HD_MYWIRE_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/configs.h"
#include "config/settings.h"
#include "net/client_protocol.h"
#include "pool/pool.h"

struct ssl_ctx_st;

typedef struct HdMyAgent HdMyAgent;

/* What the wing needs of the composition root. */
typedef struct HdMyRoot
{
	void	   *agent;			/* the root's own, passed back below */
	int		   *nclients;		/* every protocol's sessions (max_client_conn) */
	/* over max_client_conn: the session was refused (terminate()) */
	bool		(*refuse_over_limit) (void *agent, HdClientSession *session);
	/* the client-facing TLS context (tls.h), as reloads replace it; NULL inside: no TLS */
	struct ssl_ctx_st *const *tls_ctx;
} HdMyRoot;

extern HdMyAgent *hd_my_agent_new(struct ev_loop *loop, const HdSettings *settings,
								  const HdConfigList *configs, const HdMyRoot *root);
extern void hd_my_agent_configs_changed(HdMyAgent *my);
extern bool hd_my_agent_janitor(HdMyAgent *my, ev_tstamp now, bool draining);
extern void hd_my_agent_shutdown(HdMyAgent *my);
extern void hd_my_agent_free(HdMyAgent *my);

extern const HdClientProtocol hd_my_client_protocol;

/* A session, as SHOW CLIENTS and the counts see it. */
typedef struct HdMySessionRow
{
	const char *addr;			/* host:port */
	const char *user;			/* "" until its handshake response */
	const char *config;			/* the config's name (its login database); NULL until known */
	const HdPool *pool;	/* its pool; NULL until its handshake response */
	const char *state;			/* "login", "active" (holds an origin connection), "waiting", "idle" */
	uint32_t	origin_id;		/* the held origin connection's id (CONNECTION_ID()); 0: none */
	const char *pinned;			/* why it keeps its origin connection; NULL: it does not */
	ev_tstamp	connected_at;
} HdMySessionRow;

/* An origin connection, as SHOW SERVERS sees it. */
typedef struct HdMyServerRow
{
	const HdPool *pool;
	const HdPoolConn *conn;	/* state, connected_at */
	uint32_t	origin_id;		/* CONNECTION_ID() on the origin; 0 until logged in */
	uint64_t	handouts;		/* times it was handed to a client */
} HdMyServerRow;

typedef struct HdMyCounters
{
	uint64_t	pins;			/* sessions pinned to their origin connection */
	uint64_t	diagnostics_refused;	/* reads of a previous statement's diagnostics refused */
} HdMyCounters;

extern HdList *hd_my_agent_pools(HdMyAgent *my);
extern void hd_my_agent_sessions(HdMyAgent *my, void (*fn) (void *arg, const HdMySessionRow *row),
								 void *arg);
extern void hd_my_agent_servers(HdMyAgent *my, void (*fn) (void *arg, const HdMyServerRow *row),
								void *arg);
extern void hd_my_agent_counters(const HdMyAgent *my, HdMyCounters *out);
extern void hd_my_agent_kill_config(HdMyAgent *my, const char *config_id);

#endif							/* HD_MYWIRE_H */
