/*
 * prepare.c
 *    Prepared statements across origin connections (see prepare.h).
 */
#include "pgwire/prepare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/sqlstate.h"
#include "pgwire/pooler.h"
#include "pgwire/proto.h"

/* ---------------------------------------------------------------------------
 * Messages the agent sends of its own
 */

static void
server_name(char *buf, size_t len, uint32_t id)
{
	snprintf(buf, len, "hd_%u", id);
}

int
hd_prepare_expect(HdServer *server, HdExpectKind kind, HdExpectAction action, uint32_t stmt_id,
				  uint32_t gen)
{
	if (server->expect.error_until_sync && kind != HD_EXPECT_SYNC)
		return 0;
	if (kind == HD_EXPECT_SYNC)
		server->expect.error_until_sync = false;
	return hd_expect_push(&server->expect, kind, action, stmt_id, gen);
}

/*
 * Ask the server for the shape of the statement it now holds under name,
 * and stop the client until the answer is compared (hd_prepare_reply):
 * nothing may run the statement before the agent knows it is still the one
 * the client described. The Flush makes the origin answer without a Sync.
 */
static int
check_shape(HdClient *client, HdServer *server, const char *name, HdExpectAction action,
			uint32_t stmt_id, uint32_t gen)
{
	static const char flush[5] = {'H', 0, 0, 0, 4};

	if (hd_send_describe_close(&server->out, 'D', 'S', name) < 0 ||
		hd_iobuf_append(&server->out, flush, sizeof(flush)) < 0 ||
		hd_prepare_expect(server, HD_EXPECT_DESCRIBE_STMT, action, stmt_id, gen) < 0)
		return -1;
	hd_batch_event(&client->batch, HD_BEV_SHAPE_START);
	return 0;
}

/*
 * In place of a message the agent refuses (a statement whose shape
 * changed, a named Parse too large to keep): a Describe with an invalid
 * subtype, which the origin refuses with an ERROR. It then aborts the
 * transaction and skips to Sync exactly as if the client's message had
 * failed there; the client gets the agent's error instead of the origin's
 * (hd_prepare_reply).
 */
HdForward
hd_prepare_refuse(HdServer *server, HdRefusal why)
{
	static const char invalid_describe[7] = {'D', 0, 0, 0, 6, 'X', 0};

	if (hd_iobuf_append(&server->out, invalid_describe, sizeof(invalid_describe)) < 0 ||
		hd_prepare_expect(server, HD_EXPECT_DESCRIBE_PORTAL, HD_REPLY_REFUSE, (uint32_t) why,
						  0) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_DONE;
}

static HdForward
fail_changed(HdServer *server)
{
	return hd_prepare_refuse(server, HD_REFUSE_CHANGED);
}

/* ---------------------------------------------------------------------------
 * Named statements
 */

const char *
hd_prepare_context(const HdClient *client)
{
	const HdSetting *path = hd_settings_find(&client->settings, "search_path");

	return path ? path->sql : "";
}

/* The registry entry of a statement the client names, or NULL (out of memory). */
static HdStatement *
register_statement(HdClient *client, const char *name, const char *query, const char *types,
				   size_t types_len)
{
	HdStatement *stmt = hd_registry_intern(&hd_pg_pool(client->pool)->registry, query, types, types_len,
										   hd_prepare_context(client));

	if (stmt == NULL || hd_client_stmt_set(&client->stmts, name, stmt->id) < 0)
		return NULL;
	return stmt;
}

int
hd_client_register_statement(HdClient *client, const char *name, const char *query,
							 const char *types, size_t types_len)
{
	return register_statement(client, name, query, types, types_len) ? 0 : -1;
}

/* Prepare stmt on the server as hd_<id>, its ParseComplete owed with action. */
static int
put_named_parse(HdServer *server, const HdStatement *stmt, HdExpectAction action)
{
	char		name[24];

	server_name(name, sizeof(name), stmt->id);
	if (hd_send_parse(&server->out, name, stmt->query, stmt->types, stmt->types_len) < 0 ||
		hd_server_stmt_add(&server->stmts, stmt->id) < 0)
		return -1;
	return hd_prepare_expect(server, HD_EXPECT_PARSE, action, stmt->id, 0);
}

/*
 * The server must hold stmt before a client's Bind or Describe of it:
 * prepared there now (its reply dropped), its shape checked if anyone
 * described it. A changed statement fails instead.
 */
static HdForward
ensure_named(HdClient *client, HdServer *server, HdStatement *stmt)
{
	char		name[24];

	if (server->expect.error_until_sync)
		return HD_FWD_DONE;		/* the origin skips to Sync anyway */
	if (stmt->changed)
		return fail_changed(server);
	if (hd_server_stmt_has(&server->stmts, stmt->id))
		return HD_FWD_DONE;
	if (put_named_parse(server, stmt, HD_REPLY_SWALLOW) < 0)
		return HD_FWD_NOMEM;
	if (stmt->shape == NULL)
		return HD_FWD_DONE;
	server_name(name, sizeof(name), stmt->id);
	if (check_shape(client, server, name, HD_REPLY_VERIFY_REPARSE, stmt->id, 0) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_WAIT;
}

/* The server prepares stmt if it lacks it; no shape check (for DEALLOCATE). */
static int
ensure_named_plain(HdServer *server, const HdStatement *stmt)
{
	if (hd_server_stmt_has(&server->stmts, stmt->id))
		return 0;
	return put_named_parse(server, stmt, HD_REPLY_SWALLOW);
}

static HdForward
forward_parse_named(HdClient *client, HdServer *server, const char *name, const char *query,
					const char *types, size_t types_len)
{
	HdStatement *stmt = register_statement(client, name, query, types, types_len);
	char		sname[24];

	if (stmt == NULL)
		return HD_FWD_NOMEM;
	if (hd_server_stmt_has(&server->stmts, stmt->id))
		return hd_prepare_expect(server, HD_EXPECT_PARSE, HD_REPLY_SYNTHESIZE, 0, 0) < 0 ?
			HD_FWD_NOMEM : HD_FWD_DONE;
	if (put_named_parse(server, stmt, HD_REPLY_FORWARD) < 0)
		return HD_FWD_NOMEM;
	/* described before: is it still that statement here? (the client waits) */
	server_name(sname, sizeof(sname), stmt->id);
	if (stmt->shape != NULL && !server->expect.error_until_sync &&
		check_shape(client, server, sname, HD_REPLY_VERIFY_FRESH, stmt->id, 0) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_DONE;
}

/* ---------------------------------------------------------------------------
 * The unnamed statement
 */

static HdUnnamed *
unnamed_of(HdClient *client)
{
	if (client->unnamed == NULL)
		client->unnamed = calloc(1, sizeof(HdUnnamed));
	return client->unnamed;
}

static bool
unnamed_known(const HdClient *client)
{
	return client->unnamed && client->unnamed->state == HD_UNNAMED_KNOWN;
}

void
hd_prepare_server_unnamed_lost(HdServer *server)
{
	server->unnamed_client = 0;
}

/* The client's unnamed statement is query now; a new generation of it. */
static int
set_unnamed(HdClient *client, const char *query, const char *types, size_t types_len,
			uint32_t dealloc_id)
{
	HdUnnamed  *u = unnamed_of(client);

	if (u == NULL)
		return -1;
	hd_unnamed_clear(u);		/* (keeps the generation) */
	u->gen++;
	u->query = strdup(query);
	u->types = malloc(types_len ? types_len : 1);
	if (u->query == NULL || u->types == NULL)
	{
		hd_unnamed_clear(u);
		return -1;
	}
	memcpy(u->types, types, types_len);
	u->types_len = types_len;
	u->dealloc_id = dealloc_id;
	u->state = HD_UNNAMED_KNOWN;
	return 0;
}

int
hd_prepare_note_unnamed(HdClient *client, const char *query, const char *types,
						size_t types_len)
{
	return set_unnamed(client, query, types, types_len, 0);
}

/*
 * The client's Parse of "" (its new generation, known) went to the server:
 * the server holds it, and owes its ParseComplete.
 */
static HdForward
unnamed_parse_sent(HdClient *client, HdServer *server)
{
	HdUnnamed  *u = client->unnamed;

	if (server->expect.error_until_sync)
	{
		/* the origin skips it and keeps whatever it had: unknown to the agent */
		u->state = HD_UNNAMED_UNKNOWN;
		server->unnamed_client = 0;
		return HD_FWD_DONE;
	}
	server->unnamed_client = client->id;
	server->unnamed_gen = u->gen;
	return hd_prepare_expect(server, HD_EXPECT_PARSE, HD_REPLY_FORWARD, 0, u->gen) < 0 ?
		HD_FWD_NOMEM : HD_FWD_DONE;
}

/* The client's Parse of "" (query as sent to the server): its statement now. */
static HdForward
forward_parse_unnamed(HdClient *client, HdServer *server, const char *query, const char *types,
					  size_t types_len, uint32_t dealloc_id)
{
	if (set_unnamed(client, query, types, types_len, dealloc_id) < 0 ||
		hd_send_parse(&server->out, "", query, types, types_len) < 0)
		return HD_FWD_NOMEM;
	return unnamed_parse_sent(client, server);
}

/*
 * The server must hold the client's own unnamed statement before its Bind
 * or Describe of "": parse it again (shape checked if the client described
 * it), or, when the client has none, make the server hold none, so that it
 * answers 26000 as PostgreSQL would.
 */
static HdForward
ensure_unnamed(HdClient *client, HdServer *server)
{
	HdUnnamed  *u = client->unnamed;

	if (server->expect.error_until_sync)
		return HD_FWD_DONE;
	if (unnamed_known(client) && u->changed)
		return fail_changed(server);
	if (unnamed_known(client) && server->unnamed_client == client->id &&
		server->unnamed_gen == u->gen)
		return HD_FWD_DONE;
	if (!unnamed_known(client) || u->query == NULL)
	{
		/* none, or one the agent cannot make again (a large one it did not keep) */
		if (hd_send_describe_close(&server->out, 'C', 'S', "") < 0 ||
			hd_prepare_expect(server, HD_EXPECT_CLOSE, HD_REPLY_SWALLOW, 0, 0) < 0)
			return HD_FWD_NOMEM;
		server->unnamed_client = 0;
		return HD_FWD_DONE;
	}
	if (hd_send_parse(&server->out, "", u->query, u->types, u->types_len) < 0 ||
		hd_prepare_expect(server, HD_EXPECT_PARSE, HD_REPLY_SWALLOW, 0, u->gen) < 0)
		return HD_FWD_NOMEM;
	server->unnamed_client = client->id;
	server->unnamed_gen = u->gen;
	if (u->shape == NULL)
		return HD_FWD_DONE;
	if (check_shape(client, server, "", HD_REPLY_VERIFY_REPARSE, 0, u->gen) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_WAIT;
}

void
hd_prepare_query_sent(HdClient *client, HdServer *server)
{
	/* PostgreSQL drops the unnamed statement at the start of a simple Query */
	if (client->unnamed)
		hd_unnamed_clear(client->unnamed);
	server->unnamed_client = 0;
}

/* ---------------------------------------------------------------------------
 * The client's messages
 */

static HdForward
forward_parse(HdClient *client, HdServer *server, const char *body, uint32_t len)
{
	size_t		pos = 0;
	const char *name = hd_take_string(body, len, &pos);
	const char *query = name ? hd_take_string(body, len, &pos) : NULL;

	if (query == NULL || len - pos < 2)
		return HD_FWD_MALFORMED;
	if (name[0] == '\0')
		return forward_parse_unnamed(client, server, query, body + pos, len - pos, 0);
	return forward_parse_named(client, server, name, query, body + pos, len - pos);
}

/*
 * A Bind whose statement name becomes sname: its header with the length of
 * the whole rewritten message, and as much of the rest as is here (avail of
 * the len bytes of the body; the caller streams the others).
 */
static int
put_bind(HdIoBuf *out, const char *body, size_t portal_end, const char *sname, size_t pos,
		 size_t avail, uint32_t len)
{
	char		header[5];
	size_t		slen = strlen(sname) + 1;

	header[0] = 'B';
	hd_put_u32(header + 1, (uint32_t) (4 + portal_end + slen + (len - pos)));
	if (hd_iobuf_append(out, header, sizeof(header)) < 0 ||
		hd_iobuf_append(out, body, portal_end) < 0 ||
		hd_iobuf_append(out, sname, slen) < 0 ||
		hd_iobuf_append(out, body + pos, avail - pos) < 0)
		return -1;
	return 0;
}

/*
 * Bind: the statement made sure of, its name rewritten to the server's. The
 * first avail bytes of its len-byte body are here (all of it, but for a
 * large Bind the agent streams: client.c).
 */
static HdForward
forward_bind(HdClient *client, HdServer *server, const char *body, size_t avail, uint32_t len)
{
	size_t		pos = 0;
	const char *portal = hd_take_string(body, avail, &pos);
	size_t		portal_end = pos;
	const char *name = portal ? hd_take_string(body, avail, &pos) : NULL;
	uint32_t	id;
	HdStatement *stmt;
	HdForward	rc;
	char		sname[24];

	if (name == NULL)
		return avail < len ? HD_FWD_WAIT : HD_FWD_MALFORMED;
	if (name[0] == '\0')
	{
		rc = ensure_unnamed(client, server);
		if (rc != HD_FWD_DONE)
			return rc;
		client->bound_dealloc_id = unnamed_known(client) ? client->unnamed->dealloc_id : 0;
		if (hd_iobuf_append(&server->out, body - 5, avail + 5) < 0 ||
			hd_prepare_expect(server, HD_EXPECT_BIND, HD_REPLY_FORWARD, 0,
							  client->unnamed ? client->unnamed->gen : 0) < 0)
			return HD_FWD_NOMEM;
		return HD_FWD_DONE;
	}
	client->bound_dealloc_id = 0;
	id = hd_client_stmt_find(&client->stmts, name);
	stmt = id ? hd_registry_get(&hd_pg_pool(client->pool)->registry, id) : NULL;
	if (stmt == NULL)
	{
		/* unknown to the client: the server says 26000 */
		if (hd_iobuf_append(&server->out, body - 5, avail + 5) < 0 ||
			hd_prepare_expect(server, HD_EXPECT_BIND, HD_REPLY_FORWARD, 0, 0) < 0)
			return HD_FWD_NOMEM;
		return HD_FWD_DONE;
	}
	rc = ensure_named(client, server, stmt);
	if (rc != HD_FWD_DONE)
		return rc;
	server_name(sname, sizeof(sname), id);
	if (put_bind(&server->out, body, portal_end, sname, pos, avail, len) < 0 ||
		hd_prepare_expect(server, HD_EXPECT_BIND, HD_REPLY_FORWARD, id, 0) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_DONE;
}

HdForward
hd_prepare_bind_start(HdClient *client, HdServer *server, const char *body, size_t avail,
					  uint32_t len)
{
	return forward_bind(client, server, body, avail, len);
}

/*
 * A Parse of "" too large to keep (client.c streams it): sent as it comes;
 * the client's unnamed statement cannot be re-created elsewhere (26000 if a
 * later batch binds it on another connection).
 */
HdForward
hd_prepare_parse_start(HdClient *client, HdServer *server, const char *body, size_t avail)
{
	HdUnnamed  *u = unnamed_of(client);
	size_t		pos = 0;
	const char *name = hd_take_string(body, avail, &pos);

	if (u == NULL)
		return HD_FWD_NOMEM;
	if (name == NULL || name[0] != '\0')
		return HD_FWD_MALFORMED;	/* the caller refuses a large named Parse */
	hd_unnamed_clear(u);		/* (no text: it is not kept) */
	u->gen++;
	u->state = HD_UNNAMED_KNOWN;
	if (hd_iobuf_append(&server->out, body - 5, avail + 5) < 0)
		return HD_FWD_NOMEM;
	return unnamed_parse_sent(client, server);
}

/* Describe or Close: 'S' + statement name, or 'P' + portal name. */
static HdForward
forward_describe_close(HdClient *client, HdServer *server, char type, const char *body,
					   uint32_t len)
{
	size_t		pos = 1;
	const char *name = len >= 1 ? hd_take_string(body, len, &pos) : NULL;
	HdExpectKind kind;
	uint32_t	id = 0;
	uint32_t	gen = 0;
	HdStatement *stmt = NULL;
	HdForward	rc;
	char		sname[24];

	if (name == NULL || pos != len)
		return HD_FWD_MALFORMED;
	if (type == 'C')
		kind = HD_EXPECT_CLOSE;
	else
		kind = body[0] == 'S' ? HD_EXPECT_DESCRIBE_STMT : HD_EXPECT_DESCRIBE_PORTAL;
	/* a portal, or another subtype (the origin reports it as PostgreSQL does) */
	if (body[0] != 'S')
		goto as_is;
	if (type == 'C' && name[0] == '\0')
	{
		/* Close of "": gone for the client, and on the server whoever's it was */
		if (client->unnamed)
			hd_unnamed_clear(client->unnamed);
		server->unnamed_client = 0;
		goto as_is;
	}
	if (type == 'C')
	{
		/* other clients may use the server's copy: only forget the name */
		hd_client_stmt_remove(&client->stmts, name);
		return hd_prepare_expect(server, kind, HD_REPLY_SYNTHESIZE, 0, 0) < 0 ?
			HD_FWD_NOMEM : HD_FWD_DONE;
	}
	if (name[0] == '\0')
	{
		rc = ensure_unnamed(client, server);
		if (rc != HD_FWD_DONE)
			return rc;
		gen = client->unnamed ? client->unnamed->gen : 0;
		goto as_is;
	}
	id = hd_client_stmt_find(&client->stmts, name);
	stmt = id ? hd_registry_get(&hd_pg_pool(client->pool)->registry, id) : NULL;
	if (stmt == NULL)
	{
		id = 0;
		goto as_is;				/* the server reports it does not exist */
	}
	rc = ensure_named(client, server, stmt);
	if (rc != HD_FWD_DONE)
		return rc;
	server_name(sname, sizeof(sname), id);
	if (hd_send_describe_close(&server->out, 'D', 'S', sname) < 0 ||
		hd_prepare_expect(server, kind, HD_REPLY_FORWARD, id, 0) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_DONE;
as_is:
	if (hd_iobuf_append(&server->out, body - 5, (size_t) len + 5) < 0 ||
		hd_prepare_expect(server, kind, HD_REPLY_FORWARD, id, gen) < 0)
		return HD_FWD_NOMEM;
	return HD_FWD_DONE;
}

HdForward
hd_prepare_forward(HdClient *client, HdServer *server, char type, const char *body,
				   uint32_t len)
{
	switch (type)
	{
		case 'P':
			return forward_parse(client, server, body, len);
		case 'B':
			return forward_bind(client, server, body, len, len);
		default:
			return forward_describe_close(client, server, type, body, len);
	}
}

int
hd_prepare_execute(HdClient *client, HdServer *server)
{
	/* a rewritten DEALLOCATE: its tag says the server dropped that statement */
	return hd_prepare_expect(server, HD_EXPECT_EXECUTE, HD_REPLY_FORWARD,
							 client->bound_dealloc_id, 0);
}

/* ---------------------------------------------------------------------------
 * DEALLOCATE
 */

/* Names of the agent's statements on the origin: a client must not drop those. */
static bool
looks_like_server_name(const char *name)
{
	if (strcmp(name, HD_STATE_STATEMENT) == 0)
		return true;
	if (strncmp(name, "hd_", 3) != 0 || name[3] == '\0')
		return false;
	for (const char *p = name + 3; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

void
hd_prepare_forget_all(HdClient *client)
{
	hd_client_stmts_free(&client->stmts);
}

/*
 * The client's statement that a DEALLOCATE of name drops, made sure of on
 * the server, its name forgotten by the client; 0 when the client has no
 * such name (the DEALLOCATE goes as it is, and the origin says 26000).
 */
static int
deallocate_target(HdClient *client, HdServer *server, const char *name, uint32_t *id)
{
	HdStatement *stmt;

	*id = 0;
	if (name == NULL)
	{
		hd_prepare_forget_all(client);
		return 0;
	}
	*id = hd_client_stmt_find(&client->stmts, name);
	stmt = *id ? hd_registry_get(&hd_pg_pool(client->pool)->registry, *id) : NULL;
	if (stmt == NULL)
	{
		/* goes as it is; a name of the agent's own would drop another's statement */
		*id = 0;
		if (looks_like_server_name(name))
			hd_client_pin(client, "DEALLOCATE of a name the agent uses on the origin");
		return 0;
	}
	hd_client_stmt_remove(&client->stmts, name);
	return ensure_named_plain(server, stmt);
}

HdForward
hd_prepare_query_deallocate(HdClient *client, HdServer *server, const char *msg, uint32_t len,
							const char *name)
{
	uint32_t	id;
	char		sql[48];
	HdMsg		m;

	if (deallocate_target(client, server, name, &id) < 0)
		return HD_FWD_NOMEM;
	hd_prepare_query_sent(client, server);
	if (id == 0)
	{
		if (hd_iobuf_append(&server->out, msg, (size_t) len + 1) < 0)
			return HD_FWD_NOMEM;
	}
	else
	{
		snprintf(sql, sizeof(sql), "DEALLOCATE hd_%u", id);
		hd_msg_begin(&m, &server->out, 'Q');
		hd_msg_put_str(&m, sql);
		if (hd_msg_end(&m) < 0)
			return HD_FWD_NOMEM;
	}
	return hd_prepare_expect(server, HD_EXPECT_QUERY, HD_REPLY_FORWARD, id, 0) < 0 ?
		HD_FWD_NOMEM : HD_FWD_DONE;
}

HdForward
hd_prepare_parse_deallocate(HdClient *client, HdServer *server, const char *body, uint32_t len,
							const char *name)
{
	size_t		pos = 0;
	const char *sname = hd_take_string(body, len, &pos);
	const char *query = sname ? hd_take_string(body, len, &pos) : NULL;
	uint32_t	id;
	char		sql[48];

	if (query == NULL || len - pos < 2 || sname[0] != '\0')
		return HD_FWD_MALFORMED;
	if (deallocate_target(client, server, name, &id) < 0)
		return HD_FWD_NOMEM;
	if (id != 0)
	{
		snprintf(sql, sizeof(sql), "DEALLOCATE hd_%u", id);
		query = sql;
	}
	return forward_parse_unnamed(client, server, query, body + pos, len - pos, id);
}

/* ---------------------------------------------------------------------------
 * Replies
 */

/* Retire every statement of the config's pools: the schema changed. */
void
hd_prepare_schema_changed(HdAgent *agent, const char *config_id)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, &agent->pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);
		HdPgPool   *pg = hd_pg_pool_of(pool);

		if (pg && strcmp(pool->config.id, config_id) == 0)
			hd_registry_retire_all(&pg->registry);
	}
}

/* The statement is not what its holders described any more. */
static void
statement_changed(HdPool *pool, HdStatement *stmt, const char *why)
{
	if (!stmt->changed)
		hd_info("config %s: prepared statement hd_%u changed on the origin (%s); its uses "
				"fail with 0A000 until the client prepares it again",
				pool->config.name, stmt->id, why);
	stmt->changed = true;
	hd_prepare_schema_changed(hd_pg_pool(pool)->agent, pool->config.id);
}

void
hd_prepare_changed(HdServer *server, HdStatement *stmt, const char *why)
{
	statement_changed(server->pool, stmt, why);
}

typedef enum ShapeMatch
{
	SHAPE_NEW,					/* the first description: kept */
	SHAPE_SAME,
	SHAPE_OTHER					/* another one: the caller decides (and frees it) */
} ShapeMatch;

/* Compare a statement's description with the one it has; takes shape unless SHAPE_OTHER. */
static ShapeMatch
match_shape(char **have, size_t *have_len, char *shape, size_t len)
{
	if (*have == NULL)
	{
		*have = shape;			/* what its holders expect from now on */
		*have_len = len;
		return SHAPE_NEW;
	}
	if (*have_len == len && memcmp(*have, shape, len) == 0)
	{
		free(shape);
		return SHAPE_SAME;
	}
	return SHAPE_OTHER;
}

/*
 * The client's own Parse of a known text was described otherwise than that
 * text was before: it means something else now. The client gets a new
 * registry entry for it, with that description; the old one is changed
 * for its other holders. Takes shape. Returns the new entry, or NULL (out
 * of memory: the client is closed, it cannot be kept right).
 */
static HdStatement *
fresh_entry(HdClient *client, HdStatement *old, char *shape, size_t len)
{
	HdStatement *fresh;

	statement_changed(client->pool, old, "a client prepared its text again");
	fresh = hd_registry_intern(&hd_pg_pool(client->pool)->registry, old->query, old->types, old->types_len,
							   old->context);
	if (fresh == NULL)
	{
		free(shape);
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
		return NULL;
	}
	hd_client_stmt_rename_id(&client->stmts, old->id, fresh->id);
	free(fresh->shape);
	fresh->shape = shape;
	fresh->shape_len = len;
	hd_debug("client %s: its statement is hd_%u now", client->addr, fresh->id);
	return fresh;
}

/*
 * A description of stmt (the client's unnamed statement u when NULL) was
 * shown: kept if it had none; another than it had means the statement
 * changed for its holders, or, for a client's own fresh Parse of it, a new
 * entry for that client, which is returned. Takes shape.
 */
static HdStatement *
description_shown(HdPool *pool, HdClient *client, HdStatement *stmt, HdUnnamed *u, char *shape,
				  size_t len, bool fresh)
{
	if (shape == NULL || (stmt == NULL && u == NULL))
	{
		free(shape);
		return NULL;
	}
	if (match_shape(stmt ? &stmt->shape : &u->shape, stmt ? &stmt->shape_len : &u->shape_len,
					shape, len) != SHAPE_OTHER)
		return NULL;
	if (stmt && fresh && client)
		return fresh_entry(client, stmt, shape, len);
	free(shape);
	if (stmt)
		statement_changed(pool, stmt, "its result or parameter types differ");
	else
		u->changed = true;
	return NULL;
}

void
hd_prepare_note_described(HdClient *client, const char *name, bool fresh, const char *params,
						  size_t params_len, const char *row, size_t row_len)
{
	size_t		len = 0;
	char	   *shape = hd_shape_build(params, params_len, row, row_len, &len);
	uint32_t	id = name[0] ? hd_client_stmt_find(&client->stmts, name) : 0;

	(void) description_shown(client->pool, client,
							 id ? hd_registry_get(&hd_pg_pool(client->pool)->registry, id) : NULL,
							 name[0] == '\0' && unnamed_known(client) ? client->unnamed : NULL,
							 shape, len, fresh);
}

void
hd_prepare_note_replies(HdClient *client, const char *name, bool fresh, const char *replies,
						size_t len)
{
	const char *params = NULL;
	size_t		params_len = 0;
	size_t		pos = 0;

	while (pos + 5 <= len)
	{
		char		type = replies[pos];
		size_t		mlen = (size_t) hd_get_u32(replies + pos + 1) + 1;

		if (mlen < 5 || pos + mlen > len)
			return;
		if (type == 't')
		{
			params = replies + pos + 5;
			params_len = mlen - 5;
		}
		else if ((type == 'T' || type == 'n') && params)
		{
			hd_prepare_note_described(client, name, fresh, params, params_len,
									  type == 'T' ? replies + pos + 5 : NULL,
									  type == 'T' ? mlen - 5 : 0);
			return;
		}
		pos += mlen;
	}
}

/*
 * The check a client waits for is over. It goes on once the reply has been
 * handled (server.c): not from here, where its next messages would be
 * queued while the reply's own entry is still being worked on.
 */
static void
verify_done(HdServer *server)
{
	server->verify_resume = true;
}

/* A Describe S answered: remember, or compare, the statement's shape. */
static void
described(HdServer *server, const HdExpect *head, const char *row, size_t row_len)
{
	HdClient   *client = server->client;
	size_t		len = 0;
	char	   *shape = hd_shape_build(hd_iobuf_head(&server->described_params),
									   hd_iobuf_live(&server->described_params), row, row_len,
									   &len);
	HdStatement *fresh;

	hd_iobuf_free(&server->described_params);
	if (head->action != HD_REPLY_FORWARD)
		verify_done(server);
	fresh = description_shown(server->pool, client,
							  head->stmt_id ? hd_registry_get(&hd_pg_pool(server->pool)->registry,
															  head->stmt_id) : NULL,
							  head->stmt_id == 0 && client && client->unnamed &&
							  client->unnamed->gen == head->gen ? client->unnamed : NULL,
							  shape, len, head->action == HD_REPLY_VERIFY_FRESH);
	/* the client's own Parse found another shape here: its new entry, prepared at once */
	if (fresh && ensure_named_plain(server, fresh) < 0)
		hd_client_fatal(client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
}

/* The origin's own "cached plan must not change result type". */
static bool
revalidation_failed(const char *body, size_t len)
{
	const char *code = hd_error_field(body, len, 'C');
	const char *routine = hd_error_field(body, len, 'R');

	return code && strcmp(code, HD_SQLSTATE_FEATURE_NOT_SUPPORTED) == 0 && routine &&
		strcmp(routine, "RevalidateCachedQuery") == 0;
}

/* What PostgreSQL says of a prepared statement whose result type changed. */
int
hd_prepare_send_changed_error(HdIoBuf *out)
{
	HdMsg		m;

	hd_msg_begin(&m, out, 'E');
	hd_msg_put_str(&m, "SERROR");
	hd_msg_put_str(&m, "VERROR");
	hd_msg_put_str(&m, "C0A000");
	hd_msg_put_str(&m, "Mcached plan must not change result type");
	hd_msg_put_str(&m, "Fplancache.c");
	hd_msg_put_str(&m, "RRevalidateCachedQuery");
	hd_msg_put_byte(&m, 0);
	return hd_msg_end(&m);
}

static int
send_refusal(HdIoBuf *out, uint32_t why)
{
	if (why == HD_REFUSE_CHANGED)
		return hd_prepare_send_changed_error(out);
	return hd_send_error(out, "ERROR", HD_SQLSTATE_PROGRAM_LIMIT_EXCEEDED,
						 "prepared statement is too large for the agent to keep",
						 "A named statement's text is kept to prepare it on each origin "
						 "connection a client uses; the limit is 1 MB.",
						 "Send it as the unnamed statement.");
}

bool
hd_prepare_reply(HdServer *server, const HdExpect *head, char type, const char *msg,
				 size_t total)
{
	if (head == NULL)
		return true;
	if (type == 'E')
	{
		if (head->action == HD_REPLY_REFUSE)
		{
			if (server->client && send_refusal(&server->client->out, head->stmt_id) < 0)
				hd_client_fatal(server->client, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
			return false;
		}
		if (revalidation_failed(msg + 5, total - 5))
		{
			HdStatement *stmt = hd_registry_get(&hd_pg_pool(server->pool)->registry, head->stmt_id);

			if (stmt)
				hd_prepare_changed(server, stmt, "the origin says its result type changed");
			else
			{
				if (server->client && server->client->unnamed &&
					server->client->unnamed->gen == head->gen)
					server->client->unnamed->changed = true;
				/* (hd_prepare_changed retires them itself) */
				hd_prepare_schema_changed(server->agent, server->pool->config.id);
			}
		}
		return true;
	}
	if (head->kind != HD_EXPECT_DESCRIBE_STMT)
		return true;
	if (type == 't')
	{
		hd_iobuf_free(&server->described_params);
		if (hd_iobuf_append(&server->described_params, msg + 5, total - 5) < 0)
			hd_iobuf_free(&server->described_params);
	}
	else if (type == 'T' || type == 'n')
		described(server, head, type == 'T' ? msg + 5 : NULL, type == 'T' ? total - 5 : 0);
	return head->action == HD_REPLY_FORWARD;
}

void
hd_prepare_skipped(HdServer *server, const HdExpect *entry, bool failed)
{
	HdClient   *client = server->client;

	switch (entry->action)
	{
		case HD_REPLY_VERIFY_REPARSE:
		case HD_REPLY_VERIFY_FRESH:
			verify_done(server);
			return;
		default:
			break;
	}
	if (entry->kind != HD_EXPECT_PARSE)
		return;
	if (entry->stmt_id != 0)
	{
		/* not on the server: it failed, or the origin skipped it */
		hd_server_stmt_remove(&server->stmts, entry->stmt_id);
		return;
	}
	/*
	 * The unnamed statement: a Parse that failed left the origin with none
	 * (PostgreSQL drops the old one first); one it skipped left whatever it
	 * had, which the agent can no longer tell.
	 */
	server->unnamed_client = 0;
	if (client && client->unnamed && client->unnamed->gen == entry->gen)
		client->unnamed->state = failed ? HD_UNNAMED_NONE : HD_UNNAMED_UNKNOWN;
}

/* Command tags of statements that change what names and columns mean. */
static bool
is_ddl_tag(const char *tag)
{
	return strncmp(tag, "CREATE ", 7) == 0 || strncmp(tag, "ALTER ", 6) == 0 ||
		strncmp(tag, "DROP ", 5) == 0 || strcmp(tag, "IMPORT FOREIGN SCHEMA") == 0;
}

void
hd_prepare_note_tag(HdServer *server, const HdExpect *head, const char *tag)
{
	if (strcmp(tag, "DEALLOCATE ALL") == 0 || strcmp(tag, "DISCARD ALL") == 0)
	{
		hd_server_stmts_clear(&server->stmts);
		server->state_prepared = false;	/* hd_state too (state_check.c) */
	}
	else if (strcmp(tag, "DEALLOCATE") == 0 && head &&
			 (head->kind == HD_EXPECT_QUERY || head->kind == HD_EXPECT_EXECUTE) &&
			 head->stmt_id != 0)
		hd_server_stmt_remove(&server->stmts, head->stmt_id);
	else if (is_ddl_tag(tag))
	{
		/* now, and again once the transaction ends (others may prepare meanwhile) */
		hd_prepare_schema_changed(server->agent, server->pool->config.id);
		server->ddl_in_txn = true;
	}
}

void
hd_prepare_note_ready(HdServer *server, char status)
{
	if (server->ddl_in_txn && status == 'I')
	{
		server->ddl_in_txn = false;
		hd_prepare_schema_changed(server->agent, server->pool->config.id);
	}
}
