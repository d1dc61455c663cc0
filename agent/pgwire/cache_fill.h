/*
 * cache_fill.h
 *    The result cache's work on PostgreSQL origin connections: the SQL of
 *    analyses, fills and read-your-writes positions on an HdServer, what
 *    their replies mean, and the origin side of the cache core
 *    (HdCacheOriginOps: background refreshes on idle connections).
 *
 * Data path (client.c, server.c):
 *   hd_cache_start_op()    sends the analysis or the fill on the server the
 *                          client holds (a fill takes the request out of
 *                          the client's input; the extended protocol's with
 *                          the unnamed statement and portal, and a named
 *                          Parse in it names the statement for the client
 *                          as if forwarded); the client stops reading until
 *                          the op ends. A fill runs in a REPEATABLE READ,
 *                          READ ONLY transaction that first reads its
 *                          snapshot (pg_current_snapshot(), for the race
 *                          rule) and the session state (state_check.c);
 *                          what the client is shown is what the origin
 *                          replied. Every message an op sends is queued as
 *                          what the server owes (stmt.h HdExpectQueue), with
 *                          an action that says whose reply it is (the fill's
 *                          BEGIN and snapshot, the client's statement, the
 *                          fill's end, the analysis's or the RYW query's).
 *   hd_cache_reply()       server.c matches each reply to the queue as it
 *                          matches any other (what ends an entry, an error
 *                          voiding up to Sync, ReadyForQuery's status), then
 *                          hands those of these entries here with the entry
 *                          they answer; the op ends at its last
 *                          ReadyForQuery, with nothing left owed.
 *   hd_cache_note_tag()    CommandComplete tags of forwarded statements:
 *                          a write makes the server ask the origin for
 *                          pg_current_wal_insert_lsn() before release
 *                          (hd_cache_start_ryw()); the client then gets no
 *                          hit until the stream has applied that LSN
 *                          (its HdCacheWaiter's ryw_pos).
 */
#ifndef HD_CACHE_FILL_H
#define HD_CACHE_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "pgwire/stmt.h"

typedef struct HdClient HdClient;
typedef struct HdServer HdServer;

/* server->cache_op */
enum
{
	HD_COP_NONE = 0,
	HD_COP_ANALYZE,
	HD_COP_FILL,
	HD_COP_RYW
};

/*
 * The op the client's cache_step asks for, on server. 0: sent (a fill took
 * the request out of the client's input); 1: forward the request as it is;
 * 2: decide again (the analysis was dropped meanwhile); -1: out of memory.
 */
extern int	hd_cache_start_op(HdClient *client, HdServer *server);
/* A reply (type, the whole message) to entry, one of the cache's (hd_expect_is_cache). */
extern void hd_cache_reply(HdServer *server, const HdExpect *entry, char type, const char *msg,
						   size_t total);
extern void hd_cache_server_free(HdServer *server);
extern void hd_cache_note_tag(HdServer *server, const char *body, uint32_t len);
/* Whether the server must ask for the WAL position before its release. */
extern bool hd_cache_want_ryw(HdServer *server);
extern int	hd_cache_start_ryw(HdServer *server);

/* The origin side of the cache core, over HdServer (arg: the HdAgent). */
extern const HdCacheOriginOps hd_pg_cache_origin;

#endif							/* HD_CACHE_FILL_H */
