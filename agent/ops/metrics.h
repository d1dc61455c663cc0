/*
 * metrics.h
 *    The Prometheus endpoint (setting metrics_addr), and the per-pool and
 *    per-config counts that it and the admin console's SHOW commands share.
 *
 * Contract:
 *   - hd_metrics_start() listens on metrics_host:metrics_port in the agent's
 *     loop (nothing when metrics_addr is not set); -1 (logged) if it cannot.
 *     hd_metrics_stop() closes the listener and every connection.
 *   - HTTP/1.1, one request per connection: GET (or HEAD) /metrics answers
 *     200 with the text exposition format 0.0.4; another path 404; another
 *     method 405; a malformed request 400. Every response says
 *     "Connection: close" and the connection closes after it. A request
 *     larger than HD_METRICS_MAX_REQUEST bytes, or a connection that has not
 *     finished within HD_METRICS_TIMEOUT seconds, is closed without an
 *     answer. Any number of scrapers may be connected at once; none blocks
 *     the loop.
 *   - Everything is computed at request time from the pools (stats.h) of
 *     both protocols (PostgreSQL's agent->pools, the MySQL wing's through
 *     mywire.h); no state of its own beyond the sockets. Per-config series
 *     carry the labels config and protocol (postgresql | mysql); the MySQL
 *     wing's own counters (hyperdrive_mysql_*) are agent-wide.
 *   - The counts below cover both protocols: a MySQL pool's clients are the
 *     wing's sessions (hd_my_agent_sessions), a config's are its pools' in
 *     either list.
 */
#ifndef HD_METRICS_H
#define HD_METRICS_H

#include "mywire/mywire.h"
#include "pgwire/pooler.h"

#define HD_METRICS_MAX_REQUEST 8192
#define HD_METRICS_TIMEOUT 5.0

/* Connections and counters of one pool, or summed over a config's pools. */
typedef struct HdPoolCounts
{
	int			clients_active;		/* holding a server */
	int			clients_waiting;	/* queued for a server (login included) */
	int			clients_idle;		/* logged in, between transactions */
	int			servers_active;		/* held by a client (or being reset) */
	int			servers_idle;
	int			servers_connecting; /* connecting or logging in */
	HdStats		stats;
} HdPoolCounts;

/* Adds pool's counts to *out (start from a zeroed one). */
extern void hd_pool_counts_add(HdAgent *agent, const HdPool *pool, HdPoolCounts *out);
/* The sum over every pool of the config with this id (a zeroed sum if none). */
extern void hd_config_counts(HdAgent *agent, const char *config_id, HdPoolCounts *out);

/* "active", "waiting", "idle" or "login" (not yet logged in). */
extern const char *hd_client_state_name(const HdClient *client);
/* "connecting", "login", "idle", "active", "resetting" or "closed". */
extern const char *hd_pool_conn_state_name(HdPoolConnState state);
extern const char *hd_server_state_name(const HdServer *server);

/* The exposition text (caller frees), or NULL if memory ran out. */
extern char *hd_metrics_render(HdAgent *agent, size_t *len);

extern int	hd_metrics_start(HdAgent *agent);
extern void hd_metrics_stop(HdAgent *agent);

#endif							/* HD_METRICS_H */
