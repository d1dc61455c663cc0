/*
 * stmt.c
 *    The data structures of stmt.h, and the rule that matches replies to
 *    the queue. The protocol handling that uses them is in prepare.c and
 *    server.c.
 */
#include "pgwire/stmt.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * The reply queue: a growable ring
 */

int
hd_expect_push(HdExpectQueue *q, HdExpectKind kind, HdExpectAction action, uint32_t stmt_id,
			   uint32_t gen)
{
	if (q->count == q->cap)
	{
		size_t		newcap = q->cap ? q->cap * 2 : 16;
		HdExpect   *items = malloc(newcap * sizeof(HdExpect));

		if (items == NULL)
			return -1;
		for (size_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->head = 0;
		q->cap = newcap;
	}
	q->items[(q->head + q->count) % q->cap] = (HdExpect) {
		(uint8_t) kind, (uint8_t) action, stmt_id, gen
	};
	q->count++;
	return 0;
}

HdExpect *
hd_expect_head(HdExpectQueue *q)
{
	return q->count ? &q->items[q->head] : NULL;
}

void
hd_expect_pop(HdExpectQueue *q)
{
	if (q->count == 0)
		return;
	q->head = (q->head + 1) % q->cap;
	q->count--;
}

void
hd_expect_clear(HdExpectQueue *q)
{
	q->head = q->count = 0;
	q->error_until_sync = false;
}

void
hd_expect_free(HdExpectQueue *q)
{
	free(q->items);
	*q = (HdExpectQueue) {0};
}

/* Whether reply type ends what an entry of kind owes. */
static bool
ends_expectation(char type, HdExpectKind kind)
{
	switch (kind)
	{
		case HD_EXPECT_PARSE:
			return type == '1';
		case HD_EXPECT_BIND:
			return type == '2';
		case HD_EXPECT_CLOSE:
			return type == '3';
		case HD_EXPECT_DESCRIBE_STMT:
		case HD_EXPECT_DESCRIBE_PORTAL:
			return type == 'T' || type == 'n';
		case HD_EXPECT_EXECUTE:
			return type == 'C' || type == 'I' || type == 's';
		case HD_EXPECT_SYNC:
		case HD_EXPECT_QUERY:
		case HD_EXPECT_STATE:
			return type == 'Z';
	}
	return false;
}

HdReplyMatch
hd_expect_match(const HdExpect *head, char type)
{
	if (type == 'N' || type == 'S' || type == 'A')
		return HD_MATCH_ASYNC;
	if (head == NULL)
		return HD_MATCH_UNOWED;
	if (type == 'E')
	{
		/* a Query, and the state check (one entry up to its Sync), go on to 'Z' */
		if (head->kind == HD_EXPECT_QUERY || head->kind == HD_EXPECT_STATE)
			return HD_MATCH_PART;
		return HD_MATCH_VOIDS;
	}
	return ends_expectation(type, (HdExpectKind) head->kind) ? HD_MATCH_ENDS : HD_MATCH_PART;
}

bool
hd_expect_pop_void(HdExpectQueue *q, HdExpect *entry)
{
	HdExpect   *head = hd_expect_head(q);

	if (head == NULL)
	{
		q->error_until_sync = true;
		return false;
	}
	if (head->kind == HD_EXPECT_SYNC)
		return false;
	*entry = *head;
	hd_expect_pop(q);
	return true;
}

/* ---------------------------------------------------------------------------
 * The registry
 */

static uint32_t
fnv1a(uint32_t hash, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++)
		hash = (hash ^ p[i]) * 16777619u;
	return hash;
}

static int
registry_grow(HdStatementRegistry *reg)
{
	size_t		nbuckets = reg->nbuckets ? reg->nbuckets * 2 : 64;
	HdStatement **buckets = calloc(nbuckets, sizeof(HdStatement *));

	if (buckets == NULL)
		return -1;
	for (size_t i = 0; i < reg->nbuckets; i++)
	{
		HdStatement *stmt = reg->buckets[i];

		while (stmt)
		{
			HdStatement *next = stmt->next;

			stmt->next = buckets[stmt->hash % nbuckets];
			buckets[stmt->hash % nbuckets] = stmt;
			stmt = next;
		}
	}
	free(reg->buckets);
	reg->buckets = buckets;
	reg->nbuckets = nbuckets;
	return 0;
}

static uint32_t
statement_hash(const char *query, const char *types, size_t types_len, const char *context)
{
	return fnv1a(fnv1a(fnv1a(2166136261u, query, strlen(query)), types, types_len),
				 context, strlen(context));
}

HdStatement *
hd_registry_find(const HdStatementRegistry *reg, const char *query, const char *types,
				 size_t types_len, const char *context)
{
	uint32_t	hash = statement_hash(query, types, types_len, context);

	if (reg->nbuckets == 0)
		return NULL;
	for (HdStatement *stmt = reg->buckets[hash % reg->nbuckets]; stmt; stmt = stmt->next)
		if (stmt->hash == hash && stmt->types_len == types_len &&
			memcmp(stmt->types, types, types_len) == 0 && strcmp(stmt->query, query) == 0 &&
			strcmp(stmt->context, context) == 0)
			return stmt;
	return NULL;
}

HdStatement *
hd_registry_intern(HdStatementRegistry *reg, const char *query, const char *types,
				   size_t types_len, const char *context)
{
	size_t		query_len = strlen(query);
	uint32_t	hash = statement_hash(query, types, types_len, context);
	HdStatement *stmt = hd_registry_find(reg, query, types, types_len, context);

	if (stmt)
		return stmt;
	if ((reg->count + 1 > reg->nbuckets && registry_grow(reg) < 0))
		return NULL;
	if (reg->count + 1 >= reg->by_id_cap)
	{
		size_t		cap = reg->by_id_cap ? reg->by_id_cap * 2 : 64;
		HdStatement **by_id = realloc(reg->by_id, cap * sizeof(HdStatement *));

		if (by_id == NULL)
			return NULL;
		reg->by_id = by_id;
		reg->by_id_cap = cap;
	}
	stmt = calloc(1, sizeof(HdStatement));
	if (stmt == NULL)
		return NULL;
	stmt->query = malloc(query_len + 1);
	stmt->types = malloc(types_len ? types_len : 1);
	stmt->context = strdup(context);
	if (stmt->query == NULL || stmt->types == NULL || stmt->context == NULL)
	{
		free(stmt->query);
		free(stmt->types);
		free(stmt->context);
		free(stmt);
		return NULL;
	}
	memcpy(stmt->query, query, query_len + 1);
	memcpy(stmt->types, types, types_len);
	stmt->types_len = types_len;
	stmt->hash = hash;
	stmt->id = (uint32_t) ++reg->count;
	reg->by_id[stmt->id] = stmt;
	stmt->next = reg->buckets[hash % reg->nbuckets];
	reg->buckets[hash % reg->nbuckets] = stmt;
	return stmt;
}

HdStatement *
hd_registry_get(HdStatementRegistry *reg, uint32_t id)
{
	return id > 0 && id <= reg->count ? reg->by_id[id] : NULL;
}

void
hd_registry_retire_all(HdStatementRegistry *reg)
{
	for (size_t id = 1; id <= reg->count; id++)
		reg->by_id[id]->next = NULL;
	if (reg->buckets)
		memset(reg->buckets, 0, reg->nbuckets * sizeof(HdStatement *));
}

void
hd_registry_free(HdStatementRegistry *reg)
{
	for (size_t id = 1; id <= reg->count; id++)
	{
		free(reg->by_id[id]->query);
		free(reg->by_id[id]->types);
		free(reg->by_id[id]->context);
		free(reg->by_id[id]->shape);
		free(reg->by_id[id]);
	}
	free(reg->by_id);
	free(reg->buckets);
	*reg = (HdStatementRegistry) {0};
}

/* ---------------------------------------------------------------------------
 * Shapes and the unnamed statement
 */

char *
hd_shape_build(const char *params, size_t params_len, const char *row, size_t row_len,
			   size_t *len)
{
	size_t		cap = params_len + 2 + row_len + 1;
	char	   *out;
	size_t		n = 0;

	if (params_len < 2 || params_len != 2 + 4 * (size_t) hd_get_u16(params))
		return NULL;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	memcpy(out, params, params_len);
	n = params_len;
	if (row == NULL)
	{
		out[n++] = 'n';			/* NoData */
		*len = n;
		return out;
	}
	out[n++] = 'T';
	if (row_len < 2)
		goto bad;
	{
		uint16_t	ncols = hd_get_u16(row);
		size_t		pos = 2;

		memcpy(out + n, row, 2);
		n += 2;
		for (uint16_t i = 0; i < ncols; i++)
		{
			const char *name = row + pos;
			const char *end = memchr(name, '\0', row_len - pos);
			size_t		name_len;

			if (end == NULL)
				goto bad;
			name_len = (size_t) (end - name) + 1;
			/* name, then table OID (4), column number (2): skipped, type OID (4),
			 * typlen (2), typmod (4): kept, format (2): skipped */
			if (pos + name_len + 18 > row_len)
				goto bad;
			memcpy(out + n, name, name_len);
			n += name_len;
			memcpy(out + n, row + pos + name_len + 6, 10);
			n += 10;
			pos += name_len + 18;
		}
		if (pos != row_len)
			goto bad;
	}
	*len = n;
	return out;
bad:
	free(out);
	return NULL;
}

void
hd_unnamed_clear(HdUnnamed *u)
{
	free(u->query);
	free(u->types);
	free(u->shape);
	*u = (HdUnnamed) {.gen = u->gen};
}

/* ---------------------------------------------------------------------------
 * A client's names
 */

static uint32_t
name_hash(const char *name)
{
	return fnv1a(2166136261u, name, strlen(name));
}

uint32_t
hd_client_stmt_find(const HdClientStmts *map, const char *name)
{
	if (map->nbuckets == 0)
		return 0;
	for (HdClientStmt *s = map->buckets[name_hash(name) % map->nbuckets]; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			return s->stmt_id;
	return 0;
}

static int
client_map_grow(HdClientStmts *map)
{
	size_t		nbuckets = map->nbuckets ? map->nbuckets * 2 : 16;
	HdClientStmt **buckets = calloc(nbuckets, sizeof(HdClientStmt *));

	if (buckets == NULL)
		return -1;
	for (size_t i = 0; i < map->nbuckets; i++)
	{
		HdClientStmt *s = map->buckets[i];

		while (s)
		{
			HdClientStmt *next = s->next;
			size_t		b = name_hash(s->name) % nbuckets;

			s->next = buckets[b];
			buckets[b] = s;
			s = next;
		}
	}
	free(map->buckets);
	map->buckets = buckets;
	map->nbuckets = nbuckets;
	return 0;
}

int
hd_client_stmt_set(HdClientStmts *map, const char *name, uint32_t stmt_id)
{
	HdClientStmt *s;
	size_t		b;

	if (map->nbuckets)
	{
		for (s = map->buckets[name_hash(name) % map->nbuckets]; s; s = s->next)
			if (strcmp(s->name, name) == 0)
			{
				s->stmt_id = stmt_id;
				return 0;
			}
	}
	if (map->count + 1 > map->nbuckets && client_map_grow(map) < 0)
		return -1;
	s = malloc(sizeof(HdClientStmt));
	if (s == NULL || (s->name = strdup(name)) == NULL)
	{
		free(s);
		return -1;
	}
	s->stmt_id = stmt_id;
	b = name_hash(name) % map->nbuckets;
	s->next = map->buckets[b];
	map->buckets[b] = s;
	map->count++;
	return 0;
}

void
hd_client_stmt_remove(HdClientStmts *map, const char *name)
{
	HdClientStmt **link;

	if (map->nbuckets == 0)
		return;
	for (link = &map->buckets[name_hash(name) % map->nbuckets]; *link; link = &(*link)->next)
	{
		if (strcmp((*link)->name, name) == 0)
		{
			HdClientStmt *dead = *link;

			*link = dead->next;
			free(dead->name);
			free(dead);
			map->count--;
			return;
		}
	}
}

void
hd_client_stmt_rename_id(HdClientStmts *map, uint32_t old_id, uint32_t new_id)
{
	for (size_t i = 0; i < map->nbuckets; i++)
		for (HdClientStmt *s = map->buckets[i]; s; s = s->next)
			if (s->stmt_id == old_id)
				s->stmt_id = new_id;
}

void
hd_client_stmts_free(HdClientStmts *map)
{
	for (size_t i = 0; i < map->nbuckets; i++)
	{
		HdClientStmt *s = map->buckets[i];

		while (s)
		{
			HdClientStmt *next = s->next;

			free(s->name);
			free(s);
			s = next;
		}
	}
	free(map->buckets);
	*map = (HdClientStmts) {0};
}

/* ---------------------------------------------------------------------------
 * A server's prepared set
 */

bool
hd_server_stmt_has(const HdServerStmts *set, uint32_t id)
{
	return id / 8 < set->nbytes && (set->bits[id / 8] & (1u << (id % 8)));
}

int
hd_server_stmt_add(HdServerStmts *set, uint32_t id)
{
	if (id / 8 >= set->nbytes)
	{
		size_t		nbytes = set->nbytes ? set->nbytes : 16;
		uint8_t    *bits;

		while (id / 8 >= nbytes)
			nbytes *= 2;
		bits = realloc(set->bits, nbytes);
		if (bits == NULL)
			return -1;
		memset(bits + set->nbytes, 0, nbytes - set->nbytes);
		set->bits = bits;
		set->nbytes = nbytes;
	}
	set->bits[id / 8] |= (uint8_t) (1u << (id % 8));
	return 0;
}

void
hd_server_stmt_remove(HdServerStmts *set, uint32_t id)
{
	if (id / 8 < set->nbytes)
		set->bits[id / 8] &= (uint8_t) ~(1u << (id % 8));
}

void
hd_server_stmts_clear(HdServerStmts *set)
{
	if (set->bits)
		memset(set->bits, 0, set->nbytes);
}

void
hd_server_stmts_free(HdServerStmts *set)
{
	free(set->bits);
	*set = (HdServerStmts) {0};
}
