/*
 * cache.c
 *    The result cache in the data path, phase 1 (cache.h, docs/cache.md).
 */
#include "cache/cache.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "cache/cache_hint.h"
#include "cache/cache_store.h"
#include "pgwire/ext_batch.h"
#include "base/log.h"
#include "pgwire/pooler.h"
#include "pgwire/proto.h"
#include "stream/stream.h"

/* the keys' format versions: simple Query, extended batch, an extended statement's analysis */
#define KEY_FORMAT "hdq1"
#define KEY_FORMAT_EXT "hdx1"
#define KEY_FORMAT_EXT_ANALYSIS "hdxa1"
/* an extended batch longer than this is forwarded, not cached (ext_batch.h) */
#define MAX_EXT_BATCH (64 * 1024)
#define MAX_REASONS 64
#define MAX_RETAINED 10000
#define ANALYSIS_BUCKETS 4096
#define MAX_ANALYSES 100000
#define ANALYSIS_ERROR_TTL 10.0	/* seconds an analysis error is remembered */
#define PG_EPOCH_UNIX_S INT64_C(946684800)	/* 2000-01-01 00:00 UTC, Unix time */

/*
 * Upper bounds (seconds) of hyperdrive_cache_invalidation_seconds: fine
 * around the milliseconds an invalidation should take, coarse above.
 */
#define INVAL_NBOUNDS 21
static const double inval_bounds[INVAL_NBOUNDS] = {
	0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
	0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10
};

/*
 * Trouble that can repeat at every query or tick (a full disk under the
 * store) is logged at most once a minute per kind: each line says how many
 * were left out since the previous one, so the log stays small.
 */
#define TROUBLE_LOG_INTERVAL 60.0
#define STORE_RETRY_INTERVAL 5.0	/* seconds between attempts to open the store */

/* An applied invalidation kept for the snapshot check (the race rule). */
typedef struct Retained
{
	uint64_t	xid;			/* with epoch; 0: unknown (never visible) */
	bool		all;			/* every relation */
	bool		xmin_rule;		/* visible only when xid < snapshot xmin */
	uint32_t   *oids;
	size_t		noids;
	uint64_t	visible_from_seq;	/* fills numbered from here see it; 0: not known */
	uint64_t	applied_order;	/* CacheCfg.order when it was applied */
} Retained;

typedef struct Analysis
{
	struct Analysis *next;
	unsigned char *key;
	size_t		keylen;
	bool		cacheable;
	char		reason[64];		/* "uncacheable:<kind>" */
	uint32_t   *oids;
	size_t		noids;
	double		expires;		/* 0: until the next DDL */
} Analysis;

typedef struct Reason
{
	char		name[64];
	uint64_t	count;
} Reason;

/*
 * A fill in flight for one key (request coalescing): from the decision to
 * fill until the fill ends. Clients whose request has the same key wait on
 * it instead of taking an origin connection. An analysis in flight is one
 * too (keyed by the analysis key): its waiters decide again when it ends.
 */
typedef struct Flight
{
	struct Flight *next;
	struct CacheCfg *cfg;
	bool		analysis;		/* an analysis, not a fill */
	unsigned char *key;
	size_t		keylen;
	HdClient   *leader;			/* until its fill starts; NULL after (or a refresh) */
	bool		started;		/* its CacheOp runs */
	HdList		waiters;		/* HdClient.cache_wait_link */
	struct CacheOp *op;			/* the fill, once it runs */
} Flight;

typedef struct CacheCfg
{
	HdList		link;
	HdAgent    *agent;
	char		id[HD_CONFIG_ID_LEN + 1];
	char		name[HD_CONFIG_NAME_MAX + 1];
	char		identity[HD_CACHE_IDENTITY_MAX];
	int			max_age;
	int			swr;
	HdStream   *stream;
	uint64_t	persisted_lsn;	/* applied LSN written to the store */
	uint64_t	catchup_lsn;	/* origin WAL position when the stream (re)connected */
	/* race rule */
	Retained   *ret;
	size_t		nret;
	size_t		capret;
	uint64_t	next_fill_seq;
	uint64_t	order;			/* ticks at each retained invalidation (waiters vs them) */
	uint64_t   *inflight;		/* seqs of fills in flight */
	size_t		ninflight;
	size_t		capinflight;
	/* analyses */
	Analysis  **buckets;
	size_t		nanalyses;
	uint64_t	analysis_gen;	/* bumped when DDL drops them */
	Flight	   *flights;
	/* counters */
	uint64_t	coalesced;		/* answered with another client's fill */
	uint64_t	stale_hits;		/* STALE entries served (stale-while-revalidate) */
	uint64_t	refreshes;		/* background refreshes started */
	uint64_t	hits;
	uint64_t	misses;
	uint64_t	stored;
	uint64_t	records;
	uint64_t	invalidated;
	uint64_t	slots_lost;
	uint64_t	ddl_invalidations;	/* records whose DDL removed every entry */
	HdLogLimit	ddl_log;		/* "DDL removed every entry" lines */
	HdLogLimit	lookup_log;		/* lookups and stores failing */
	HdLogLimit	apply_log;		/* invalidations and positions failing */
	/* a record's commit time -> its invalidation applied (per bucket, +Inf last) */
	uint64_t	inval_buckets[INVAL_NBOUNDS + 1];
	uint64_t	inval_count;
	double		inval_sum;
	Reason		reasons[MAX_REASONS];
	size_t		nreasons;
} CacheCfg;

typedef struct HdCacheLayer
{
	HdAgent    *agent;
	HdCache    *store;			/* NULL: could not be opened; retried on the timer */
	char		open_error[512];	/* why, while it is NULL */
	double		open_tried_at;
	unsigned	open_failures;
	HdLogLimit	open_log;
	HdLogLimit	sync_log;
	char		dir[4200];
	HdList		cfgs;
	ev_timer	timer;
	double		last_sync;
	bool		dirty;			/* LSNs written since the last sync */
} HdCacheLayer;

/* The state of an op on a server (server->cache_state). */
typedef struct CacheOp
{
	int			kind;
	int			phase;
	char		cfg_id[HD_CONFIG_ID_LEN + 1];
	unsigned char *key;
	size_t		keylen;
	uint32_t   *oids;
	size_t		noids;
	uint64_t	token;
	uint64_t	seq;
	uint64_t	gen;
	struct Flight *flight;		/* fill: the flight it answers */
	bool		refresh;		/* a background refresh: no client, release the server */
	bool		skip_parse_complete;	/* fill: the ParseComplete of our own Parse */
	uint32_t	check_stmt;		/* fill: the statement whose description comes first */
	char	   *describe_name;	/* fill: the client's statement its batch describes */
	bool		describe_fresh;	/* and the batch has its Parse */
	HdIoBuf		describe_params;	/* that description's ParameterDescription */
	HdIoBuf		check_params;	/* and that description's ParameterDescription */
	bool		shape_changed;	/* it did not match: the client gets 0A000 */
	int64_t		max_age_ms;		/* fill: the entry's freshness */
	HdIoBuf		capture;
	bool		capture_ok;
	bool		failed;			/* the statement failed, or something unexpected */
	bool		state_changed;	/* the session state was not the connection's baseline */
	bool		broken;			/* the wrapper failed: the connection must go */
	char	   *snapshot;
	char	   *text;			/* analysis: values */
	bool		got_row;
	bool		a_cacheable;
	char	   *a_reason;
	char	   *a_relations;
	char	   *a_error;
	double		started;
} CacheOp;

static HdCacheLayer *layer_of(HdAgent *agent)
{
	return (HdCacheLayer *) agent->cache;
}

static void flight_end(Flight *f, const void *bytes, size_t len, uint64_t joined_before);
static void op_free(struct CacheOp *op);
static void flight_timeouts(CacheCfg *cfg, double now);
static const char *stream_problem(CacheCfg *cfg, const HdClient *client);
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

static CacheCfg *
find_cfg(HdAgent *agent, const char *id)
{
	HdCacheLayer *layer = layer_of(agent);
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

			free(a->key);
			free(a->oids);
			free(a);
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
				free(a->key);
				free(a->oids);
				free(a);
				cfg->nanalyses--;
				return NULL;
			}
			return a;
		}
	}
	return NULL;
}

/* "{1,2,3}" -> OIDs */
static int
parse_oid_array(const char *text, uint32_t **out, size_t *n)
{
	size_t		cap = 8;
	const char *p = text;

	*n = 0;
	*out = malloc(cap * sizeof(uint32_t));
	if (*out == NULL)
		return -1;
	if (*p == '{')
		p++;
	while (*p && *p != '}')
	{
		char	   *end;
		unsigned long v = strtoul(p, &end, 10);

		if (end == p || v == 0 || v > UINT32_MAX)
			return -1;
		if (*n == cap)
		{
			uint32_t   *grown = realloc(*out, cap * 2 * sizeof(uint32_t));

			if (grown == NULL)
				return -1;
			*out = grown;
			cap *= 2;
		}
		(*out)[(*n)++] = (uint32_t) v;
		p = end;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* The kind of an analyze_query() reason: the text up to the name. */
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

static void
analysis_store(CacheCfg *cfg, const unsigned char *key, size_t keylen, bool cacheable,
			   const char *reason, const char *relations, double expires)
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
	if (a->key == NULL || (relations && parse_oid_array(relations, &a->oids, &a->noids) < 0))
	{
		/* unreadable relations: not cacheable */
		cacheable = false;
		reason = "error: unreadable relation list";
		if (a->key == NULL)
		{
			free(a->oids);
			free(a);
			return;
		}
	}
	memcpy(a->key, key, keylen);
	a->keylen = keylen;
	a->cacheable = cacheable && a->noids > 0;
	if (cacheable && a->noids == 0)
		reason = "no relations";
	if (!a->cacheable)
		reason_kind(reason, a->reason, sizeof(a->reason));
	a->expires = expires;
	a->next = cfg->buckets[h];
	cfg->buckets[h] = a;
	cfg->nanalyses++;
}

/* ---------------------------------------------------------------------------
 * The race rule: retained invalidations and fill snapshots
 */

typedef struct Snapshot
{
	uint64_t	xmin;
	uint64_t	xmax;
	uint64_t   *xip;
	size_t		nxip;
} Snapshot;

/* pg_current_snapshot() text: "xmin:xmax:xip1,xip2" */
static int
parse_snapshot(const char *text, Snapshot *s)
{
	char	   *end;
	size_t		cap = 0;

	memset(s, 0, sizeof(*s));
	if (text == NULL)
		return -1;
	errno = 0;
	s->xmin = strtoull(text, &end, 10);
	if (end == text || *end != ':')
		return -1;
	text = end + 1;
	s->xmax = strtoull(text, &end, 10);
	if (end == text || *end != ':' || errno)
		return -1;
	text = end + 1;
	while (*text)
	{
		uint64_t	x = strtoull(text, &end, 10);

		if (end == text)
			return -1;
		if (s->nxip == cap)
		{
			uint64_t   *grown;

			cap = cap ? cap * 2 : 8;
			grown = realloc(s->xip, cap * sizeof(uint64_t));
			if (grown == NULL)
				return -1;
			s->xip = grown;
		}
		s->xip[s->nxip++] = x;
		text = end;
		if (*text == ',')
			text++;
		else if (*text)
			return -1;
	}
	return 0;
}

static bool
xid_visible(const Snapshot *s, const Retained *r)
{
	if (r->xid == 0)
		return false;
	if (r->xid < s->xmin)
		return true;
	if (r->xmin_rule || r->xid >= s->xmax)
		return false;
	for (size_t i = 0; i < s->nxip; i++)
		if (s->xip[i] == r->xid)
			return false;
	return true;
}

static bool
retained_touches(const Retained *r, const uint32_t *oids, size_t n)
{
	if (r->all)
		return true;
	for (size_t i = 0; i < r->noids; i++)
		for (size_t j = 0; j < n; j++)
			if (r->oids[i] == oids[j])
				return true;
	return false;
}

static void
retained_free(Retained *r)
{
	free(r->oids);
	r->oids = NULL;
}

/* Drop entries every fill in flight (and every later one) sees. */
static void
retained_prune(CacheCfg *cfg)
{
	uint64_t	min_inflight = UINT64_MAX;
	size_t		kept = 0;

	for (size_t i = 0; i < cfg->ninflight; i++)
		if (cfg->inflight[i] < min_inflight)
			min_inflight = cfg->inflight[i];
	for (size_t i = 0; i < cfg->nret; i++)
	{
		Retained   *r = &cfg->ret[i];

		if (r->visible_from_seq != 0 && min_inflight >= r->visible_from_seq)
			retained_free(r);
		else
			cfg->ret[kept++] = *r;
	}
	cfg->nret = kept;
}

static void
retain(CacheCfg *cfg, uint64_t xid, bool all, bool xmin_rule, const uint32_t *oids, size_t n)
{
	Retained   *r;

	if (cfg->nret >= MAX_RETAINED)
	{
		/* fold everything into one entry: stores wait until all of it is old */
		uint64_t	maxxid = xid == 0 ? UINT64_MAX - 1 : xid;
		uint64_t	first_order = cfg->ret[0].applied_order;

		for (size_t i = 0; i < cfg->nret; i++)
		{
			if (cfg->ret[i].xid == 0)
				maxxid = UINT64_MAX - 1;
			else if (cfg->ret[i].xid > maxxid)
				maxxid = cfg->ret[i].xid;
			if (cfg->ret[i].applied_order < first_order)
				first_order = cfg->ret[i].applied_order;
			retained_free(&cfg->ret[i]);
		}
		cfg->nret = 0;
		cfg->order++;
		cfg->ret[cfg->nret++] = (Retained) {
			.xid = maxxid, .all = true, .xmin_rule = true, .applied_order = first_order
		};
		hd_warning("cache of config \"%s\": more than %d invalidations retained for the race "
				   "check; results are stored again once the origin's snapshots see all of them",
				   cfg->name, MAX_RETAINED);
		return;
	}
	if (cfg->nret == cfg->capret)
	{
		size_t		cap = cfg->capret ? cfg->capret * 2 : 64;
		Retained   *grown = realloc(cfg->ret, cap * sizeof(Retained));

		if (grown == NULL)
		{
			/*
			 * Cannot remember it: the newest entry (there is one: the array is
			 * full) stands for it, as "everything, never visible": no fill of
			 * this config is stored again until the agent restarts. Loud.
			 */
			hd_error("cache of config \"%s\": out of memory for the race check; results "
					 "of this config are no longer stored (restart the agent)", cfg->name);
			cfg->ret[cfg->nret - 1].all = true;
			cfg->ret[cfg->nret - 1].xid = 0;
			cfg->order++;
			return;
		}
		cfg->ret = grown;
		cfg->capret = cap;
	}
	r = &cfg->ret[cfg->nret++];
	memset(r, 0, sizeof(*r));
	r->xid = xid;
	r->all = all;
	r->xmin_rule = xmin_rule;
	r->applied_order = ++cfg->order;
	if (!all && n > 0)
	{
		r->oids = malloc(n * sizeof(uint32_t));
		if (r->oids == NULL)
			r->all = true;
		else
		{
			memcpy(r->oids, oids, n * sizeof(uint32_t));
			r->noids = n;
		}
	}
}

/* A fill finished with snapshot s: note which entries any later fill sees. */
static void
observe_snapshot(CacheCfg *cfg, const Snapshot *s)
{
	for (size_t i = 0; i < cfg->nret; i++)
		if (cfg->ret[i].visible_from_seq == 0 && xid_visible(s, &cfg->ret[i]))
			cfg->ret[i].visible_from_seq = cfg->next_fill_seq + 1;
}

static void
inflight_add(CacheCfg *cfg, uint64_t seq)
{
	if (cfg->ninflight == cfg->capinflight)
	{
		size_t		cap = cfg->capinflight ? cfg->capinflight * 2 : 16;
		uint64_t   *grown = realloc(cfg->inflight, cap * sizeof(uint64_t));

		if (grown == NULL)
			return;				/* then the fill is not protected: it will not store */
		cfg->inflight = grown;
		cfg->capinflight = cap;
	}
	cfg->inflight[cfg->ninflight++] = seq;
}

static bool
inflight_remove(CacheCfg *cfg, uint64_t seq)
{
	for (size_t i = 0; i < cfg->ninflight; i++)
		if (cfg->inflight[i] == seq)
		{
			cfg->inflight[i] = cfg->inflight[--cfg->ninflight];
			return true;
		}
	return false;
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
static void
observe_invalidation(CacheCfg *cfg, int64_t commit_time)
{
	struct timespec ts;
	int64_t		now_us;
	double		secs;
	int			i = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	now_us = ((int64_t) ts.tv_sec - PG_EPOCH_UNIX_S) * INT64_C(1000000) + ts.tv_nsec / 1000;
	secs = now_us > commit_time ? (double) (now_us - commit_time) / 1e6 : 0.0;
	while (i < INVAL_NBOUNDS && secs > inval_bounds[i])
		i++;
	cfg->inval_buckets[i]++;
	cfg->inval_count++;
	cfg->inval_sum += secs;
}

/*
 * The first DDL object of a record that may change what a cached query
 * returns, or what a name in it resolves to, in ways the record's relations
 * do not cover: a table created ahead of another on a search_path, a type or
 * function changed (ALTER TYPE ... RENAME VALUE, CREATE OR REPLACE FUNCTION),
 * a schema renamed, ... Entries do not record the types, functions and
 * names they used, so such a record removes every entry of the config. NULL
 * when every object is on the short list of DDL that changes no result and
 * no name resolution (a REFRESH names its materialized view as a relation).
 * When in doubt, not on the list.
 */
static const HdDdlObject *
ddl_changing_results(const HdRecord *rec)
{
	static const char *const harmless[][2] = {
		/* command tag, object type ("": any) */
		{"CREATE INDEX", "index"},
		{"DROP INDEX", "index"},
		{"COMMENT", ""},
		{"REFRESH MATERIALIZED VIEW", "materialized view"},
	};

	for (uint32_t i = 0; i < rec->nddls; i++)
	{
		const HdDdlObject *d = &rec->ddls[i];
		bool		ok = false;

		for (size_t h = 0; h < sizeof(harmless) / sizeof(harmless[0]) && !ok; h++)
			ok = strcmp(d->tag, harmless[h][0]) == 0 &&
				(harmless[h][1][0] == '\0' || strcmp(d->object_type, harmless[h][1]) == 0);
		if (!ok)
			return d;
	}
	return NULL;
}

/* Say (at most once a minute per config) that DDL emptied the config's cache. */
static void
log_ddl_invalidation(CacheCfg *cfg, const HdDdlObject *d, uint64_t removed)
{
	uint64_t	left_out;

	if (!log_now(&cfg->ddl_log, &left_out))
		return;
	hd_info("cache of config \"%s\": DDL (%s %s %s) may change what cached queries return: "
			"removed its %" PRIu64 " entries (%" PRIu64 " more such records since the last "
			"such line; at most one line a minute)", cfg->name, d->tag, d->object_type,
			d->identity, removed, left_out);
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
	HdCacheLayer *layer = layer_of(cfg->agent);
	uint64_t	left_out;
	char		hint[200] = "";

	if (!log_now(limit, &left_out))
		return;
	if (hd_cache_fenced(layer->store, cfg->id))
		snprintf(hint, sizeof(hint), "; once the cause is fixed, PURGE CACHE %s on the admin "
				 "console lifts the fence", cfg->name);
	if (left_out > 0)
		hd_log(level, "cache of config \"%s\": %s: %s%s (%" PRIu64 " more such failures since "
			   "the last line; at most one line a minute)", cfg->name, what, err, hint, left_out);
	else
		hd_log(level, "cache of config \"%s\": %s: %s%s (more such failures: at most one "
			   "line a minute)", cfg->name, what, err, hint);
}

static int
on_record(void *arg, const HdRecord *rec)
{
	CacheCfg   *cfg = arg;
	HdCacheLayer *layer = layer_of(cfg->agent);
	char		err[512];
	uint64_t	removed = 0;
	uint32_t   *oids = NULL;
	size_t		n = 0;
	bool		all = (rec->flags & HD_FLAG_INVALIDATE_ALL) != 0;
	const HdDdlObject *ddl = all ? NULL : ddl_changing_results(rec);
	int			rc;

	if (ddl != NULL)
		all = true;
	if (!all)
	{
		size_t		cap = 0;

		for (uint32_t i = 0; i < rec->nrelations; i++)
			cap += 1 + rec->relations[i].nancestors;
		if (cap > 0 && (oids = malloc(cap * sizeof(uint32_t))) == NULL)
			return -1;
		for (uint32_t i = 0; i < rec->nrelations; i++)
		{
			const HdRelation *rel = &rec->relations[i];

			oids[n++] = rel->rel.oid;
			for (uint32_t j = 0; j < rel->nancestors; j++)
				oids[n++] = rel->ancestors[j].oid;
		}
		rc = hd_cache_invalidate_relations(layer->store, cfg->id, oids, n, rec->end_lsn,
										   &removed, err, sizeof(err));
	}
	else
		rc = hd_cache_invalidate_all(layer->store, cfg->id, rec->end_lsn, &removed, err,
									 sizeof(err));
	if (rc < 0)
	{
		store_trouble(cfg, &cfg->apply_log, HD_LOG_ERROR, "applying a change record failed", err);
		free(oids);
		return -1;
	}
	/* heartbeats invalidate nothing: only records that do are timed */
	if ((rec->flags & HD_FLAG_HEARTBEAT) == 0)
		observe_invalidation(cfg, rec->commit_time);
	layer->dirty = true;
	if (rec->end_lsn > cfg->persisted_lsn)
		cfg->persisted_lsn = rec->end_lsn;
	cfg->records++;
	cfg->invalidated += removed;
	if (ddl != NULL)
	{
		cfg->ddl_invalidations++;
		log_ddl_invalidation(cfg, ddl, removed);
	}
	if (all || n > 0 || rec->nddls > 0)
		retain(cfg, rec->xid, all || rec->nddls > 0, false, oids, n);
	free(oids);
	if (all || rec->nddls > 0)
	{
		analyses_clear(cfg);
		/* prepared statements mean the new schema from now on (prepare.h) */
		hd_prepare_schema_changed(cfg->agent, cfg->id);
	}
	if (removed > 0)
		hd_debug("cache of config \"%s\": xid %" PRIu64 " removed %" PRIu64 " entries",
				 cfg->name, rec->xid, removed);
	return 0;
}

static void
on_state(void *arg, HdStreamState state, const char *why)
{
	CacheCfg   *cfg = arg;
	HdCacheLayer *layer = layer_of(cfg->agent);
	char		err[512];
	uint64_t	removed = 0;

	if (state == HD_STREAM_CONNECTED)
	{
		HdStreamStatus st;
		Snapshot	s;

		hd_stream_status(cfg->stream, &st);
		cfg->catchup_lsn = st.connect_wal_lsn;
		/*
		 * Transactions running at connect time may have had their commit
		 * records applied (before a restart) without being visible yet: a fill
		 * must see each of them before it may store.
		 */
		if (parse_snapshot(hd_stream_connect_snapshot(cfg->stream), &s) == 0)
		{
			for (size_t i = 0; i < s.nxip; i++)
				retain(cfg, s.xip[i], true, false, NULL, 0);
			free(s.xip);
		}
		else
			retain(cfg, 0, true, false, NULL, 0);	/* unknown: refuses until pruned */
		hd_info("cache of config \"%s\": change stream connected (%s)", cfg->name, why);
		return;
	}
	if (state == HD_STREAM_SLOT_LOST)
	{
		char		identity[HD_CACHE_IDENTITY_MAX];
		bool		reset;
		char	   *hash;

		cfg->slots_lost++;
		if (hd_cache_purge(layer->store, cfg->id, &removed, err, sizeof(err)) < 0)
			hd_error("cache of config \"%s\": purge after a lost slot failed: %s", cfg->name, err);
		/* a new slot: the stored position means nothing now */
		snprintf(identity, sizeof(identity), "%s", cfg->identity);
		hash = strchr(identity, '#');
		if (hash)
			*hash = '\0';
		snprintf(cfg->identity, sizeof(cfg->identity), "%.200s#%" PRId64, identity, wall_ms());
		if (hd_cache_bind_slot(layer->store, cfg->id, cfg->identity, &reset, err, sizeof(err)) < 0)
			hd_error("cache of config \"%s\": %s", cfg->name, err);
		cfg->persisted_lsn = 0;
		analyses_clear(cfg);
		hd_error("cache of config \"%s\": the change stream lost changes (%s); purged %" PRIu64
				 " cached entries", cfg->name, why, removed);
		return;
	}
	hd_debug("cache of config \"%s\": change stream %s: %s", cfg->name,
			 hd_stream_state_name(state), why);
}

static void
cfg_free(HdCacheLayer *layer, CacheCfg *cfg)
{
	(void) layer;
	while (cfg->flights)
		flight_end(cfg->flights, NULL, 0, 0);
	hd_stream_free(cfg->stream);
	analyses_clear(cfg);
	free(cfg->buckets);
	for (size_t i = 0; i < cfg->nret; i++)
		retained_free(&cfg->ret[i]);
	free(cfg->ret);
	free(cfg->inflight);
	hd_list_del(&cfg->link);
	free(cfg);
}

static void
origin_identity(const HdConfig *config, const char *slot, char *out, size_t outlen)
{
	snprintf(out, outlen, "%.80s:%d/%.60s/%s", config->host, config->port, config->database,
			 slot);
}

static CacheCfg *
cfg_start(HdCacheLayer *layer, const HdConfig *config)
{
	CacheCfg   *cfg = calloc(1, sizeof(CacheCfg));
	char		err[512];
	char		slot[HD_SLOT_NAME_MAX + 1];
	char		stored[HD_CACHE_IDENTITY_MAX];
	char		base[HD_CACHE_IDENTITY_MAX];
	bool		reset = false;
	uint64_t	lsn = 0;
	HdStreamParams params = {0};
	HdStreamCallbacks cb = {on_record, on_state, NULL};

	if (cfg == NULL)
		return NULL;
	/*
	 * Room for retained invalidations from the start: when growing it fails,
	 * retain() marks the newest entry "everything, never visible", which needs
	 * one to exist.
	 */
	cfg->capret = 64;
	cfg->ret = malloc(cfg->capret * sizeof(Retained));
	if (cfg->ret == NULL)
	{
		free(cfg);
		hd_error("cache of config \"%s\": out of memory; caching is off for it", config->name);
		return NULL;
	}
	cfg->agent = layer->agent;
	memcpy(cfg->id, config->id, sizeof(cfg->id));
	memcpy(cfg->name, config->name, sizeof(cfg->name));
	cfg->max_age = config->max_age;
	cfg->swr = config->stale_while_revalidate;
	hd_list_append(&layer->cfgs, &cfg->link);
	hd_stream_default_slot(config->name, slot);
	origin_identity(config, slot, base, sizeof(base));
	/* keep a stored identity of the same origin and slot (it may carry a #generation) */
	if (hd_cache_slot_identity(layer->store, cfg->id, stored, sizeof(stored), err,
							   sizeof(err)) == 0 &&
		strncmp(stored, base, strlen(base)) == 0 &&
		(stored[strlen(base)] == '\0' || stored[strlen(base)] == '#'))
		snprintf(cfg->identity, sizeof(cfg->identity), "%s", stored);
	else
		snprintf(cfg->identity, sizeof(cfg->identity), "%s", base);
	if (hd_cache_bind_slot(layer->store, cfg->id, cfg->identity, &reset, err, sizeof(err)) < 0 ||
		hd_cache_applied_lsn(layer->store, cfg->id, &lsn, err, sizeof(err)) < 0)
	{
		hd_error("cache of config \"%s\": %s; caching is off for it", config->name, err);
		cfg_free(layer, cfg);
		return NULL;
	}
	if (reset)
		hd_info("cache of config \"%s\": new origin or slot (%s): starting empty", config->name,
				cfg->identity);
	cfg->persisted_lsn = lsn;
	params.loop = layer->agent->loop;
	params.config = config;
	params.state_dir = layer->agent->settings.state_dir;
	params.slot = slot;
	params.start_lsn = lsn;
	params.connect_timeout_ms = layer->agent->settings.server_connect_timeout_ms;
	params.status_interval_ms = 200;
	params.confirm_durable_only = true;
	params.request_replies = true;
	/* a few probes within max_lag, at most 10 a second */
	params.probe_interval_ms = layer->agent->settings.max_lag_ms / 5;
	if (params.probe_interval_ms > 100)
		params.probe_interval_ms = 100;
	if (params.probe_interval_ms < 10)
		params.probe_interval_ms = 10;
	cb.arg = cfg;
	cfg->stream = hd_stream_start(&params, &cb, err, sizeof(err));
	if (cfg->stream == NULL)
	{
		hd_error("cache of config \"%s\": cannot start its change stream: %s", config->name, err);
		cfg_free(layer, cfg);
		return NULL;
	}
	hd_info("cache of config \"%s\": consuming slot %s from %X/%X", config->name, slot,
			(unsigned) (lsn >> 32), (unsigned) lsn);
	return cfg;
}

void
hd_cache_layer_configs(HdAgent *agent)
{
	HdCacheLayer *layer = layer_of(agent);
	HdList	   *item;
	HdList	   *tmp;

	if (layer == NULL || layer->store == NULL)
		return;					/* no streams without a store: started once it opens */
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		const HdConfig *now = hd_configs_find(&agent->configs, cfg->id);
		char		slot[HD_SLOT_NAME_MAX + 1];
		char		base[HD_CACHE_IDENTITY_MAX];
		char		err[512];
		uint64_t	removed;

		if (now)
		{
			hd_stream_default_slot(now->name, slot);
			origin_identity(now, slot, base, sizeof(base));
		}
		if (now && !now->caching_disabled && strncmp(cfg->identity, base, strlen(base)) == 0)
		{
			cfg->max_age = now->max_age;
			cfg->swr = now->stale_while_revalidate;
			continue;
		}
		/* deleted, caching turned off, or another origin: its entries go */
		hd_info("cache of config \"%s\": %s: stopping its change stream, dropping its entries",
				cfg->name, now == NULL ? "deleted" : now->caching_disabled ?
				"caching disabled" : "origin changed");
		if (hd_cache_purge(layer->store, cfg->id, &removed, err, sizeof(err)) < 0)
			hd_error("cache of config \"%s\": %s", cfg->name, err);
		if (now == NULL)
		{
			bool		reset;

			(void) hd_cache_bind_slot(layer->store, cfg->id, "", &reset, err, sizeof(err));
		}
		cfg_free(layer, cfg);
	}
	for (size_t i = 0; i < agent->configs.count; i++)
	{
		const HdConfig *config = &agent->configs.items[i];

		if (!config->caching_disabled && find_cfg(agent, config->id) == NULL)
			(void) cfg_start(layer, config);
	}
}

/* Persist the streams' positions; sync; let the streams confirm what is durable. */
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
		HdStreamStatus st;

		hd_stream_status(cfg->stream, &st);
		if (st.applied_lsn > cfg->persisted_lsn)
		{
			if (hd_cache_invalidate_relations(layer->store, cfg->id, NULL, 0, st.applied_lsn,
											  NULL, err, sizeof(err)) < 0)
				store_trouble(cfg, &cfg->apply_log, HD_LOG_ERROR, "writing the stream's position failed", err);
			else
			{
				cfg->persisted_lsn = st.applied_lsn;
				layer->dirty = true;
			}
		}
		retained_prune(cfg);
		flight_timeouts(cfg, ev_time());
	}
	if (layer->dirty && now - layer->last_sync >= 1.0)
	{
		uint64_t	lsns[256];
		size_t		n = 0;

		hd_list_foreach_safe(item, tmp, &layer->cfgs)
		{
			if (n < 256)
				lsns[n++] = hd_container_of(item, CacheCfg, link)->persisted_lsn;
		}
		layer->last_sync = now;
		if (hd_cache_sync(layer->store, err, sizeof(err)) < 0)
		{
			uint64_t	left_out;

			if (log_now(&layer->sync_log, &left_out))
				hd_error("cache: sync failed (positions are not confirmed): %s (%" PRIu64
						 " more failures since the last such line; logged at most once a "
						 "minute)", err, left_out);
			return;
		}
		layer->dirty = false;
		n = 0;
		hd_list_foreach_safe(item, tmp, &layer->cfgs)
		{
			CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

			if (n < 256)
				hd_stream_set_durable_lsn(cfg->stream, lsns[n++]);
		}
	}
}

/* Open the store (a damaged one is wiped and opened empty). */
static int
store_open(HdCacheLayer *layer, char *err, size_t errlen)
{
	const HdSettings *settings = &layer->agent->settings;
	HdCacheOptions opts;
	int			rc;

	(void) mkdir(settings->state_dir, 0700);
	hd_cache_options_init(&opts);
	opts.map_size = (size_t) settings->cache_map_size;
	opts.max_bytes = (uint64_t) settings->cache_max_bytes;
	/* a record holds the key and a header too: leave room for them */
	opts.max_entry_bytes = settings->cache_max_entry_bytes > 0 ?
		(uint64_t) settings->cache_max_entry_bytes + 64 * 1024 : 0;
	rc = hd_cache_open(layer->dir, &opts, &layer->store, err, errlen);
	if (rc == HD_CACHE_DAMAGED)
	{
		hd_error("the cache in %s is damaged (%s): wiping it and starting empty", layer->dir, err);
		if (hd_cache_wipe(layer->dir, err, errlen) == 0)
			rc = hd_cache_open(layer->dir, &opts, &layer->store, err, errlen);
	}
	return rc == HD_CACHE_OK ? 0 : -1;
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
	hd_cache_layer_configs(layer->agent);
}

/*
 * At agent start. -1 (with why in err) when the store cannot be opened: the
 * agent runs without a cache meanwhile, and the layer tries again on its
 * timer. agent->cache is NULL only when out of memory.
 */
int
hd_cache_layer_open(HdAgent *agent, char *err, size_t errlen)
{
	HdCacheLayer *layer = calloc(1, sizeof(HdCacheLayer));

	if (layer == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	layer->agent = agent;
	hd_list_init(&layer->cfgs);
	snprintf(layer->dir, sizeof(layer->dir), "%s/cache", agent->settings.state_dir);
	agent->cache = layer;
	ev_timer_init(&layer->timer, timer_cb, 0.2, 0.2);
	layer->timer.data = layer;
	ev_timer_start(agent->loop, &layer->timer);
	layer->last_sync = ev_now(agent->loop);
	layer->open_tried_at = ev_now(agent->loop);
	if (store_open(layer, err, errlen) < 0)
	{
		snprintf(layer->open_error, sizeof(layer->open_error), "%s", err);
		layer->open_failures = 1;
		(void) log_now(&layer->open_log, &(uint64_t) {0});	/* the caller logs this one */
		return -1;
	}
	hd_cache_layer_configs(agent);
	return 0;
}

void
hd_cache_layer_close(HdAgent *agent)
{
	HdCacheLayer *layer = layer_of(agent);
	HdList	   *item;
	char		err[512];

	if (layer == NULL)
		return;
	ev_timer_stop(agent->loop, &layer->timer);
	while ((item = hd_list_first(&layer->cfgs)) != NULL)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		HdStreamStatus st;

		hd_stream_status(cfg->stream, &st);
		if (st.applied_lsn > cfg->persisted_lsn)
			(void) hd_cache_invalidate_relations(layer->store, cfg->id, NULL, 0, st.applied_lsn,
												 NULL, err, sizeof(err));
		cfg_free(layer, cfg);
	}
	if (hd_cache_close(layer->store, err, sizeof(err)) < 0)
		hd_error("cache: closing failed: %s", err);
	free(layer);
	agent->cache = NULL;
}

/* ---------------------------------------------------------------------------
 * Decisions
 */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * format, config, role, database, the settings (sorted), then the statement:
 * its text (simple Query), or the parts of an extended batch (stmt_part()).
 */
static unsigned char *
build_key(const HdClient *client, const char *format, const char *sql, size_t len,
		  size_t *keylen)
{
	const HdSettingList *list = &client->settings;
	const char **sqls = calloc(list->count + 1, sizeof(char *));
	HdIoBuf		b = {0};
	unsigned char *out;
	char		count[16];

	if (sqls == NULL)
		return NULL;
	for (size_t i = 0; i < list->count; i++)
		sqls[i] = list->items[i].sql ? list->items[i].sql : "";
	qsort(sqls, list->count, sizeof(char *), cmp_str);
	snprintf(count, sizeof(count), "%zu", list->count);
	if (hd_iobuf_append(&b, format, strlen(format) + 1) < 0 ||
		hd_iobuf_append(&b, client->pool->config.id, strlen(client->pool->config.id) + 1) < 0 ||
		hd_iobuf_append(&b, client->user, strlen(client->user) + 1) < 0 ||
		hd_iobuf_append(&b, client->pool->config.database,
						strlen(client->pool->config.database) + 1) < 0 ||
		hd_iobuf_append(&b, count, strlen(count) + 1) < 0)
		goto oom;
	for (size_t i = 0; i < list->count; i++)
		if (hd_iobuf_append(&b, sqls[i], strlen(sqls[i]) + 1) < 0)
			goto oom;
	if (hd_iobuf_append(&b, sql, len) < 0)
		goto oom;
	free(sqls);
	*keylen = hd_iobuf_live(&b);
	out = malloc(*keylen);
	if (out)
		memcpy(out, hd_iobuf_head(&b), *keylen);
	hd_iobuf_free(&b);
	return out;
oom:
	free(sqls);
	hd_iobuf_free(&b);
	return NULL;
}

/* Whether the text starts (after blanks and comments) with a reading keyword. */
static bool
looks_like_select(const char *sql, size_t len)
{
	size_t		i = 0;
	static const char *const words[] = {"select", "with", "values", "table", NULL};

	for (;;)
	{
		while (i < len && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' ||
						   sql[i] == '\f'))
			i++;
		if (i + 1 < len && sql[i] == '-' && sql[i + 1] == '-')
		{
			while (i < len && sql[i] != '\n')
				i++;
			continue;
		}
		if (i + 1 < len && sql[i] == '/' && sql[i + 1] == '*')
			return true;		/* let the origin's parser decide */
		break;
	}
	if (i < len && sql[i] == '(')
		return true;
	for (int w = 0; words[w]; w++)
	{
		size_t		n = strlen(words[w]);

		if (len - i >= n && strncasecmp(sql + i, words[w], n) == 0 &&
			(len - i == n || !((sql[i + n] >= 'a' && sql[i + n] <= 'z') ||
							   (sql[i + n] >= 'A' && sql[i + n] <= 'Z') ||
							   (sql[i + n] >= '0' && sql[i + n] <= '9') || sql[i + n] == '_')))
			return true;
	}
	return false;
}

/*
 * How far behind the origin the applied stream may be, in seconds: the age of
 * the newest freshness probe whose WAL position the stream has applied
 * (stream.h). Every transaction the origin acknowledged before that probe was
 * sent has been applied. -1: not known yet.
 */
static double
stream_age(const HdStreamStatus *st)
{
	if (st->fresh_as_of <= 0)
		return -1.0;
	return ev_time() - st->fresh_as_of;
}

/* Why hits cannot be served now, or NULL. */
static const char *
stream_problem(CacheCfg *cfg, const HdClient *client)
{
	HdStreamStatus st;
	double		age;
	double		max_lag = client->agent->settings.max_lag_ms / 1000.0;

	if (cfg->stream == NULL || !hd_stream_connected(cfg->stream))
		return "stream-down";
	hd_stream_status(cfg->stream, &st);
	age = stream_age(&st);
	if (st.applied_lsn < cfg->catchup_lsn || age < 0 || age > max_lag)
		return "lagging";			/* (no message yet: not known to be caught up) */
	if (client->ryw_lsn > st.applied_lsn)
		return "read-your-writes";
	return NULL;
}

bool
hd_cache_serves(const HdClient *client)
{
	return client->pool && !client->replication[0] && !client->pinned &&
		!client->pool->config.caching_disabled &&
		client->pool->config.pool_mode == HD_POOL_TRANSACTION &&
		find_cfg(client->agent, client->pool->config.id) != NULL;
}

void
hd_cache_count_bypass(HdClient *client, const char *reason)
{
	CacheCfg   *cfg;
	char		name[64];

	if (client->pool == NULL || client->replication[0] || client->pool->config.caching_disabled ||
		(cfg = find_cfg(client->agent, client->pool->config.id)) == NULL)
		return;
	snprintf(name, sizeof(name), "bypass:%s", reason);
	count_reason(cfg, name);
}

/* ---------------------------------------------------------------------------
 * Requests: a simple Query, or one extended-protocol statement up to its Sync
 */

/* What a client asks at the head of its input. */
typedef struct Request
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
} Request;

/*
 * Read the request at head (avail bytes; a Query is complete). HD_BATCH_NO
 * says why it is forwarded as it is, and has_execute whether it runs a
 * statement at all (only those are counted).
 */
static HdBatchResult
read_request(HdClient *client, const char *head, size_t avail, Request *r, bool *has_execute,
			 const char **why)
{
	HdBatchResult rc;

	memset(r, 0, sizeof(*r));
	*has_execute = true;
	*why = NULL;
	if (head[0] == 'Q')
	{
		uint32_t	len = hd_get_u32(head + 1);

		r->len = (size_t) len + 1;
		r->msg = head;
		r->sql = head + 5;
		r->sqllen = len > 4 ? len - 5 : 0;	/* without the NUL */
		return HD_BATCH_OK;
	}
	rc = hd_ext_batch_parse(head, avail, MAX_EXT_BATCH, &r->batch, has_execute, why);
	if (rc != HD_BATCH_OK)
		return rc;
	r->ext = true;
	r->len = r->batch.len;
	if (r->batch.has_parse)
	{
		r->sql = r->batch.query;
		r->types = r->batch.types;
		r->types_len = r->batch.types_len;
	}
	else
	{
		/* a statement the client prepared before: the text the registry holds */
		uint32_t	id = r->batch.stmt_name[0] ?
			hd_client_stmt_find(&client->stmts, r->batch.stmt_name) : 0;
		HdStatement *stmt = id ? hd_registry_get(&client->pool->registry, id) : NULL;

		if (stmt == NULL)
		{
			*why = r->batch.stmt_name[0] ? "unknown statement" : "unnamed statement";
			return HD_BATCH_NO;
		}
		if (stmt->changed)
		{
			*why = "statement changed";	/* the origin connection answers 0A000 (prepare.h) */
			return HD_BATCH_NO;
		}
		r->stmt = stmt;
		r->sql = stmt->query;
		r->types = stmt->types;
		r->types_len = stmt->types_len;
	}
	r->sqllen = strlen(r->sql);
	return HD_BATCH_OK;
}

static int
put_part(HdIoBuf *b, const void *p, size_t len)
{
	char		n[4];

	hd_put_u32(n, (uint32_t) len);
	return hd_iobuf_append(b, n, 4) < 0 || hd_iobuf_append(b, p, len) < 0 ? -1 : 0;
}

/*
 * The parameter types an analysis must use, as a regtype[] literal: the
 * Parse's, and as many more as the Bind has values, left to be inferred
 * (NULL), since PostgreSQL infers the types of $n a Parse does not give.
 */
static int
analysis_types(const Request *r, HdIoBuf *out)
{
	uint16_t	given = r->ext ? hd_get_u16(r->types) : 0;
	uint16_t	n = r->ext && r->batch.nparams > given ? r->batch.nparams : given;
	char		item[16];

	if (hd_iobuf_append(out, "{", 1) < 0)
		return -1;
	for (uint16_t i = 0; i < n; i++)
	{
		uint32_t	oid = i < given ? hd_get_u32(r->types + 2 + 4 * (size_t) i) : 0;

		if (oid)
			snprintf(item, sizeof(item), "%s%u", i ? "," : "", oid);
		else
			snprintf(item, sizeof(item), "%sNULL", i ? "," : "");
		if (hd_iobuf_append(out, item, strlen(item)) < 0)
			return -1;
	}
	return hd_iobuf_append(out, "}", 2);	/* with its NUL */
}

/*
 * The keys of a request: the analysis's (the text and its parameter types)
 * and the entry's (the exact request: for the extended protocol its shape,
 * text, types, parameter formats and values and result formats). A simple
 * Query's two keys are the same bytes. Returns -1 when memory ran out.
 */
static int
request_keys(const HdClient *client, const Request *r, unsigned char **akey, size_t *akeylen,
			 unsigned char **key, size_t *keylen)
{
	HdIoBuf		a = {0};
	HdIoBuf		e = {0};
	int			rc = -1;

	*akey = *key = NULL;
	if (!r->ext)
	{
		*akey = build_key(client, KEY_FORMAT, r->sql, r->sqllen, akeylen);
		*key = *akey ? build_key(client, KEY_FORMAT, r->sql, r->sqllen, keylen) : NULL;
		rc = *key ? 0 : -1;
		goto out;
	}
	if (put_part(&a, r->sql, r->sqllen) < 0 || analysis_types(r, &a) < 0 ||
		hd_iobuf_append(&e, r->batch.shape, strlen(r->batch.shape) + 1) < 0 ||
		put_part(&e, r->sql, r->sqllen) < 0 || put_part(&e, r->types, r->types_len) < 0 ||
		put_part(&e, r->batch.bind_tail, r->batch.bind_tail_len) < 0 ||
		/* a statement described before: the result its client expects (prepare.h) */
		(r->stmt && r->stmt->shape &&
		 put_part(&e, r->stmt->shape, r->stmt->shape_len) < 0))
		goto out;
	*akey = build_key(client, KEY_FORMAT_EXT_ANALYSIS, hd_iobuf_head(&a), hd_iobuf_live(&a),
					  akeylen);
	*key = *akey ? build_key(client, KEY_FORMAT_EXT, hd_iobuf_head(&e), hd_iobuf_live(&e),
							 keylen) : NULL;
	rc = *key ? 0 : -1;
out:
	if (rc < 0)
	{
		free(*akey);
		*akey = NULL;
	}
	hd_iobuf_free(&a);
	hd_iobuf_free(&e);
	return rc;
}

/*
 * The request leaves the client's input: answered (a hit), sent (a fill)
 * or about to be answered (a waiter). A named Parse in it names the
 * statement for the client, as if the origin had taken it.
 */
static int
consume_request(HdClient *client, const Request *r)
{
	if (r->ext && r->batch.has_parse && r->batch.parse_name[0] &&
		hd_client_register_statement(client, r->batch.parse_name, r->batch.query,
									 r->batch.types, r->batch.types_len) < 0)
		return -1;
	if (r->ext && r->batch.has_parse && !r->batch.parse_name[0] &&
		hd_prepare_note_unnamed(client, r->batch.query, r->batch.types, r->batch.types_len) < 0)
		return -1;
	client->pool->stats.bytes_from_clients += r->len;
	hd_iobuf_consume(&client->in, r->len);
	client->local_batch = false;
	return 0;
}

/* The request at the head of a client's input again (a waiter's, at its answer). */
static int
reread_request(HdClient *client, Request *r)
{
	const char *head = hd_iobuf_head(&client->in);
	size_t		avail = hd_iobuf_live(&client->in);
	bool		has_execute;
	const char *why;

	if (avail < 5 || (head[0] == 'Q' && avail < (size_t) hd_get_u32(head + 1) + 1))
		return -1;
	return read_request(client, head, avail, r, &has_execute, &why) == HD_BATCH_OK ? 0 : -1;
}

/* The statement a batch's Describe S describes, by the client's name ("": unnamed). */
static const char *
described_name(const Request *r)
{
	return r->batch.has_parse ? r->batch.parse_name : r->batch.stmt_name;
}

/* Serve stored bytes for the request: the replies, then ReadyForQuery. */
static int
serve_bytes(HdClient *client, const Request *r, const void *bytes, size_t len)
{
	if (consume_request(client, r) < 0 || hd_iobuf_append(&client->out, bytes, len) < 0 ||
		hd_send_ready(&client->out, 'I') < 0)
	{
		/* half an answer may be out: the session cannot go on */
		hd_client_fatal(client, "53200", "out of memory", NULL);
		return -1;
	}
	client->pool->stats.queries++;
	client->pool->stats.bytes_to_clients += len + 6;
	/* it was shown its statement's description: as if the origin had (prepare.h) */
	if (r->ext && r->batch.describe_stmt)
		hd_prepare_note_replies(client, described_name(r), r->batch.has_parse, bytes, len);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Request coalescing: one fill per key in flight, other clients wait for it
 */

/* The flight of a key in flight (one at a time per key). */
static Flight *
flight_find(CacheCfg *cfg, bool analysis, const unsigned char *key, size_t keylen)
{
	for (Flight *f = cfg->flights; f; f = f->next)
		if (f->analysis == analysis && f->keylen == keylen && memcmp(f->key, key, keylen) == 0)
			return f;
	return NULL;
}

/* A new flight; takes key (freed here on failure). */
static Flight *
flight_new(CacheCfg *cfg, bool analysis, unsigned char *key, size_t keylen)
{
	Flight	   *f = calloc(1, sizeof(Flight));

	if (f == NULL)
	{
		free(key);
		return NULL;
	}
	f->cfg = cfg;
	f->analysis = analysis;
	f->key = key;
	f->keylen = keylen;
	hd_list_init(&f->waiters);
	f->next = cfg->flights;
	cfg->flights = f;
	return f;
}

/* A waiter runs its own query on the origin after all (never an error). */
static void
waiter_fall_back(CacheCfg *cfg, HdClient *client, const char *reason)
{
	hd_list_del(&client->cache_wait_link);
	client->cache_flight = NULL;
	count_reason(cfg, reason);
	if (client->state != HD_CLIENT_ACTIVE)
		return;
	client->awaiting_cache = false;
	client->cache_step = HD_CSTEP_FORWARD;
	if (hd_iobuf_live(&client->in) > 0 && hd_iobuf_head(&client->in)[0] != 'Q')
		client->ext_forwarding = true;	/* its whole batch goes as it is */
	hd_client_resume_reading(client);
}

/* A waiter gets the fill's bytes (a stored result) for its request. */
static void
waiter_serve(CacheCfg *cfg, HdClient *client, const void *bytes, size_t len)
{
	const char *problem;
	char		name[80];
	Request		r;

	if (client->state != HD_CLIENT_ACTIVE)
	{
		hd_list_del(&client->cache_wait_link);
		client->cache_flight = NULL;
		return;
	}
	/* the conditions for a hit hold now too (stream health, lag, its writes) */
	if ((problem = stream_problem(cfg, client)) != NULL)
	{
		snprintf(name, sizeof(name), "coalesce-fallback:%s", problem);
		waiter_fall_back(cfg, client, name);
		return;
	}
	if (reread_request(client, &r) < 0)
	{
		waiter_fall_back(cfg, client, "coalesce-fallback:error");
		return;
	}
	hd_list_del(&client->cache_wait_link);
	client->cache_flight = NULL;
	if (serve_bytes(client, &r, bytes, len) < 0)
		return;					/* closed */
	cfg->coalesced++;
	client->awaiting_cache = false;
	client->cache_step = HD_CSTEP_NONE;
	hd_client_flush(client);
	if (client->state == HD_CLIENT_ACTIVE)
		hd_client_resume_reading(client);
}

/*
 * An analysis it waited for ended, or a fill whose result it may not take:
 * its request is decided again, from the start.
 */
static void
waiter_decide_again(HdClient *client)
{
	hd_list_del(&client->cache_wait_link);
	client->cache_flight = NULL;
	if (client->state != HD_CLIENT_ACTIVE)
		return;
	client->awaiting_cache = false;
	client->cache_step = HD_CSTEP_NONE;
	hd_client_resume_reading(client);
}

/*
 * The flight ends: with the bytes of its result, which the waiters that
 * began to wait before invalidation order joined_before get (all of them,
 * UINT64_MAX, when it was stored), or NULL (failed, gone: the waiters run
 * their own queries). A waiter that began later (the result may miss a
 * change it must see) decides again: the first of them leads the key's next
 * fill, the others wait for that one. So a key has one fill at a time, and
 * writes during a slow fill cost one more execution, not one per write.
 * Waking waiters can re-enter the cache: the flight is unlinked first, and
 * the list is re-read after each.
 */
static void
flight_end(Flight *f, const void *bytes, size_t len, uint64_t joined_before)
{
	CacheCfg   *cfg = f->cfg;
	HdList	   *item;

	for (Flight **l = &cfg->flights; *l; l = &(*l)->next)
		if (*l == f)
		{
			*l = f->next;
			break;
		}
	if (f->leader)
	{
		f->leader->cache_flight = NULL;
		f->leader->cache_leader = false;
		f->leader = NULL;
	}
	if (f->op)
		f->op->flight = NULL;
	f->op = NULL;
	while ((item = hd_list_first(&f->waiters)) != NULL)
	{
		HdClient   *client = hd_container_of(item, HdClient, cache_wait_link);

		if (f->analysis)
			waiter_decide_again(client);
		else if (bytes && client->cache_wait_order < joined_before)
			waiter_serve(cfg, client, bytes, len);
		else if (bytes)
		{
			count_reason(cfg, "coalesce-again:raced");
			waiter_decide_again(client);
		}
		else
			waiter_fall_back(cfg, client, "coalesce-fallback:not stored");
	}
	free(f->key);
	free(f);
}

/* Waiters past query_wait_timeout run their own queries. */
static void
flight_timeouts(CacheCfg *cfg, double now)
{
	double		limit = cfg->agent->settings.query_wait_timeout_ms / 1000.0;
	bool		again = true;

	if (limit <= 0)
		return;
	while (again)
	{
		again = false;
		for (Flight *f = cfg->flights; f && !again; f = f->next)
		{
			HdList	   *item;
			HdList	   *tmp;

			hd_list_foreach_safe(item, tmp, &f->waiters)
			{
				HdClient   *client = hd_container_of(item, HdClient, cache_wait_link);

				if (now - client->cache_wait_started >= limit)
				{
					waiter_fall_back(cfg, client, "coalesce-fallback:timeout");
					again = true;	/* callbacks may have changed the lists */
					break;
				}
			}
		}
	}
}

void
hd_cache_client_gone(HdClient *client)
{
	Flight	   *f = client->cache_flight;

	if (f == NULL)
		return;
	if (client->cache_leader)
	{
		/* it never started its fill: the waiters run their own */
		client->cache_flight = NULL;
		client->cache_leader = false;
		f->leader = NULL;
		if (f->op == NULL)
			flight_end(f, NULL, 0, 0);
		return;
	}
	hd_list_del(&client->cache_wait_link);
	client->cache_flight = NULL;
}

/*
 * A miss (or a stale entry), or a statement not analysed yet: lead a new
 * fill (analysis) for the key, or wait for the one in flight. Takes key.
 */
static int
lead_or_wait(CacheCfg *cfg, HdClient *client, bool analysis, unsigned char *key, size_t keylen)
{
	Flight	   *f = flight_find(cfg, analysis, key, keylen);

	if (f != NULL)
	{
		free(key);
		hd_list_append(&f->waiters, &client->cache_wait_link);
		client->cache_flight = f;
		client->cache_leader = false;
		client->cache_wait_started = ev_time();
		client->cache_wait_order = cfg->order;
		if (analysis)
			count_reason(cfg, "analysis-coalesced");
		return HD_CSTEP_WAIT;
	}
	f = flight_new(cfg, analysis, key, keylen);
	if (f != NULL)
	{
		f->leader = client;
		client->cache_flight = f;
		client->cache_leader = true;
	}
	return analysis ? HD_CSTEP_ANALYZE : HD_CSTEP_FILL;
}

static CacheOp *fill_op_new(CacheCfg *cfg, const Analysis *a, const unsigned char *key,
							size_t keylen, const Request *r, HdServer *server);

/*
 * A background refresh of a stale entry: a fill with no client, on an idle
 * origin connection of the client's pool whose session settings are the
 * client's (the key's); none free, or a fill of the key already in flight:
 * no refresh. Takes key.
 */
static void
start_refresh(CacheCfg *cfg, HdClient *client, const Request *r, const Analysis *a,
			  unsigned char *key, size_t keylen)
{
	HdPool	   *pool = client->pool;
	HdServer   *server = NULL;
	HdList	   *item;
	HdList	   *tmp;
	Flight	   *f;
	CacheOp    *op;

	if (flight_find(cfg, false, key, keylen) != NULL)
	{
		free(key);				/* a fill or refresh of it runs already */
		return;
	}
	if (!pool->paused && !pool->stale)
	{
		hd_list_foreach_safe(item, tmp, &pool->idle)
		{
			HdServer   *cand = hd_container_of(item, HdServer, idle_link);
			bool		err = false;
			char	   *diff;

			if (cand->state != HD_SERVER_IDLE || cand->close_on_release)
				continue;
			diff = hd_settings_diff_sql(&cand->settings, &client->settings, &err);
			if (diff == NULL && !err)
			{
				server = cand;
				break;
			}
			free(diff);
		}
	}
	if (server == NULL)
	{
		count_reason(cfg, "refresh-skipped:no idle connection");
		free(key);
		return;
	}
	op = fill_op_new(cfg, a, key, keylen, r, server);
	if (op == NULL)
	{
		free(key);
		/* half a request may be in its output: the idle connection cannot be reused */
		hd_server_close(server, "out of memory");
		return;
	}
	f = flight_new(cfg, false, key, keylen);	/* takes key */
	if (f == NULL)
	{
		inflight_remove(cfg, op->seq);
		op_free(op);
		hd_server_close(server, "out of memory");
		return;
	}
	op->refresh = true;
	hd_prepare_server_unnamed_lost(server);
	/* the connection is the refresh's now, like a client's */
	hd_list_del(&server->idle_link);
	server->state = HD_SERVER_ACTIVE;
	server->client = NULL;
	server->request_sent_at = 0;
	server->cache_op = HD_COP_FILL;
	server->cache_state = op;
	op->flight = f;
	f->op = op;
	pool->stats.queries++;
	cfg->refreshes++;
	hd_server_flush(server);
}

/*
 * The request goes to the origin as it is, for a counted reason. An
 * extended batch's Execute is then not counted again (client.c).
 */
static int
bypass(CacheCfg *cfg, HdClient *client, const char *reason)
{
	count_reason(cfg, reason);
	if (hd_iobuf_live(&client->in) > 0 && hd_iobuf_head(&client->in)[0] != 'Q')
		client->ext_counted = true;
	return HD_CSTEP_FORWARD;
}

int
hd_cache_on_request(HdClient *client, const char *head, size_t avail)
{
	HdCacheLayer *layer = layer_of(client->agent);
	CacheCfg   *cfg;
	Request		r;
	unsigned char *akey;
	unsigned char *key;
	size_t		akeylen;
	size_t		keylen;
	bool		has_execute;
	const char *why;
	HdBatchResult rb;
	HdHint		hint;
	Analysis   *a;
	const char *problem;
	HdCacheHit	hit = {0};
	char		err[512];
	char		name[96];

	if (layer == NULL || client->replication[0])
		return HD_CSTEP_FORWARD;
	cfg = find_cfg(client->agent, client->pool->config.id);
	if (cfg == NULL || client->pool->config.caching_disabled)
		return HD_CSTEP_FORWARD;	/* nothing to count: caching is off for the config */
	if (client->server != NULL)
		return bypass(cfg, client, client->pinned ? "bypass:pinned" : "bypass:transaction");
	rb = read_request(client, head, avail, &r, &has_execute, &why);
	if (rb == HD_BATCH_MORE)
		return HD_CSTEP_MORE;
	if (rb == HD_BATCH_NO)
	{
		if (!has_execute)
			return HD_CSTEP_FORWARD;	/* counted at its Execute, if one comes */
		snprintf(name, sizeof(name), "bypass:extended:%s", why);
		return bypass(cfg, client, name);
	}
	if (client->pinned || client->pool->config.pool_mode != HD_POOL_TRANSACTION)
		return bypass(cfg, client, "bypass:pinned");
	hd_cache_hint_parse(r.sql, r.sqllen, &hint);
	if (hint.kind == HD_HINT_NO_CACHE)
		return bypass(cfg, client, "bypass:hint");
	if (hint.kind == HD_HINT_INVALID)
		return bypass(cfg, client, "bypass:hint:invalid");
	if (!looks_like_select(r.sql, r.sqllen))
		return bypass(cfg, client, "bypass:uncacheable:not a SELECT");
	if (request_keys(client, &r, &akey, &akeylen, &key, &keylen) < 0)
		return bypass(cfg, client, "bypass:error");
	a = analysis_find(cfg, akey, akeylen, ev_time());
	if (a == NULL)
	{
		free(key);
		return lead_or_wait(cfg, client, true, akey, akeylen);	/* takes akey */
	}
	free(akey);
	problem = a->cacheable ? stream_problem(cfg, client) : a->reason;
	if (problem != NULL)
	{
		snprintf(name, sizeof(name), "bypass:%s", problem);
		free(key);
		return bypass(cfg, client, name);
	}
	if (hd_cache_get(layer->store, cfg->id, key, keylen, wall_ms(), &hit, err, sizeof(err)) < 0)
	{
		store_trouble(cfg, &cfg->lookup_log, HD_LOG_WARNING, "lookup failed", err);
		free(key);
		return bypass(cfg, client, hd_cache_fenced(layer->store, cfg->id) ?
					  "bypass:fenced" : "bypass:error");
	}
	if (hit.status == HD_CACHE_FRESH || (hit.status == HD_CACHE_STALE && cfg->swr > 0))
	{
		bool		stale = hit.status == HD_CACHE_STALE;
		int			rc;

		/*
		 * A stale entry (stale-while-revalidate) is served, and refreshed once:
		 * the refresh copies the request before it leaves the client's input.
		 */
		if (stale)
			start_refresh(cfg, client, &r, a, key, keylen);	/* takes key */
		else
			free(key);
		rc = serve_bytes(client, &r, hit.bytes, hit.len);
		hd_cache_hit_release(&hit);
		if (rc == 0)
		{
			if (stale)
				cfg->stale_hits++;
			else
				cfg->hits++;
		}
		return HD_CSTEP_SERVED;	/* (or the client is closed) */
	}
	hd_cache_hit_release(&hit);	/* STALE or MISS */
	return lead_or_wait(cfg, client, false, key, keylen);
}

/* ---------------------------------------------------------------------------
 * Ops on a server: analysis, fill, read-your-writes position
 */

static void
op_free(CacheOp *op)
{
	if (op == NULL)
		return;
	free(op->key);
	free(op->oids);
	hd_iobuf_free(&op->capture);
	hd_iobuf_free(&op->check_params);
	free(op->describe_name);
	hd_iobuf_free(&op->describe_params);
	free(op->snapshot);
	free(op->a_reason);
	free(op->a_relations);
	free(op->a_error);
	free(op);
}

static int
append_query(HdIoBuf *out, const char *sql)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'Q');
	hd_msg_put_str(&msg, sql);
	return hd_msg_end(&msg);
}

static const char ANALYZE_SQL[] =
	"SELECT cacheable::pg_catalog.text, COALESCE(reason, ''), relations::pg_catalog.text "
	"FROM hyperdrive.analyze_query($1::pg_catalog.text, $2::pg_catalog.regtype[])";

/*
 * A fill's first query: its transaction, its snapshot, and the session
 * state (state_check.c), which must be the connection's baseline, the state
 * the agent set up for the key's settings and role (else not stored).
 */
static int
append_fill_begin(HdServer *server)
{
	static const char begin[] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
		"SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text, (";
	const char *state = hd_state_check_query(server->pool);
	HdMsg		msg;

	if (state == NULL)
		return -1;
	hd_msg_begin(&msg, &server->out, 'Q');
	hd_msg_put_bytes(&msg, begin, sizeof(begin) - 1);
	hd_msg_put_bytes(&msg, state, strlen(state));
	hd_msg_put_str(&msg, ")");
	return hd_msg_end(&msg);
}

/* Append a text value as a Bind parameter. */
static void
put_text_param(HdMsg *m, const char *value, size_t len)
{
	hd_msg_put_u32(m, (uint32_t) len);
	hd_msg_put_bytes(m, value, len);
}

/* hyperdrive.analyze_query() for the request's text and parameter types. */
static int
append_analysis(HdIoBuf *out, const Request *r)
{
	HdIoBuf		types = {0};
	HdMsg		m;
	int			rc = -1;

	if (analysis_types(r, &types) < 0 || hd_send_parse(out, "", ANALYZE_SQL, NULL, 0) < 0)
		goto out;
	hd_msg_begin(&m, out, 'B');
	hd_msg_put_str(&m, "");
	hd_msg_put_str(&m, "");
	hd_msg_put_u16(&m, 0);
	hd_msg_put_u16(&m, 2);
	put_text_param(&m, r->sql, r->sqllen);
	put_text_param(&m, hd_iobuf_head(&types), hd_iobuf_live(&types) - 1);	/* no NUL */
	hd_msg_put_u16(&m, 0);
	if (hd_msg_end(&m) < 0)
		goto out;
	rc = hd_send_execute_sync(out);
out:
	hd_iobuf_free(&types);
	return rc;
}

/*
 * The request as a fill sends it: a simple Query as the client sent it (so
 * error positions are the same); an extended statement with the unnamed
 * statement and portal (the replies are the same bytes whatever the names),
 * always with its Parse, Describe and Bind as the client's batch has them.
 */
static int
append_statement(HdIoBuf *out, const Request *r)
{
	HdMsg		m;

	if (!r->ext)
		return hd_iobuf_append(out, r->msg, r->len);
	if (hd_send_parse(out, "", r->sql, r->types, r->types_len) < 0)
		return -1;
	/* the statement's description now, compared with what the client was shown */
	if (r->stmt && r->stmt->shape && hd_send_describe_close(out, 'D', 'S', "") < 0)
		return -1;
	if (r->batch.describe_stmt && hd_send_describe_close(out, 'D', 'S', "") < 0)
		return -1;
	hd_msg_begin(&m, out, 'B');
	hd_msg_put_str(&m, "");
	hd_msg_put_str(&m, "");
	hd_msg_put_bytes(&m, r->batch.bind_tail, r->batch.bind_tail_len);
	if (hd_msg_end(&m) < 0)
		return -1;
	if (r->batch.describe_portal && hd_send_describe_close(out, 'D', 'P', "") < 0)
		return -1;
	return hd_send_execute_sync(out);
}

/* A fill op for key (copied) reading a's relations; its request appended to the server's output. */
static CacheOp *
fill_op_new(CacheCfg *cfg, const Analysis *a, const unsigned char *key, size_t keylen,
			const Request *r, HdServer *server)
{
	HdIoBuf    *out = &server->out;
	CacheOp    *op = calloc(1, sizeof(CacheOp));
	HdHint		hint;

	if (op == NULL)
		return NULL;
	op->kind = HD_COP_FILL;
	memcpy(op->cfg_id, cfg->id, sizeof(op->cfg_id));
	op->started = ev_time();
	op->gen = cfg->analysis_gen;
	op->capture_ok = true;
	/* the client's batch has no Parse: the reply to ours is not its to see */
	op->skip_parse_complete = r->ext && !r->batch.has_parse;
	op->check_stmt = r->stmt && r->stmt->shape ? r->stmt->id : 0;
	if (r->ext && r->batch.describe_stmt &&
		(op->describe_name = strdup(described_name(r))) == NULL)
		goto fail;
	op->describe_fresh = r->batch.has_parse;
	hd_cache_hint_parse(r->sql, r->sqllen, &hint);
	op->max_age_ms = hint.kind == HD_HINT_MAX_AGE ? hint.max_age_s * 1000 :
		(int64_t) cfg->max_age * 1000;
	op->key = malloc(keylen);
	op->oids = malloc((a->noids ? a->noids : 1) * sizeof(uint32_t));
	if (op->key == NULL || op->oids == NULL)
		goto fail;
	memcpy(op->key, key, keylen);
	op->keylen = keylen;
	memcpy(op->oids, a->oids, a->noids * sizeof(uint32_t));
	op->noids = a->noids;
	/* the race guard's token, before anything is sent */
	op->token = hd_cache_token(layer_of(cfg->agent)->store);
	if (append_fill_begin(server) < 0 || append_statement(out, r) < 0 ||
		append_query(out, "COMMIT") < 0)
		goto fail;
	op->seq = ++cfg->next_fill_seq;
	inflight_add(cfg, op->seq);
	return op;
fail:
	op_free(op);
	return NULL;
}

/*
 * The analysis or the fill the client's request waits for. Returns 0 (sent;
 * a fill took the request out of the client's input), 1 (forward it as it
 * is), 2 (decide again: the analysis was dropped meanwhile) or -1 (out of
 * memory).
 */
static int
start_op(HdClient *client, HdServer *server)
{
	CacheCfg   *cfg = find_cfg(client->agent, client->pool->config.id);
	CacheOp    *op;
	Request		r;
	unsigned char *akey;
	unsigned char *key;
	size_t		akeylen;
	size_t		keylen;
	Analysis   *a;

	if (cfg == NULL || reread_request(client, &r) < 0)
		return 1;				/* config gone meanwhile: forward */
	if (request_keys(client, &r, &akey, &akeylen, &key, &keylen) < 0)
		return -1;
	if (client->cache_step == HD_CSTEP_ANALYZE)
	{
		free(key);
		op = calloc(1, sizeof(CacheOp));
		if (op == NULL || append_analysis(&server->out, &r) < 0)
		{
			free(akey);
			op_free(op);
			return -1;
		}
		op->kind = HD_COP_ANALYZE;
		memcpy(op->cfg_id, cfg->id, sizeof(op->cfg_id));
		op->key = akey;
		op->keylen = akeylen;
		op->started = ev_time();
		op->gen = cfg->analysis_gen;
	}
	else
	{
		a = analysis_find(cfg, akey, akeylen, ev_time());
		free(akey);
		if (a == NULL || !a->cacheable)
		{
			free(key);
			return 2;			/* dropped by DDL meanwhile: decide again */
		}
		op = fill_op_new(cfg, a, key, keylen, &r, server);
		free(key);
		if (op == NULL || consume_request(client, &r) < 0)
		{
			if (op)
				inflight_remove(cfg, op->seq);
			op_free(op);
			return -1;
		}
		client->pool->stats.queries++;
		server->state_dirty = true;	/* it ran the client's statement (state_check.c) */
	}
	server->cache_op = op->kind;
	server->cache_state = op;
	hd_prepare_server_unnamed_lost(server);
	return 0;
}

int
hd_cache_start_op(HdClient *client, HdServer *server)
{
	Flight	   *f = NULL;
	int			rc;

	if (client->cache_leader && client->cache_flight)
	{
		f = client->cache_flight;
		f->leader = NULL;
		client->cache_flight = NULL;
		client->cache_leader = false;
	}
	rc = start_op(client, server);
	if (f)
	{
		CacheOp    *op = server->cache_state;

		if (rc == 0 && op && op->kind == (f->analysis ? HD_COP_ANALYZE : HD_COP_FILL) &&
			op->keylen == f->keylen && memcmp(op->key, f->key, f->keylen) == 0)
		{
			op->flight = f;
			f->op = op;
		}
		else
			flight_end(f, NULL, 0, 0);
	}
	return rc;
}

bool
hd_cache_want_ryw(HdServer *server)
{
	return server->wrote && server->client && layer_of(server->agent) != NULL &&
		find_cfg(server->agent, server->pool->config.id) != NULL;
}

int
hd_cache_start_ryw(HdServer *server)
{
	CacheOp    *op = calloc(1, sizeof(CacheOp));

	server->wrote = false;
	if (op == NULL)
		return -1;
	op->kind = HD_COP_RYW;
	op->started = ev_time();
	if (append_query(&server->out, "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text") < 0)
	{
		op_free(op);
		return -1;
	}
	server->cache_op = HD_COP_RYW;
	server->cache_state = op;
	hd_prepare_server_unnamed_lost(server);
	return 0;
}

static void
finish_analysis(HdServer *server, CacheOp *op)
{
	CacheCfg   *cfg = find_cfg(server->agent, op->cfg_id);

	if (cfg == NULL || cfg->analysis_gen != op->gen)
		return;					/* DDL meanwhile: ask again next time */
	if (op->a_error)
	{
		char		reason[300];

		snprintf(reason, sizeof(reason), "error: %s", op->a_error);
		hd_debug("cache of config \"%s\": analysis failed: %s", cfg->name, op->a_error);
		analysis_store(cfg, op->key, op->keylen, false, reason, NULL,
					   ev_time() + ANALYSIS_ERROR_TTL);
		return;
	}
	if (!op->got_row)
		return;
	analysis_store(cfg, op->key, op->keylen, op->a_cacheable, op->a_reason ? op->a_reason : "",
				   op->a_cacheable ? op->a_relations : NULL, 0);
}

/*
 * A fill's result is stored unless its snapshot misses an invalidation of
 * its relations that was applied already (the race rule). Either way it is
 * the answer for a waiter that began to wait before every invalidation it
 * misses was applied: at that moment a stored entry would have been a hit.
 * *joined_before is that bound (0: no waiter, UINT64_MAX: every one).
 */
static bool
finish_fill(HdServer *server, CacheOp *op, uint64_t *joined_before)
{
	HdCacheLayer *layer = layer_of(server->agent);
	CacheCfg   *cfg = find_cfg(server->agent, op->cfg_id);
	Snapshot	s;
	bool		raced = false;
	char		err[512];

	*joined_before = 0;
	if (cfg == NULL)
		return false;
	inflight_remove(cfg, op->seq);
	if (!op->refresh)
		cfg->misses++;
	if (op->failed || op->snapshot == NULL || parse_snapshot(op->snapshot, &s) < 0)
	{
		count_reason(cfg, op->failed ? "not-stored:failed" : "not-stored:no snapshot");
		return false;
	}
	if (op->state_changed)
	{
		/* the connection's session is not what its key says: check it after */
		count_reason(cfg, "not-stored:session state");
		hd_warning("cache of config \"%s\": a fill found the origin connection's session "
				   "state other than the agent set it up: not stored", cfg->name);
		server->state_dirty = true;
		free(s.xip);
		return false;
	}
	if (!op->capture_ok)
	{
		count_reason(cfg, "bypass:oversized");
		free(s.xip);
		return false;
	}
	*joined_before = UINT64_MAX;
	for (size_t i = 0; i < cfg->nret; i++)
		if (retained_touches(&cfg->ret[i], op->oids, op->noids) && !xid_visible(&s, &cfg->ret[i]))
		{
			raced = true;
			if (cfg->ret[i].applied_order < *joined_before)
				*joined_before = cfg->ret[i].applied_order;
		}
	observe_snapshot(cfg, &s);
	free(s.xip);
	if (op->max_age_ms <= 0)
		*joined_before = 0;		/* asked never to be reused */
	if (raced)
	{
		count_reason(cfg, "bypass:race");
		hd_info("cache of config \"%s\": a fill read under a snapshot that does not see an "
				"invalidation already applied: not stored (race)", cfg->name);
		return false;
	}
	{
		HdCachePut	put = {0};
		HdCachePutOutcome outcome;

		put.config_id = cfg->id;
		put.key = op->key;
		put.keylen = op->keylen;
		put.value = hd_iobuf_head(&op->capture);
		put.len = hd_iobuf_live(&op->capture);
		put.relations = op->oids;
		put.nrelations = op->noids;
		put.token = op->token;
		put.now_ms = wall_ms();
		put.max_age_ms = op->max_age_ms;	/* the config's, or the statement's hint */
		put.swr_ms = (int64_t) cfg->swr * 1000;
		if (put.max_age_ms <= 0)
		{
			count_reason(cfg, "not-stored:max_age 0");
			return false;
		}
		if (hd_cache_put(layer->store, &put, &outcome, err, sizeof(err)) < 0)
		{
			store_trouble(cfg, &cfg->lookup_log, HD_LOG_WARNING, "storing a result failed", err);
			count_reason(cfg, "bypass:error");
			return false;
		}
		if (outcome == HD_CACHE_STORED)
		{
			cfg->stored++;
			return true;
		}
		else if (outcome == HD_CACHE_SKIP_RACED)
			count_reason(cfg, "bypass:race");
		else if (outcome == HD_CACHE_SKIP_OVERSIZED)
			count_reason(cfg, "bypass:oversized");
		else
			count_reason(cfg, "not-stored:full");
	}
	return false;
}

static void
to_client(HdServer *server, const char *msg, size_t total)
{
	if (server->client == NULL)
		return;
	server->pool->stats.bytes_to_clients += total;
	if (hd_iobuf_append(&server->client->out, msg, total) < 0)
		hd_client_fatal(server->client, "53200", "out of memory", NULL);
}

/* The client's own Describe S in a fill: its description, as the origin's (prepare.h). */
static void
fill_note_describe(HdServer *server, CacheOp *op, char type, const char *msg, size_t total)
{
	if (type == 't')
	{
		hd_iobuf_free(&op->describe_params);
		if (hd_iobuf_append(&op->describe_params, msg + 5, total - 5) < 0)
			hd_iobuf_free(&op->describe_params);
		return;
	}
	hd_prepare_note_described(server->client, op->describe_name, op->describe_fresh,
							  hd_iobuf_head(&op->describe_params),
							  hd_iobuf_live(&op->describe_params),
							  type == 'T' ? msg + 5 : NULL, type == 'T' ? total - 5 : 0);
	free(op->describe_name);
	op->describe_name = NULL;
}

/*
 * The fill's Describe of a statement the client prepared earlier: the same
 * result and parameter types as the client was shown, or the statement
 * changed (prepare.h): 0A000 for the client, nothing stored.
 */
static void
fill_check_shape(HdServer *server, CacheOp *op, char type, const char *msg, size_t total)
{
	HdStatement *stmt = hd_registry_get(&server->pool->registry, op->check_stmt);
	char	   *shape;
	size_t		len = 0;

	if (type == 't')
	{
		if (hd_iobuf_append(&op->check_params, msg + 5, total - 5) < 0)
			op->failed = true;
		return;
	}
	shape = hd_shape_build(hd_iobuf_head(&op->check_params), hd_iobuf_live(&op->check_params),
						   type == 'T' ? msg + 5 : NULL, type == 'T' ? total - 5 : 0, &len);
	op->check_stmt = 0;
	if (stmt && stmt->shape && shape &&
		(len != stmt->shape_len || memcmp(shape, stmt->shape, len) != 0))
	{
		op->shape_changed = true;
		op->failed = true;
		hd_prepare_changed(server, stmt, "a cache fill found other result or parameter types");
		if (server->client && hd_prepare_send_changed_error(&server->client->out) < 0)
			hd_client_fatal(server->client, "53200", "out of memory", NULL);
	}
	else if (shape == NULL)
		op->failed = true;		/* unreadable: not stored */
	free(shape);
}

static void
op_done(HdServer *server, CacheOp *op)
{
	HdClient   *client = server->client;
	bool		stored = false;
	uint64_t	joined_before = 0;

	server->cache_op = HD_COP_NONE;
	server->cache_state = NULL;
	if (op->kind == HD_COP_ANALYZE)
		finish_analysis(server, op);
	else if (op->kind == HD_COP_FILL)
		stored = finish_fill(server, op, &joined_before);
	if (client)
	{
		client->awaiting_cache = false;
		client->cache_step = HD_CSTEP_NONE;
		if (op->kind == HD_COP_FILL)
			hd_send_ready(&client->out, 'I');
	}
	if (op->flight)
	{
		/* the waiters: the result, or their own queries */
		if (joined_before > 0)
			flight_end(op->flight, hd_iobuf_head(&op->capture), hd_iobuf_live(&op->capture),
					   stored ? UINT64_MAX : joined_before);
		else
			flight_end(op->flight, NULL, 0, 0);
	}
	if (op->refresh && server->client == NULL && !op->broken)
	{
		/* a background refresh: the connection goes back to the pool */
		if (server->txn_status == 'I' && hd_iobuf_live(&server->out) == 0)
			hd_pool_release_server(server->pool, server);
		else
			hd_server_close(server, "the agent's cache refresh did not end cleanly");
	}
	op_free(op);
}

void
hd_cache_server_message(HdServer *server, char type, const char *msg, size_t total)
{
	CacheOp    *op = server->cache_state;
	const char *body = msg + 5;
	size_t		len = total - 5;

	if (op == NULL)
		return;
	if (type == 'A')
		return;					/* a notification: nobody here to tell */
	if (op->kind == HD_COP_ANALYZE || op->kind == HD_COP_RYW)
	{
		if (type == 'D' && !op->got_row)
		{
			op->got_row = true;
			if (op->kind == HD_COP_RYW)
			{
				char	   *v = hd_data_row_value(body, len, 0);
				uint64_t	lsn;

				if (v && hd_lsn_parse(v, &lsn) == 0 && server->client &&
					lsn > server->client->ryw_lsn)
					server->client->ryw_lsn = lsn;
				free(v);
			}
			else
			{
				char	   *c = hd_data_row_value(body, len, 0);

				op->a_cacheable = c && strcmp(c, "true") == 0;
				free(c);
				op->a_reason = hd_data_row_value(body, len, 1);
				op->a_relations = hd_data_row_value(body, len, 2);
			}
		}
		else if (type == 'E' && op->a_error == NULL)
		{
			const char *m = hd_error_field(body, len, 'M');

			op->a_error = strdup(m ? m : "unknown error");
		}
		else if (type == 'S')
			to_client(server, msg, total);
		if (type == 'Z')
		{
			server->txn_status = body[0];
			if (op->kind == HD_COP_RYW && server->client && op->a_error == NULL)
				hd_histogram_observe(&server->pool->stats.ryw_latency, ev_time() - op->started);
			op_done(server, op);
		}
		return;
	}
	/* a fill: phase 0 BEGIN + snapshot, 1 the client's statement, 2 COMMIT */
	if (op->phase == 0)
	{
		if (type == 'D' && op->snapshot == NULL)
		{
			char	   *state = hd_data_row_value(body, len, 1);

			op->snapshot = hd_data_row_value(body, len, 0);
			/* not the state the agent set up for the key: not stored */
			op->state_changed = state == NULL || server->state_baseline == NULL ||
				strcmp(state, server->state_baseline) != 0;
			free(state);
		}
		else if (type == 'E')
			op->broken = true;
		else if (type == 'Z')
			op->phase = 1;
		return;
	}
	if (op->phase == 1)
	{
		if (type == 'Z')
		{
			op->phase = 2;
			return;
		}
		if (op->broken)
			return;				/* the transaction is not ours to report on */
		if (type == '1' && op->skip_parse_complete)
		{
			op->skip_parse_complete = false;
			return;
		}
		if (op->check_stmt && (type == 't' || type == 'T' || type == 'n'))
		{
			fill_check_shape(server, op, type, msg, total);
			return;
		}
		if (op->shape_changed)
			return;				/* the client got 0A000 in place of the statement */
		if (op->describe_name && server->client && (type == 't' || type == 'T' || type == 'n'))
			fill_note_describe(server, op, type, msg, total);
		to_client(server, msg, total);
		if (type == 'E')
		{
			op->failed = true;
			server->pool->stats.errors_to_clients++;
		}
		else if (type == 'T' || type == 'D' || type == 'C' || type == '1' || type == '2' ||
				 type == 't' || type == 'n')
		{
			if (op->capture_ok)
			{
				HdAgent    *agent = server->agent;
				int64_t		limit = agent->settings.cache_max_entry_bytes;

				if ((limit > 0 && hd_iobuf_live(&op->capture) + total > (size_t) limit) ||
					hd_iobuf_append(&op->capture, msg, total) < 0)
				{
					op->capture_ok = false;
					hd_iobuf_free(&op->capture);
				}
			}
		}
		else
			op->failed = true;	/* a notice, COPY, ...: not a plain result, not stored */
		return;
	}
	/* phase 2: COMMIT (or ROLLBACK after an error) */
	if (type == 'Z')
	{
		server->txn_status = body[0];
		if (op->broken)
		{
			op_done(server, op);
			hd_server_close(server, "the agent's cache fill could not start its transaction");
			return;
		}
		if (server->txn_status == 'I')
		{
			server->transactions++;
			server->pool->stats.transactions++;
		}
		op_done(server, op);
	}
	else if (type == 'E')
		op->failed = true;
}

void
hd_cache_server_free(HdServer *server)
{
	CacheOp    *op = server->cache_state;

	if (op == NULL)
		return;
	if (op->kind == HD_COP_FILL)
	{
		CacheCfg   *cfg = find_cfg(server->agent, op->cfg_id);

		if (cfg)
			inflight_remove(cfg, op->seq);
	}
	server->cache_state = NULL;
	if (op->flight)
		flight_end(op->flight, NULL, 0, 0);
	server->cache_op = HD_COP_NONE;
	op_free(op);
}

/* A CommandComplete of a forwarded statement: did it write? */
void
hd_cache_note_tag(HdServer *server, const char *body, uint32_t len)
{
	static const char *const readonly[] = {
		"SELECT", "BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SET", "RESET", "SHOW",
		"FETCH", "MOVE", "DECLARE CURSOR", "CLOSE CURSOR", "CLOSE CURSOR ALL", "SAVEPOINT",
		"RELEASE", "LISTEN", "UNLISTEN", "DISCARD", "DISCARD ALL", "DEALLOCATE",
		"DEALLOCATE ALL", "PREPARE", "EXPLAIN", "PREPARE TRANSACTION", NULL
	};
	size_t		n = strnlen(body, len);

	if (server->wrote)
		return;
	for (int i = 0; readonly[i]; i++)
	{
		size_t		w = strlen(readonly[i]);

		/* "SELECT 3": the word, then a space and the row count, or nothing */
		if (n >= w && strncmp(body, readonly[i], w) == 0 && (n == w || body[w] == ' '))
		{
			/* CREATE TABLE AS / SELECT INTO also say "SELECT n": the stream covers them */
			return;
		}
	}
	server->wrote = true;
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
hd_cache_show(HdAgent *agent, void (*row) (void *arg, const char *const *values, int n),
			  void *arg)
{
	HdCacheLayer *layer = layer_of(agent);
	HdList	   *item;
	HdList	   *tmp;

	if (layer == NULL)
		return;
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		HdStreamStatus st;
		char		v[16][64];
		char		bypass[2048] = "";
		const char *values[16];
		uint64_t	entries = 0;
		uint64_t	bytes = 0;
		size_t		off = 0;
		double		lag;
		/* the counting columns of SHOW CACHE, by position */
		static const int count_cols[] = {1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15};
		uint64_t	count[16] = {0};

		hd_cache_config_usage(layer->store, cfg->id, &entries, &bytes);
		hd_stream_status(cfg->stream, &st);
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
		count[12] = cfg->coalesced;
		count[13] = cfg->stale_hits;
		count[14] = cfg->refreshes;
		count[15] = cfg->ddl_invalidations;
		for (size_t i = 0; i < sizeof(count_cols) / sizeof(count_cols[0]); i++)
		{
			fmt_u64(v[count_cols[i]], 64, count[count_cols[i]]);
			values[count_cols[i]] = v[count_cols[i]];
		}
		values[0] = cfg->name;
		values[7] = bypass;
		values[8] = hd_stream_connected(cfg->stream) ? "yes" : "no";
		hd_lsn_format(st.applied_lsn, v[9], 64);
		values[9] = v[9];
		/* what hits are held to: max_lag */
		lag = stream_age(&st);
		snprintf(v[10], 64, "%.3f", lag);
		values[10] = v[10];
		row(arg, values, 16);
	}
}

int
hd_cache_purge_config(HdAgent *agent, const char *config_id, uint64_t *removed, char *err,
					  size_t errlen)
{
	HdCacheLayer *layer = layer_of(agent);

	*removed = 0;
	if (layer == NULL || layer->store == NULL)
	{
		snprintf(err, errlen, "the cache in %s is not open (%s); the agent tries again every "
				 "%.0f s", layer ? layer->dir : "the state directory",
				 layer ? layer->open_error : "out of memory", STORE_RETRY_INTERVAL);
		return -1;
	}
	return hd_cache_purge(layer->store, config_id, removed, err, errlen);
}

/* hyperdrive_cache_invalidation_seconds, cumulative as Prometheus expects */
static void
inval_metrics(HdCacheLayer *layer, HdTextBuf *buf)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_text_buf_puts(buf, "# HELP hyperdrive_cache_invalidation_seconds Change records: origin commit time"
					 " to the record's invalidation applied\n"
					 "# TYPE hyperdrive_cache_invalidation_seconds histogram\n");
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);
		uint64_t	cumulative = 0;

		for (int b = 0; b <= INVAL_NBOUNDS; b++)
		{
			cumulative += cfg->inval_buckets[b];
			if (b < INVAL_NBOUNDS)
				hd_text_buf_printf(buf, "hyperdrive_cache_invalidation_seconds_bucket{config=\"%s\","
								   "le=\"%g\"} %" PRIu64 "\n", cfg->name, inval_bounds[b], cumulative);
			else
				hd_text_buf_printf(buf, "hyperdrive_cache_invalidation_seconds_bucket{config=\"%s\","
								   "le=\"+Inf\"} %" PRIu64 "\n", cfg->name, cumulative);
		}
		hd_text_buf_printf(buf, "hyperdrive_cache_invalidation_seconds_sum{config=\"%s\"} %.9g\n",
						   cfg->name, cfg->inval_sum);
		hd_text_buf_printf(buf, "hyperdrive_cache_invalidation_seconds_count{config=\"%s\"} %" PRIu64 "\n",
						   cfg->name, cfg->inval_count);
	}
}

void
hd_cache_metrics(HdAgent *agent, HdTextBuf *buf)
{
	HdCacheLayer *layer = layer_of(agent);
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
						   PRIu64 "\n", cfg->name, cfg->coalesced);
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
	hd_text_buf_puts(buf, "# HELP hyperdrive_cache_stream_connected Whether the config's change stream is up\n"
					 "# TYPE hyperdrive_cache_stream_connected gauge\n");
	hd_list_foreach_safe(item, tmp, &layer->cfgs)
	{
		CacheCfg   *cfg = hd_container_of(item, CacheCfg, link);

		hd_text_buf_printf(buf, "hyperdrive_cache_stream_connected{config=\"%s\"} %d\n", cfg->name,
						   hd_stream_connected(cfg->stream) ? 1 : 0);
	}
}
