/*
 * pg_change_source.h
 *    The cache's change source for a PostgreSQL origin (cache/change.h):
 *    the hyperdrive plugin's records over logical replication (stream.h),
 *    as neutral changes.
 *
 * Contract (beyond change.h's):
 *   - One replication slot per config, hd_stream_default_slot(); positions
 *     are LSNs (the end of a commit record), formatted "X/X"; the identity
 *     is "host:port/database/slot".
 *   - A record's relations and their ancestors (partitioned tables) are the
 *     change's dependencies: every row, or the rows with some values of the
 *     relation's precision column (record_deps.h): the first column the
 *     cache asked about (watch()), whose values the stream is then asked to
 *     carry (hd_stream_watch_column()). A record flagged "invalidate all"
 *     is "all" without a reason; a record with DDL that may change what a
 *     cached query returns or what a name in it resolves to (anything but a
 *     short list: CREATE/DROP INDEX, COMMENT, REFRESH MATERIALIZED VIEW) is
 *     "all" with the DDL as its reason. Any DDL changes the schema.
 *   - Transaction ids are PostgreSQL's with epoch: the race rule compares
 *     them with pg_current_snapshot()'s, read by hd_pg_snapshot_parse()
 *     ("xmin:xmax:xip1,xip2"; *xip is malloc'd: free() it, also after a
 *     failure; NULL when there are none; -1 for NULL or anything else).
 */
#ifndef HD_PG_CHANGE_SOURCE_H
#define HD_PG_CHANGE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "cache/change.h"
#include "stream/record_deps.h"

extern const HdChangeSourceOps hd_pg_change_source;

extern int	hd_pg_snapshot_parse(const char *text, uint64_t *xmin, uint64_t *xmax,
								 uint64_t **xip, size_t *nxip);

#endif							/* HD_PG_CHANGE_SOURCE_H */
