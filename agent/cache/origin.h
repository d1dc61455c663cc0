/*
 * origin.h
 *    The origin driver: what one kind of origin database (PostgreSQL now,
 *    MySQL/MariaDB next) provides to the protocol-neutral wings, as one
 *    table. pgwire/pg_origin.c fills it for PostgreSQL (hd_pg_origin);
 *    agent.c hands it to the cache layer (hd_cache_layer_open()) and the
 *    pools are made with its pool table.
 *
 * What a driver provides, and where each part is used:
 *   log in           pool: the pools' connections (pool/pool.h HdPoolOps):
 *                    connect and authenticate, reset a connection a client
 *                    held before the next one gets it, close.
 *   changes          changes: the config's change source (change.h): the
 *                    neutral change records in commit order, positions, and
 *                    the freshness probe (status()'s fresh_as_of: the time of
 *                    the newest probe of the origin's position that the source
 *                    has applied since), which bounds how stale a hit may be.
 *   analyse          lead() of an analysis: the origin's own analysis of a
 *                    statement, ended with hd_cache_analysis_finish(): is it
 *                    cacheable, why not, and what it reads (HdDep).
 *   fill             lead() of a fill, and refresh(): run the request and
 *                    capture its reply, under a snapshot the race rule can
 *                    check (HdCacheFillOutcome.snapshot: the transactions the
 *                    read could not see; PostgreSQL: a REPEATABLE READ, READ
 *                    ONLY transaction that reads pg_current_snapshot() first),
 *                    in the session state the key was made for (else
 *                    state_changed), ended with hd_cache_fill_finish().
 *   read-your-writes ryw(): after a session's transaction wrote, the origin's
 *                    position that covers its writes (PostgreSQL:
 *                    pg_current_wal_insert_lsn()), given to the core with
 *                    hd_cache_ryw_reached(); the session gets no hit until
 *                    the change source has applied that far.
 *
 * Contract:
 *   - Connections are the driver's (void *): the core never reads them; it
 *     only passes back what the protocol side or refresh_conn() gave it.
 *   - lead(), refresh() and ryw() send on the connection and return; the
 *     driver reads the replies and ends the work itself: a job with
 *     hd_cache_analysis_finish()/hd_cache_fill_finish() and then always
 *     hd_cache_job_free(); a ryw() with hd_cache_ryw_reached() when the
 *     origin answered (an error leaves the session's position where it was).
 *   - arg is the one given to hd_cache_layer_open().
 *   - Positions (HdPos) are the change source's: ryw() answers in them.
 */
#ifndef HD_CACHE_ORIGIN_H
#define HD_CACHE_ORIGIN_H

#include "cache/change.h"
#include "cache/flight.h"
#include "pool/pool.h"

typedef struct HdCacheJob HdCacheJob;

/* lead()'s answers */
typedef enum HdCacheLeadResult
{
	HD_CACHE_LEAD_OOM = -1,		/* out of memory: the session must end */
	HD_CACHE_LEAD_SENT = 0,		/* *job runs on the connection */
	HD_CACHE_LEAD_FORWARD = 1,	/* the config is gone: send the request as it is */
	HD_CACHE_LEAD_DECIDE_AGAIN = 2	/* the analysis it read was dropped meanwhile */
} HdCacheLeadResult;

typedef struct HdOriginDriver
{
	const char *name;			/* "postgresql": for logs */
	const HdPoolOps *pool;
	const HdChangeSourceOps *changes;

	/*
	 * The job the leader's decision asked for (ANALYZE or FILL: the protocol
	 * side remembers which), of its request at the head of its input, on
	 * conn, a connection the leader holds. A fill takes the request out of
	 * the leader's input and answers the leader with the origin's reply.
	 */
	HdCacheLeadResult (*lead) (void *arg, void *conn, HdCacheWaiter *leader, HdCacheJob **job);

	/*
	 * A background refresh of a stale entry: refresh_conn() finds an idle
	 * connection whose session state fits the requester's request (NULL:
	 * none); refresh() sends job (a fill) of that request, still at the head
	 * of the requester's input, on conn with no session to answer. 0: it
	 * runs; -1: it could not (conn was closed), the job stays the caller's.
	 */
	void	   *(*refresh_conn) (void *arg, HdCacheWaiter *requester);
	int			(*refresh) (void *arg, void *conn, HdCacheWaiter *requester, HdCacheJob *job);

	/* Ask on conn how far the writer's writes reached. 0: sent; -1: out of memory. */
	int			(*ryw) (void *arg, void *conn, HdCacheWaiter *writer);
} HdOriginDriver;

#endif							/* HD_CACHE_ORIGIN_H */
