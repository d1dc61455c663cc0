/*
 * pg_origin.c
 *    PostgreSQL's origin driver (cache/origin.h) in one table: what each
 *    part is and which file does it.
 *
 *   log in            pg_pool.c (HdPoolOps), with server.c's login and
 *                     tls_negotiate.c; reset by DISCARD ALL and the
 *                     session-state check (state_check.c)
 *   changes           stream/pg_change_source.c over the extension's
 *                     logical-decoding stream (stream.h); its freshness
 *                     probe reads pg_current_wal_insert_lsn() on a plain
 *                     connection of its own (stream.c)
 *   analyse, fill     cache_fill.c: hyperdrive.analyze_query(); a fill in a
 *                     REPEATABLE READ, READ ONLY transaction that reads
 *                     pg_current_snapshot() and the session state first
 *   read-your-writes  cache_fill.c: pg_current_wal_insert_lsn()
 */
#include "pgwire/pg_origin.h"

#include "pgwire/cache_fill.h"
#include "pgwire/pooler.h"
#include "stream/pg_change_source.h"

const HdOriginDriver hd_pg_origin = {
	.name = "postgresql",
	.pool = &hd_pg_pool_ops,
	.changes = &hd_pg_change_source,
	.lead = hd_pg_cache_lead,
	.refresh_conn = hd_pg_cache_refresh_conn,
	.refresh = hd_pg_cache_refresh,
	.ryw = hd_pg_cache_ryw,
};
