/*
 * cache.h
 *    The result cache in the data path (phases 1-2, docs/cache.md): one LMDB
 *    store (store.h) in <state_dir>/cache, one change-stream consumer
 *    (stream.h) per config with caching enabled, and the decisions for each
 *    statement of a client that holds no origin connection.
 *
 * The promise: a cached result is served only when the origin would return
 * the same bytes (up to max_lag behind the origin's commits). When in
 * doubt, the statement goes to the origin and the reason is counted.
 *
 * Data path (client.c, server.c):
 *   hd_cache_on_request()  decides for the request at the head of an idle
 *                          client's input: a simple Query, or one statement
 *                          of the extended protocol up to its Sync
 *                          (ext_batch.h: [Parse] [Describe S] Bind
 *                          [Describe P] Execute Sync): SERVED (a hit, or a
 *                          stale hit that also starts a background refresh
 *                          on an idle connection: the request left the
 *                          input; its replies and ReadyForQuery 'I' are in
 *                          client->out), FORWARD (bypass, counted), MORE
 *                          (the batch is not all in yet: read on), ANALYZE
 *                          (ask the origin with hyperdrive.analyze_query()
 *                          first), FILL (it leads the key's fill in flight)
 *                          or WAIT (the key's fill is in flight: the client
 *                          stops reading until it ends; then it is answered
 *                          with the stored bytes, or its request is
 *                          forwarded).
 *   hd_cache_start_op()    sends the analysis or the fill on the server the
 *                          client holds (a fill takes the request out of
 *                          the client's input; the extended protocol's with
 *                          the unnamed statement and portal, and a named
 *                          Parse in it names the statement for the client
 *                          as if forwarded); the client stops reading until
 *                          the op ends; server.c hands every reply to
 *                          hd_cache_server_message() while server->cache_op.
 *   hd_cache_note_tag()    CommandComplete tags of forwarded statements:
 *                          a write makes the server ask the origin for
 *                          pg_current_wal_insert_lsn() before release
 *                          (hd_cache_start_ryw()); the client then gets no
 *                          hit until the stream has applied that LSN.
 */
#ifndef HD_CACHE_H
#define HD_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/text_buf.h"

typedef struct HdAgent HdAgent;
typedef struct HdClient HdClient;
typedef struct HdServer HdServer;

/* client->cache_step: what is decided for the request at the head of its input */
enum
{
	HD_CSTEP_NONE = 0,
	HD_CSTEP_FORWARD,
	HD_CSTEP_ANALYZE,
	HD_CSTEP_FILL,
	HD_CSTEP_SERVED,
	HD_CSTEP_WAIT,				/* waits for a fill of the same key (coalescing) */
	HD_CSTEP_MORE				/* an extended batch not all in yet: read on */
};

/* server->cache_op */
enum
{
	HD_COP_NONE = 0,
	HD_COP_ANALYZE,
	HD_COP_FILL,
	HD_COP_RYW
};

/* At agent start: open the store (a damaged one is wiped), start the timer. */
extern int	hd_cache_layer_open(HdAgent *agent, char *err, size_t errlen);
extern void hd_cache_layer_close(HdAgent *agent);
/* After (re)loading configs: start/stop/restart the per-config streams. */
extern void hd_cache_layer_configs(HdAgent *agent);

extern int	hd_cache_on_request(HdClient *client, const char *head, size_t avail);
/* A client closes: it leaves the fill it waits for (or leads: its waiters fall back). */
extern void hd_cache_client_gone(HdClient *client);
/* Whether the client's statements may be answered from the cache at all (config, mode, pin). */
extern bool hd_cache_serves(const HdClient *client);
/* Count a statement that did not go through hd_cache_on_query() */
extern void hd_cache_count_bypass(HdClient *client, const char *reason);
extern int	hd_cache_start_op(HdClient *client, HdServer *server);
extern void hd_cache_server_message(HdServer *server, char type, const char *msg, size_t total);
extern void hd_cache_server_free(HdServer *server);
extern void hd_cache_note_tag(HdServer *server, const char *body, uint32_t len);
/* Whether the server must ask for the WAL position before its release. */
extern bool hd_cache_want_ryw(HdServer *server);
extern int	hd_cache_start_ryw(HdServer *server);

/* Admin console and metrics. */
extern void hd_cache_show(HdAgent *agent,
						  void (*row) (void *arg, const char *const *values, int n), void *arg);
extern int	hd_cache_purge_config(HdAgent *agent, const char *config_id, uint64_t *removed,
								  char *err, size_t errlen);
extern void hd_cache_metrics(HdAgent *agent, HdTextBuf *buf);

#endif							/* HD_CACHE_H */
