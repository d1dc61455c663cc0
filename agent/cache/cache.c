/*
 * cache.c
 *    The result cache's protocol-neutral core (cache.h, docs/cache.md): the
 *    per-config state and its change source, the analyses, coalescing, the
 *    decision, fills' ends, the admin and metrics views.
 */
#include "cache/cache.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "cache/store.h"
#include "cache/change.h"
#include "cache/fresh_wait.h"

#define MAX_REASONS 64
#define ANALYSIS_BUCKETS 4096
#define MAX_ANALYSES 100000
#define ANALYSIS_ERROR_TTL 10.0	/* seconds an analysis error is remembered */

/*
 * Upper bounds (seconds) of hyperdrive_cache_invalidation_seconds: fine
 * around the milliseconds an invalidation should take, coarse above.
 */
#define INVAL_NBOUNDS 21
static const double inval_bounds[INVAL_NBOUNDS] = {
	0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
	0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10
};

/* A histogram of invalidation latencies (per bucket of inval_bounds, +Inf last). */
typedef struct InvalHist
{
	uint64_t	buckets[INVAL_NBOUNDS + 1];
	uint64_t	count;
	double		sum;
} InvalHist;

/*
 * Trouble that can repeat at every query or tick (a full disk under the
 * store) is logged at most once a minute per kind: each line says how many
 * were left out since the previous one, so the log stays small.
 */
#define TROUBLE_LOG_INTERVAL 60.0
#define STORE_RETRY_INTERVAL 5.0
/*
 * Distinct entries whose hits the store buffers between the timer's writes
 * of the LRU order (every 200 ms): writing one access costs a few B-tree
 * updates (5-20 us measured with agent/tests/test_store --bench on a 100k
 * entry store), and that write holds up the loop, so the buffer is kept to
 * a few ms of it; hits of other entries meanwhile are not recorded (LRU is
 * approximate: store.h). A hot entry is among the first hit in any 200 ms.
 */
#define LRU_BATCH 256
#define HD_BIND_MAX_VALUES 1024		/* values a fill's dependency may name (race.h's bound) */

/* How precisely a change named what it touched (metrics, docs/cache.md). */
typedef enum ChangeKind
{
	CHANGE_VALUE,				/* a relation's rows by values of a column */
	CHANGE_COLUMN,				/* every row: the column's values were not all known */
	CHANGE_RELATION,			/* every row of a relation */
	CHANGE_ALL					/* every entry of the config */
} ChangeKind;	/* seconds between attempts to open the store */

/*
 * An analysis's bindings (dep.h) and what the driver needs to hash the
 * parameters they name, in one allocation (block): bindings, their hashes
 * and parameter numbers, want[] and types[] per parameter.
 */
typedef struct Bindings
{
	void	   *block;
	HdBinding  *b;
	size_t		n;
	bool	   *want;			/* want[k]: a binding names $k+1 */
	uint32_t   *types;			/* the origin's type of $k+1 (0: unknown) */
	size_t		nparams;
} Bindings;

typedef struct Analysis
{
	struct Analysis *next;
	unsigned char *key;
	size_t		keylen;
	bool		cacheable;
	char		reason[64];		/* "uncacheable:<kind>" */
	HdDep	   *deps;			/* relations only */
	size_t		ndeps;
	Bindings	bind;			/* which of their rows it reads */
	double		expires;		/* 0: until the next DDL */
} Analysis;

typedef struct Reason
{
	char		name[64];
	uint64_t	count;
} Reason;

typedef struct CacheCfg
{
	HdList		link;
	HdCacheLayer *layer;
	char		id[HD_CONFIG_ID_LEN + 1];
	char		name[HD_CONFIG_NAME_MAX + 1];
	char		identity[HD_STORE_IDENTITY_MAX];
	int			max_age;
	int			swr;
	HdChangeSource *source;		/* its change stream (change.h) */
	HdPos		persisted_lsn;	/* applied position written to the store */
	HdPos		syncing_lsn;	/* persisted_lsn when the sync in progress began */
	bool		syncing;		/* syncing_lsn is this stream's: confirm it once synced */
	HdPos		catchup_lsn;	/* origin position when the stream (re)connected */
	HdRace		race;			/* the race rule (race.h) */
	/* analyses */
	Analysis  **buckets;
	size_t		nanalyses;
	uint64_t	analysis_gen;	/* bumped when DDL drops them */
	HdFlights	flights;		/* coalescing (flight.h) */
	/* strict consistency (docs/cache.md, "Consistency") */
	bool		strict;
	HdFreshWaits fresh_waits;	/* hits waiting for the stream (fresh_wait.h) */
	ev_timer	wake;			/* wakes them from the loop after fresh_as_of moved */
	double		stalled_at;		/* a wait timed out for a hit that arrived then:
								 * hits go to the origin until fresh past it */
	uint64_t	strict_waits;	/* hits that waited */
	/* counters */
	uint64_t	stale_hits;		/* STALE entries served (stale-while-revalidate) */
	uint64_t	refreshes;		/* background refreshes started */
	uint64_t	hits;
	uint64_t	misses;
	uint64_t	stored;
	uint64_t	records;
	uint64_t	invalidated;
	uint64_t	slots_lost;
	uint64_t	ddl_invalidations;	/* records whose DDL removed every entry */
	uint64_t	deps_by_value;	/* stored entries' relations bound to values of a column */
	uint64_t	deps_whole;		/* ... read whole although the analysis bound them */
	uint64_t	change_deps[4];	/* changes' relations by kind (ChangeKind) */
	HdLogLimit	ddl_log;		/* "DDL removed every entry" lines */
	HdLogLimit	lookup_log;		/* lookups and stores failing */
	HdLogLimit	apply_log;		/* invalidations and positions failing */
	InvalHist	inval;			/* a record's commit time -> its invalidation applied */
	InvalHist	inval_sent;		/* the record's send time -> the same */
	Reason		reasons[MAX_REASONS];
	size_t		nreasons;
} CacheCfg;

struct HdCacheLayer
{
	struct ev_loop *loop;
	const HdSettings *settings;
	const HdConfigList *configs;
	const HdCacheSessionOps *session;
	const HdOriginDriver *origin;
	void	   *arg;			/* the tables' */
	HdStore    *store;			/* NULL: could not be opened; retried on the timer */
	char		open_error[512];	/* why, while it is NULL */
	double		open_tried_at;
	unsigned	open_failures;
	HdLogLimit	open_log;
	HdLogLimit	sync_log;
	char		dir[4200];
	HdList		cfgs;
	HdList		jobs;			/* HdCacheJob.link: the protocol side's until freed */
	ev_timer	timer;
	double		last_sync;
	bool		dirty;			/* LSNs written since the last sync */
};

/* An analysis or a fill (cache.h). */
struct HdCacheJob
{
	HdList		link;			/* the layer's jobs */
	HdCacheLayer *layer;		/* NULL once the layer closed: the job only frees */
	bool		analysis;
	char		cfg_id[HD_CONFIG_ID_LEN + 1];
	unsigned char *key;
	size_t		keylen;
	uint64_t	gen;			/* the config's analysis_gen when it began */
	HdDep	   *deps;			/* fill: what it reads */
	size_t		ndeps;
	Bindings	bind;			/* fill: the analysis's bindings */
	uint64_t   *values;			/* fill: the value hashes deps point into */
	uint64_t	token;			/* fill: the store's race token before it was sent */
	uint64_t	seq;			/* fill: its number for the race rule */
	bool		in_flight;		/* fill: the race rule counts it in flight */
	int64_t		max_age_ms;		/* fill: the entry's freshness */
	bool		refresh;		/* a background refresh: no session */
	bool		stored;
	uint64_t	joined_before;	/* waiters before this change order may take its result */
	HdFlight   *flight;			/* the flight it answers */
};

static const char *stream_problem(CacheCfg *cfg, HdPos ryw_pos);
static void strict_wake_soon(CacheCfg *cfg);
static void on_fresh(void *arg);
static void wake_cb(struct ev_loop *loop, ev_timer *t, int revents);
static void strict_timeouts(CacheCfg *cfg, double limit);
static void store_retry(HdCacheLayer *layer, double now);

/* Whether to log this trouble now; *left_out: how many were not logged since the last line. */
static bool
log_now(HdLogLimit *l, uint64_t *left_out)
{
	return hd_log_due(l, TROUBLE_LOG_INTERVAL, left_out);
}

static int64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---------------------------------------------------------------------------
 * Counters
 */

static void
count_reason(CacheCfg *cfg, const char *reason)
{
	size_t		i;

	for (i = 0; i < cfg->nreasons; i++)
		if (strcmp(cfg->reasons[i].name, reason) == 0)
		{
			cfg->reasons[i].count++;
			return;
		}
	if (cfg->nreasons == MAX_REASONS)
	{
		reason = "uncacheable:other";
		for (i = 0; i < cfg->nreasons; i++)
			if (strcmp(cfg->reasons[i].name, reason) == 0)
			{
				cfg->reasons[i].count++;
				return;
			}
		i = MAX_REASONS - 1;	/* give the last slot to "other" */
		cfg->reasons[i].count = 0;
	}
	else
		i = cfg->nreasons++;
	snprintf(cfg->reasons[i].name, sizeof(cfg->reasons[i].name), "%s", reason);
	cfg->reasons[i].count++;
}

/* The owner's side of the config's flights (flight.h). */
static void
flights_count(void *owner, const char *reason)
{
	count_reason(owner, reason);
}

static const char *
flights_problem(void *owner, const HdCacheWaiter *waiter)
{
	return stream_problem(owner, waiter->ryw_pos);
}

static CacheCfg *
find_cfg(HdCacheLayer *layer, const char *id)
{
	HdList	   *item;
	HdList	   *tmp;

	if (layer == NULL)
		return NULL;
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		if (strcmp(cfg->id, id) == 0)
			return cfg;
	}
	return NULL;
}

static HdDep *
deps_copy(const HdDep *deps, size_t n)
{
	HdDep	   *copy = malloc((n ? n : 1) * sizeof(HdDep));

	if (copy == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		copy[i] = hd_dep_relation(deps[i].relation);	/* every row: a fill narrows it (bind_deps()) */
	return copy;
}

/*
 * Copy bindings (and the parameter types) into one block; false when out of
 * memory or when a binding names no values or parameter 0 (then the
 * analysis keeps no bindings: its relations are read whole).
 */
static bool
bindings_copy(Bindings *out, const HdBinding *in, size_t n, const uint32_t *types,
			  size_t ntypes)
{
	size_t		nhashes = 0,
				nparam_refs = 0,
				nparams = ntypes,
				size;
	char	   *p;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++)
	{
		if (in[i].relation == 0 || in[i].column == 0 || in[i].nhashes + in[i].nparams == 0)
			return false;
		nhashes += in[i].nhashes;
		nparam_refs += in[i].nparams;
		for (uint32_t k = 0; k < in[i].nparams; k++)
		{
			if (in[i].params[k] == 0)
				return false;
			if (in[i].params[k] > nparams)
				nparams = in[i].params[k];
		}
	}
	size = n * sizeof(HdBinding) + nhashes * sizeof(uint64_t) + nparams * sizeof(uint32_t) +
		nparam_refs * sizeof(uint16_t) + nparams * sizeof(bool) + 1;
	if ((out->block = p = calloc(1, size)) == NULL)
		return false;
	/* the widest members first: everything stays aligned */
	out->b = (HdBinding *) p;
	p += n * sizeof(HdBinding);
	for (size_t i = 0; i < n; i++)
	{
		out->b[i] = in[i];
		out->b[i].hashes = (uint64_t *) p;
		if (in[i].nhashes > 0)
			memcpy(p, in[i].hashes, in[i].nhashes * sizeof(uint64_t));
		p += in[i].nhashes * sizeof(uint64_t);
	}
	out->types = (uint32_t *) p;
	if (ntypes > 0)
		memcpy(out->types, types, ntypes * sizeof(uint32_t));
	p += nparams * sizeof(uint32_t);
	for (size_t i = 0; i < n; i++)
	{
		out->b[i].params = (uint16_t *) p;
		if (in[i].nparams > 0)
			memcpy(p, in[i].params, in[i].nparams * sizeof(uint16_t));
		p += in[i].nparams * sizeof(uint16_t);
	}
	out->want = (bool *) p;
	for (size_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < in[i].nparams; k++)
			out->want[in[i].params[k] - 1] = true;
	out->n = n;
	out->nparams = nparams;
	return true;
}

static bool
bindings_dup(Bindings *out, const Bindings *in)
{
	return bindings_copy(out, in->b, in->n, in->types, in->nparams);
}

static void
bindings_free(Bindings *b)
{
	free(b->block);
	memset(b, 0, sizeof(*b));
}

static void
analysis_free(Analysis *a)
{
	free(a->key);
	free(a->deps);
	bindings_free(&a->bind);
	free(a);
}

/* ---------------------------------------------------------------------------
 * Analyses (per config, role, settings, text; dropped on DDL)
 */

static uint32_t
hash_bytes(const unsigned char *p, size_t n)
{
	uint32_t	h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void
analyses_clear(CacheCfg *cfg)
{
	if (cfg->buckets == NULL)
		return;
	for (size_t i = 0; i < ANALYSIS_BUCKETS; i++)
	{
		Analysis   *a = cfg->buckets[i];

		while (a)
		{
			Analysis   *next = a->next;

			analysis_free(a);
			a = next;
		}
		cfg->buckets[i] = NULL;
	}
	cfg->nanalyses = 0;
	cfg->analysis_gen++;
}

static Analysis *
analysis_find(CacheCfg *cfg, const unsigned char *key, size_t keylen, double now)
{
	Analysis  **link;

	if (cfg->buckets == NULL)
		return NULL;
	link = &cfg->buckets[hash_bytes(key, keylen) % ANALYSIS_BUCKETS];
	for (Analysis *a = *link; a; link = &a->next, a = a->next)
	{
		if (a->keylen == keylen && memcmp(a->key, key, keylen) == 0)
		{
			if (a->expires > 0 && now >= a->expires)
			{
				*link = a->next;
				analysis_free(a);
				cfg->nanalyses--;
				return NULL;
			}
			return a;
		}
	}
	return NULL;
}


static void
reason_kind(const char *reason, char *out, size_t outlen)
{
	static const char *const kinds[] = {
		"stable function", "volatile function", "temporary table", "unlogged table",
		"foreign table", "sequence", "unsupported relation", "system catalog",
		"row level security", "system column", "permission denied", "parameter",
		"time-dependent literal", "syntax error", "error", NULL
	};

	for (int i = 0; kinds[i]; i++)
		if (strncmp(reason, kinds[i], strlen(kinds[i])) == 0)
		{
			snprintf(out, outlen, "uncacheable:%s", kinds[i]);
			return;
		}
	snprintf(out, outlen, "uncacheable:%.40s", reason[0] ? reason : "unknown");
}


/*
 * Remember an analysis. deps: what a cacheable statement reads;
 * deps_unreadable: the origin's list could not be read (not cacheable).
 */
static void
analysis_store(CacheCfg *cfg, const unsigned char *key, size_t keylen, bool cacheable,
			   const char *reason, const HdDep *deps, size_t ndeps, bool deps_unreadable,
			   const HdCacheAnalysisOutcome *o, double expires)
{
	Analysis   *a;
	uint32_t	h = hash_bytes(key, keylen) % ANALYSIS_BUCKETS;

	if (cfg->buckets == NULL)
	{
		cfg->buckets = calloc(ANALYSIS_BUCKETS, sizeof(Analysis *));
		if (cfg->buckets == NULL)
			return;
	}
	if (cfg->nanalyses >= MAX_ANALYSES)
	{
		uint64_t	gen = cfg->analysis_gen;

		analyses_clear(cfg);
		cfg->analysis_gen = gen;	/* not a DDL: fills in flight stay valid */
	}
	a = calloc(1, sizeof(Analysis));
	if (a == NULL)
		return;
	a->key = malloc(keylen);
	if (a->key == NULL)
	{
		free(a);
		return;
	}
	if (deps_unreadable || (ndeps > 0 && (a->deps = deps_copy(deps, ndeps)) == NULL))
	{
		/* unreadable relations: not cacheable */
		cacheable = false;
		reason = "error: unreadable relation list";
	}
	else
		a->ndeps = ndeps;
	/* bindings that cannot be kept leave the relations read whole */
	if (a->ndeps > 0 && o != NULL && o->nbindings > 0 &&
		!bindings_copy(&a->bind, o->bindings, o->nbindings, o->param_types, o->nparam_types))
		hd_debug("cache of config \"%s\": an analysis's bindings were not kept", cfg->name);
	memcpy(a->key, key, keylen);
	a->keylen = keylen;
	a->cacheable = cacheable && a->ndeps > 0;
	if (cacheable && a->ndeps == 0)
		reason = "no relations";
	if (!a->cacheable)
		reason_kind(reason, a->reason, sizeof(a->reason));
	a->expires = expires;
	a->next = cfg->buckets[h];
	cfg->buckets[h] = a;
	cfg->nanalyses++;
}

/* ---------------------------------------------------------------------------
 * The stream of each config
 */

/*
 * How long after its commit a record's invalidation was applied: now (the
 * store's transaction has committed, so readers no longer find the entries)
 * minus the commit time the origin put in the record. Both clocks are the
 * same only when the origin runs on this machine; otherwise their offset is
 * in the figure (a negative result counts as 0).
 */
/*
 * Seconds from since_us (Unix microseconds, the origin's clock) to now (the
 * agent's), into h (a negative difference counts as 0).
 */
static void
hist_observe(InvalHist *h, int64_t since_us)
{
	struct timespec ts;
	int64_t		now_us;
	double		secs;
	int			i = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	now_us = (int64_t) ts.tv_sec * INT64_C(1000000) + ts.tv_nsec / 1000;
	secs = now_us > since_us ? (double) (now_us - since_us) / 1e6 : 0.0;
	while (i < INVAL_NBOUNDS && secs > inval_bounds[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum += secs;
}

/*
 * An applied change record's latencies: from its commit time, and from its
 * send time (the walsender's share left out: what the agent's side took,
 * network included).
 */
static void
observe_invalidation(CacheCfg *cfg, const HdChange *c)
{
	hist_observe(&cfg->inval, c->commit_time_us);
	if (c->sent_time_us != 0)
		hist_observe(&cfg->inval_sent, c->sent_time_us);
}

/* Say (at most once a minute per config) that DDL emptied the config's cache. */
static void
log_ddl_invalidation(CacheCfg *cfg, const char *reason, uint64_t removed)
{
	uint64_t	left_out;

	if (!log_now(&cfg->ddl_log, &left_out))
		return;
	hd_info("cache of config \"%s\": %s may change what cached queries return: "
			"removed its %" PRIu64 " entries (%" PRIu64 " more such records since the last "
			"such line; at most one line a minute)", cfg->name, reason, removed, left_out);
}

/*
 * The store failed for this config (what: the operation; limit: its kind's
 * line limit). Logged at most once a minute: a full disk fails every
 * lookup, store and position write, and a line for each would fill the
 * disk further.
 */
static void
store_trouble(CacheCfg *cfg, HdLogLimit *limit, HdLogLevel level, const char *what,
			  const char *err)
{
	HdCacheLayer *layer = cfg->layer;
	uint64_t	left_out;
	char		hint[200] = "";

	if (!log_now(limit, &left_out))
		return;
	if (hd_store_fenced(layer->store, cfg->id))
		snprintf(hint, sizeof(hint), "; once the cause is fixed, PURGE CACHE %s on the admin "
				 "console lifts the fence", cfg->name);
	if (left_out > 0)
		hd_log(level, "cache of config \"%s\": %s: %s%s (%" PRIu64 " more such failures since "
			   "the last line; at most one line a minute)", cfg->name, what, err, hint, left_out);
	else
		hd_log(level, "cache of config \"%s\": %s: %s%s (more such failures: at most one "
			   "line a minute)", cfg->name, what, err, hint);
}


/* A change of the origin: its entries go, the race rule retains it. */
static int
on_change(void *arg, const HdChange *c)
{
	CacheCfg   *cfg = arg;
	HdCacheLayer *layer = cfg->layer;
	char		err[512];
	uint64_t	removed = 0;
	size_t		n = c->all ? 0 : c->ndeps;
	int			rc;

	if (!c->all)
		rc = hd_store_invalidate(layer->store, cfg->id, c->deps, c->ndeps, c->end, &removed,
								 err, sizeof(err));
	else
		rc = hd_store_invalidate_all(layer->store, cfg->id, c->end, &removed, err, sizeof(err));
	if (rc < 0)
	{
		store_trouble(cfg, &cfg->apply_log, HD_LOG_ERROR, "applying a change record failed", err);
		return -1;
	}
	/* heartbeats invalidate nothing: only changes that do are timed */
	if (!c->heartbeat)
		observe_invalidation(cfg, c);
	layer->dirty = true;
	if (c->end > cfg->persisted_lsn)
		cfg->persisted_lsn = c->end;
	cfg->records++;
	cfg->invalidated += removed;
	if (c->all)
		cfg->change_deps[CHANGE_ALL]++;
	else
	{
		size_t		by_value = 0;

		for (size_t i = 0; i < c->ndeps; i++)
			by_value += c->deps[i].nvalues > 0;
		cfg->change_deps[CHANGE_VALUE] += by_value;
		cfg->change_deps[CHANGE_COLUMN] += c->nunknown;
		cfg->change_deps[CHANGE_RELATION] += c->ndeps - by_value - c->nunknown;
	}
	if (c->all_reason != NULL)
	{
		cfg->ddl_invalidations++;
		log_ddl_invalidation(cfg, c->all_reason, removed);
	}
	if (c->all || n > 0 || c->schema_changed)
		hd_race_retain(&cfg->race, c->xid, c->all || c->schema_changed, c->deps, n);
	if (c->all || c->schema_changed)
	{
		analyses_clear(cfg);
		/* prepared statements mean the new schema from now on */
		layer->session->schema_changed(layer->arg, cfg->id);
	}
	if (removed > 0)
		hd_debug("cache of config \"%s\": %s removed %" PRIu64 " entries", cfg->name,
				 c->text ? c->text : "a change", removed);
	return 0;
}

static void
on_state(void *arg, HdChangeState state, const char *why)
{
	CacheCfg   *cfg = arg;
	HdCacheLayer *layer = cfg->layer;
	char		err[512];
	uint64_t	removed = 0;

	strict_wake_soon(cfg);		/* waiting hits look again (the stream may be down) */
	if (state == HD_CHANGE_CONNECTED)
	{
		HdChangeStatus st;
		HdRaceSnapshot s = {0};

		layer->origin->changes->status(cfg->source, &st);
		cfg->catchup_lsn = st.catchup;
		/*
		 * Transactions running at connect time may have had their commit
		 * records applied (before a restart) without being visible yet: a fill
		 * must see each of them before it may store.
		 */
		if (layer->origin->changes->connect_snapshot(cfg->source, &s) == 0)
		{
			for (size_t i = 0; i < s.nxip; i++)
				hd_race_retain(&cfg->race, s.xip[i], true, NULL, 0);
		}
		else
			hd_race_retain(&cfg->race, 0, true, NULL, 0);	/* unknown: refuses until pruned */
		free(s.xip);
		hd_info("cache of config \"%s\": change stream connected (%s)", cfg->name, why);
		return;
	}
	if (state == HD_CHANGE_LOST)
	{
		char		identity[HD_STORE_IDENTITY_MAX];
		bool		reset;
		char	   *hash;

		cfg->slots_lost++;
		if (hd_store_purge(layer->store, cfg->id, &removed, err, sizeof(err)) < 0)
			hd_error("cache of config \"%s\": purge after a lost slot failed: %s", cfg->name, err);
		/* a new slot: the stored position means nothing now */
		snprintf(identity, sizeof(identity), "%s", cfg->identity);
		hash = strchr(identity, '#');
		if (hash)
			*hash = '\0';
		snprintf(cfg->identity, sizeof(cfg->identity), "%.200s#%" PRId64, identity, wall_ms());
		if (hd_store_bind_slot(layer->store, cfg->id, cfg->identity, &reset, err, sizeof(err)) < 0)
			hd_error("cache of config \"%s\": %s", cfg->name, err);
		cfg->persisted_lsn = 0;
		cfg->syncing = false;	/* the old slot's position: not for the new one */
		analyses_clear(cfg);
		hd_error("cache of config \"%s\": the change stream lost changes (%s); purged %" PRIu64
				 " cached entries", cfg->name, why, removed);
		return;
	}
	hd_debug("cache of config \"%s\": change stream %s: %s", cfg->name,
			 layer->origin->changes->state_name(state), why);
}


static void
cfg_free(HdCacheLayer *layer, CacheCfg *cfg)
{
	HdList		out;
	HdCacheWaiter *w;

	hd_flights_end_all(&cfg->flights);
	/* its waiting hits run their requests on the origin */
	hd_list_init(&out);
	hd_fresh_waits_take_all(&cfg->fresh_waits, &out);
	while ((w = hd_fresh_wait_pop(&out)) != NULL)
		if (layer->session->active(w))
			layer->session->fall_back(w);
	if (cfg->wake.data)
		ev_timer_stop(layer->loop, &cfg->wake);
	layer->origin->changes->free(cfg->source);
	analyses_clear(cfg);
	free(cfg->buckets);
	hd_race_free(&cfg->race);
	hd_list_del(&cfg->link);
	free(cfg);
}

static CacheCfg *
cfg_start(HdCacheLayer *layer, const HdConfig *config)
{
	CacheCfg   *cfg = calloc(1, sizeof(CacheCfg));
	char		err[512];
	char		stored[HD_STORE_IDENTITY_MAX];
	char		base[HD_STORE_IDENTITY_MAX];
	bool		reset = false;
	uint64_t	lsn = 0;
	HdChangeParams params = {0};
	HdChangeCallbacks cb = {on_change, on_state, on_fresh, NULL};

	if (cfg == NULL)
		return NULL;
	memcpy(cfg->name, config->name, sizeof(cfg->name));
	if (hd_race_init(&cfg->race, cfg->name) < 0)
	{
		hd_race_free(&cfg->race);
		free(cfg);
		hd_error("cache of config \"%s\": out of memory; caching is off for it", config->name);
		return NULL;
	}
	cfg->layer = layer;
	hd_flights_init(&cfg->flights, layer->session, flights_count, flights_problem, cfg);
	hd_fresh_waits_init(&cfg->fresh_waits);
	ev_timer_init(&cfg->wake, wake_cb, 0, 0);
	cfg->wake.data = cfg;
	cfg->strict = cfg->flights.strict = config->consistency == HD_CONSISTENCY_STRICT;
	memcpy(cfg->id, config->id, sizeof(cfg->id));
	cfg->max_age = config->max_age;
	cfg->swr = config->stale_while_revalidate;
	hd_list_append(&layer->cfgs, &cfg->link);
	layer->origin->changes->identity(config, base, sizeof(base));
	/* keep a stored identity of the same origin and slot (it may carry a #generation) */
	if (hd_store_slot_identity(layer->store, cfg->id, stored, sizeof(stored), err,
							   sizeof(err)) == 0 &&
		strncmp(stored, base, strlen(base)) == 0 &&
		(stored[strlen(base)] == '\0' || stored[strlen(base)] == '#'))
		snprintf(cfg->identity, sizeof(cfg->identity), "%s", stored);
	else
		snprintf(cfg->identity, sizeof(cfg->identity), "%s", base);
	if (hd_store_bind_slot(layer->store, cfg->id, cfg->identity, &reset, err, sizeof(err)) < 0 ||
		hd_store_applied_pos(layer->store, cfg->id, &lsn, err, sizeof(err)) < 0)
	{
		hd_error("cache of config \"%s\": %s; caching is off for it", config->name, err);
		cfg_free(layer, cfg);
		return NULL;
	}
	if (reset)
		hd_info("cache of config \"%s\": new origin or slot (%s): starting empty", config->name,
				cfg->identity);
	cfg->persisted_lsn = lsn;
	params.loop = layer->loop;
	params.config = config;
	params.state_dir = layer->settings->state_dir;
	params.start = lsn;
	params.connect_timeout_ms = layer->settings->server_connect_timeout_ms;
	params.max_lag_ms = layer->settings->max_lag_ms;
	cb.arg = cfg;
	cfg->source = layer->origin->changes->start(&params, &cb, err, sizeof(err));
	if (cfg->source == NULL)
	{
		hd_error("cache of config \"%s\": cannot start its change stream: %s", config->name, err);
		cfg_free(layer, cfg);
		return NULL;
	}
	return cfg;
}

void
hd_cache_layer_configs(HdCacheLayer *layer)
{
	const HdConfigList *configs;
	HdList	   *item;
	HdList	   *tmp;

	if (layer == NULL || layer->store == NULL)
		return;					/* no streams without a store: started once it opens */
	configs = layer->configs;
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		const HdConfig *now = hd_configs_find(configs, cfg->id);
		char		base[HD_STORE_IDENTITY_MAX];
		char		err[512];
		uint64_t	removed;

		if (now)
			layer->origin->changes->identity(now, base, sizeof(base));
		if (now && hd_config_caches(now) && strncmp(cfg->identity, base, strlen(base)) == 0)
		{
			cfg->max_age = now->max_age;
			cfg->swr = now->stale_while_revalidate;
			cfg->strict = cfg->flights.strict = now->consistency == HD_CONSISTENCY_STRICT;
			cfg->stalled_at = 0;
			strict_wake_soon(cfg);	/* bounded now: its waiters' hits are served */
			continue;
		}
		/* deleted, caching turned off, or another origin: its entries go */
		hd_info("cache of config \"%s\": %s: stopping its change stream, dropping its entries",
				cfg->name, now == NULL ? "deleted" : !hd_config_caches(now) ?
				"caching disabled" : "origin changed");
		if (hd_store_purge(layer->store, cfg->id, &removed, err, sizeof(err)) < 0)
			hd_error("cache of config \"%s\": %s", cfg->name, err);
		if (now == NULL)
		{
			bool		reset;

			(void) hd_store_bind_slot(layer->store, cfg->id, "", &reset, err, sizeof(err));
		}
		cfg_free(layer, cfg);
	}
	for (size_t i = 0; i < configs->count; i++)
	{
		const HdConfig *config = &configs->items[i];

		if (hd_config_caches(config) && find_cfg(layer, config->id) == NULL)
			(void) cfg_start(layer, config);
	}
}

/*
 * The store's marks of changes with values can refuse only puts whose token
 * is older (store.h): the fills in flight, in the layer's jobs. Below the
 * oldest of them, the marks go.
 */
static void
forget_marks(HdCacheLayer *layer)
{
	uint64_t	oldest = hd_store_token(layer->store);
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &layer->jobs)
	{
		const HdCacheJob *job = hd_container_of(item, HdCacheJob, link);

		if (!job->analysis && job->token < oldest)
			oldest = job->token;
	}
	hd_store_forget_marks(layer->store, oldest);
}

/* Let each stream confirm its position as it was when the sync began. */
static void
confirm_synced(HdCacheLayer *layer)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		if (cfg->syncing)
			layer->origin->changes->set_durable(cfg->source, cfg->syncing_lsn);
		cfg->syncing = false;
	}
}

static void
sync_failed(HdCacheLayer *layer, const char *err)
{
	uint64_t	left_out;

	layer->dirty = true;		/* again at the next second */
	if (log_now(&layer->sync_log, &left_out))
		hd_error("cache: sync failed (positions are not confirmed): %s (%" PRIu64
				 " more failures since the last such line; logged at most once a "
				 "minute)", err, left_out);
}

/*
 * The store's sync, about once a second while anything was written, in a
 * thread of the store's (hd_store_sync_start()): an fdatasync that takes tens
 * of milliseconds on a busy disk would otherwise stall the loop, change
 * records and clients alike. Polled at every tick; once it succeeded, the
 * streams confirm what was persisted when it began (records applied during
 * it are not durable yet). Without a thread, the sync blocks here as it
 * always did.
 */
static void
sync_tick(HdCacheLayer *layer, double now)
{
	HdList	   *item;
	HdList	   *tmp;
	char		err[512];

	switch (hd_store_sync_poll(layer->store, err, sizeof(err)))
	{
		case HD_STORE_SYNC_RUNNING:
			return;
		case HD_STORE_SYNC_DONE:
			confirm_synced(layer);
			break;
		case HD_STORE_SYNC_FAILED:
			sync_failed(layer, err);
			break;
		case HD_STORE_SYNC_IDLE:
			break;
	}
	if (!layer->dirty || now - layer->last_sync < 1.0)
		return;
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		cfg->syncing_lsn = cfg->persisted_lsn;
		cfg->syncing = true;
	}
	layer->last_sync = now;
	layer->dirty = false;		/* writes from now on set it again */
	if (hd_store_sync_start(layer->store, err, sizeof(err)) == 0)
		return;
	hd_debug("cache: %s; syncing in the loop", err);
	if (hd_store_sync(layer->store, err, sizeof(err)) < 0)
		sync_failed(layer, err);
	else
		confirm_synced(layer);
}

/*
 * Persist the streams' positions; write the hits' buffered LRU order (not
 * synced: hits themselves never write, store.h; the buffer is small,
 * LRU_BATCH, so that this write, which holds up every client of the loop,
 * stays short); sync (sync_tick()); let the streams confirm what is
 * durable.
 */
static void
timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdCacheLayer *layer = w->data;
	HdList	   *item;
	HdList	   *tmp;
	char		err[512];
	double		now = ev_now(loop);

	(void) revents;
	if (layer->store == NULL)
	{
		store_retry(layer, now);
		return;
	}
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		HdChangeStatus st;

		layer->origin->changes->status(cfg->source, &st);
		if (st.applied > cfg->persisted_lsn)
		{
			if (hd_store_invalidate(layer->store, cfg->id, NULL, 0, st.applied,
									NULL, err, sizeof(err)) < 0)
				store_trouble(cfg, &cfg->apply_log, HD_LOG_ERROR, "writing the stream's position failed", err);
			else
			{
				cfg->persisted_lsn = st.applied;
				layer->dirty = true;
			}
		}
		hd_race_prune(&cfg->race);
		hd_flight_timeouts(&cfg->flights, ev_time(),
						   layer->settings->query_wait_timeout_ms / 1000.0);
		strict_timeouts(cfg, layer->settings->max_lag_ms / 1000.0);
	}
	forget_marks(layer);
	/* the hits' LRU order, buffered by the store (a failure drops it, counted) */
	(void) hd_store_flush_lru(layer->store);
	sync_tick(layer, now);
}

/* Open the store (a damaged one is wiped and opened empty). */
static int
store_open(HdCacheLayer *layer, char *err, size_t errlen)
{
	const HdSettings *settings = layer->settings;
	HdStoreOptions opts;
	int			rc;

	(void) mkdir(settings->state_dir, 0700);
	hd_store_options_init(&opts);
	opts.lru_batch = LRU_BATCH;
	opts.map_size = (size_t) settings->cache_map_size;
	opts.max_bytes = (uint64_t) settings->cache_max_bytes;
	/* a record holds the key and a header too: leave room for them */
	opts.max_entry_bytes = settings->cache_max_entry_bytes > 0 ?
		(uint64_t) settings->cache_max_entry_bytes + 64 * 1024 : 0;
	rc = hd_store_open(layer->dir, &opts, &layer->store, err, errlen);
	if (rc == HD_STORE_DAMAGED)
	{
		hd_error("the cache in %s is damaged (%s): wiping it and starting empty", layer->dir, err);
		if (hd_store_wipe(layer->dir, err, errlen) == 0)
			rc = hd_store_open(layer->dir, &opts, &layer->store, err, errlen);
	}
	/* a store of an older format was emptied: say why it starts cold */
	if (rc == HD_STORE_OK && hd_store_open_notice(layer->store) != NULL)
		hd_warning("%s", hd_store_open_notice(layer->store));
	return rc == HD_STORE_OK ? 0 : -1;
}

/*
 * The store could not be opened (at start, or since): try again every
 * STORE_RETRY_INTERVAL, so that a cause removed (a directory made usable
 * again, space freed, another process gone) brings the cache back without
 * a restart. Failures are logged at most once a minute.
 */
static void
store_retry(HdCacheLayer *layer, double now)
{
	uint64_t	left_out;

	if (now - layer->open_tried_at < STORE_RETRY_INTERVAL)
		return;
	layer->open_tried_at = now;
	if (store_open(layer, layer->open_error, sizeof(layer->open_error)) < 0)
	{
		layer->open_failures++;
		if (log_now(&layer->open_log, &left_out))
			hd_error("the cache in %s still cannot be used (%s): running without a cache, "
					 "retrying every %.0f s (%u attempts failed so far)", layer->dir,
					 layer->open_error, STORE_RETRY_INTERVAL, layer->open_failures);
		return;
	}
	hd_info("the cache in %s is open, after %u failed attempts: caching starts", layer->dir,
			layer->open_failures);
	layer->open_failures = 0;
	layer->open_error[0] = '\0';
	layer->last_sync = now;
	hd_cache_layer_configs(layer);
}

int
hd_cache_layer_open(struct ev_loop *loop, const HdSettings *settings, const HdConfigList *configs,
					const HdOriginDriver *origin, const HdCacheSessionOps *session, void *arg,
					HdCacheLayer **out, char *err, size_t errlen)
{
	HdCacheLayer *layer = calloc(1, sizeof(HdCacheLayer));

	*out = layer;
	if (layer == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	layer->loop = loop;
	layer->settings = settings;
	layer->configs = configs;
	layer->session = session;
	layer->origin = origin;
	layer->arg = arg;
	hd_list_init(&layer->cfgs);
	hd_list_init(&layer->jobs);
	snprintf(layer->dir, sizeof(layer->dir), "%s/cache", settings->state_dir);
	ev_timer_init(&layer->timer, timer_cb, 0.2, 0.2);
	layer->timer.data = layer;
	ev_timer_start(loop, &layer->timer);
	layer->last_sync = ev_now(loop);
	layer->open_tried_at = ev_now(loop);
	if (store_open(layer, err, errlen) < 0)
	{
		snprintf(layer->open_error, sizeof(layer->open_error), "%s", err);
		layer->open_failures = 1;
		(void) log_now(&layer->open_log, &(uint64_t) {0});	/* the caller logs this one */
		return -1;
	}
	hd_cache_layer_configs(layer);
	return 0;
}

void
hd_cache_layer_close(HdCacheLayer *layer)
{
	HdList	   *item;
	char		err[512];

	if (layer == NULL)
		return;
	ev_timer_stop(layer->loop, &layer->timer);
	while ((item = hd_list_first(&layer->cfgs)) != NULL)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		HdChangeStatus st;

		layer->origin->changes->status(cfg->source, &st);
		if (st.applied > cfg->persisted_lsn)
			(void) hd_store_invalidate(layer->store, cfg->id, NULL, 0, st.applied,
									   NULL, err, sizeof(err));
		cfg_free(layer, cfg);
	}
	/* jobs still on origin connections outlive the layer: they only free then */
	while ((item = hd_list_first(&layer->jobs)) != NULL)
	{
		hd_container_of(item, HdCacheJob, link)->layer = NULL;
		hd_list_del(item);
	}
	if (hd_store_close(layer->store, err, sizeof(err)) < 0)
		hd_error("cache: closing failed: %s", err);
	free(layer);
}

/* ---------------------------------------------------------------------------
 * Decisions
 */

/*
 * How far behind the origin the applied stream may be, in seconds: the age of
 * the newest freshness probe whose origin position the stream has applied
 * (change.h). Every transaction the origin acknowledged before that probe was
 * sent has been applied. -1: not known yet.
 */
static double
stream_age(const HdChangeStatus *st)
{
	if (st->fresh_as_of <= 0)
		return -1.0;
	return hd_clock_now() - st->fresh_as_of;
}

/* Why hits cannot be served now to a session whose writes reached ryw_pos, or NULL. */
static const char *
stream_problem(CacheCfg *cfg, HdPos ryw_pos)
{
	const HdChangeSourceOps *changes = cfg->layer->origin->changes;
	HdChangeStatus st;
	double		age;
	double		max_lag = cfg->layer->settings->max_lag_ms / 1000.0;

	if (cfg->source == NULL || !changes->connected(cfg->source))
		return "stream-down";
	changes->status(cfg->source, &st);
	if (st.applied < cfg->catchup_lsn)
		return "lagging";			/* (no message yet: not known to be caught up) */
	if (cfg->strict)
	{
		/* each hit waits for its own freshness (strict_wait()), unless the stream stalls */
		if (cfg->stalled_at > 0 && st.fresh_as_of < cfg->stalled_at)
			return "lagging";
		cfg->stalled_at = 0;
	}
	else
	{
		age = stream_age(&st);
		if (age < 0 || age > max_lag)
			return "lagging";
	}
	if (ryw_pos > st.applied)
		return "read-your-writes";
	return NULL;
}

bool
hd_cache_caches(HdCacheLayer *layer, const char *config_id)
{
	return find_cfg(layer, config_id) != NULL;
}

void
hd_cache_count(HdCacheLayer *layer, const char *config_id, const char *reason)
{
	CacheCfg   *cfg = find_cfg(layer, config_id);

	if (cfg != NULL)
		count_reason(cfg, reason);
}

/* ---------------------------------------------------------------------------
 * Request coalescing: one fill per key in flight, other sessions wait for it
 */

void
hd_cache_waiter_init(HdCacheWaiter *waiter)
{
	hd_flight_waiter_init(waiter);
}

void
hd_cache_waiter_gone(HdCacheWaiter *waiter)
{
	hd_fresh_wait_leave(waiter);
	hd_flight_waiter_gone(waiter);
}

/* ---------------------------------------------------------------------------
 * Strict consistency: hits wait until the stream has applied every commit
 * the origin acknowledged before they arrived
 */

/* Whether the hit of a request that arrived at `arrived` may be served now. */
static bool
strict_fresh(CacheCfg *cfg, double arrived)
{
	HdChangeStatus st;

	cfg->layer->origin->changes->status(cfg->source, &st);
	return st.fresh_as_of > 0 && st.fresh_as_of >= arrived;
}

/*
 * The hit waits (the session is parked, nothing goes to the origin): the
 * source is asked for a probe sent after it arrived, which answers it and
 * every hit that arrived before it was sent.
 */
static void
strict_wait(CacheCfg *cfg, HdCacheWaiter *w)
{
	hd_fresh_wait_add(&cfg->fresh_waits, w, hd_clock_now());
	cfg->strict_waits++;
	cfg->layer->origin->changes->want_fresh(cfg->source, w->arrived);
}

/* Each waiter on `out` decides again: a hit now, or whatever its request meets. */
static void
strict_decide_again(CacheCfg *cfg, HdList *out)
{
	HdCacheWaiter *w;

	while ((w = hd_fresh_wait_pop(out)) != NULL)
		if (cfg->layer->session->active(w))
			cfg->layer->session->decide_again(w);
}

/*
 * From the loop, after fresh_as_of moved or the stream's state changed:
 * the waiters it answers decide again; with the stream down, all of them
 * (they go to the origin, counted as stream-down).
 */
static void
wake_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	CacheCfg   *cfg = t->data;
	const HdChangeSourceOps *changes = cfg->layer->origin->changes;
	HdChangeStatus st;
	HdList		out;

	(void) loop;
	(void) revents;
	hd_list_init(&out);
	if (!cfg->strict || !changes->connected(cfg->source))
		hd_fresh_waits_take_all(&cfg->fresh_waits, &out);
	else
	{
		changes->status(cfg->source, &st);
		hd_fresh_waits_take_answered(&cfg->fresh_waits, st.fresh_as_of, &out);
	}
	strict_decide_again(cfg, &out);
}

static void
strict_wake_soon(CacheCfg *cfg)
{
	if (hd_fresh_waits_empty(&cfg->fresh_waits) || ev_is_active(&cfg->wake))
		return;
	ev_timer_set(&cfg->wake, 0, 0);
	ev_timer_start(cfg->layer->loop, &cfg->wake);
}

static void
on_fresh(void *arg)
{
	strict_wake_soon(arg);
}

/*
 * Hits that waited max_lag go to the origin (never stale): counted, and
 * until the stream is fresh past the latest of them, hits do not wait but
 * go to the origin at once (bypass:lagging), as in a bounded config.
 */
static void
strict_timeouts(CacheCfg *cfg, double limit)
{
	HdList		out;
	HdCacheWaiter *w;

	hd_list_init(&out);
	hd_fresh_waits_take_expired(&cfg->fresh_waits, hd_clock_now(), limit, &out);
	while ((w = hd_fresh_wait_pop(&out)) != NULL)
	{
		if (w->arrived > cfg->stalled_at)
			cfg->stalled_at = w->arrived;
		count_reason(cfg, "bypass:strict-wait-timeout");
		if (cfg->layer->session->active(w))
			cfg->layer->session->fall_back(w);
	}
}

/*
 * A miss (or a stale entry), or a statement not analysed yet: lead a new
 * fill (analysis) for the key, or wait for the one in flight.
 */
static HdCacheDecision
lead_or_wait(CacheCfg *cfg, HdCacheWaiter *w, bool analysis, const unsigned char *key,
			 size_t keylen)
{
	if (hd_flight_join(&cfg->flights, w, analysis, key, keylen, cfg->race.order, ev_time()))
	{
		if (analysis)
			count_reason(cfg, "analysis-coalesced");
		return HD_CACHE_WAIT;
	}
	return analysis ? HD_CACHE_ANALYZE : HD_CACHE_FILL;
}

/*
 * The leader's job starts on its connection: the flight it led (taken first,
 * so that the job's start cannot end it) goes to that job, or, when none
 * started, ends: its waiters run their own requests.
 */
HdCacheLeadResult
hd_cache_lead(HdCacheLayer *layer, HdCacheWaiter *leader, void *conn)
{
	HdFlight   *flight = hd_flight_take(leader);
	HdCacheJob *job = NULL;
	double		sent_at = hd_clock_now();	/* what the job reads is at least as new */
	HdCacheLeadResult rc = layer->origin->lead(layer->arg, conn, leader, &job);

	if (flight == NULL)
		return rc;
	if (rc == HD_CACHE_LEAD_SENT && job &&
		hd_flight_matches(flight, job->analysis, job->key, job->keylen))
		hd_flight_attach(flight, &job->flight, sent_at);
	else
		hd_flight_end(flight, NULL, 0, 0);
	return rc;
}

int
hd_cache_after_write(HdCacheLayer *layer, const char *config_id, HdCacheWaiter *writer,
					 void *conn)
{
	if (find_cfg(layer, config_id) == NULL)
		return 0;				/* not cached: nobody's hits to hold back */
	return layer->origin->ryw(layer->arg, conn, writer) < 0 ? -1 : 1;
}

void
hd_cache_ryw_reached(HdCacheWaiter *writer, HdPos pos)
{
	if (pos > writer->ryw_pos)
		writer->ryw_pos = pos;
}

/* ---------------------------------------------------------------------------
 * Jobs: analyses and fills
 */

static HdCacheJob *
job_new(HdCacheLayer *layer, CacheCfg *cfg, bool analysis, const unsigned char *key,
		size_t keylen)
{
	HdCacheJob *job = calloc(1, sizeof(HdCacheJob));

	if (job == NULL || (job->key = malloc(keylen ? keylen : 1)) == NULL)
	{
		free(job);
		return NULL;
	}
	memcpy(job->key, key, keylen);
	job->keylen = keylen;
	job->layer = layer;
	hd_list_append(&layer->jobs, &job->link);
	job->analysis = analysis;
	memcpy(job->cfg_id, cfg->id, sizeof(job->cfg_id));
	job->gen = cfg->analysis_gen;
	return job;
}

HdCacheJob *
hd_cache_analysis_begin(HdCacheLayer *layer, const char *config_id, const unsigned char *akey,
						size_t akeylen)
{
	CacheCfg   *cfg = find_cfg(layer, config_id);

	return cfg ? job_new(layer, cfg, true, akey, akeylen) : NULL;
}

/* A fill of key reading a's relations; numbered for the race rule last. */
static HdCacheJob *
fill_new(CacheCfg *cfg, const Analysis *a, const unsigned char *key, size_t keylen,
		 int64_t max_age_ms)
{
	HdCacheJob *job = job_new(cfg->layer, cfg, false, key, keylen);

	if (job == NULL)
		return NULL;
	job->max_age_ms = max_age_ms >= 0 ? max_age_ms : (int64_t) cfg->max_age * 1000;
	if ((job->deps = deps_copy(a->deps, a->ndeps)) == NULL)
	{
		hd_cache_job_free(job, NULL, 0);
		return NULL;
	}
	job->ndeps = a->ndeps;
	if (a->bind.n > 0 && !bindings_dup(&job->bind, &a->bind))
		memset(&job->bind, 0, sizeof(job->bind));	/* out of memory: every row */
	/* the race guard's token, before anything is sent */
	job->token = hd_store_token(cfg->layer->store);
	job->seq = hd_race_fill_begin(&cfg->race);
	job->in_flight = true;
	return job;
}

HdCacheJob *
hd_cache_fill_begin(HdCacheLayer *layer, const char *config_id, const unsigned char *akey,
					size_t akeylen, const unsigned char *key, size_t keylen, int64_t max_age_ms,
					bool *dropped)
{
	CacheCfg   *cfg = find_cfg(layer, config_id);
	Analysis   *a;

	*dropped = false;
	if (cfg == NULL)
		return NULL;
	a = analysis_find(cfg, akey, akeylen, ev_time());
	if (a == NULL || !a->cacheable)
	{
		*dropped = true;		/* dropped by DDL meanwhile: decide again */
		return NULL;
	}
	return fill_new(cfg, a, key, keylen, max_age_ms);
}

void
hd_cache_analysis_finish(HdCacheJob *job, const HdCacheAnalysisOutcome *o)
{
	CacheCfg   *cfg = find_cfg(job->layer, job->cfg_id);

	if (cfg == NULL || cfg->analysis_gen != job->gen)
		return;					/* DDL meanwhile: ask again next time */
	if (o->error)
	{
		char		reason[300];

		snprintf(reason, sizeof(reason), "error: %s", o->error);
		hd_debug("cache of config \"%s\": analysis failed: %s", cfg->name, o->error);
		analysis_store(cfg, job->key, job->keylen, false, reason, NULL, 0, false, NULL,
					   ev_time() + ANALYSIS_ERROR_TTL);
		return;
	}
	if (!o->answered)
		return;
	analysis_store(cfg, job->key, job->keylen, o->cacheable, o->reason ? o->reason : "",
				   o->cacheable ? o->deps : NULL, o->cacheable ? o->ndeps : 0,
				   o->cacheable && o->deps_unreadable, o->cacheable ? o : NULL, 0);
}

void
hd_cache_job_params(const HdCacheJob *job, const bool **want, const uint32_t **types,
					size_t *nparams)
{
	*want = job->bind.want;
	*types = job->bind.types;
	*nparams = job->bind.nparams;
}

/*
 * How many values a binding names in this execution, and (out not NULL)
 * the values themselves: 0 when one of its parameters has no known hashes
 * or there are more than HD_BIND_MAX_VALUES (then it binds nothing).
 */
static size_t
binding_values(const HdBinding *b, const HdCacheFillOutcome *o, uint64_t *out)
{
	size_t		n;

	if (b->nhashes > HD_BIND_MAX_VALUES)
		return 0;
	if (out && b->nhashes > 0)
		memcpy(out, b->hashes, b->nhashes * sizeof(uint64_t));
	n = b->nhashes;
	for (uint32_t k = 0; k < b->nparams; k++)
	{
		size_t		i = (size_t) b->params[k] - 1;
		const HdParamHashes *ph = i < o->nparams ? &o->params[i] : NULL;

		if (ph == NULL || !ph->known || ph->nhashes > HD_BIND_MAX_VALUES - n)
			return 0;
		if (out && ph->nhashes > 0)
			memcpy(out + n, ph->hashes, ph->nhashes * sizeof(uint64_t));
		n += ph->nhashes;
	}
	return n;
}

/*
 * Narrow each of a fill's dependencies (every row of a relation, from the
 * analysis) to the rows with the values of one of its bindings: the first
 * whose values are all known in this execution and whose column the change
 * source names rows by (change.h watch()). Otherwise, or out of memory, the
 * relation stays read whole: more invalidations, never fewer.
 */
static void
bind_deps(CacheCfg *cfg, HdCacheJob *job, const HdCacheFillOutcome *o)
{
	const HdChangeSourceOps *changes = cfg->layer->origin->changes;
	size_t		used = 0;
	size_t		total = 0;

	if (job->bind.n == 0 || job->values != NULL || changes->watch == NULL)
		return;
	/* room for every binding's values (counted): each relation takes one binding's at most */
	for (size_t j = 0; j < job->bind.n; j++)
		total += binding_values(&job->bind.b[j], o, NULL);
	if (total == 0 || (job->values = malloc(total * sizeof(uint64_t))) == NULL)
		return;
	for (size_t i = 0; i < job->ndeps; i++)
	{
		HdDep	   *d = &job->deps[i];

		for (size_t j = 0; j < job->bind.n; j++)
		{
			const HdBinding *b = &job->bind.b[j];
			size_t		n;

			if (b->relation != d->relation || (n = binding_values(b, o, NULL)) == 0 ||
				n > total - used || !changes->watch(cfg->source, b->relation, b->column))
				continue;
			d->column = b->column;
			d->nvalues = (uint32_t) binding_values(b, o, job->values + used);
			d->values = job->values + used;
			used += n;
			break;
		}
	}
}

/* Whether the fill's analysis bound relation (to values of some column). */
static bool
bound_in_analysis(const HdCacheJob *job, uint64_t relation)
{
	for (size_t j = 0; j < job->bind.n; j++)
		if (job->bind.b[j].relation == relation)
			return true;
	return false;
}

/* Store a fill's result that passed the race rule. */
static bool
fill_store(CacheCfg *cfg, HdCacheJob *job, const HdCacheFillOutcome *o)
{
	HdCacheLayer *layer = cfg->layer;
	HdStorePut	put = {0};
	HdStorePutOutcome outcome;
	char		err[512];
	int			rc;

	if (job->max_age_ms <= 0)
	{
		count_reason(cfg, "not-stored:max_age 0");
		return false;
	}
	put.config_id = cfg->id;
	put.key = job->key;
	put.keylen = job->keylen;
	put.value = o->bytes;
	put.len = o->len;
	put.deps = job->deps;
	put.ndeps = job->ndeps;
	put.token = job->token;
	put.now_ms = wall_ms();
	put.max_age_ms = job->max_age_ms;	/* the config's, or the statement's hint */
	put.swr_ms = (int64_t) cfg->swr * 1000;
	rc = hd_store_put(layer->store, &put, &outcome, err, sizeof(err));
	if (rc < 0)
	{
		store_trouble(cfg, &cfg->lookup_log, HD_LOG_WARNING, "storing a result failed", err);
		count_reason(cfg, "bypass:error");
		return false;
	}
	if (outcome == HD_STORE_STORED)
	{
		cfg->stored++;
		/* what the entries kept are bound to (SHOW CACHE, /metrics) */
		for (size_t i = 0; i < job->ndeps; i++)
		{
			if (job->deps[i].nvalues > 0)
				cfg->deps_by_value++;
			else if (bound_in_analysis(job, job->deps[i].relation))
				cfg->deps_whole++;
		}
		return true;
	}
	else if (outcome == HD_STORE_SKIP_RACED)
		count_reason(cfg, "bypass:race");
	else if (outcome == HD_STORE_SKIP_OVERSIZED)
		count_reason(cfg, "bypass:oversized");
	else
		count_reason(cfg, "not-stored:full");
	return false;
}

/*
 * A fill's result is stored unless its snapshot misses a change of its
 * relations that was applied already (the race rule). Either way it is the
 * answer for a waiter that began to wait before every change it misses was
 * applied: at that moment a stored entry would have been a hit.
 */
bool
hd_cache_fill_finish(HdCacheJob *job, const HdCacheFillOutcome *o, bool *check_state)
{
	CacheCfg   *cfg = find_cfg(job->layer, job->cfg_id);
	bool		raced;

	*check_state = false;
	job->joined_before = 0;
	if (cfg == NULL)
		return false;
	(void) hd_race_fill_done(&cfg->race, job->seq);
	job->in_flight = false;
	if (!job->refresh)
		cfg->misses++;
	if (o->failed || o->snapshot == NULL)
	{
		count_reason(cfg, o->failed ? "not-stored:failed" : "not-stored:no snapshot");
		return false;
	}
	if (o->state_changed)
	{
		/* the connection's session is not what its key says: check it after */
		count_reason(cfg, "not-stored:session state");
		hd_warning("cache of config \"%s\": a fill found the origin connection's session "
				   "state other than the agent set it up: not stored", cfg->name);
		*check_state = true;
		return false;
	}
	if (!o->complete)
	{
		count_reason(cfg, "bypass:oversized");
		return false;
	}
	bind_deps(cfg, job, o);
	raced = hd_race_check(&cfg->race, o->snapshot, job->deps, job->ndeps, &job->joined_before);
	if (job->max_age_ms <= 0)
		job->joined_before = 0;		/* asked never to be reused */
	if (raced)
	{
		count_reason(cfg, "bypass:race");
		hd_info("cache of config \"%s\": a fill read under a snapshot that does not see an "
				"invalidation already applied: not stored (race)", cfg->name);
		return false;
	}
	job->stored = fill_store(cfg, job, o);
	return job->stored;
}

void
hd_cache_job_free(HdCacheJob *job, const void *bytes, size_t len)
{
	if (job == NULL)
		return;
	if (job->in_flight)
	{
		CacheCfg   *cfg = find_cfg(job->layer, job->cfg_id);

		if (cfg)
			(void) hd_race_fill_done(&cfg->race, job->seq);
	}
	if (job->flight)
	{
		/* the waiters: the result, or their own requests */
		if (!job->analysis && job->joined_before > 0)
			hd_flight_end(job->flight, bytes, len,
						  job->stored ? UINT64_MAX : job->joined_before);
		else
			hd_flight_end(job->flight, NULL, 0, 0);
	}
	hd_list_del(&job->link);
	free(job->key);
	free(job->deps);
	free(job->values);
	bindings_free(&job->bind);
	free(job);
}

/* ---------------------------------------------------------------------------
 * The decision
 */

/*
 * A background refresh of a stale entry: a fill with no session, on an idle
 * origin connection fit for the requester's request (the origin side finds
 * one); none free, or a fill of the key already in flight: no refresh.
 */
static void
start_refresh(CacheCfg *cfg, HdCacheWaiter *requester, const Analysis *a,
			  const unsigned char *key, size_t keylen, int64_t max_age_ms)
{
	HdCacheLayer *layer = cfg->layer;
	void	   *conn;
	HdFlight   *f;
	HdCacheJob *job;

	if (hd_flight_find(&cfg->flights, false, key, keylen) != NULL)
		return;					/* a fill or refresh of it runs already */
	conn = layer->origin->refresh_conn(layer->arg, requester);
	if (conn == NULL)
	{
		count_reason(cfg, "refresh-skipped:no idle connection");
		return;
	}
	job = fill_new(cfg, a, key, keylen, max_age_ms);
	if (job == NULL)
		return;					/* nothing was sent: the connection stays idle */
	job->refresh = true;
	f = hd_flight_new(&cfg->flights, false, key, keylen);
	if (f == NULL)
	{
		hd_cache_job_free(job, NULL, 0);
		return;
	}
	hd_flight_attach(f, &job->flight, hd_clock_now());
	if (layer->origin->refresh(layer->arg, conn, requester, job) < 0)
	{
		hd_cache_job_free(job, NULL, 0);
		return;
	}
	cfg->refreshes++;
}

void
hd_cache_decide(HdCacheLayer *layer, const char *config_id, HdCacheWaiter *waiter,
				const unsigned char *akey, size_t akeylen, const unsigned char *key,
				size_t keylen, int64_t max_age_ms, HdCacheVerdict *v)
{
	CacheCfg   *cfg = find_cfg(layer, config_id);
	const char *problem;
	Analysis   *a;
	HdStoreHit	hit = {0};
	char		err[512];
	char		name[96];

	memset(v, 0, sizeof(*v));
	v->decision = HD_CACHE_FORWARD;
	if (cfg == NULL)
		return;					/* nothing to count: caching is off for the config */
	a = analysis_find(cfg, akey, akeylen, ev_time());
	if (a == NULL)
	{
		v->decision = lead_or_wait(cfg, waiter, true, akey, akeylen);
		return;
	}
	problem = a->cacheable ? stream_problem(cfg, waiter->ryw_pos) : a->reason;
	if (problem != NULL)
	{
		snprintf(name, sizeof(name), "bypass:%s", problem);
		count_reason(cfg, name);
		return;
	}
	if (hd_store_get(layer->store, cfg->id, key, keylen, wall_ms(), &hit, err, sizeof(err)) < 0)
	{
		store_trouble(cfg, &cfg->lookup_log, HD_LOG_WARNING, "lookup failed", err);
		count_reason(cfg, hd_store_fenced(layer->store, cfg->id) ?
					 "bypass:fenced" : "bypass:error");
		return;
	}
	if ((hit.status == HD_STORE_FRESH || (hit.status == HD_STORE_STALE && cfg->swr > 0)) &&
		cfg->strict && !strict_fresh(cfg, waiter->arrived))
	{
		hd_store_hit_release(&hit);
		strict_wait(cfg, waiter);
		v->decision = HD_CACHE_WAIT;
		return;
	}
	if (hit.status == HD_STORE_FRESH || (hit.status == HD_STORE_STALE && cfg->swr > 0))
	{
		v->stale = hit.status == HD_STORE_STALE;

		/*
		 * A stale entry (stale-while-revalidate) is served, and refreshed once:
		 * the refresh copies the request before it leaves the session's input.
		 */
		if (v->stale)
			start_refresh(cfg, waiter, a, key, keylen, max_age_ms);
		v->decision = HD_CACHE_SERVE;
		v->bytes = v->hit = hit.bytes;	/* taken from the hit */
		v->len = hit.len;
		hit.bytes = NULL;
		hd_store_hit_release(&hit);
		return;
	}
	hd_store_hit_release(&hit);	/* STALE or MISS */
	v->decision = lead_or_wait(cfg, waiter, false, key, keylen);
}

void
hd_cache_served(HdCacheLayer *layer, const char *config_id, HdCacheVerdict *v, bool ok)
{
	CacheCfg   *cfg = find_cfg(layer, config_id);

	free(v->hit);
	v->hit = NULL;
	v->bytes = NULL;
	if (!ok || cfg == NULL)
		return;
	if (v->stale)
		cfg->stale_hits++;
	else
		cfg->hits++;
}

/* ---------------------------------------------------------------------------
 * Admin and metrics
 */

static void
fmt_u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%" PRIu64, v);
}

void
hd_cache_show(HdCacheLayer *layer, void (*row) (void *arg, const char *const *values, int n),
			  void *arg)
{
	HdList	   *item;
	HdList	   *tmp;

	if (layer == NULL)
		return;
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		HdChangeStatus st;
		char		v[HD_CACHE_SHOW_COLUMNS][64];
		char		bypass[2048] = "";
		const char *values[HD_CACHE_SHOW_COLUMNS];
		uint64_t	entries = 0;
		uint64_t	bytes = 0;
		size_t		off = 0;
		double		lag;
		/* the counting columns of SHOW CACHE, by position */
		static const int count_cols[] = {1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19,
		20, 21, 22, 23};
		uint64_t	count[HD_CACHE_SHOW_COLUMNS] = {0};

		hd_store_config_usage(layer->store, cfg->id, &entries, &bytes);
		layer->origin->changes->status(cfg->source, &st);
		for (size_t i = 0; i < cfg->nreasons && off < sizeof(bypass) - 80; i++)
			off += (size_t) snprintf(bypass + off, sizeof(bypass) - off, "%s%s=%" PRIu64,
									 off ? ", " : "", cfg->reasons[i].name, cfg->reasons[i].count);
		count[1] = entries;
		count[2] = bytes;
		count[3] = cfg->hits;
		count[4] = cfg->misses;
		count[5] = cfg->stored;
		count[6] = cfg->invalidated;
		count[11] = cfg->slots_lost;
		count[12] = cfg->flights.coalesced;
		count[13] = cfg->stale_hits;
		count[14] = cfg->refreshes;
		count[15] = cfg->ddl_invalidations;
		count[16] = cfg->deps_by_value;
		count[17] = cfg->deps_whole;
		for (int k = 0; k < 4; k++)
			count[18 + k] = cfg->change_deps[k];
		count[22] = cfg->strict_waits;
		count[23] = st.probes_on_demand;
		for (size_t i = 0; i < sizeof(count_cols) / sizeof(count_cols[0]); i++)
		{
			fmt_u64(v[count_cols[i]], 64, count[count_cols[i]]);
			values[count_cols[i]] = v[count_cols[i]];
		}
		values[0] = cfg->name;
		values[7] = bypass;
		values[8] = layer->origin->changes->connected(cfg->source) ? "yes" : "no";
		layer->origin->changes->format_pos(st.applied, v[9], 64);
		values[9] = v[9];
		/* what hits are held to: max_lag */
		lag = stream_age(&st);
		snprintf(v[10], 64, "%.3f", lag);
		values[10] = v[10];
		row(arg, values, HD_CACHE_SHOW_COLUMNS);
	}
}

int
hd_cache_purge_config(HdCacheLayer *layer, const char *config_id, uint64_t *removed, char *err,
					  size_t errlen)
{
	*removed = 0;
	if (layer == NULL || layer->store == NULL)
	{
		snprintf(err, errlen, "the cache in %s is not open (%s); the agent tries again every "
				 "%.0f s", layer ? layer->dir : "the state directory",
				 layer ? layer->open_error : "out of memory", STORE_RETRY_INTERVAL);
		return -1;
	}
	return hd_store_purge(layer->store, config_id, removed, err, errlen);
}


/*
 * Strict consistency: hits that waited for the change stream, probes sent
 * for them, hits waiting now. (Waits that timed out are statements:
 * hyperdrive_cache_statements_total's bypass:strict-wait-timeout.)
 */
static void
strict_metrics(HdCacheLayer *layer, HdTextBuf *buf)
{
	static const struct
	{
		const char *name;
		const char *type;
		const char *help;
	}			families[] = {
		{"hyperdrive_cache_strict_waits_total", "counter", "Hits of strict configs that "
		"waited for the change stream to apply what the origin had acknowledged when they arrived"},
		{"hyperdrive_cache_strict_probes_total", "counter", "Freshness probes sent for waiting "
		"hits (one answers every hit that arrived before it was sent)"},
		{"hyperdrive_cache_strict_waiting", "gauge", "Hits of strict configs waiting now"},
	};

	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
	{
		HdList	   *item;
		HdList	   *tmp;

		hd_text_buf_printf(buf, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
						   families[f].help, families[f].name, families[f].type);
		hd_list_foreach_safe(item, tmp, &layer->cfgs)
		{
			CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
			HdChangeStatus st;
			uint64_t	v;

			layer->origin->changes->status(cfg->source, &st);
			v = f == 0 ? cfg->strict_waits : f == 1 ? st.probes_on_demand :
				(uint64_t) hd_fresh_waits_count(&cfg->fresh_waits);
			hd_text_buf_printf(buf, "%s{config=\"%s\"} %" PRIu64 "\n", families[f].name,
							   cfg->name, v);
		}
	}
}

/* One histogram of every config, cumulative as Prometheus expects. */
static void
hist_metrics(HdCacheLayer *layer, HdTextBuf *buf, const char *name, const char *help,
			 size_t offset)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_text_buf_printf(buf, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		const InvalHist *h = (const InvalHist *) ((const char *) cfg + offset);
		uint64_t	cumulative = 0;

		for (int b = 0; b <= INVAL_NBOUNDS; b++)
		{
			cumulative += h->buckets[b];
			if (b < INVAL_NBOUNDS)
				hd_text_buf_printf(buf, "%s_bucket{config=\"%s\",le=\"%g\"} %" PRIu64 "\n",
								   name, cfg->name, inval_bounds[b], cumulative);
			else
				hd_text_buf_printf(buf, "%s_bucket{config=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
								   name, cfg->name, cumulative);
		}
		hd_text_buf_printf(buf, "%s_sum{config=\"%s\"} %.9g\n", name, cfg->name, h->sum);
		hd_text_buf_printf(buf, "%s_count{config=\"%s\"} %" PRIu64 "\n", name, cfg->name, h->count);
	}
}

/*
 * hyperdrive_cache_invalidation_seconds (from the commit) and
 * hyperdrive_cache_invalidation_sent_seconds (from the walsender's send)
 */
static void
inval_metrics(HdCacheLayer *layer, HdTextBuf *buf)
{
	hist_metrics(layer, buf, "hyperdrive_cache_invalidation_seconds",
				 "Change records: origin commit time to the record's invalidation applied",
				 offsetof(CacheCfg, inval));
	hist_metrics(layer, buf, "hyperdrive_cache_invalidation_sent_seconds",
				 "Change records: the walsender's send time to the record's invalidation applied",
				 offsetof(CacheCfg, inval_sent));
}


void
hd_cache_metrics(HdCacheLayer *layer, HdTextBuf *buf)
{
	HdList	   *item;
	HdList	   *tmp;

	if (layer == NULL)
		return;
	hd_text_buf_puts(buf, "# HELP hyperdrive_cache_statements_total Statements by cache status\n"
					 "# TYPE hyperdrive_cache_statements_total counter\n");
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		hd_text_buf_printf(buf, "hyperdrive_cache_statements_total{config=\"%s\",status=\"hit\"} %"
						   PRIu64 "\n", cfg->name, cfg->hits);
		hd_text_buf_printf(buf, "hyperdrive_cache_statements_total{config=\"%s\",status=\"miss\"} %"
						   PRIu64 "\n", cfg->name, cfg->misses);
		hd_text_buf_printf(buf, "hyperdrive_cache_statements_total{config=\"%s\",status=\"coalesced\"} %"
						   PRIu64 "\n", cfg->name, cfg->flights.coalesced);
		hd_text_buf_printf(buf, "hyperdrive_cache_statements_total{config=\"%s\",status=\"stale\"} %"
						   PRIu64 "\n", cfg->name, cfg->stale_hits);
		for (size_t i = 0; i < cfg->nreasons; i++)
		{
			hd_text_buf_printf(buf, "hyperdrive_cache_statements_total{config=\"%s\",status=\"",
							   cfg->name);
			for (const char *p = cfg->reasons[i].name; *p; p++)
			{
				if (*p == '"' || *p == '\\')
					hd_text_buf_putc(buf, '\\');
				hd_text_buf_putc(buf, *p);
			}
			hd_text_buf_printf(buf, "\"} %" PRIu64 "\n", cfg->reasons[i].count);
		}
	}
	inval_metrics(layer, buf);
	hd_text_buf_puts(buf, "# HELP hyperdrive_cache_ddl_invalidations_total Change records whose DDL"
					 " removed every entry of the config\n"
					 "# TYPE hyperdrive_cache_ddl_invalidations_total counter\n");
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		hd_text_buf_printf(buf, "hyperdrive_cache_ddl_invalidations_total{config=\"%s\"} %" PRIu64
						   "\n", cfg->name, cfg->ddl_invalidations);
	}
	hd_text_buf_puts(buf, "# HELP hyperdrive_cache_change_relations_total Relations named by "
					 "applied changes, by how precisely: value (the rows with some values of a "
					 "column), column (every row: the values were not all known), relation "
					 "(every row), all (a change of every entry)\n"
					 "# TYPE hyperdrive_cache_change_relations_total counter\n");
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		static const char *const kinds[] = {"value", "column", "relation", "all"};

		for (int k = 0; k < 4; k++)
			hd_text_buf_printf(buf, "hyperdrive_cache_change_relations_total{config=\"%s\","
							   "kind=\"%s\"} %" PRIu64 "\n", cfg->name, kinds[k],
							   cfg->change_deps[k]);
	}
	hd_text_buf_puts(buf, "# HELP hyperdrive_cache_fill_relations_total Relations read by "
					 "the entries stored, by precision: value (bound to values of a column), "
					 "whole (the analysis bound them, but not in this fill)\n"
					 "# TYPE hyperdrive_cache_fill_relations_total counter\n");
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		hd_text_buf_printf(buf, "hyperdrive_cache_fill_relations_total{config=\"%s\","
						   "precision=\"value\"} %" PRIu64 "\n", cfg->name, cfg->deps_by_value);
		hd_text_buf_printf(buf, "hyperdrive_cache_fill_relations_total{config=\"%s\","
						   "precision=\"whole\"} %" PRIu64 "\n", cfg->name, cfg->deps_whole);
	}
	strict_metrics(layer, buf);
	hd_text_buf_puts(buf, "# HELP hyperdrive_cache_stream_connected Whether the config's change stream is up\n"
					 "# TYPE hyperdrive_cache_stream_connected gauge\n");
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		hd_text_buf_printf(buf, "hyperdrive_cache_stream_connected{config=\"%s\"} %d\n", cfg->name,
						   layer->origin->changes->connected(cfg->source) ? 1 : 0);
	}
	if (layer->store != NULL)
	{
		HdStoreStats st;

		hd_store_stats(layer->store, &st);
		hd_text_buf_puts(buf, "# HELP hyperdrive_cache_value_marks The store's marks of changes "
						 "with values, kept while a fill that predates them runs\n"
						 "# TYPE hyperdrive_cache_value_marks gauge\n");
		hd_text_buf_printf(buf, "hyperdrive_cache_value_marks %" PRIu64 "\n", st.value_marks);
		hd_text_buf_puts(buf, "# HELP hyperdrive_cache_store_write_txns_total The store's LMDB "
						 "write transactions (puts, invalidations, positions, LRU order; never "
						 "a hit)\n"
						 "# TYPE hyperdrive_cache_store_write_txns_total counter\n");
		hd_text_buf_printf(buf, "hyperdrive_cache_store_write_txns_total %" PRIu64 "\n",
						   st.write_txns);
		hd_text_buf_puts(buf, "# HELP hyperdrive_cache_store_lru_flushes_total Write transactions "
						 "of the hits' buffered LRU order alone\n"
						 "# TYPE hyperdrive_cache_store_lru_flushes_total counter\n");
		hd_text_buf_printf(buf, "hyperdrive_cache_store_lru_flushes_total %" PRIu64 "\n",
						   st.lru_flushes);
		hd_text_buf_puts(buf, "# HELP hyperdrive_cache_store_lru_touches_dropped_total Hits whose "
						 "access was not recorded for LRU: the buffer was full until the next "
						 "write\n"
						 "# TYPE hyperdrive_cache_store_lru_touches_dropped_total counter\n");
		hd_text_buf_printf(buf, "hyperdrive_cache_store_lru_touches_dropped_total %" PRIu64 "\n",
						   st.lru_touches_dropped);
	}
}
