/*
 * test_cache_core.c
 *    Unit tests of the cache core (cache.c) through its two seams, with no
 *    server and no wire protocol: a fake origin driver (cache/origin.h: a
 *    change source that the test feeds, and lead/refresh/ryw that record
 *    what the core asked and let the test answer as an origin would) and
 *    fake sessions (HdCacheSessionOps). What a second origin kind (MySQL)
 *    must provide is what these fakes provide.
 *
 * Covered: an analysis then a fill led through hd_cache_lead(), with a
 * second session coalesced onto each; a hit; a change applied that drops
 * the entry; a fill that missed a change (race rule) served to its waiter
 * but not stored; read-your-writes through hd_cache_after_write(); a lead
 * that starts no job (its waiter runs its own request); the freshness
 * probe's age bounding hits; a stale entry refreshed on an idle connection.
 * The store is a real LMDB store in a temporary directory.
 * Prints TAP; run by t/019_cache_core_unit.pl.
 */
#include <ev.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "cache/cache.h"
#include "tap.h"

/* ---------------------------------------------------------------------------
 * The fake change source: the test moves its positions and feeds changes.
 */
struct HdChangeSource
{
	HdChangeCallbacks cb;
	bool		connected;
	HdPos		applied;
	double		fresh_as_of;
	HdPos		durable;		/* the latest set_durable() */
	bool		durable_ahead;	/* one was past what was applied then */
	int			wants;			/* want_fresh() calls */
	double		want_as_of;		/* the last one's */
};

static HdChangeSource *the_source;

static HdChangeSource *
src_start(const HdChangeParams *params, const HdChangeCallbacks *cb, char *err, size_t errlen)
{
	HdChangeSource *s = calloc(1, sizeof(HdChangeSource));

	(void) params;
	(void) err;
	(void) errlen;
	s->cb = *cb;
	the_source = s;
	return s;
}

static void
src_free(HdChangeSource *s)
{
	if (s == the_source)
		the_source = NULL;
	free(s);
}

static bool
src_connected(const HdChangeSource *s)
{
	return s->connected;
}

static void
src_status(const HdChangeSource *s, HdChangeStatus *out)
{
	out->applied = s->applied;
	out->catchup = 1;
	out->fresh_as_of = s->fresh_as_of;
}

static void
src_set_durable(HdChangeSource *s, HdPos pos)
{
	if (pos > s->applied)
		s->durable_ahead = true;
	s->durable = pos;
}

static int
src_connect_snapshot(const HdChangeSource *s, HdRaceSnapshot *out)
{
	(void) s;
	memset(out, 0, sizeof(*out));
	return 0;					/* nothing was running */
}

static void
src_identity(const HdConfig *config, char *out, size_t outlen)
{
	snprintf(out, outlen, "fake:%s", config->id);
}

static void
src_format_pos(HdPos pos, char *out, size_t outlen)
{
	snprintf(out, outlen, "%llu", (unsigned long long) pos);
}

static const char *
src_state_name(HdChangeState state)
{
	return state == HD_CHANGE_CONNECTED ? "connected" : "other";
}

/* watch(): as PostgreSQL's source, the first column asked about per relation */
static uint64_t watch_rel[16];
static uint32_t watch_col[16];
static int	nwatch;

static bool
src_watch(HdChangeSource *s, uint64_t rel, uint32_t col)
{
	(void) s;
	for (int i = 0; i < nwatch; i++)
		if (watch_rel[i] == rel)
			return watch_col[i] == col;
	if (nwatch == 16)
		return false;
	watch_rel[nwatch] = rel;
	watch_col[nwatch++] = col;
	return true;
}

static void
src_want_fresh(HdChangeSource *s, double as_of)
{
	s->wants++;
	s->want_as_of = as_of;
}

static const HdChangeSourceOps fake_changes = {
	src_start, src_free, src_connected, src_status, src_set_durable, src_connect_snapshot,
	src_identity, src_format_pos, src_state_name, src_watch, src_want_fresh
};

/*
 * A committed transaction xid that touched the rows of relation rel whose
 * column col held one of values[0..n) (n 0: every row; rel 0: nothing, a
 * heartbeat), ending at end.
 */
static int64_t feed_sent_time_us;	/* the send time of the changes fed (0: none) */

static int
feed_values(uint64_t xid, uint64_t rel, uint32_t col, const uint64_t *values, uint32_t n,
			HdPos end)
{
	HdDep		dep = {rel, col, n, values};
	HdChange	c = {0};

	c.xid = xid;
	c.end = end;
	c.sent_time_us = feed_sent_time_us;
	c.heartbeat = rel == 0;
	c.deps = rel ? &dep : NULL;
	c.ndeps = rel ? 1 : 0;
	c.text = "test";
	if (the_source->cb.on_change(the_source->cb.arg, &c) < 0)
		return -1;
	the_source->applied = end;
	return 0;
}

/* The same, of every row of rel. */
static int
feed_change(uint64_t xid, uint64_t rel, HdPos end)
{
	return feed_values(xid, rel, 0, NULL, 0, end);
}

static HdCacheLayer *layer;

/* The store's marks of values now, as /metrics shows them; -1: not shown. */
static long
value_marks(void)
{
	HdTextBuf	b = HD_TEXT_BUF_INIT;
	char	   *text;
	const char *p;
	long		n = -1;

	hd_cache_metrics(layer, &b);
	text = hd_text_buf_finish(&b);
	p = text ? strstr(text, "\nhyperdrive_cache_value_marks ") : NULL;
	if (p)
		n = strtol(p + strlen("\nhyperdrive_cache_value_marks "), NULL, 10);
	free(text);
	return n;
}

/* The layer's timer, once (it prunes the store's marks). */
static void
tick(struct ev_loop *loop)
{
	usleep(250 * 1000);
	ev_run(loop, EVRUN_NOWAIT);
}

/* ---------------------------------------------------------------------------
 * Fake sessions, each with the request it would send: (akey, key).
 */
typedef struct Session
{
	HdCacheWaiter w;
	const char *akey;
	const char *key;
	int			served;
	int			fell_back;
	int			decided_again;
	char		got[32];
	int			lead_step;		/* what its decision asked it to lead: ANALYZE or FILL */
} Session;

static Session *
session_of(HdCacheWaiter *w)
{
	return hd_container_of(w, Session, w);
}

static bool
s_active(HdCacheWaiter *w)
{
	(void) w;
	return true;
}

static int
s_serve(HdCacheWaiter *w, const void *bytes, size_t len)
{
	Session    *s = session_of(w);

	s->served++;
	snprintf(s->got, sizeof(s->got), "%.*s", (int) len, (const char *) bytes);
	return 0;
}

static void
s_fall_back(HdCacheWaiter *w)
{
	session_of(w)->fell_back++;
}

static void
s_decide_again(HdCacheWaiter *w)
{
	session_of(w)->decided_again++;
}

static int	schema_changes;

static void
s_schema_changed(void *arg, const char *config_id)
{
	(void) arg;
	(void) config_id;
	schema_changes++;
}

static const HdCacheSessionOps fake_sessions = {
	s_active, s_serve, s_fall_back, s_decide_again, s_schema_changed
};

/* ---------------------------------------------------------------------------
 * The fake origin: records what the core asked for.
 */
static const char CFG[] = "cfgcfgcfgcfgcfgcfgcfgcfg";

typedef struct Origin
{
	int			leads;
	void	   *lead_conn;
	HdCacheLeadResult lead_rc;	/* what lead() answers (SENT: it begins the job) */
	HdCacheJob *job;			/* the job it runs */
	int			ryws;
	HdCacheWaiter *ryw_writer;
	void	   *ryw_conn;
	void	   *idle_conn;		/* refresh_conn()'s answer */
	int			refreshes;
	HdCacheJob *refresh_job;
} Origin;

static Origin origin;
static int	conn_a;				/* connections are opaque: any address will do */
static int	conn_b;

static HdCacheLeadResult
o_lead(void *arg, void *conn, HdCacheWaiter *leader, HdCacheJob **job)
{
	Session    *s = session_of(leader);
	bool		dropped;

	(void) arg;
	origin.leads++;
	origin.lead_conn = conn;
	if (origin.lead_rc != HD_CACHE_LEAD_SENT)
		return origin.lead_rc;
	if (s->lead_step == HD_CACHE_ANALYZE)
		*job = hd_cache_analysis_begin(layer, CFG, (const unsigned char *) s->akey,
									   strlen(s->akey));
	else
		*job = hd_cache_fill_begin(layer, CFG, (const unsigned char *) s->akey,
								   strlen(s->akey), (const unsigned char *) s->key,
								   strlen(s->key), -1, &dropped);
	origin.job = *job;
	return *job ? HD_CACHE_LEAD_SENT : HD_CACHE_LEAD_OOM;
}

static void *
o_refresh_conn(void *arg, HdCacheWaiter *requester)
{
	(void) arg;
	(void) requester;
	return origin.idle_conn;
}

static int
o_refresh(void *arg, void *conn, HdCacheWaiter *requester, HdCacheJob *job)
{
	(void) arg;
	(void) requester;
	if (conn != origin.idle_conn)
		return -1;
	origin.refreshes++;
	origin.refresh_job = job;
	return 0;
}

static int
o_ryw(void *arg, void *conn, HdCacheWaiter *writer)
{
	(void) arg;
	origin.ryws++;
	origin.ryw_writer = writer;
	origin.ryw_conn = conn;
	return 0;
}

static const HdOriginDriver fake_origin = {
	.name = "fake",
	.pool = NULL,				/* the core never logs in */
	.changes = &fake_changes,
	.lead = o_lead,
	.refresh_conn = o_refresh_conn,
	.refresh = o_refresh,
	.ryw = o_ryw,
};

/* ---------------------------------------------------------------------------
 * Steps
 */
static HdCacheDecision
decide(Session *s, HdCacheVerdict *v)
{
	hd_cache_decide(layer, CFG, &s->w, (const unsigned char *) s->akey, strlen(s->akey),
					(const unsigned char *) s->key, strlen(s->key), -1, v);
	if (v->decision == HD_CACHE_ANALYZE || v->decision == HD_CACHE_FILL)
		s->lead_step = v->decision;
	return v->decision;
}

/* A hit is served: its bytes, as text. */
static const char *
serve(HdCacheVerdict *v, char *buf, size_t len)
{
	snprintf(buf, len, "%.*s", (int) v->len, (const char *) v->bytes);
	hd_cache_served(layer, CFG, v, true);
	return buf;
}

/* The origin answers the analysis in flight: cacheable, reading rel, bound by b (NULL: none). */
static void
answer_bound_analysis(uint64_t rel, const HdBinding *b, const uint32_t *types, size_t ntypes)
{
	HdDep		dep = hd_dep_relation(rel);
	HdCacheAnalysisOutcome o = {0};

	o.answered = true;
	o.cacheable = true;
	o.deps = &dep;
	o.ndeps = 1;
	o.bindings = b;
	o.nbindings = b ? 1 : 0;
	o.param_types = types;
	o.nparam_types = ntypes;
	hd_cache_analysis_finish(origin.job, &o);
	hd_cache_job_free(origin.job, NULL, 0);
	origin.job = NULL;
}

/* The origin answers the analysis in flight: cacheable, reading relation rel. */
static void
answer_analysis(uint64_t rel)
{
	answer_bound_analysis(rel, NULL, NULL, 0);
}

/* A fill's parameters' hashes in answer_fill() (NULL: none). */
static const HdParamHashes *fill_params;
static size_t fill_nparams;

/* The value of the /metrics line that starts with `line` (up to its value); -1: none. */
static long
metric(const char *line)
{
	HdTextBuf	b = HD_TEXT_BUF_INIT;
	char	   *text;
	const char *p;
	long		n = -1;

	hd_cache_metrics(layer, &b);
	text = hd_text_buf_finish(&b);
	p = text ? strstr(text, line) : NULL;
	if (p)
		n = strtol(p + strlen(line), NULL, 10);
	free(text);
	return n;
}

/* Relations of stored entries by precision ("value", "whole"), as /metrics counts them. */
static long
fills_by(const char *precision)
{
	char		key[128];

	snprintf(key, sizeof(key),
			 "hyperdrive_cache_fill_relations_total{config=\"core\",precision=\"%s\"} ",
			 precision);
	return metric(key);
}

/* The origin answers a fill with bytes under a snapshot that sees every xid below xmin. */
static bool
answer_fill(HdCacheJob *job, const char *bytes, uint64_t xmin)
{
	HdRaceSnapshot snap = {0};
	HdCacheFillOutcome o = {0};
	bool		check_state;
	bool		stored;

	snap.xmin = xmin;
	snap.xmax = xmin;
	o.snapshot = &snap;
	o.complete = true;
	o.bytes = bytes;
	o.len = strlen(bytes);
	o.params = fill_params;
	o.nparams = fill_nparams;
	stored = hd_cache_fill_finish(job, &o, &check_state);
	hd_cache_job_free(job, bytes, strlen(bytes));
	return stored;
}

/* One turn of the loop: what the core deferred to it (waking waiting hits) runs. */
static void
turn(struct ev_loop *loop)
{
	ev_run(loop, EVRUN_NOWAIT);
}

/*
 * Strict consistency: a hit of a session that arrived after the newest
 * applied probe waits (the source is asked for a probe sent after its
 * arrival) and decides again once fresh_as_of reaches its arrival; one
 * that waited max_lag goes to the origin, and hits go there at once until
 * the stream is fresh past it; back to bounded, waiting hits are served.
 * a's and b's request is stored (a hit).
 */
static void
test_strict(struct ev_loop *loop, HdConfig *config, const char *akey)
{
	Session		sa = {.akey = akey, .key = "strict"};
	Session		sb = {.akey = akey, .key = "strict"};
	Session    *a = &sa;
	Session    *b = &sb;
	HdCacheVerdict v;
	double		now = hd_clock_now();
	bool		dropped;
	int			wants;
	HdCacheJob *job = hd_cache_fill_begin(layer, CFG, (const unsigned char *) akey, strlen(akey),
										  (const unsigned char *) "strict", 6, -1, &dropped);

	hd_cache_waiter_init(&a->w);
	hd_cache_waiter_init(&b->w);
	ok(job != NULL && answer_fill(job, "row-s", 1000), "strict: an entry is stored");
	config->consistency = HD_CONSISTENCY_STRICT;
	hd_cache_layer_configs(layer);
	the_source->fresh_as_of = now;
	a->w.arrived = now - 1;
	ok(decide(a, &v) == HD_CACHE_SERVE, "strict: a hit that arrived before the newest applied "
	   "probe was sent is served");
	hd_cache_served(layer, CFG, &v, true);

	wants = the_source->wants;
	a->w.arrived = now + 1;
	b->w.arrived = now + 2;
	a->decided_again = b->decided_again = 0;
	ok(decide(a, &v) == HD_CACHE_WAIT && the_source->wants == wants + 1 &&
	   the_source->want_as_of == now + 1,
	   "strict: one that arrived after it waits, and a probe sent after its arrival is asked for");
	ok(decide(b, &v) == HD_CACHE_WAIT && the_source->want_as_of == now + 2, "so does another");
	ok(metric("hyperdrive_cache_strict_waiting{config=\"core\"} ") == 2 &&
	   metric("hyperdrive_cache_strict_waits_total{config=\"core\"} ") == 2,
	   "/metrics: two hits waiting, two waits");
	the_source->fresh_as_of = now + 1;
	the_source->cb.on_fresh(the_source->cb.arg);
	ok(a->decided_again == 0, "the wake is deferred to the loop (the source is not re-entered)");
	turn(loop);
	ok(a->decided_again == 1 && b->decided_again == 0,
	   "fresh up to the first's arrival: it decides again, the later one waits on");
	ok(decide(a, &v) == HD_CACHE_SERVE, "and gets its hit");
	hd_cache_served(layer, CFG, &v, true);
	the_source->fresh_as_of = now + 2;
	the_source->cb.on_fresh(the_source->cb.arg);
	turn(loop);
	ok(b->decided_again == 1, "fresh up to the second's: it decides again");

	/* a waiter that goes is not woken */
	b->decided_again = 0;
	b->w.arrived = now + 3;
	ok(decide(b, &v) == HD_CACHE_WAIT, "strict: waits again");
	hd_cache_waiter_gone(&b->w);
	the_source->fresh_as_of = now + 3;
	the_source->cb.on_fresh(the_source->cb.arg);
	turn(loop);
	ok(b->decided_again == 0 && metric("hyperdrive_cache_strict_waiting{config=\"core\"} ") == 0,
	   "a session that goes leaves the queue and is not woken");

	/* the stream stalls: the wait ends after max_lag at the origin */
	a->fell_back = 0;
	a->w.arrived = hd_clock_now() + 100;
	ok(decide(a, &v) == HD_CACHE_WAIT, "strict: a hit the stream has not caught up with waits");
	usleep(1100 * 1000);		/* max_lag (1 s) */
	tick(loop);
	ok(a->fell_back == 1 && metric("hyperdrive_cache_statements_total{config=\"core\","
								   "status=\"bypass:strict-wait-timeout\"} ") == 1,
	   "after max_lag it runs on the origin, counted bypass:strict-wait-timeout");
	b->w.arrived = now + 4;
	ok(decide(b, &v) == HD_CACHE_FORWARD, "until the stream is fresh past it, hits go to the "
	   "origin at once (lagging)");
	the_source->fresh_as_of = a->w.arrived;
	ok(decide(b, &v) == HD_CACHE_SERVE, "then are served again");
	hd_cache_served(layer, CFG, &v, true);

	/* back to bounded: a waiting hit is served */
	a->decided_again = 0;
	a->w.arrived = hd_clock_now() + 200;
	ok(decide(a, &v) == HD_CACHE_WAIT, "strict: waits");
	config->consistency = HD_CONSISTENCY_BOUNDED;
	hd_cache_layer_configs(layer);
	turn(loop);
	ok(a->decided_again == 1, "the config made bounded: the waiting hit decides again");
	the_source->fresh_as_of = hd_clock_now();
	ok(decide(a, &v) == HD_CACHE_SERVE, "bounded: served whenever it arrived");
	hd_cache_served(layer, CFG, &v, true);
	hd_cache_waiter_gone(&a->w);
	hd_cache_waiter_gone(&b->w);
}

int
main(void)
{
	char		dir[] = "/tmp/hd_test_cache_core.XXXXXX";
	struct ev_loop *loop = ev_default_loop(0);
	HdSettings	settings = {0};
	HdConfig	config;
	HdConfigList configs = {&config, 1};
	HdCacheVerdict v;
	Session		a = {.akey = "select * from t where id = $1", .key = "id=1"};
	Session		b = {.akey = "select * from t where id = $1", .key = "id=1"};
	Session		c = {.akey = "select * from u", .key = "u"};
	char		err[512];
	char		buf[64];
	char		cmd[600];

	hd_log_set_level(HD_LOG_ERROR);
	if (mkdtemp(dir) == NULL)
		return 2;
	settings.state_dir = dir;
	settings.max_lag_ms = 1000;
	settings.cache_map_size = 64 * 1024 * 1024;
	settings.cache_max_bytes = 32 * 1024 * 1024;
	settings.cache_max_entry_bytes = 1024 * 1024;
	settings.server_connect_timeout_ms = 1000;
	hd_config_init(&config);
	snprintf(config.id, sizeof(config.id), "%s", CFG);
	snprintf(config.name, sizeof(config.name), "core");
	config.max_age = 60;
	config.stale_while_revalidate = 15;
	hd_cache_waiter_init(&a.w);
	hd_cache_waiter_init(&b.w);
	hd_cache_waiter_init(&c.w);

	ok(hd_cache_layer_open(loop, &settings, &configs, &fake_origin, &fake_sessions, NULL, &layer,
						   err, sizeof(err)) == 0, "the layer opens with a fake origin driver");
	ok(the_source != NULL, "the driver's change source was started for the caching config");
	if (the_source == NULL)
		return tap_done();

	/* not connected yet: nothing is served, not even an analysis is skipped */
	ok(decide(&a, &v) == HD_CACHE_ANALYZE, "no analysis yet: the first session leads one");
	ok(decide(&b, &v) == HD_CACHE_WAIT, "a second session waits for that analysis");
	ok(hd_cache_lead(layer, &a.w, &conn_a) == HD_CACHE_LEAD_SENT && origin.leads == 1 &&
	   origin.lead_conn == &conn_a, "hd_cache_lead() asks the origin's lead() on the leader's connection");
	answer_analysis(100);
	ok(b.decided_again == 1, "the analysis' end wakes its waiter to decide again");

	/* a stream not yet connected: the statement goes to the origin */
	ok(decide(&a, &v) == HD_CACHE_FORWARD, "change source down: forward");
	the_source->connected = true;
	the_source->applied = 1;
	the_source->cb.on_state(the_source->cb.arg, HD_CHANGE_CONNECTED, "test");
	ok(decide(&a, &v) == HD_CACHE_FORWARD, "connected, but no freshness probe applied yet: forward");
	the_source->fresh_as_of = hd_clock_now();

	ok(decide(&a, &v) == HD_CACHE_FILL, "analysed, fresh, nothing stored: lead a fill");
	ok(decide(&b, &v) == HD_CACHE_WAIT, "the same key: wait for that fill");
	ok(hd_cache_lead(layer, &a.w, &conn_b) == HD_CACHE_LEAD_SENT && origin.lead_conn == &conn_b,
	   "the fill is led on the connection given");
	ok(answer_fill(origin.job, "row-1", 1000), "a fill under a snapshot that sees every change is stored");
	ok(b.served == 1 && strcmp(b.got, "row-1") == 0, "its waiter is served the fill's bytes");
	ok(decide(&a, &v) == HD_CACHE_SERVE && strcmp(serve(&v, buf, sizeof(buf)), "row-1") == 0,
	   "then a hit");

	/* a change of another relation keeps it; of its relation drops it */
	ok(feed_change(500, 200, 10) == 0 && decide(&a, &v) == HD_CACHE_SERVE,
	   "a change of another relation leaves the entry");
	if (v.decision == HD_CACHE_SERVE)
		hd_cache_served(layer, CFG, &v, true);
	ok(feed_change(501, 100, 20) == 0 && decide(&a, &v) == HD_CACHE_FILL,
	   "a change of its relation drops the entry: fill again");

	/* the race rule: a fill whose snapshot missed xid 502, applied meanwhile */
	ok(hd_cache_lead(layer, &a.w, &conn_a) == HD_CACHE_LEAD_SENT, "the next fill is led");
	ok(decide(&b, &v) == HD_CACHE_WAIT, "and waited for");
	ok(feed_change(502, 100, 30) == 0, "a change of its relation is applied while it runs");
	b.served = 0;
	ok(!answer_fill(origin.job, "row-old", 502), "a fill that cannot see that change is not stored");
	ok(b.served == 1 && strcmp(b.got, "row-old") == 0,
	   "its waiter, who asked before that change was applied, is served its result");
	ok(decide(&a, &v) == HD_CACHE_FILL, "nothing stored: fill again");
	ok(hd_cache_lead(layer, &a.w, &conn_a) == HD_CACHE_LEAD_SENT &&
	   answer_fill(origin.job, "row-2", 1000), "a fill that sees it is stored");

	/* read-your-writes */
	ok(hd_cache_after_write(layer, CFG, &a.w, &conn_b) == 1 && origin.ryws == 1 &&
	   origin.ryw_writer == &a.w && origin.ryw_conn == &conn_b,
	   "after a write the origin's ryw() is asked, on the writer's connection");
	hd_cache_ryw_reached(&a.w, 40);
	ok(decide(&a, &v) == HD_CACHE_FORWARD, "no hit for the writer until the source applied its writes");
	ok(decide(&b, &v) == HD_CACHE_SERVE, "another session still gets the hit");
	hd_cache_served(layer, CFG, &v, true);
	hd_cache_ryw_reached(&a.w, 35);
	ok(a.w.ryw_pos == 40, "an earlier position never lowers the writer's");
	ok(feed_change(0, 0, 40) == 0 && decide(&a, &v) == HD_CACHE_SERVE,
	   "once applied that far, the writer gets hits again");
	hd_cache_served(layer, CFG, &v, true);
	ok(hd_cache_after_write(layer, "no-such-config", &a.w, &conn_b) == 0 && origin.ryws == 1,
	   "a write in a config that is not cached asks nothing");

	/* a lead that starts no job: its waiter runs its own request */
	ok(decide(&c, &v) == HD_CACHE_ANALYZE, "another statement: an analysis");
	origin.job = NULL;
	ok(hd_cache_lead(layer, &c.w, &conn_a) == HD_CACHE_LEAD_SENT, "led");
	answer_analysis(300);
	ok(decide(&c, &v) == HD_CACHE_FILL, "its fill");
	a.fell_back = 0;
	{
		Session		w = {.akey = c.akey, .key = c.key};

		hd_cache_waiter_init(&w.w);
		ok(decide(&w, &v) == HD_CACHE_WAIT, "a session waits for it");
		origin.lead_rc = HD_CACHE_LEAD_FORWARD;
		ok(hd_cache_lead(layer, &c.w, &conn_a) == HD_CACHE_LEAD_FORWARD,
		   "the origin side may refuse to start the job");
		ok(w.fell_back == 1, "then the waiter runs its own request");
		origin.lead_rc = HD_CACHE_LEAD_SENT;
		hd_cache_waiter_gone(&w.w);
	}

	/* freshness: a probe older than max_lag means no hits */
	the_source->fresh_as_of = hd_clock_now() - 5;
	ok(decide(&a, &v) == HD_CACHE_FORWARD, "the newest applied probe is older than max_lag: forward");
	the_source->fresh_as_of = hd_clock_now();

	/* stale-while-revalidate: a stale entry is served and refreshed on an idle connection */
	{
		Session		d = {.akey = a.akey, .key = "id=2"};
		bool		dropped;
		HdCacheJob *job;

		hd_cache_waiter_init(&d.w);
		job = hd_cache_fill_begin(layer, CFG, (const unsigned char *) d.akey, strlen(d.akey),
								  (const unsigned char *) d.key, strlen(d.key), 1, &dropped);
		ok(job != NULL && answer_fill(job, "row-d", 1000), "an entry with a 1 ms max age");
		usleep(20 * 1000);
		origin.idle_conn = NULL;
		ok(decide(&d, &v) == HD_CACHE_SERVE && v.stale && origin.refreshes == 0,
		   "stale: served; no idle connection, no refresh");
		hd_cache_served(layer, CFG, &v, true);
		origin.idle_conn = &conn_b;
		ok(decide(&d, &v) == HD_CACHE_SERVE && v.stale && origin.refreshes == 1,
		   "stale: served, and refreshed through the origin's refresh() on its idle connection");
		hd_cache_served(layer, CFG, &v, true);
		ok(decide(&d, &v) == HD_CACHE_SERVE && origin.refreshes == 1,
		   "one refresh per key at a time");
		hd_cache_served(layer, CFG, &v, true);
		ok(answer_fill(origin.refresh_job, "row-d2", 1000), "the refresh's result is stored");
		ok(decide(&d, &v) == HD_CACHE_SERVE && !v.stale &&
		   strcmp(serve(&v, buf, sizeof(buf)), "row-d2") == 0, "and served fresh");
		hd_cache_waiter_gone(&d.w);
	}

	/* the store's marks of changes with values live while a fill that predates them runs */
	{
		uint64_t	vals[] = {7, 8};
		HdCacheJob *job;
		bool		dropped;

		ok(decide(&a, &v) == HD_CACHE_SERVE, "a hit before");
		hd_cache_served(layer, CFG, &v, true);
		job = hd_cache_fill_begin(layer, CFG, (const unsigned char *) a.akey, strlen(a.akey),
								  (const unsigned char *) "id=9", 4, -1, &dropped);
		ok(job != NULL && feed_values(800, 100, 2, vals, 2, 50) == 0,
		   "a fill begins, then a change with two values of a column is applied");
		ok(value_marks() == 2, "the store marks its two values (/metrics)");
		tick(loop);
		ok(value_marks() == 2, "the timer keeps them while that fill is in flight");
		answer_fill(job, "row-9", 1000);
		tick(loop);
		ok(value_marks() == 0, "once it ended, the timer forgets them");
	}

	/*
	 * The store syncs in a thread of its own, started by a tick about once a
	 * second and polled by the next ones; once it is done, the stream may
	 * confirm the position persisted when it began.
	 */
	{
		HdPos		at = the_source->applied + 5;

		ok(feed_change(950, 300, at) == 0, "a change is applied");
		for (int i = 0; i < 40 && the_source->durable < at; i++)
			tick(loop);
		ok(the_source->durable == at, "a later tick's sync made its position durable: the stream may confirm it");
		ok(!the_source->durable_ahead, "no position was confirmable before it was applied");
		the_source->fresh_as_of = hd_clock_now();	/* those ticks took more than max_lag */
	}

	/* the agent's side of the invalidation latency: from a record's send time, when known */
	{
		const char *sent = "hyperdrive_cache_invalidation_sent_seconds_count{config=\"core\"} ";
		const char *all = "hyperdrive_cache_invalidation_seconds_count{config=\"core\"} ";
		long		s0 = metric(sent);
		long		a0 = metric(all);
		HdPos		at = the_source->applied + 1;
		struct timespec ts;

		ok(s0 == 0 && a0 > 0, "/metrics has both invalidation histograms (none sent-timed yet)");
		ok(feed_change(960, 300, at) == 0 && metric(sent) == s0 && metric(all) == a0 + 1,
		   "a record without a send time is timed from its commit only");
		clock_gettime(CLOCK_REALTIME, &ts);
		feed_sent_time_us = (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
		ok(feed_change(961, 300, at + 1) == 0 && metric(sent) == s0 + 1 && metric(all) == a0 + 2,
		   "one with a send time is timed from both");
		ok(feed_change(962, 0, at + 2) == 0 && metric(sent) == s0 + 1 && metric(all) == a0 + 2,
		   "a heartbeat is not timed");
		feed_sent_time_us = 0;
	}

	/* bindings: an entry depends on the values it read, not on its whole relation */
	{
		Session		e = {.akey = "select * from v where k in (11, $1)", .key = "k=12"};
		uint64_t	consts[] = {11};
		uint16_t	params[] = {1};
		uint32_t	types[] = {23};
		HdBinding	bind = {400, 3, 1, consts, 1, params};
		uint64_t	p12[] = {12};
		HdParamHashes ph = {true, 1, p12};
		uint64_t	v13[] = {13};
		uint64_t	v12[] = {12};
		uint64_t	v99[] = {99};
		const bool *want;
		const uint32_t *wtypes;
		size_t		np;

		hd_cache_waiter_init(&e.w);
		ok(decide(&e, &v) == HD_CACHE_ANALYZE && hd_cache_lead(layer, &e.w, &conn_a) ==
		   HD_CACHE_LEAD_SENT, "a bound statement: its analysis");
		answer_bound_analysis(400, &bind, types, 1);
		ok(decide(&e, &v) == HD_CACHE_FILL && hd_cache_lead(layer, &e.w, &conn_a) ==
		   HD_CACHE_LEAD_SENT, "its fill");
		hd_cache_job_params(origin.job, &want, &wtypes, &np);
		ok(np == 1 && want[0] && wtypes[0] == 23,
		   "the job tells the driver which parameter to hash, and its type");
		fill_params = &ph;
		fill_nparams = 1;
		ok(answer_fill(origin.job, "row-k", 1000) && fills_by("value") == 1,
		   "a fill with its parameter's hash is stored, bound to values (/metrics)");
		ok(nwatch == 1 && watch_rel[0] == 400 && watch_col[0] == 3,
		   "the change source was asked to name rows of that column");
		ok(feed_values(900, 400, 3, v13, 1, 60) == 0 && decide(&e, &v) == HD_CACHE_SERVE,
		   "a change of another value of the column keeps the entry");
		hd_cache_served(layer, CFG, &v, true);
		ok(feed_values(901, 400, 3, v12, 1, 61) == 0 && decide(&e, &v) == HD_CACHE_FILL,
		   "a change of the parameter's value drops it");

		/* the parameter not hashed (NULL, or the origin did not say): every row */
		ph.known = false;
		ok(hd_cache_lead(layer, &e.w, &conn_a) == HD_CACHE_LEAD_SENT &&
		   answer_fill(origin.job, "row-k2", 1000) && fills_by("value") == 1,
		   "a fill whose parameter has no known hash is stored, read whole");
		ok(feed_values(902, 400, 3, v99, 1, 62) == 0 && decide(&e, &v) == HD_CACHE_FILL,
		   "then any change of the relation drops it");
		fill_params = NULL;
		fill_nparams = 0;
		ok(hd_cache_lead(layer, &e.w, &conn_a) == HD_CACHE_LEAD_SENT &&
		   answer_fill(origin.job, "row-k3", 1000) && fills_by("value") == 1,
		   "so does a fill with no parameter hashes at all");
		ok(feed_values(903, 400, 3, v99, 1, 63) == 0 && decide(&e, &v) == HD_CACHE_FILL,
		   "and it is dropped the same way");
		hd_cache_waiter_gone(&e.w);
	}
	{
		Session		f = {.akey = "select * from v where j = 5", .key = "j=5"};
		uint64_t	consts[] = {5};
		HdBinding	bind = {400, 4, 1, consts, 0, NULL};
		uint64_t	v77[] = {77};

		hd_cache_waiter_init(&f.w);
		ok(decide(&f, &v) == HD_CACHE_ANALYZE && hd_cache_lead(layer, &f.w, &conn_a) ==
		   HD_CACHE_LEAD_SENT, "a statement bound to another column of the same relation");
		answer_bound_analysis(400, &bind, NULL, 0);
		ok(decide(&f, &v) == HD_CACHE_FILL && hd_cache_lead(layer, &f.w, &conn_a) ==
		   HD_CACHE_LEAD_SENT && answer_fill(origin.job, "row-j", 1000),
		   "its fill is stored");
		ok(fills_by("value") == 1 && nwatch == 1,
		   "the source names rows by one column per relation: this one is read whole");
		ok(fills_by("whole") == 3,
		   "/metrics counts the three entries read whole although their analysis bound them");
		ok(feed_values(904, 400, 3, v77, 1, 64) == 0 && decide(&f, &v) == HD_CACHE_FILL,
		   "so a change naming values of the other column drops it");
		hd_cache_waiter_gone(&f.w);
	}

	test_strict(loop, &config, a.akey);

	hd_cache_waiter_gone(&a.w);
	hd_cache_waiter_gone(&b.w);
	hd_cache_waiter_gone(&c.w);
	hd_cache_layer_close(layer);
	ok(the_source == NULL, "closing the layer frees the change source");
	hd_config_free(&config);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 2;
	return tap_done();
}
