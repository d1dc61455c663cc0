/*
 * cache.h
 *    The result cache's protocol-neutral core (docs/cache.md): one LMDB
 *    store (store.h) in <state_dir>/cache, one change source
 *    (change.h) per config with caching enabled, and for each config the
 *    analyses of its statements, the race rule (race.h), request coalescing (one fill per
 *    key in flight; other sessions wait for it), stale-while-revalidate,
 *    read-your-writes, the decision for each request, and the admin and
 *    metrics views.
 *
 * The promise: a cached result is served only when the origin would return
 * the same bytes (up to max_lag behind the origin's commits). When in
 * doubt, the statement goes to the origin and the reason is counted.
 *
 * The core knows no wire protocol. The protocol side (pgwire/cache_request.c
 * and pgwire/cache_fill.c for PostgreSQL) reads a request, builds its two
 * keys (the analysis's: the statement and its parameter types; the entry's:
 * the exact request), and asks hd_cache_decide(). A session that is to lead
 * an analysis or a fill calls hd_cache_lead() with the origin connection it
 * holds. The core reaches back only through two tables given at
 * hd_cache_layer_open():
 *   HdCacheSessionOps  a waiting session: serve it stored bytes, make it run
 *                      its request on the origin after all, make it decide
 *                      again; and "the schema changed" for its statements.
 *   HdOriginDriver     the origin (origin.h): each config's change source,
 *                      the analyses and fills it leads, background refreshes
 *                      of stale entries, read-your-writes positions.
 * Each session embeds an HdCacheWaiter (hd_cache_waiter_init() when it is
 * made, hd_cache_waiter_gone() when it goes).
 *
 * Contract:
 *   - Keys are opaque bytes; the core copies what it keeps.
 *   - An analysis or a fill is an HdCacheJob: begun by the origin side for
 *     the session that leads it (hd_cache_lead(), or the core's own
 *     refresh), ended
 *     with hd_cache_analysis_finish()/hd_cache_fill_finish() and always
 *     freed with hd_cache_job_free(), which wakes the waiters: with the
 *     result the fill allowed them, else they run their own requests
 *     (fills) or decide again (analyses). A job may outlive the layer (an
 *     origin connection freed after hd_cache_layer_close()): it then only
 *     frees.
 *   - Callbacks run from within hd_cache_decide(), hd_cache_job_free(),
 *     hd_cache_lead() and the layer's timer; a session woken may
 *     call back into the core (decide again, lead the next fill).
 *   - Positions (HdPos) are the change source's; a session's ryw_pos is
 *     the origin position its own writes reached: it gets no hit until the
 *     source has applied that far.
 *   - What a fill's entry depends on: each relation its analysis names,
 *     narrowed to the values of one of the analysis's bindings on that
 *     relation (dep.h) when every value is known in this execution
 *     (constants; parameters the driver hashed: hd_cache_job_params(),
 *     HdCacheFillOutcome.params) and the change source names rows by that
 *     column (change.h watch()); otherwise the whole relation.
 *   - A change applied removes the entries it touches (all of the config's
 *     for "all"), is retained for the race rule, and when it changed the
 *     schema drops the config's analyses and tells the session side. A lost
 *     source purges the config's entries and binds the store to a new
 *     generation of the source's identity.
 *   - Each config's applied position is written to the store on the
 *     layer's timer (every 0.2 s) and synced at most once a second; the
 *     source is told durable only what a completed sync covered.
 */
#ifndef HD_CACHE_H
#define HD_CACHE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "base/text_buf.h"
#include "cache/change.h"
#include "cache/dep.h"
#include "cache/flight.h"
#include "cache/origin.h"
#include "cache/race.h"
#include "config/configs.h"
#include "config/settings.h"

typedef struct HdCacheLayer HdCacheLayer;
typedef struct HdCacheJob HdCacheJob;

/* HdCacheWaiter and the session side, HdCacheSessionOps: flight.h */
/* The origin side, HdOriginDriver: origin.h */

/* The decision for a request. */
typedef enum HdCacheDecision
{
	HD_CACHE_FORWARD,			/* to the origin as it is (the reason is counted) */
	HD_CACHE_ANALYZE,			/* it leads the statement's analysis */
	HD_CACHE_FILL,				/* it leads the key's fill */
	HD_CACHE_SERVE,				/* a hit: hit holds the bytes */
	HD_CACHE_WAIT				/* it waits for the key's fill or analysis in flight */
} HdCacheDecision;

typedef struct HdCacheVerdict
{
	HdCacheDecision decision;
	bool		stale;			/* SERVE: a stale entry (a refresh was started if it could be) */
	const void *bytes;			/* SERVE: valid until hd_cache_served() */
	size_t		len;
	void	   *hit;			/* the core's */
} HdCacheVerdict;

/*
 * At agent start: open the store (a damaged one is wiped), start the timer.
 * *out is set even when -1 is returned (the store could not be opened: the
 * layer tries again on its timer); NULL only when out of memory. settings
 * and configs are the caller's and must outlive the layer.
 */
extern int	hd_cache_layer_open(struct ev_loop *loop, const HdSettings *settings,
								const HdConfigList *configs, const HdOriginDriver *origin,
								const HdCacheSessionOps *session, void *arg,
								HdCacheLayer **out, char *err, size_t errlen);
extern void hd_cache_layer_close(HdCacheLayer *layer);
/* After (re)loading configs: start/stop/restart the per-config streams. */
extern void hd_cache_layer_configs(HdCacheLayer *layer);

/* Whether the config's statements may be answered from the cache (its layer state exists). */
extern bool hd_cache_caches(HdCacheLayer *layer, const char *config_id);
/* Count a statement of the config under reason ("bypass:..."). */
extern void hd_cache_count(HdCacheLayer *layer, const char *config_id, const char *reason);

extern void hd_cache_waiter_init(HdCacheWaiter *waiter);
/* A session closes: it leaves the fill it waits for (or leads: its waiters fall back). */
extern void hd_cache_waiter_gone(HdCacheWaiter *waiter);

/*
 * Decide for a request of the config: akey is its analysis's key, key its
 * entry's, max_age_ms its own freshness (a hint; -1: the config's). A
 * FORWARD has its reason counted. A stale entry served starts a background
 * refresh (origin ops).
 * After SERVE, hd_cache_served() says whether the bytes reached the session.
 */
extern void hd_cache_decide(HdCacheLayer *layer, const char *config_id, HdCacheWaiter *waiter,
							const unsigned char *akey, size_t akeylen,
							const unsigned char *key, size_t keylen, int64_t max_age_ms,
							HdCacheVerdict *v);
extern void hd_cache_served(HdCacheLayer *layer, const char *config_id, HdCacheVerdict *v,
							bool ok);

/*
 * The leader of an ANALYZE or FILL decision starts its job on conn, an
 * origin connection it holds (the origin's lead(), origin.h): the key's
 * waiters then wait for that job, or run their own requests when none
 * started.
 */
extern HdCacheLeadResult hd_cache_lead(HdCacheLayer *layer, HdCacheWaiter *leader, void *conn);

/*
 * Read-your-writes. A session's transaction wrote on conn: when its config
 * is cached, the origin is asked how far the writes reached (the origin's
 * ryw()). 1: asked (the session waits for the answer before its next
 * request); 0: nothing to ask; -1: out of memory. The origin side reports
 * the answer with hd_cache_ryw_reached(): no hit for that session until the
 * change source has applied that far.
 */
extern int	hd_cache_after_write(HdCacheLayer *layer, const char *config_id,
								 HdCacheWaiter *writer, void *conn);
extern void hd_cache_ryw_reached(HdCacheWaiter *writer, HdPos pos);

/*
 * Jobs. hd_cache_analysis_begin(): NULL when out of memory. hd_cache_fill_
 * begin(): the fill of key reading what the analysis of akey found (its
 * freshness: max_age_ms, or the config's when -1); NULL with *dropped when
 * that analysis is gone or uncacheable (decide again), without when out of
 * memory or the config is gone.
 */
extern HdCacheJob *hd_cache_analysis_begin(HdCacheLayer *layer, const char *config_id,
										   const unsigned char *akey, size_t akeylen);
extern HdCacheJob *hd_cache_fill_begin(HdCacheLayer *layer, const char *config_id,
									   const unsigned char *akey, size_t akeylen,
									   const unsigned char *key, size_t keylen,
									   int64_t max_age_ms, bool *dropped);

/* What an analysis found. */
typedef struct HdCacheAnalysisOutcome
{
	const char *error;			/* the analysis failed: remembered a short while */
	bool		answered;		/* it gave its answer (else nothing is remembered) */
	bool		cacheable;
	const char *reason;			/* why not */
	const HdDep *deps;			/* cacheable: what its result reads */
	size_t		ndeps;
	bool		deps_unreadable;	/* the origin's list could not be read */
	const HdBinding *bindings;	/* cacheable: which of deps' rows it reads (dep.h) */
	size_t		nbindings;
	const uint32_t *param_types;	/* the origin's types of the parameters, for */
	size_t		nparam_types;	/* the driver's fills (hd_cache_job_params()) */
} HdCacheAnalysisOutcome;

extern void hd_cache_analysis_finish(HdCacheJob *job, const HdCacheAnalysisOutcome *o);

/* What a fill found. */
typedef struct HdCacheFillOutcome
{
	bool		failed;			/* the statement failed, or replied other than a result */
	const HdRaceSnapshot *snapshot; /* what it read under; NULL: not known */
	bool		state_changed;	/* the connection's session state was not what the key says */
	bool		complete;		/* bytes hold the whole result (not oversized) */
	const void *bytes;
	size_t		len;
	const HdParamHashes *params;	/* per parameter number - 1: its hashes in this */
	size_t		nparams;		/* execution (bindings that name $n); 0: none */
} HdCacheFillOutcome;

/*
 * A fill's analysis: which parameters its bindings name (want[n - 1] true
 * for $n; nparams of them) and the origin's type of each (types[n - 1]; 0
 * when not known), valid until the job ends. The driver hashes those
 * parameters of the execution it fills (HdCacheFillOutcome.params).
 */
extern void hd_cache_job_params(const HdCacheJob *job, const bool **want,
								const uint32_t **types, size_t *nparams);

/* true: stored. *check_state: the connection's session state must be checked. */
extern bool hd_cache_fill_finish(HdCacheJob *job, const HdCacheFillOutcome *o,
								 bool *check_state);
/* Wake the job's waiters (with bytes when its end allowed them) and free it. */
extern void hd_cache_job_free(HdCacheJob *job, const void *bytes, size_t len);

/* Admin console and metrics: SHOW CACHE's row per config has this many columns. */
#define HD_CACHE_SHOW_COLUMNS 24
extern void hd_cache_show(HdCacheLayer *layer,
						  void (*row) (void *arg, const char *const *values, int n), void *arg);
extern int	hd_cache_purge_config(HdCacheLayer *layer, const char *config_id, uint64_t *removed,
								  char *err, size_t errlen);
extern void hd_cache_metrics(HdCacheLayer *layer, HdTextBuf *buf);

#endif							/* HD_CACHE_H */
