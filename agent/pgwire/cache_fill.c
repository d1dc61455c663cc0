/*
 * cache_fill.c
 *    The result cache's analyses, fills and read-your-writes positions on
 *    PostgreSQL origin connections (cache_fill.h).
 */
#include "pgwire/cache_fill.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/sqlstate.h"
#include "pgwire/cache_params.h"
#include "pgwire/cache_request.h"
#include "pgwire/pooler.h"
#include "pgwire/prepare.h"
#include "pgwire/proto.h"
#include "stream/pg_change_source.h"
#include "stream/stream.h"

/* The state of an op on a server (server->cache_state). */
typedef struct CacheOp
{
	int			kind;
	HdCacheJob *job;			/* analysis, fill: the core's (NULL: given back) */
	bool		refresh;		/* a background refresh: no client, release the server */
	char	   *describe_name;	/* fill: the client's statement its batch describes */
	bool		describe_fresh;	/* and the batch has its Parse */
	HdIoBuf		describe_params;	/* that description's ParameterDescription */
	HdIoBuf		check_params;	/* the shape check's ParameterDescription */
	bool		shape_changed;	/* it did not match: the client gets 0A000 */
	HdIoBuf		capture;
	bool		capture_ok;
	bool		failed;			/* the statement failed, or something unexpected */
	bool		state_changed;	/* the session state was not the connection's baseline */
	bool		broken;			/* the wrapper failed: the connection must go */
	char	   *snapshot;
	bool		got_row;
	bool		a_cacheable;
	char	   *a_reason;
	char	   *a_relations;
	char	   *a_bindings;		/* analysis: bindings, a text[]'s text */
	char	   *a_param_types;	/* and its parameters' types, an oid[]'s */
	char	   *a_error;
	uint16_t   *hashed;			/* fill: the parameters it hashes (cache_params.h) */
	size_t		nhashed;
	HdParamHashes *params;		/* their hashes, per parameter number - 1 */
	size_t		nparams;		/* (0: the analysis's bindings name none) */
	bool		params_failed;	/* the hashing failed: none is known */
	double		started;
} CacheOp;

static void
op_free(CacheOp *op)
{
	if (op == NULL)
		return;
	hd_cache_job_free(op->job, NULL, 0);
	hd_iobuf_free(&op->capture);
	hd_iobuf_free(&op->check_params);
	free(op->describe_name);
	hd_iobuf_free(&op->describe_params);
	free(op->snapshot);
	free(op->a_reason);
	free(op->a_relations);
	free(op->a_bindings);
	free(op->a_param_types);
	free(op->a_error);
	free(op->hashed);
	if (op->params)
		hd_pg_param_hashes_free(op->params, op->nparams);
	free(op->params);
	free(op);
}

/*
 * Send one of the op's messages, then queue what the server owes for it
 * (stmt.h): whose reply it is says action.
 */
static int
owe(HdServer *server, int sent, HdExpectKind kind, HdExpectAction action, uint32_t stmt_id)
{
	if (sent < 0)
		return -1;
	return hd_expect_push(&server->expect, kind, action, stmt_id, 0);
}

/* A simple Query of the agent's, its reply action's. */
static int
append_query(HdServer *server, const char *sql, HdExpectAction action)
{
	HdMsg		msg;

	hd_msg_begin(&msg, &server->out, 'Q');
	hd_msg_put_str(&msg, sql);
	return owe(server, hd_msg_end(&msg), HD_EXPECT_QUERY, action, 0);
}

/*
 * The analysis, and its bindings and parameter types (extension 0.3) read
 * through the row's JSON, so that an older extension's row, which lacks
 * them, still answers (no bindings: every relation read whole). The types
 * come back to OIDs through their names, in the same session as they were
 * named ("-", a type left unknown, is 0).
 */
static const char ANALYZE_SQL[] =
	"SELECT a.cacheable::pg_catalog.text, COALESCE(a.reason, ''), a.relations::pg_catalog.text, "
	"ARRAY(SELECT b.e FROM pg_catalog.jsonb_array_elements_text("
	"j.v OPERATOR(pg_catalog.->) 'bindings') WITH ORDINALITY AS b(e, i) "
	"ORDER BY b.i)::pg_catalog.text, "
	"ARRAY(SELECT t.e::pg_catalog.regtype::pg_catalog.oid "
	"FROM pg_catalog.jsonb_array_elements_text("
	"j.v OPERATOR(pg_catalog.->) 'param_types') WITH ORDINALITY AS t(e, i) "
	"ORDER BY t.i)::pg_catalog.text "
	"FROM hyperdrive.analyze_query($1::pg_catalog.text, $2::pg_catalog.regtype[]) a, "
	"LATERAL (SELECT pg_catalog.to_jsonb(a) AS v) j";

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
	return owe(server, hd_msg_end(&msg), HD_EXPECT_QUERY, HD_REPLY_FILL_BEGIN, 0);
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
append_analysis(HdServer *server, const HdCacheRequest *r)
{
	const HdExpectAction a = HD_REPLY_CACHE_ANALYSIS;
	HdIoBuf    *out = &server->out;
	HdIoBuf		types = {0};
	HdMsg		m;
	int			rc = -1;

	if (hd_cache_request_types(r, &types) < 0 ||
		owe(server, hd_send_parse(out, "", ANALYZE_SQL, NULL, 0), HD_EXPECT_PARSE, a, 0) < 0)
		goto out;
	hd_msg_begin(&m, out, 'B');
	hd_msg_put_str(&m, "");
	hd_msg_put_str(&m, "");
	hd_msg_put_u16(&m, 0);
	hd_msg_put_u16(&m, 2);
	put_text_param(&m, r->sql, r->sqllen);
	put_text_param(&m, hd_iobuf_head(&types), hd_iobuf_live(&types) - 1);	/* no NUL */
	hd_msg_put_u16(&m, 0);
	if (owe(server, hd_msg_end(&m), HD_EXPECT_BIND, a, 0) < 0 ||
		owe(server, hd_send_execute_sync(out), HD_EXPECT_EXECUTE, a, 0) < 0 ||
		hd_expect_push(&server->expect, HD_EXPECT_SYNC, a, 0, 0) < 0)
		goto out;
	rc = 0;
out:
	hd_iobuf_free(&types);
	return rc;
}

/*
 * The request as a fill sends it: a simple Query as the client sent it (so
 * error positions are the same); an extended statement with the unnamed
 * statement and portal (the replies are the same bytes whatever the names),
 * always with its Parse, Describe and Bind as the client's batch has them.
 * What each message owes is queued as the client's forwarded messages
 * would have queued it, the actions saying what the fill does with it.
 */
static int
append_statement(HdServer *server, const HdCacheRequest *r)
{
	const HdExpectAction a = HD_REPLY_FILL_STATEMENT;
	HdIoBuf    *out = &server->out;
	HdMsg		m;

	if (!r->ext)
		return owe(server, hd_iobuf_append(out, r->msg, r->len), HD_EXPECT_QUERY, a, 0);
	/* the client's batch has no Parse: the reply to ours is not its to see */
	if (owe(server, hd_send_parse(out, "", r->sql, r->types, r->types_len), HD_EXPECT_PARSE,
			r->batch.has_parse ? a : HD_REPLY_FILL_OWN_PARSE, 0) < 0)
		return -1;
	/* the statement's description now, compared with what the client was shown */
	if (r->stmt && r->stmt->shape &&
		owe(server, hd_send_describe_close(out, 'D', 'S', ""), HD_EXPECT_DESCRIBE_STMT,
			HD_REPLY_FILL_CHECK_SHAPE, r->stmt->id) < 0)
		return -1;
	if (r->batch.describe_stmt &&
		owe(server, hd_send_describe_close(out, 'D', 'S', ""), HD_EXPECT_DESCRIBE_STMT,
			HD_REPLY_FILL_DESCRIBE, 0) < 0)
		return -1;
	hd_msg_begin(&m, out, 'B');
	hd_msg_put_str(&m, "");
	hd_msg_put_str(&m, "");
	hd_msg_put_bytes(&m, r->batch.bind_tail, r->batch.bind_tail_len);
	if (owe(server, hd_msg_end(&m), HD_EXPECT_BIND, a, 0) < 0)
		return -1;
	if (r->batch.describe_portal &&
		owe(server, hd_send_describe_close(out, 'D', 'P', ""), HD_EXPECT_DESCRIBE_PORTAL, a, 0) < 0)
		return -1;
	if (owe(server, hd_send_execute_sync(out), HD_EXPECT_EXECUTE, a, 0) < 0)
		return -1;
	return hd_expect_push(&server->expect, HD_EXPECT_SYNC, a, 0, 0);
}

/* A Sync of the agent's own, its reply action's. */
static int
append_sync(HdServer *server, HdExpectAction action)
{
	HdMsg		msg;

	hd_msg_begin(&msg, &server->out, 'S');
	return owe(server, hd_msg_end(&msg), HD_EXPECT_SYNC, action, 0);
}

/*
 * The hashes of the parameters the fill's analysis's bindings name
 * (cache_params.h), asked after the client's statement and in the fill's
 * transaction, so that nothing the client sees changes: the agent's own
 * named statement (the unnamed one may be a client's, prepared in an
 * earlier batch), bound with the client's bytes and formats, Execute,
 * Sync; then its Close and a Sync of their own, so that the Close runs
 * even when an error skipped the rest (the client's statement failed: the
 * transaction is aborted and the Parse refused; a parameter the origin
 * cannot hash). Their replies are the fill's alone (HD_REPLY_FILL_PARAM_
 * HASHES); a failure leaves every parameter not known.
 * Nothing to do for a simple Query (no parameters), bindings that name
 * none, or parameters of unknown types; 0 also when the client's Bind
 * cannot be read (not known either). -1: out of memory.
 */
static int
append_param_hashes(HdServer *server, CacheOp *op, HdCacheJob *job, const HdCacheRequest *r)
{
	const HdExpectAction a = HD_REPLY_FILL_PARAM_HASHES;
	const bool *want;
	const uint32_t *types;
	size_t		nparams;
	HdIoBuf		msgs = {0};
	int			rc;

	hd_cache_job_params(job, &want, &types, &nparams);
	if (!r->ext || nparams == 0)
		return 0;
	op->params = calloc(nparams, sizeof(HdParamHashes));
	op->hashed = malloc(nparams * sizeof(uint16_t));
	if (op->params == NULL || op->hashed == NULL)
		return -1;
	op->nparams = nparams;
	op->nhashed = hd_pg_hash_choose(want, types, nparams, r->batch.nparams, op->hashed);
	if (op->nhashed == 0)
		return 0;
	/* both messages first: a Bind that cannot be read sends nothing */
	if (hd_pg_hash_parse(&msgs, op->hashed, op->nhashed, types) < 0 ||
		hd_pg_hash_bind(&msgs, op->hashed, op->nhashed, r->batch.bind_tail,
						r->batch.bind_tail_len) < 0)
	{
		hd_iobuf_free(&msgs);
		op->nhashed = 0;
		return 0;
	}
	rc = hd_iobuf_append(&server->out, hd_iobuf_head(&msgs), hd_iobuf_live(&msgs));
	hd_iobuf_free(&msgs);
	if (owe(server, rc, HD_EXPECT_PARSE, a, 0) < 0 ||
		hd_expect_push(&server->expect, HD_EXPECT_BIND, a, 0, 0) < 0 ||
		owe(server, hd_send_execute_sync(&server->out), HD_EXPECT_EXECUTE, a, 0) < 0 ||
		hd_expect_push(&server->expect, HD_EXPECT_SYNC, a, 0, 0) < 0 ||
		owe(server, hd_send_describe_close(&server->out, 'C', 'S', HD_PG_HASH_STMT),
			HD_EXPECT_CLOSE, a, 0) < 0)
		return -1;
	return append_sync(server, a);
}

/*
 * A fill op for job, the request r; its request appended to the server's
 * output. NULL when out of memory (the job stays the caller's).
 */
static CacheOp *
fill_op_new(HdCacheJob *job, const HdCacheRequest *r, HdServer *server)
{
	CacheOp    *op = calloc(1, sizeof(CacheOp));

	if (op == NULL)
		return NULL;
	op->kind = HD_COP_FILL;
	op->started = ev_time();
	op->capture_ok = true;
	if (r->ext && r->batch.describe_stmt &&
		(op->describe_name = strdup(hd_cache_request_described(r))) == NULL)
		goto fail;
	op->describe_fresh = r->batch.has_parse;
	if (append_fill_begin(server) < 0 || append_statement(server, r) < 0 ||
		append_param_hashes(server, op, job, r) < 0 ||
		append_query(server, "COMMIT", HD_REPLY_FILL_END) < 0)
		goto fail;
	op->job = job;
	return op;
fail:
	op_free(op);
	return NULL;
}

/* The analysis op of the request r: its query appended to the server's output. */
static CacheOp *
analysis_op_new(HdClient *client, const HdCacheRequest *r, unsigned char *akey, size_t akeylen,
				HdServer *server)
{
	CacheOp    *op = calloc(1, sizeof(CacheOp));

	if (op == NULL)
		return NULL;
	op->kind = HD_COP_ANALYZE;
	op->started = ev_time();
	op->job = hd_cache_analysis_begin(client->agent->cache, client->pool->config.id, akey,
									  akeylen);
	if (op->job == NULL || append_analysis(server, r) < 0)
	{
		op_free(op);
		return NULL;
	}
	return op;
}

/*
 * The analysis or the fill the client's request waits for (origin.h's
 * lead()): its op on the server, *job the core's job.
 */
HdCacheLeadResult
hd_pg_cache_lead(void *arg, void *conn, HdCacheWaiter *leader, HdCacheJob **job)
{
	HdClient   *client = hd_container_of(leader, HdClient, cache_waiter);
	HdServer   *server = conn;
	HdCacheLayer *layer = client->agent->cache;
	const char *config_id = client->pool->config.id;
	CacheOp    *op;
	HdCacheRequest r;
	unsigned char *akey;
	unsigned char *key;
	size_t		akeylen;
	size_t		keylen;
	bool		dropped;

	(void) arg;
	if (!hd_cache_caches(layer, config_id) || hd_cache_request_reread(client, &r) < 0)
		return HD_CACHE_LEAD_FORWARD;	/* config gone meanwhile */
	if (hd_cache_request_keys(client, &r, &akey, &akeylen, &key, &keylen) < 0)
		return HD_CACHE_LEAD_OOM;
	if (client->cache_step == HD_CSTEP_ANALYZE)
	{
		op = analysis_op_new(client, &r, akey, akeylen, server);
		free(akey);
		free(key);
		if (op == NULL)
			return HD_CACHE_LEAD_OOM;
	}
	else
	{
		HdCacheJob *fill = hd_cache_fill_begin(layer, config_id, akey, akeylen, key, keylen,
											   hd_cache_request_max_age(&r), &dropped);

		free(akey);
		free(key);
		if (fill == NULL)
			return dropped ? HD_CACHE_LEAD_DECIDE_AGAIN : HD_CACHE_LEAD_OOM;
		op = fill_op_new(fill, &r, server);
		if (op == NULL)
			hd_cache_job_free(fill, NULL, 0);
		if (op == NULL || hd_cache_request_consume(client, &r) < 0)
		{
			op_free(op);
			return HD_CACHE_LEAD_OOM;
		}
		client->pool->stats.queries++;
		server->state_dirty = true;	/* it ran the client's statement (state_check.c) */
	}
	server->cache_op = op->kind;
	server->cache_state = op;
	hd_prepare_server_unnamed_lost(server);
	*job = op->job;
	return HD_CACHE_LEAD_SENT;
}

bool
hd_cache_want_ryw(HdServer *server)
{
	return server->wrote && server->client &&
		hd_cache_caches(server->agent->cache, server->pool->config.id);
}

/* origin.h's ryw(): where the WAL ends now covers the writer's commits */
int
hd_pg_cache_ryw(void *arg, void *conn, HdCacheWaiter *writer)
{
	HdServer   *server = conn;
	CacheOp    *op = calloc(1, sizeof(CacheOp));

	(void) arg;
	(void) writer;				/* (the server's client: the answer goes to it) */
	server->wrote = false;
	if (op == NULL)
		return -1;
	op->kind = HD_COP_RYW;
	op->started = ev_time();
	if (append_query(server, "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text",
					 HD_REPLY_CACHE_RYW) < 0)
	{
		op_free(op);
		return -1;
	}
	server->cache_op = HD_COP_RYW;
	server->cache_state = op;
	hd_prepare_server_unnamed_lost(server);
	return 0;
}

/* ---------------------------------------------------------------------------
 * The origin side of the cache core: background refreshes
 */

/*
 * An idle origin connection of the requester's pool whose session settings
 * are the client's (the key's).
 */
static bool
refresh_fits(HdPoolConn *conn, void *arg)
{
	HdServer   *cand = hd_container_of(conn, HdServer, conn);
	HdClient   *client = arg;
	bool		err = false;
	char	   *diff = hd_settings_diff_sql(&cand->settings, &client->settings, &err);

	free(diff);
	return diff == NULL && !err;
}

void *
hd_pg_cache_refresh_conn(void *arg, HdCacheWaiter *requester)
{
	HdClient   *client = hd_container_of(requester, HdClient, cache_waiter);
	HdPoolConn *conn;

	(void) arg;
	conn = hd_pool_take_idle(client->pool, refresh_fits, client);
	return conn ? hd_container_of(conn, HdServer, conn) : NULL;
}

/* The refresh's fill on conn: the connection is the refresh's now, like a client's. */
int
hd_pg_cache_refresh(void *arg, void *conn, HdCacheWaiter *requester, HdCacheJob *job)
{
	HdClient   *client = hd_container_of(requester, HdClient, cache_waiter);
	HdServer   *server = conn;
	HdCacheRequest r;
	CacheOp    *op;

	(void) arg;
	if (hd_cache_request_reread(client, &r) < 0)
		return -1;				/* (nothing was sent) */
	op = fill_op_new(job, &r, server);
	if (op == NULL)
	{
		/* half a request may be in its output: the idle connection cannot be reused */
		hd_server_close(server, "out of memory");
		return -1;
	}
	op->refresh = true;
	hd_prepare_server_unnamed_lost(server);
	server->client = NULL;
	server->request_sent_at = 0;
	server->cache_op = HD_COP_FILL;
	server->cache_state = op;
	server->pool->stats.queries++;
	hd_server_flush(server);
	return 0;
}

/* ---------------------------------------------------------------------------
 * Replies
 */

/* "{1,2,3}" (analyze_query()'s relations) -> dependencies on every row */
static int
parse_relations(const char *text, HdDep **out, size_t *n)
{
	size_t		cap = 8;
	const char *p = text;

	*n = 0;
	*out = malloc(cap * sizeof(HdDep));
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
			HdDep	   *grown = realloc(*out, cap * 2 * sizeof(HdDep));

			if (grown == NULL)
				return -1;
			*out = grown;
			cap *= 2;
		}
		(*out)[(*n)++] = hd_dep_relation(v);
		p = end;
		if (*p == ',')
			p++;
	}
	return 0;
}

/*
 * A cacheable analysis's bindings and parameter types (cache_params.h).
 * Bindings that cannot be read are dropped, all of them: the relations are
 * then read whole, as without bindings. Types that cannot be read are not
 * known: the fills hash no parameter, and bindings that name one bind
 * nothing.
 */
static void
analysis_bindings(CacheOp *op, HdPgBindings *b, uint32_t **types, size_t *ntypes)
{
	const char *bad = NULL;

	if (op->a_bindings && hd_pg_bindings_parse(op->a_bindings, b, &bad) < 0)
		hd_warning("cache analysis: the bindings %s cannot be read (at \"%.60s\"): "
				   "its relations are read whole", op->a_bindings, bad ? bad : "out of memory");
	if (b->n > 0 && op->a_param_types &&
		hd_pg_oids_parse(op->a_param_types, types, ntypes) < 0)
		hd_warning("cache analysis: the parameter types %s cannot be read: "
				   "its parameters are not hashed", op->a_param_types);
}

static void
finish_analysis(CacheOp *op)
{
	HdCacheAnalysisOutcome o = {0};
	HdDep	   *deps = NULL;
	HdPgBindings b = {0};
	uint32_t   *types = NULL;

	o.error = op->a_error;
	o.answered = op->got_row;
	o.cacheable = op->a_cacheable;
	o.reason = op->a_reason;
	if (op->a_error == NULL && op->got_row && op->a_cacheable && op->a_relations)
	{
		o.deps_unreadable = parse_relations(op->a_relations, &deps, &o.ndeps) < 0;
		analysis_bindings(op, &b, &types, &o.nparam_types);
		o.bindings = b.items;
		o.nbindings = b.n;
		o.param_types = types;
	}
	o.deps = deps;
	hd_cache_analysis_finish(op->job, &o);
	free(deps);
	hd_pg_bindings_free(&b);
	free(types);
}

/* true: stored */
static bool
finish_fill(HdServer *server, CacheOp *op)
{
	HdCacheFillOutcome o = {0};
	HdRaceSnapshot s = {0};
	bool		check_state;
	bool		stored;

	o.failed = op->failed;
	if (!op->failed && op->snapshot &&
		hd_pg_snapshot_parse(op->snapshot, &s.xmin, &s.xmax, &s.xip, &s.nxip) == 0)
		o.snapshot = &s;
	o.state_changed = op->state_changed;
	o.complete = op->capture_ok;
	o.bytes = hd_iobuf_head(&op->capture);
	o.len = hd_iobuf_live(&op->capture);
	if (op->params_failed)
		hd_pg_param_hashes_free(op->params, op->nparams);	/* none known */
	if (op->nparams > 0 && hd_log_enabled(HD_LOG_DEBUG))
	{
		size_t		known = 0;

		for (size_t i = 0; i < op->nparams; i++)
			known += op->params[i].known;
		hd_debug("config %s: a cache fill hashed %zu parameters of $1..$%zu for its bindings: "
				 "%zu known", server->pool->config.name, op->nhashed, op->nparams, known);
	}
	o.params = op->params;
	o.nparams = op->nparams;
	stored = hd_cache_fill_finish(op->job, &o, &check_state);
	free(s.xip);
	if (check_state)
		server->state_dirty = true;
	return stored;
}

static void
to_client(HdServer *server, const char *msg, size_t total)
{
	if (server->client == NULL)
		return;
	server->pool->stats.bytes_to_clients += total;
	if (hd_iobuf_append(&server->client->out, msg, total) < 0)
		hd_client_fatal(server->client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
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
fill_check_shape(HdServer *server, CacheOp *op, uint32_t stmt_id, char type, const char *msg,
				 size_t total)
{
	HdStatement *stmt = hd_registry_get(&hd_pg_pool(server->pool)->registry, stmt_id);
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
	if (stmt && stmt->shape && shape &&
		(len != stmt->shape_len || memcmp(shape, stmt->shape, len) != 0))
	{
		op->shape_changed = true;
		op->failed = true;
		hd_prepare_changed(server, stmt, "a cache fill found other result or parameter types");
		if (server->client && hd_prepare_send_changed_error(&server->client->out) < 0)
			hd_client_fatal(server->client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
	}
	else if (shape == NULL)
		op->failed = true;		/* unreadable: not stored */
	free(shape);
}


static void
op_done(HdServer *server, CacheOp *op)
{
	HdClient   *client = server->client;

	server->cache_op = HD_COP_NONE;
	server->cache_state = NULL;
	if (op->kind == HD_COP_ANALYZE)
		finish_analysis(op);
	else if (op->kind == HD_COP_FILL)
		(void) finish_fill(server, op);
	if (client)
	{
		hd_batch_event(&client->batch, HD_BEV_CACHE_DONE);
		client->cache_step = HD_CSTEP_NONE;
		if (op->kind == HD_COP_FILL)
			hd_send_ready(&client->out, 'I');
	}
	/* the waiters: the result, or their own queries */
	hd_cache_job_free(op->job, hd_iobuf_head(&op->capture), hd_iobuf_live(&op->capture));
	op->job = NULL;
	if (op->refresh && server->client == NULL && !op->broken)
	{
		/* a background refresh: the connection goes back to the pool */
		if (server->txn_status == 'I' && hd_iobuf_live(&server->out) == 0)
			hd_pool_release(server->pool, &server->conn);
		else
			hd_server_close(server, "the agent's cache refresh did not end cleanly");
	}
	op_free(op);
}

/*
 * The analysis's or the read-your-writes query's reply: its first row, its
 * error; at its ReadyForQuery the op ends.
 */
static void
query_reply(HdServer *server, CacheOp *op, const HdExpect *entry, char type, const char *msg,
			size_t total)
{
	const char *body = msg + 5;
	size_t		len = total - 5;

	if (type == 'D' && !op->got_row)
	{
		op->got_row = true;
		if (entry->action == HD_REPLY_CACHE_RYW)
		{
			char	   *v = hd_data_row_value(body, len, 0);
			uint64_t	lsn;

			if (v && hd_lsn_parse(v, &lsn) == 0 && server->client)
				hd_cache_ryw_reached(&server->client->cache_waiter, lsn);
			free(v);
		}
		else
		{
			char	   *c = hd_data_row_value(body, len, 0);

			op->a_cacheable = c && strcmp(c, "true") == 0;
			free(c);
			op->a_reason = hd_data_row_value(body, len, 1);
			op->a_relations = hd_data_row_value(body, len, 2);
			op->a_bindings = hd_data_row_value(body, len, 3);
			op->a_param_types = hd_data_row_value(body, len, 4);
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
		if (entry->action == HD_REPLY_CACHE_RYW && server->client && op->a_error == NULL)
			hd_histogram_observe(&server->pool->stats.ryw_latency, ev_time() - op->started);
		op_done(server, op);
	}
}

/*
 * The fill's BEGIN and its snapshot and session-state row. An error there
 * leaves the connection in a state the agent did not ask for: it goes
 * once the fill ends.
 */
static void
fill_begin_reply(HdServer *server, CacheOp *op, char type, const char *msg, size_t total)
{
	const char *body = msg + 5;
	size_t		len = total - 5;

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
}

/* A reply of the client's statement: forwarded, and kept for the store if plain. */
static void
fill_keep(HdServer *server, CacheOp *op, char type, const char *msg, size_t total)
{
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
			int64_t		limit = server->agent->settings.cache_max_entry_bytes;

			if ((limit > 0 && hd_iobuf_live(&op->capture) + total > (size_t) limit) ||
				hd_iobuf_append(&op->capture, msg, total) < 0)
			{
				op->capture_ok = false;
				hd_iobuf_free(&op->capture);
			}
		}
	}
	else
		op->failed = true;		/* a notice, COPY, ...: not a plain result, not stored */
}

/* A reply to the client's statement (its entries: entry->action says which). */
static void
fill_statement_reply(HdServer *server, CacheOp *op, const HdExpect *entry, char type,
					 const char *msg, size_t total)
{
	bool		description = type == 't' || type == 'T' || type == 'n';

	if (type == 'Z')
		return;					/* its Sync's (or Query's): the COMMIT's reply follows */
	if (op->broken)
		return;					/* the transaction is not ours to report on */
	if (entry->action == HD_REPLY_FILL_OWN_PARSE && type == '1')
		return;
	if (entry->action == HD_REPLY_FILL_CHECK_SHAPE && description)
	{
		fill_check_shape(server, op, entry->stmt_id, type, msg, total);
		return;
	}
	if (op->shape_changed)
		return;					/* the client got 0A000 in place of the statement */
	if (entry->action == HD_REPLY_FILL_DESCRIBE && description && op->describe_name &&
		server->client)
		fill_note_describe(server, op, type, msg, total);
	fill_keep(server, op, type, msg, total);
}

/*
 * The hashing of the parameters (append_param_hashes()): its row; an error
 * leaves them all not known (the client saw its whole reply already, and
 * the fill ends as usual: after an error its COMMIT is a ROLLBACK). The
 * rest (ParseComplete ... CloseComplete, ReadyForQuery, notices) is nobody's.
 */
static void
fill_param_hashes_reply(HdServer *server, CacheOp *op, char type, const char *msg,
						size_t total)
{
	static HdLogLimit limit;
	uint64_t	left_out;

	if (type == 'D' && !op->params_failed &&
		hd_pg_hash_row(msg + 5, total - 5, op->hashed, op->nhashed, op->params,
					   op->nparams) < 0)
	{
		op->params_failed = true;
		hd_warning("config %s: a cache fill's parameter hashes cannot be read: "
				   "its relations are read whole", server->pool->config.name);
	}
	else if (type == 'E' && !op->params_failed)
	{
		const char *m = hd_error_field(msg + 5, total - 5, 'M');

		op->params_failed = true;
		/* the client's statement failed (the transaction is aborted): nothing to say */
		if (!op->failed && !op->broken && hd_log_due(&limit, 60.0, &left_out))
			hd_warning("config %s: a cache fill could not hash its parameters: %s "
					   "(its relations are read whole; %llu more not logged)",
					   server->pool->config.name, m ? m : "unknown error",
					   (unsigned long long) left_out);
	}
}

/*
 * The COMMIT's reply (ROLLBACK after an error): at its ReadyForQuery the
 * fill ends, and a connection whose BEGIN failed goes.
 */
static void
fill_end_reply(HdServer *server, CacheOp *op, char type)
{
	if (type == 'E')
	{
		op->failed = true;
		return;
	}
	if (type != 'Z')
		return;
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

void
hd_cache_reply(HdServer *server, const HdExpect *entry, char type, const char *msg,
			   size_t total)
{
	CacheOp    *op = server->cache_state;

	if (op == NULL)
		return;
	if (type == 'A')
		return;					/* a notification: nobody here to tell */
	switch ((HdExpectAction) entry->action)
	{
		case HD_REPLY_CACHE_ANALYSIS:
		case HD_REPLY_CACHE_RYW:
			query_reply(server, op, entry, type, msg, total);
			return;
		case HD_REPLY_FILL_BEGIN:
			fill_begin_reply(server, op, type, msg, total);
			return;
		case HD_REPLY_FILL_PARAM_HASHES:
			fill_param_hashes_reply(server, op, type, msg, total);
			return;
		case HD_REPLY_FILL_END:
			fill_end_reply(server, op, type);
			return;
		default:
			fill_statement_reply(server, op, entry, type, msg, total);
			return;
	}
}

void
hd_cache_server_free(HdServer *server)
{
	CacheOp    *op = server->cache_state;

	if (op == NULL)
		return;
	server->cache_state = NULL;
	/* a fill leaves the race rule's count; its waiters run their own queries */
	hd_cache_job_free(op->job, NULL, 0);
	op->job = NULL;
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
