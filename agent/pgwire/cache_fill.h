/*
 * cache_fill.h
 *    The result cache's work on PostgreSQL origin connections: the SQL of
 *    analyses, fills and read-your-writes positions on an HdServer, what
 *    their replies mean: the cache parts of PostgreSQL's origin driver
 *    (cache/origin.h; the table: pg_origin.c).
 *
 * Data path (client.c, server.c):
 *   hd_pg_cache_lead()     (through hd_cache_lead(): client.c)
 *                          sends the analysis or the fill on the server the
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
 *                          replied. After the client's statement, in that
 *                          transaction, a fill hashes the parameters its
 *                          analysis's bindings name, with the agent's own
 *                          named statement and the client's Bind bytes
 *                          (cache_params.h); the client sees nothing of
 *                          it, and if it fails they are not known. An
 *                          analysis reads the bindings and parameter types
 *                          too (none from an extension before 0.3).
 *                          Every message an op sends is queued as
 *                          what the server owes (stmt.h HdExpectQueue), with
 *                          an action that says whose reply it is (the fill's
 *                          BEGIN and snapshot, the client's statement, the
 *                          hashing of its parameters, the fill's end, the
 *                          analysis's or the RYW query's).
 *   hd_cache_reply()       server.c matches each reply to the queue as it
 *                          matches any other (what ends an entry, an error
 *                          voiding up to Sync, ReadyForQuery's status), then
 *                          hands those of these entries here with the entry
 *                          they answer; the op ends at its last
 *                          ReadyForQuery, with nothing left owed.
 *   hd_cache_note_tag()    CommandComplete tags of forwarded statements:
 *                          a write makes the server ask the origin for
 *                          pg_current_wal_insert_lsn() before release
 *                          (hd_pg_cache_ryw(), through hd_cache_after_write():
 *                          server.c); the client then gets no hit until the
 *                          stream has applied that LSN (hd_cache_ryw_reached()).
 *   hd_pg_cache_refresh_conn(), hd_pg_cache_refresh()
 *                          background refreshes the core starts on an idle
 *                          connection of the client's pool (no client).
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
 * The PostgreSQL origin driver's cache parts (origin.h; the table is
 * pg_origin.c's hd_pg_origin): lead() of the op the client's cache_step
 * asks for, ryw() (the server's client is the writer), and background
 * refreshes on idle connections (arg: unused).
 */
extern HdCacheLeadResult hd_pg_cache_lead(void *arg, void *conn, HdCacheWaiter *leader,
										  HdCacheJob **job);
extern int	hd_pg_cache_ryw(void *arg, void *conn, HdCacheWaiter *writer);
extern void *hd_pg_cache_refresh_conn(void *arg, HdCacheWaiter *requester);
extern int	hd_pg_cache_refresh(void *arg, void *conn, HdCacheWaiter *requester, HdCacheJob *job);

/* A reply (type, the whole message) to entry, one of the cache's (hd_expect_is_cache). */
extern void hd_cache_reply(HdServer *server, const HdExpect *entry, char type, const char *msg,
						   size_t total);
extern void hd_cache_server_free(HdServer *server);
extern void hd_cache_note_tag(HdServer *server, const char *body, uint32_t len);
/* Whether the server's client wrote in a cached config (cache.h hd_cache_after_write()). */
extern bool hd_cache_want_ryw(HdServer *server);

#endif							/* HD_CACHE_FILL_H */
