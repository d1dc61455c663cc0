/*
 * cache_request.c
 *    PostgreSQL requests before the result cache: reading them, their
 *    keys, answering from stored bytes, the session side of the cache core
 *    (cache_request.h).
 */
#include "pgwire/cache_request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/sqlstate.h"
#include "cache/cache_hint.h"
#include "pgwire/pooler.h"
#include "pgwire/prepare.h"
#include "pgwire/proto.h"

/* the keys' format versions: simple Query, extended batch, an extended statement's analysis */
#define KEY_FORMAT "hdq1"
#define KEY_FORMAT_EXT "hdx1"
#define KEY_FORMAT_EXT_ANALYSIS "hdxa1"
/* an extended batch longer than this is forwarded, not cached (ext_batch.h) */
#define MAX_EXT_BATCH (64 * 1024)

static HdClient *
client_of(HdCacheWaiter *waiter)
{
	return hd_container_of(waiter, HdClient, cache_waiter);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * A client answered on its own origin connection (hd_cache_own_connection())
 * has its key carry that session's state report (state_check.c), as checked
 * after its last transaction, so that whatever the settings' values are,
 * an entry is shared only by sessions that report the same.
 */
static const char *
session_state_of(const HdClient *client)
{
	return client->server && hd_cache_own_connection(client) ?
		client->server->state_baseline : NULL;
}

/*
 * format, config, role, database, the settings (sorted), under session
 * pooling the session's state report, then the statement: its text (simple
 * Query), or the parts of an extended batch (stmt_part()).
 */
static unsigned char *
build_key(const HdClient *client, const char *format, const char *sql, size_t len,
		  size_t *keylen)
{
	const HdSettingList *list = &client->settings;
	const char **sqls = calloc(list->count + 1, sizeof(char *));
	const char *state = session_state_of(client);
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
	if (state &&
		(hd_iobuf_append(&b, "@session", 9) < 0 ||
		 hd_iobuf_append(&b, state, strlen(state) + 1) < 0))
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

static bool
config_caches(const HdClient *client)
{
	return client->pool && !client->replication[0] && !client->pool->config.caching_disabled &&
		hd_cache_caches(client->agent->cache, client->pool->config.id);
}

bool
hd_cache_serves(const HdClient *client)
{
	return config_caches(client) &&
		(!client->pinned || hd_pin_class(client->pin_reason).cache_safe);
}

bool
hd_cache_own_connection(const HdClient *client)
{
	/* (the cheap tests first: this runs for every request of every client) */
	if (!client->pinned && (client->pool == NULL ||
							client->pool->config.pool_mode != HD_POOL_SESSION))
		return false;
	if (!config_caches(client))
		return false;
	return !client->pinned || hd_pin_class(client->pin_reason).cache_safe;
}

/* A pinned client the cache does not answer: its reason's kind (session.h), a bounded name. */
static const char *
pinned_bypass(const HdClient *client)
{
	const char *kind = hd_pin_class(client->pin_reason).kind;

	if (strcmp(kind, "temporary object") == 0)
		return "bypass:pinned:temporary object";
	if (strcmp(kind, "setting") == 0)
		return "bypass:pinned:setting";
	if (strcmp(kind, "session state") == 0)
		return "bypass:pinned:session state";
	return "bypass:pinned:other";
}

/*
 * Why a client that holds an origin connection is not answered from the
 * cache now (a bypass reason), or NULL: it may be. Under transaction
 * pooling, holding one means being in a transaction. A connection that is
 * the client's own (hd_cache_own_connection()) may be answered for when
 * nothing of the client's is in flight or queued on it (replies stay in
 * order), it is outside a transaction block, its settings are applied, and
 * its state was checked since its last statement (state_check.c: the key
 * carries that report).
 */
const char *
hd_cache_held_bypass(const HdClient *client)
{
	const HdServer *server = client->server;

	if (client->pinned && !hd_pin_class(client->pin_reason).cache_safe)
		return pinned_bypass(client);
	if (!hd_cache_own_connection(client) || server == NULL || server->txn_status != 'I')
		return "bypass:transaction";
	if (!hd_server_quiet(server) || server->has_pending)
		return "bypass:session:busy";
	if (!client->server_synced || server->state_baseline == NULL || server->state_dirty)
		return "bypass:session:state unknown";
	return NULL;
}

void
hd_cache_count_bypass(HdClient *client, const char *reason)
{
	char		name[64];

	if (client->pool == NULL || client->replication[0] || client->pool->config.caching_disabled ||
		!hd_cache_caches(client->agent->cache, client->pool->config.id))
		return;
	snprintf(name, sizeof(name), "bypass:%s", reason);
	hd_cache_count(client->agent->cache, client->pool->config.id, name);
}

/* ---------------------------------------------------------------------------
 * Requests: a simple Query, or one extended-protocol statement up to its Sync
 */

/*
 * Read the request at head (avail bytes; a Query is complete). HD_BATCH_NO
 * says why it is forwarded as it is, and has_execute whether it runs a
 * statement at all (only those are counted).
 */
static HdBatchResult
read_request(HdClient *client, const char *head, size_t avail, HdCacheRequest *r,
			 bool *has_execute, const char **why)
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
		HdStatement *stmt = id ? hd_registry_get(&hd_pg_pool(client->pool)->registry, id) : NULL;

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
int
hd_cache_request_types(const HdCacheRequest *r, HdIoBuf *out)
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
int
hd_cache_request_keys(const HdClient *client, const HdCacheRequest *r, unsigned char **akey,
					  size_t *akeylen, unsigned char **key, size_t *keylen)
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
	if (put_part(&a, r->sql, r->sqllen) < 0 || hd_cache_request_types(r, &a) < 0 ||
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
int
hd_cache_request_consume(HdClient *client, const HdCacheRequest *r)
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
	hd_batch_event(&client->batch, HD_BEV_SERVED);
	return 0;
}

/* The request at the head of a client's input again (a waiter's, at its answer). */
int
hd_cache_request_reread(HdClient *client, HdCacheRequest *r)
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
const char *
hd_cache_request_described(const HdCacheRequest *r)
{
	return r->batch.has_parse ? r->batch.parse_name : r->batch.stmt_name;
}

/* Serve stored bytes for the request: the replies, then ReadyForQuery. */
static int
serve_bytes(HdClient *client, const HdCacheRequest *r, const void *bytes, size_t len)
{
	if (hd_cache_request_consume(client, r) < 0 || hd_iobuf_append(&client->out, bytes, len) < 0 ||
		hd_send_ready(&client->out, 'I') < 0)
	{
		/* half an answer may be out: the session cannot go on */
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return -1;
	}
	client->pool->stats.queries++;
	client->pool->stats.bytes_to_clients += len + 6;
	/* it was shown its statement's description: as if the origin had (prepare.h) */
	if (r->ext && r->batch.describe_stmt)
		hd_prepare_note_replies(client, hd_cache_request_described(r), r->batch.has_parse, bytes, len);
	return 0;
}

int64_t
hd_cache_request_max_age(const HdCacheRequest *r)
{
	HdHint		hint;

	hd_cache_hint_parse(r->sql, r->sqllen, &hint);
	return hint.kind == HD_HINT_MAX_AGE ? hint.max_age_s * 1000 : -1;
}

/* ---------------------------------------------------------------------------
 * The session side of the cache core (cache.h)
 */

static bool
session_active(HdCacheWaiter *waiter)
{
	return client_of(waiter)->state == HD_CLIENT_ACTIVE;
}

/* A waiter runs its own query on the origin after all. */
static void
session_fall_back(HdCacheWaiter *waiter)
{
	HdClient   *client = client_of(waiter);

	hd_batch_event(&client->batch, HD_BEV_CACHE_DONE);
	client->cache_step = HD_CSTEP_FORWARD;
	if (hd_iobuf_live(&client->in) > 0 && hd_iobuf_head(&client->in)[0] != 'Q')
		hd_batch_event(&client->batch, HD_BEV_PASS);	/* its whole batch goes as it is */
	hd_client_resume_reading(client);
}

/* A waiter gets a fill's bytes (a stored result) for its request. */
static int
session_serve(HdCacheWaiter *waiter, const void *bytes, size_t len)
{
	HdClient   *client = client_of(waiter);
	HdCacheRequest r;

	if (hd_cache_request_reread(client, &r) < 0)
		return 1;
	if (serve_bytes(client, &r, bytes, len) < 0)
		return -1;				/* closed */
	hd_batch_event(&client->batch, HD_BEV_CACHE_DONE);
	client->cache_step = HD_CSTEP_NONE;
	hd_client_flush(client);
	if (client->state == HD_CLIENT_ACTIVE)
		hd_client_resume_reading(client);
	return 0;
}

static void
session_decide_again(HdCacheWaiter *waiter)
{
	HdClient   *client = client_of(waiter);

	hd_batch_event(&client->batch, HD_BEV_CACHE_DONE);
	client->cache_step = HD_CSTEP_NONE;
	hd_client_resume_reading(client);
}

/* prepared statements mean the new schema from now on (prepare.h) */
static void
session_schema_changed(void *arg, const char *config_id)
{
	hd_prepare_schema_changed((HdAgent *) arg, config_id);
}

const HdCacheSessionOps hd_pg_cache_session = {
	session_active, session_serve, session_fall_back, session_decide_again,
	session_schema_changed
};

void
hd_cache_client_gone(HdClient *client)
{
	hd_cache_waiter_gone(&client->cache_waiter);
}

/* ---------------------------------------------------------------------------
 * The decision
 */

/*
 * The request goes to the origin as it is, for a counted reason (NULL:
 * counted already). An extended batch's Execute is then not counted again
 * (client.c).
 */
static int
bypass(HdClient *client, const char *reason)
{
	if (reason)
		hd_cache_count(client->agent->cache, client->pool->config.id, reason);
	if (hd_iobuf_live(&client->in) > 0 && hd_iobuf_head(&client->in)[0] != 'Q')
		hd_batch_event(&client->batch, HD_BEV_COUNT);
	return HD_CSTEP_FORWARD;
}

int
hd_cache_on_request(HdClient *client, const char *head, size_t avail)
{
	HdCacheLayer *layer = client->agent->cache;
	const char *config_id;
	HdCacheRequest r;
	HdCacheVerdict v;
	unsigned char *akey;
	unsigned char *key;
	size_t		akeylen;
	size_t		keylen;
	bool		has_execute;
	const char *why;
	HdBatchResult rb;
	HdHint		hint;
	char		name[96];
	int			rc;

	if (layer == NULL || client->replication[0])
		return HD_CSTEP_FORWARD;
	config_id = client->pool->config.id;
	if (!hd_cache_caches(layer, config_id) || client->pool->config.caching_disabled)
		return HD_CSTEP_FORWARD;	/* nothing to count: caching is off for the config */
	if (client->server != NULL && (why = hd_cache_held_bypass(client)) != NULL)
		return bypass(client, why);
	rb = read_request(client, head, avail, &r, &has_execute, &why);
	if (rb == HD_BATCH_MORE)
		return HD_CSTEP_MORE;
	if (rb == HD_BATCH_NO)
	{
		if (!has_execute)
			return HD_CSTEP_FORWARD;	/* counted at its Execute, if one comes */
		snprintf(name, sizeof(name), "bypass:extended:%s", why);
		return bypass(client, name);
	}
	if (client->pinned && !hd_pin_class(client->pin_reason).cache_safe)
		return bypass(client, pinned_bypass(client));
	if (client->server == NULL && hd_cache_own_connection(client))
		return bypass(client, "bypass:session:state unknown");	/* (it has one from login) */
	hd_cache_hint_parse(r.sql, r.sqllen, &hint);
	if (hint.kind == HD_HINT_NO_CACHE)
		return bypass(client, "bypass:hint");
	if (hint.kind == HD_HINT_INVALID)
		return bypass(client, "bypass:hint:invalid");
	if (!looks_like_select(r.sql, r.sqllen))
		return bypass(client, "bypass:uncacheable:not a SELECT");
	if (hd_cache_request_keys(client, &r, &akey, &akeylen, &key, &keylen) < 0)
		return bypass(client, "bypass:error");
	hd_cache_decide(layer, config_id, &client->cache_waiter, akey, akeylen, key, keylen,
					hd_cache_request_max_age(&r), &v);
	free(akey);
	free(key);
	switch (v.decision)
	{
		case HD_CACHE_ANALYZE:
			return HD_CSTEP_ANALYZE;
		case HD_CACHE_FILL:
			return HD_CSTEP_FILL;
		case HD_CACHE_WAIT:
			return HD_CSTEP_WAIT;
		case HD_CACHE_SERVE:
			rc = serve_bytes(client, &r, v.bytes, v.len);
			hd_cache_served(layer, config_id, &v, rc == 0);
			return HD_CSTEP_SERVED;	/* (or the client is closed) */
		case HD_CACHE_FORWARD:
			break;
	}
	return bypass(client, NULL);
}
