/*
 * my_stmt.c
 *    Prepared statements across origin connections (COM_STMT_*).
 *
 * A client's statement ids are the agent's: it may execute a statement on
 * any origin connection its pool hands it. Each statement's definition (its
 * text, the database and the carried settings it was prepared under, which
 * can change how the text parses: sql_mode's ANSI_QUOTES, say) is shared by
 * the pool's clients; each origin connection prepares a definition the
 * first time one of its holders executes it (my_client.c), and keeps at most
 * HD_MY_SERVER_STMTS_MAX, closing the least recently used, so that the
 * server's max_prepared_stmt_count (global) is never reached by the agent.
 * A client's COM_STMT_CLOSE is answered here: the definition goes when its
 * last client statement and server copy do.
 */
#include "mywire/my_int.h"

#include <stdlib.h>
#include <string.h>

/* The definition key: text, database, then each carried setting. */
static char *
def_key(const char *sql, size_t len, const HdMyClient *client, size_t *key_len)
{
	size_t		n = len + 1 + strlen(client->db) + 1;
	char	   *key;
	char	   *p;

	for (int i = 0; i < client->nsets; i++)
		n += strlen(client->sets[i].name) + 1 + strlen(client->sets[i].value) + 1;
	if ((key = malloc(n)) == NULL)
		return NULL;
	p = key;
	memcpy(p, sql, len);
	p += len;
	*p++ = '\0';
	p = stpcpy(p, client->db) + 1;
	for (int i = 0; i < client->nsets; i++)
	{
		p = stpcpy(p, client->sets[i].name) + 1;
		p = stpcpy(p, client->sets[i].value) + 1;
	}
	*key_len = n;
	return key;
}

HdMyStmtDef *
hd_my_stmt_def(HdMyPool *pool, const char *sql, size_t len, const HdMyClient *client)
{
	size_t		key_len;
	char	   *key = def_key(sql, len, client, &key_len);
	HdList	   *item;
	HdList	   *tmp;
	HdMyStmtDef *def;

	if (key == NULL)
		return NULL;
	hd_list_foreach_safe(item, tmp, &pool->stmt_defs)
	{
		def = hd_container_of(item, HdMyStmtDef, link);
		if (def->key_len == key_len && memcmp(def->key, key, key_len) == 0)
		{
			free(key);
			def->refs++;
			return def;
		}
	}
	if ((def = calloc(1, sizeof(*def))) == NULL)
	{
		free(key);
		return NULL;
	}
	def->key = key;
	def->key_len = key_len;
	def->sql = key;
	def->sql_len = len;
	def->refs = 1;
	hd_list_append(&pool->stmt_defs, &def->link);
	return def;
}

void
hd_my_stmt_def_unref(HdMyStmtDef *def)
{
	if (def == NULL || --def->refs > 0)
		return;
	hd_list_del(&def->link);
	free(def->key);
	free(def);
}

HdMyClientStmt *
hd_my_client_stmt_add(HdMyClient *client, HdMyStmtDef *def)
{
	HdMyClientStmt *stmt;

	if (client->nstmts >= HD_MY_CLIENT_STMTS_MAX)
		return NULL;
	if (client->nstmts == client->cap_stmts)
	{
		int			cap = client->cap_stmts ? client->cap_stmts * 2 : 8;
		HdMyClientStmt *grown = realloc(client->stmts, sizeof(*grown) * (size_t) cap);

		if (grown == NULL)
			return NULL;
		client->stmts = grown;
		client->cap_stmts = cap;
	}
	stmt = &client->stmts[client->nstmts++];
	memset(stmt, 0, sizeof(*stmt));
	/* ids start at 1 and are never reused within the session */
	stmt->id = ++client->next_stmt_id;
	stmt->def = def;
	return stmt;
}

HdMyClientStmt *
hd_my_client_stmt_find(HdMyClient *client, uint32_t id)
{
	for (int i = 0; i < client->nstmts; i++)
		if (client->stmts[i].id == id)
			return &client->stmts[i];
	return NULL;
}

void
hd_my_client_stmt_close(HdMyClient *client, uint32_t id)
{
	for (int i = 0; i < client->nstmts; i++)
	{
		if (client->stmts[i].id != id)
			continue;
		hd_my_stmt_def_unref(client->stmts[i].def);
		free(client->stmts[i].types);
		client->stmts[i] = client->stmts[--client->nstmts];
		return;
	}
}

void
hd_my_client_stmts_free(HdMyClient *client)
{
	for (int i = 0; i < client->nstmts; i++)
	{
		hd_my_stmt_def_unref(client->stmts[i].def);
		free(client->stmts[i].types);
	}
	free(client->stmts);
	client->stmts = NULL;
	client->nstmts = client->cap_stmts = 0;
}

HdMyServerStmt *
hd_my_server_stmt_find(HdMyServer *server, const HdMyStmtDef *def)
{
	for (int i = 0; i < server->nstmts; i++)
		if (server->stmts[i].def == def)
		{
			server->stmts[i].last_used = ++server->stmt_clock;
			return &server->stmts[i];
		}
	return NULL;
}

int
hd_my_server_stmt_add(HdMyServer *server, HdMyStmtDef *def, uint32_t id)
{
	HdMyServerStmt *stmt;

	if (server->stmts == NULL &&
		(server->stmts = calloc(HD_MY_SERVER_STMTS_MAX, sizeof(*server->stmts))) == NULL)
		return -1;
	if (server->nstmts == HD_MY_SERVER_STMTS_MAX)
		return -1;				/* hd_my_server_stmts_make_room() came first */
	stmt = &server->stmts[server->nstmts++];
	stmt->def = def;
	stmt->id = id;
	stmt->types = NULL;
	stmt->last_used = ++server->stmt_clock;
	def->refs++;
	return 0;
}

int
hd_my_server_stmts_make_room(HdMyServer *server)
{
	while (server->nstmts >= HD_MY_SERVER_STMTS_MAX)
	{
		int			oldest = 0;
		unsigned char id[4];

		for (int i = 1; i < server->nstmts; i++)
			if (server->stmts[i].last_used < server->stmts[oldest].last_used)
				oldest = i;
		/* COM_STMT_CLOSE has no reply */
		hd_my_put_u32(id, server->stmts[oldest].id);
		if (hd_my_server_command(server, HD_MY_COM_STMT_CLOSE, id, sizeof(id)) != 0)
			return -1;
		hd_my_stmt_def_unref(server->stmts[oldest].def);
		free(server->stmts[oldest].types);
		server->stmts[oldest] = server->stmts[--server->nstmts];
	}
	return 0;
}

/* The origin dropped them (a reset) or the connection is gone. */
void
hd_my_server_stmts_forget(HdMyServer *server)
{
	for (int i = 0; i < server->nstmts; i++)
	{
		hd_my_stmt_def_unref(server->stmts[i].def);
		free(server->stmts[i].types);
	}
	server->nstmts = 0;
}
