/*
 * cache_request.h
 *    PostgreSQL requests before the result cache (cache/cache.h): reading
 *    what an idle client asks, building its keys, asking the cache core,
 *    and answering a client from stored bytes. The session side of the
 *    core (HdCacheSessionOps) for HdClient.
 *
 * Data path (client.c):
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
 *                          forwarded). ANALYZE and FILL run on the server
 *                          the client gets next (cache_fill.h).
 *
 * Who is answered: a client holding no origin connection (transaction
 * pooling, outside a transaction), and a client answered on its own
 * connection (hd_cache_own_connection(): session pooling, or pinned for a
 * reason session.h hd_pin_class() calls cache-safe) while that connection
 * is idle (nothing of the client's in flight or queued: its replies stay
 * in order), outside a transaction block, with its settings applied and
 * its state checked since its last statement (state_check.c). Its fills and
 * analyses run on that connection. Anything else is a counted bypass
 * (hd_cache_held_bypass()): a pin that can change what a SELECT returns
 * (temporary objects shadow names; settings the agent cannot see change
 * what a query means) is never answered, its results never stored.
 *
 * Keys: format, config, role, database, the session settings (sorted),
 * for a client on its own connection that connection's state report (its
 * baseline: what the check read after the client's last transaction), then
 * the statement: its text (simple Query; its analysis's key is the same
 * bytes), or for the extended protocol its shape, text, types, parameter
 * formats and values and result formats (the analysis's: text and
 * parameter types).
 */
#ifndef HD_CACHE_REQUEST_H
#define HD_CACHE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "base/iobuf.h"
#include "cache/cache.h"
#include "pgwire/ext_batch.h"
#include "pgwire/stmt.h"

typedef struct HdClient HdClient;

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

extern int	hd_cache_on_request(HdClient *client, const char *head, size_t avail);
/* A client closes: it leaves the fill it waits for (or leads: its waiters fall back). */
extern void hd_cache_client_gone(HdClient *client);
/* Whether the client's statements may be answered from the cache at all (config, pin: session.h). */
extern bool hd_cache_serves(const HdClient *client);
/*
 * For a client holding an origin connection: why the cache does not
 * answer it now ("bypass:..."), or NULL when it may (its own connection,
 * idle, its state known: above).
 */
extern const char *hd_cache_held_bypass(const HdClient *client);
/*
 * Whether the cache may answer the client on an origin connection it holds
 * for good: its config caches, and it is a client of a session-pooling
 * config, or pinned for a reason that cannot change a cacheable SELECT's
 * result (session.h hd_pin_class()). That connection's state is then
 * checked after each of the client's transactions (state_check.c).
 */
extern bool hd_cache_own_connection(const HdClient *client);
/* Count a statement that did not go through hd_cache_on_request() */
extern void hd_cache_count_bypass(HdClient *client, const char *reason);

/* The session side of the cache core, for HdClient (arg: the HdAgent). */
extern const HdCacheSessionOps hd_pg_cache_session;

/* What a client asks at the head of its input (for cache_fill.c). */
typedef struct HdCacheRequest
{
	bool		ext;
	size_t		len;			/* its bytes in the client's input */
	const char *msg;			/* simple: the Query message, type byte on */
	const char *sql;			/* the statement's text */
	size_t		sqllen;
	HdExtBatch	batch;			/* ext: the messages (ext_batch.h) */
	const char *types;			/* ext: the statement's Int16 count and OIDs */
	size_t		types_len;
	const HdStatement *stmt;	/* ext without Parse: the statement prepared before */
} HdCacheRequest;

/* The request at the head of the client's input again; -1: not readable. */
extern int	hd_cache_request_reread(HdClient *client, HdCacheRequest *r);
/* Its analysis's key and its entry's (malloc'd); -1 when out of memory. */
extern int	hd_cache_request_keys(const HdClient *client, const HdCacheRequest *r,
								  unsigned char **akey, size_t *akeylen,
								  unsigned char **key, size_t *keylen);
/* Its freshness from a hint in its text, in ms; -1: the config's. */
extern int64_t hd_cache_request_max_age(const HdCacheRequest *r);
/* The request leaves the client's input (a named Parse names its statement). */
extern int	hd_cache_request_consume(HdClient *client, const HdCacheRequest *r);
/* The parameter types an analysis uses, as a regtype[] literal with its NUL. */
extern int	hd_cache_request_types(const HdCacheRequest *r, HdIoBuf *out);
/* The statement its Describe S describes, by the client's name ("": unnamed). */
extern const char *hd_cache_request_described(const HdCacheRequest *r);

#endif							/* HD_CACHE_REQUEST_H */
