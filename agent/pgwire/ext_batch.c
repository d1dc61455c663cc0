/*
 * ext_batch.c
 *    One cacheable extended-protocol statement at the head of a client's
 *    input (ext_batch.h).
 */
#include "pgwire/ext_batch.h"

#include <string.h>

#include "base/iobuf.h"

/* Where the next message may be in the accepted shape. */
typedef enum
{
	AT_START,					/* Parse, Describe S or Bind */
	AT_PARSED,					/* Describe S or Bind */
	AT_DESCRIBED,				/* Bind */
	AT_BOUND,					/* Describe P or Execute */
	AT_PORTAL_DESCRIBED,		/* Execute */
	AT_EXECUTED					/* Sync */
} Position;

static bool
parse_parse(const char *body, size_t len, HdExtBatch *b)
{
	size_t		pos = 0;
	const char *name = hd_take_string(body, len, &pos);
	const char *query = name ? hd_take_string(body, len, &pos) : NULL;
	uint16_t	ntypes;

	if (query == NULL || len - pos < 2)
		return false;
	ntypes = hd_get_u16(body + pos);
	if (len - pos != 2 + (size_t) ntypes * 4)
		return false;
	b->has_parse = true;
	b->parse_name = name;
	b->query = query;
	b->types = body + pos;
	b->types_len = len - pos;
	return true;
}

/* Bind: portal, statement, then formats, values and result formats, all checked. */
static bool
parse_bind(const char *body, size_t len, HdExtBatch *b, const char **why)
{
	size_t		pos = 0;
	const char *portal = hd_take_string(body, len, &pos);
	const char *stmt = portal ? hd_take_string(body, len, &pos) : NULL;
	size_t		tail;
	uint16_t	n;

	*why = "malformed Bind";
	if (stmt == NULL)
		return false;
	if (portal[0] != '\0')
	{
		*why = "named portal";
		return false;
	}
	tail = pos;
	if (len - pos < 2)
		return false;
	n = hd_get_u16(body + pos);
	pos += 2;
	if (len - pos < (size_t) n * 2 + 2)
		return false;
	pos += (size_t) n * 2;
	b->nparams = hd_get_u16(body + pos);
	pos += 2;
	for (uint16_t i = 0; i < b->nparams; i++)
	{
		uint32_t	vlen;

		if (len - pos < 4)
			return false;
		vlen = hd_get_u32(body + pos);
		pos += 4;
		if (vlen == UINT32_MAX)
			continue;			/* NULL */
		if (len - pos < vlen)
			return false;
		pos += vlen;
	}
	if (len - pos < 2)
		return false;
	n = hd_get_u16(body + pos);
	pos += 2;
	if (len - pos != (size_t) n * 2)
		return false;
	b->stmt_name = stmt;
	b->bind_tail = body + tail;
	b->bind_tail_len = len - tail;
	return true;
}

/* Describe: 'S' or 'P' and a name; only the batch's statement and the unnamed portal. */
static bool
parse_describe(const char *body, size_t len, char kind, const char **name)
{
	size_t		pos = 1;

	if (len < 2 || body[0] != kind)
		return false;
	*name = hd_take_string(body, len, &pos);
	return *name != NULL && pos == len;
}

static bool
parse_execute(const char *body, size_t len, const char **why)
{
	size_t		pos = 0;
	const char *portal = hd_take_string(body, len, &pos);

	*why = "malformed Execute";
	if (portal == NULL || len - pos != 4)
		return false;
	if (portal[0] != '\0')
	{
		*why = "named portal";
		return false;
	}
	if (hd_get_u32(body + pos) != 0)
	{
		*why = "row limit";
		return false;
	}
	return true;
}

/* After a refusal: is there an Execute before the next Sync (among the complete messages)? */
static bool
execute_follows(const char *buf, size_t avail, size_t pos)
{
	while (avail - pos >= 5)
	{
		uint32_t	len = hd_get_u32(buf + pos + 1);

		if (buf[pos] == 'E')
			return true;
		if (buf[pos] == 'S' || len < 4 || avail - pos - 1 < len)
			return false;
		pos += (size_t) len + 1;
	}
	return false;
}

/* One message at its place in the shape; false with why when it does not fit. */
static bool
take_message(char type, const char *body, size_t len, Position *at, HdExtBatch *b,
			 const char **why)
{
	const char *name;

	switch (type)
	{
		case 'P':
			*why = *at == AT_START ? "malformed Parse" : "several statements";
			if (*at != AT_START || !parse_parse(body, len, b))
				return false;
			*at = AT_PARSED;
			return true;
		case 'D':
			if ((*at == AT_START || *at == AT_PARSED) && len >= 1 && body[0] == 'S')
			{
				*why = "malformed Describe";
				if (!parse_describe(body, len, 'S', &name))
					return false;
				*why = "Describe of another statement";
				if (b->has_parse && strcmp(name, b->parse_name) != 0)
					return false;
				b->describe_stmt = true;
				b->stmt_name = name;	/* the Bind must name it too */
				*at = AT_DESCRIBED;
				return true;
			}
			*why = "Describe out of place";
			if (*at != AT_BOUND || !parse_describe(body, len, 'P', &name) || name[0] != '\0')
				return false;
			b->describe_portal = true;
			*at = AT_PORTAL_DESCRIBED;
			return true;
		case 'B':
			{
				const char *expected = b->describe_stmt ? b->stmt_name :
					b->has_parse ? b->parse_name : NULL;

				*why = "several statements";
				if (*at != AT_START && *at != AT_PARSED && *at != AT_DESCRIBED)
					return false;
				if (!parse_bind(body, len, b, why))
					return false;
				*why = "Bind of another statement";
				if (expected && strcmp(expected, b->stmt_name) != 0)
					return false;
				*at = AT_BOUND;
				return true;
			}
		case 'E':
			*why = "Execute out of place";
			if (*at != AT_BOUND && *at != AT_PORTAL_DESCRIBED)
				return false;
			if (!parse_execute(body, len, why))
				return false;
			*at = AT_EXECUTED;
			return true;
		case 'S':
			*why = "no Execute";
			return *at == AT_EXECUTED && len == 0;
		case 'H':
			*why = "Flush";
			return false;
		default:
			*why = "other messages";
			return false;
	}
}

HdBatchResult
hd_ext_batch_parse(const char *buf, size_t avail, size_t max_len, HdExtBatch *b,
				   bool *has_execute, const char **why)
{
	Position	at = AT_START;
	size_t		pos = 0;
	size_t		nshape = 0;

	memset(b, 0, sizeof(*b));
	*has_execute = false;
	*why = NULL;
	for (;;)
	{
		char		type;
		uint32_t	len;

		if (pos > max_len)
		{
			*why = "too large";
			return HD_BATCH_NO;
		}
		if (avail - pos < 5)
			return HD_BATCH_MORE;
		type = buf[pos];
		len = hd_get_u32(buf + pos + 1);
		if (len < 4)
		{
			*why = "malformed message";
			return HD_BATCH_NO;
		}
		if ((size_t) len + 1 > max_len || avail - pos - 1 < len)
		{
			if ((size_t) len + 1 + pos > max_len)
			{
				*why = "too large";
				*has_execute = type == 'E';
				return HD_BATCH_NO;
			}
			return HD_BATCH_MORE;
		}
		if (!take_message(type, buf + pos + 5, len - 4, &at, b, why))
		{
			*has_execute = at == AT_EXECUTED || type == 'E' ||
				execute_follows(buf, avail, pos + (size_t) len + 1);
			return HD_BATCH_NO;
		}
		pos += (size_t) len + 1;
		if (type == 'S')
			break;
		if (type != 'D')
			b->shape[nshape++] = type;
		else
			b->shape[nshape++] = at == AT_DESCRIBED ? 'S' : 'D';
	}
	b->shape[nshape] = '\0';
	b->len = pos;
	*has_execute = true;
	return HD_BATCH_OK;
}
