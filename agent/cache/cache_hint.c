/*
 * cache_hint.c
 *    Per-statement cache hints in SQL comments (cache_hint.h).
 */
#include "cache/cache_hint.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Merge one comment's hint into the result: when in doubt, do not cache. */
static void
merge(HdHint *into, const HdHint *h)
{
	if (h->kind == HD_HINT_NONE || into->kind == HD_HINT_INVALID)
		return;
	if (h->kind == HD_HINT_INVALID || h->kind == HD_HINT_NO_CACHE || into->kind == HD_HINT_NONE)
		*into = *h;
	else if (into->kind == HD_HINT_MAX_AGE && h->max_age_s < into->max_age_s)
		into->max_age_s = h->max_age_s;	/* two ages: the shorter */
}

/* One directive, p[0..n). */
static bool
directive(const char *p, size_t n, HdHint *h)
{
	static const char max_age[] = "max-age=";
	int64_t		v = 0;

	if (n == 8 && strncasecmp(p, "no-cache", 8) == 0)
	{
		h->kind = HD_HINT_NO_CACHE;
		return true;
	}
	if (n <= sizeof(max_age) - 1 || strncasecmp(p, max_age, sizeof(max_age) - 1) != 0)
		return false;
	for (size_t i = sizeof(max_age) - 1; i < n; i++)
	{
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
		if (v > HD_HINT_MAX_AGE_LIMIT)
			return false;
	}
	if (h->kind != HD_HINT_NO_CACHE)
	{
		h->kind = v == 0 ? HD_HINT_NO_CACHE : HD_HINT_MAX_AGE;
		h->max_age_s = v;
	}
	return true;
}

/* A comment's content c[0..n): a hint, or HD_HINT_NONE if it is not one. */
static void
comment_hint(const char *c, size_t n, HdHint *out)
{
	static const char tag[] = "hyperdrive:";
	HdHint		h = {HD_HINT_NONE, 0};
	size_t		i = 0;
	bool		any = false;

	while (i < n && is_blank(c[i]))
		i++;
	if (n - i < sizeof(tag) - 1 || strncasecmp(c + i, tag, sizeof(tag) - 1) != 0)
		return;
	i += sizeof(tag) - 1;
	for (;;)
	{
		size_t		start;

		while (i < n && (is_blank(c[i]) || c[i] == ','))
			i++;
		if (i >= n)
			break;
		start = i;
		while (i < n && !is_blank(c[i]) && c[i] != ',')
			i++;
		if (!directive(c + start, i - start, &h))
		{
			h.kind = HD_HINT_INVALID;
			break;
		}
		any = true;
	}
	if (!any)
		h.kind = HD_HINT_INVALID;	/* "hyperdrive:" and nothing understood */
	merge(out, &h);
}

/* The end of the block comment opened at sql[i] ("/" "*"), nesting as PostgreSQL does. */
static size_t
block_end(const char *sql, size_t len, size_t i, bool *closed)
{
	int			depth = 0;

	*closed = false;
	while (i + 1 < len)
	{
		if (sql[i] == '/' && sql[i + 1] == '*')
		{
			depth++;
			i += 2;
		}
		else if (sql[i] == '*' && sql[i + 1] == '/')
		{
			i += 2;
			if (--depth == 0)
			{
				*closed = true;
				return i;
			}
		}
		else
			i++;
	}
	return len;
}

void
hd_cache_hint_parse(const char *sql, size_t len, HdHint *hint)
{
	size_t		i = 0;
	size_t		end = len;

	hint->kind = HD_HINT_NONE;
	hint->max_age_s = 0;
	/* the comments before the first token */
	for (;;)
	{
		while (i < len && is_blank(sql[i]))
			i++;
		if (i + 1 < len && sql[i] == '-' && sql[i + 1] == '-')
		{
			size_t		start = i + 2;

			while (i < len && sql[i] != '\n')
				i++;
			comment_hint(sql + start, i - start, hint);
			continue;
		}
		if (i + 1 < len && sql[i] == '/' && sql[i + 1] == '*')
		{
			bool		closed;
			size_t		next = block_end(sql, len, i, &closed);

			if (closed)
				comment_hint(sql + i + 2, next - i - 4, hint);
			i = next;
			continue;
		}
		break;
	}
	/* a block comment that ends the text (not one already read above) */
	while (end > i && (is_blank(sql[end - 1]) || sql[end - 1] == ';'))
		end--;
	if (end >= i + 4 && sql[end - 2] == '*' && sql[end - 1] == '/')
	{
		for (size_t j = end - 2; j-- > i;)
		{
			if (sql[j] == '/' && sql[j + 1] == '*')
			{
				if (j + 2 <= end - 2)
					comment_hint(sql + j + 2, end - 2 - (j + 2), hint);
				break;
			}
		}
	}
}
