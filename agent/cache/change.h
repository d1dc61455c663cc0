/*
 * change.h
 *    Where the cache learns what changed at the origin: a change source,
 *    one per config, that delivers neutral change records (HdChange) in
 *    commit order, and the table of operations the cache core drives it
 *    with (HdChangeSourceOps). stream/pg_change_source.c implements it for
 *    PostgreSQL over the logical-decoding stream (stream.h); another origin
 *    (a MySQL binlog) would implement the same table.
 *
 * A change (HdChange) says what one committed transaction of the origin may
 * have changed, in the cache's terms: the relations it touched and their
 * ancestors (HdDep, every row for now), or "everything" with the reason,
 * and whether the schema changed (what statements mean and what their
 * analyses say is stale). Knowing which DDL changes results, and which
 * relations are the ancestors of a partition, is the source's business.
 *
 * Contract of a change source:
 *   - on_change() gets every change in commit order. It returns 0 when it
 *     has applied the change (the source may then consider change->end
 *     applied), or -1: the source reconnects and delivers it again. Changes
 *     are delivered at least once: applying must be idempotent.
 *   - on_state() reports CONNECTED (streaming started), DISCONNECTED and
 *     ERROR (retried by the source), and LOST: changes are gone (the
 *     source's position is invalid); the cache must purge what it derived
 *     and bind to the source's new identity; the source goes on from a new
 *     consistent point.
 *   - Positions (HdPos) are the source's, ordered; only it formats them.
 *     status()'s applied is the position of the last change applied (or of
 *     the origin, when everything received is applied); the cache persists
 *     it, passes it as params.start, and reports with set_durable() what
 *     its store has made durable: the source confirms no further.
 *   - Freshness: status()'s fresh_as_of is the time (base/clock.h), taken
 *     before a probe was sent, whose origin position the source has applied
 *     since: every transaction the origin acknowledged before it has been
 *     applied. <= 0: not known yet. Probes run on their own, well within
 *     max_lag; want_fresh(as_of) asks for one sent at or after as_of (strict
 *     consistency: a hit that arrived at as_of waits for it): the source
 *     sends one as soon as none such is in flight or answered, so one probe
 *     answers every request that arrived before it was sent; status()'s
 *     probes_on_demand counts those sent so. on_fresh() (may be NULL) is
 *     called whenever fresh_as_of moves, from within the source's own
 *     work: the caller must not call want_fresh() from it (nor from
 *     on_change() or on_state()) but defer what it does to its loop.
 *     catchup is the origin's position when the source (re)connected.
 *   - connect_snapshot(): the transactions running at the origin when the
 *     source connected (a change of one may have been applied before it was
 *     visible): 0, or -1 when not known (the caller frees out->xip either
 *     way).
 *   - identity(): what names the origin and the source's position space
 *     (PostgreSQL: host:port/database/slot); the store is bound to it, and a
 *     different one means another origin: the cached results go.
 *   - watch(relation, column): whether changes to the relation will name
 *     their rows by values of that column (dep.h), so that an entry may
 *     depend on values of it; the source may start carrying them now. A
 *     change names values only when it knows every changed row's old and
 *     new value of the column; until the source carries them, and whenever
 *     it does not know them all, it names every row of the relation. At
 *     most one column per relation is ever answered true (dep.h's overlap
 *     rule counts values of another column as overlapping).
 *   - The caller never frees a source from within its own callbacks.
 */
#ifndef HD_CACHE_CHANGE_H
#define HD_CACHE_CHANGE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/dep.h"
#include "cache/race.h"
#include "config/configs.h"

typedef struct HdChange
{
	uint64_t	xid;			/* opaque transaction id for the race rule; 0: unknown */
	HdPos		end;			/* where the change ends */
	int64_t		commit_time_us; /* microseconds since the Unix epoch */
	int64_t		sent_time_us;	/* when the origin sent it (its clock), the same; 0: unknown */
	bool		heartbeat;		/* nothing changed: the position moves on */
	bool		all;			/* every entry of the config may be stale */
	const char *all_reason;		/* with all: a schema change that may alter results
								 * (counted and logged as such); NULL: other */
	bool		schema_changed; /* statements and analyses are stale */
	const HdDep *deps;			/* relations touched and their ancestors */
	size_t		ndeps;
	size_t		nunknown;		/* deps on every row of a relation whose
								 * watched column's values were not known */
	const char *text;			/* short, for logs ("xid 123") */
} HdChange;

typedef enum HdChangeState
{
	HD_CHANGE_CONNECTED,
	HD_CHANGE_DISCONNECTED,
	HD_CHANGE_LOST,
	HD_CHANGE_ERROR
} HdChangeState;

typedef struct HdChangeCallbacks
{
	int			(*on_change) (void *arg, const HdChange *change);
	void		(*on_state) (void *arg, HdChangeState state, const char *why);
	void		(*on_fresh) (void *arg);	/* fresh_as_of moved; NULL: not told */
	void	   *arg;
} HdChangeCallbacks;

typedef struct HdChangeParams
{
	struct ev_loop *loop;
	const HdConfig *config;		/* copied */
	const char *state_dir;		/* the config store, for credentials */
	HdPos		start;			/* the caller's applied position; HD_POS_NONE: the source's own */
	int64_t		connect_timeout_ms;
	int64_t		max_lag_ms;		/* how stale hits may be: probes run well within it */
} HdChangeParams;

typedef struct HdChangeStatus
{
	HdPos		applied;
	HdPos		catchup;		/* origin position when it (re)connected */
	double		fresh_as_of;	/* base/clock.h time; <= 0: not known */
	uint64_t	probes_on_demand;	/* probes sent for want_fresh() */
} HdChangeStatus;

typedef struct HdChangeSource HdChangeSource;

typedef struct HdChangeSourceOps
{
	HdChangeSource *(*start) (const HdChangeParams *params, const HdChangeCallbacks *cb,
							  char *err, size_t errlen);
	void		(*free) (HdChangeSource *source);	/* NULL is fine */
	bool		(*connected) (const HdChangeSource *source);
	void		(*status) (const HdChangeSource *source, HdChangeStatus *out);
	void		(*set_durable) (HdChangeSource *source, HdPos pos);
	int			(*connect_snapshot) (const HdChangeSource *source, HdRaceSnapshot *out);
	void		(*identity) (const HdConfig *config, char *out, size_t outlen);
	void		(*format_pos) (HdPos pos, char *out, size_t outlen);
	const char *(*state_name) (HdChangeState state);
	bool		(*watch) (HdChangeSource *source, uint64_t relation, uint32_t column);
	void		(*want_fresh) (HdChangeSource *source, double as_of);
} HdChangeSourceOps;

#endif							/* HD_CACHE_CHANGE_H */
