/*
 * pg_change_source.h
 *    PostgreSQL's side of the cache's change source: what the origin's
 *    texts mean, in plain terms the cache can take.
 *
 * Contract:
 *   - hd_pg_snapshot_parse() reads pg_current_snapshot()'s text
 *     ("xmin:xmax:xip1,xip2", transaction ids with epoch); *xip is
 *     malloc'd (free() it, also after a failure; NULL when there are none).
 *     -1 for NULL or anything else.
 */
#ifndef HD_PG_CHANGE_SOURCE_H
#define HD_PG_CHANGE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

extern int	hd_pg_snapshot_parse(const char *text, uint64_t *xmin, uint64_t *xmax,
								 uint64_t **xip, size_t *nxip);

#endif							/* HD_PG_CHANGE_SOURCE_H */
