/*
 * cache_params.c
 *    Bindings, parameter types and parameter hashes in PostgreSQL's text
 *    (cache_params.h).
 */
#include "pgwire/cache_params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire/proto.h"

/* ---------------------------------------------------------------------------
 * Numbers, exactly as PostgreSQL prints them
 */

/*
 * An unsigned decimal of at most max at s[0..len): digits only, no leading
 * zero (but "0" itself).
 */
static int
parse_unsigned(const char *s, size_t len, uint64_t max, uint64_t *v)
{
	uint64_t	n = 0;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		unsigned	d = (unsigned char) s[i] - '0';

		if (d > 9 || n > (max - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*v = n;
	return 0;
}

int
hd_pg_int8_parse(const char *text, size_t len, uint64_t *v)
{
	uint64_t	mag;

	if (len > 0 && text[0] == '-')
	{
		/* INT64_MIN's magnitude is one more than INT64_MAX; "-0" is not printed */
		if (parse_unsigned(text + 1, len - 1, (uint64_t) INT64_MAX + 1, &mag) < 0 || mag == 0)
			return -1;
		*v = (uint64_t) 0 - mag;
		return 0;
	}
	if (parse_unsigned(text, len, INT64_MAX, &mag) < 0)
		return -1;
	*v = mag;
	return 0;
}

/* ---------------------------------------------------------------------------
 * Arrays' text output: {a,b,"c,d"}
 */

/* A growing array of fixed-size items. */
typedef struct Vec
{
	void	   *items;
	size_t		n;
	size_t		cap;
	size_t		size;
} Vec;

static void *
vec_push(Vec *v)
{
	if (v->n == v->cap)
	{
		size_t		cap = v->cap ? v->cap * 2 : 8;
		void	   *grown = realloc(v->items, cap * v->size);

		if (grown == NULL)
			return NULL;
		v->items = grown;
		v->cap = cap;
	}
	return (char *) v->items + v->size * v->n++;
}

/*
 * The element of a one-dimensional array's text at s (just after '{' or a
 * ','): its text in [*start, *start + *len), quotes taken off; returns
 * what follows it (its delimiter), or NULL when malformed. Elements never
 * hold a backslash, a quote or a brace here (numbers, and bindings'
 * digits, colons, commas and dollars), so an escape is refused rather than
 * undone; so are an unquoted NULL and an empty element.
 */
static const char *
element(const char *s, const char **start, size_t *len)
{
	const char *e;

	if (*s == '"')
	{
		e = s + 1 + strcspn(s + 1, "\"\\");
		if (*e != '"')
			return NULL;
		*start = s + 1;
		*len = (size_t) (e - s - 1);
		return e + 1;
	}
	e = s + strcspn(s, ",}\"\\{ ");
	*start = s;
	*len = (size_t) (e - s);
	if (*len == 0 || (*len == 4 && strncmp(s, "NULL", 4) == 0))
		return NULL;
	return e;
}

/* Walk an array's text: each element to fn; -1 if malformed or fn refuses. */
static int
each_element(const char *text, int (*fn) (const char *s, size_t len, void *arg), void *arg)
{
	const char *p = text;

	if (text == NULL || *p++ != '{')
		return -1;
	if (*p == '}')
		return p[1] == '\0' ? 0 : -1;
	for (;;)
	{
		const char *s;
		size_t		len;

		if ((p = element(p, &s, &len)) == NULL || fn(s, len, arg) < 0)
			return -1;
		if (*p == '}')
			return p[1] == '\0' ? 0 : -1;
		if (*p++ != ',')
			return -1;
	}
}

static int
oid_element(const char *s, size_t len, void *arg)
{
	uint32_t   *slot;
	uint64_t	v;

	if (parse_unsigned(s, len, UINT32_MAX, &v) < 0 || (slot = vec_push(arg)) == NULL)
		return -1;
	*slot = (uint32_t) v;
	return 0;
}

/* An array's elements, each of size bytes as read_one() reads it: malloc'd *items, *n. */
static int
parse_elements(const char *text, int (*read_one) (const char *, size_t, void *), size_t size,
			   void **items, size_t *n)
{
	Vec			v = {NULL, 0, 0, size};

	*items = NULL;
	*n = 0;
	if (each_element(text, read_one, &v) < 0)
	{
		free(v.items);
		return -1;
	}
	*items = v.items;
	*n = v.n;
	return 0;
}

int
hd_pg_oids_parse(const char *text, uint32_t **oids, size_t *n)
{
	void	   *items;
	int			rc = parse_elements(text, oid_element, sizeof(uint32_t), &items, n);

	*oids = items;
	return rc;
}

static int
int8_element(const char *s, size_t len, void *arg)
{
	uint64_t   *slot;
	uint64_t	h;

	if (hd_pg_int8_parse(s, len, &h) < 0 || (slot = vec_push(arg)) == NULL)
		return -1;
	*slot = h;
	return 0;
}

int
hd_pg_int8_array_parse(const char *text, uint64_t **v, size_t *n)
{
	void	   *items;
	int			rc = parse_elements(text, int8_element, sizeof(uint64_t), &items, n);

	*v = items;
	return rc;
}

/* ---------------------------------------------------------------------------
 * Bindings: RELID:ATTNUM:VALUES
 */

/* One binding as parsed: where its values start in the shared vectors. */
typedef struct Parsed
{
	uint64_t	relation;
	uint32_t	column;
	size_t		first_hash;
	size_t		first_param;
} Parsed;

typedef struct BindingsState
{
	Vec			items;			/* of Parsed */
	Vec			hashes;			/* of uint64_t */
	Vec			params;			/* of uint16_t */
	bool		oom;
	const char *bad;
} BindingsState;

/* One of VALUES: a hash or $n. */
static int
binding_value(BindingsState *st, const char *s, size_t len)
{
	uint64_t	v;

	if (len > 0 && s[0] == '$')
	{
		uint16_t   *slot;

		if (parse_unsigned(s + 1, len - 1, UINT16_MAX, &v) < 0 || v == 0)
			return -1;
		if ((slot = vec_push(&st->params)) == NULL)
			return st->oom = true, -1;
		*slot = (uint16_t) v;
	}
	else
	{
		uint64_t   *slot;

		if (hd_pg_int8_parse(s, len, &v) < 0)
			return -1;
		if ((slot = vec_push(&st->hashes)) == NULL)
			return st->oom = true, -1;
		*slot = v;
	}
	return 0;
}

static int
binding_element(const char *s, size_t len, void *arg)
{
	BindingsState *st = arg;
	const char *end = s + len;
	const char *c1 = memchr(s, ':', len);
	const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t) (end - c1 - 1)) : NULL;
	Parsed	   *b;
	uint64_t	relation;
	uint64_t	column;
	const char *v;

	st->bad = s;
	if (c2 == NULL || c2 + 1 == end ||
		parse_unsigned(s, (size_t) (c1 - s), UINT32_MAX, &relation) < 0 || relation == 0 ||
		parse_unsigned(c1 + 1, (size_t) (c2 - c1 - 1), INT16_MAX, &column) < 0 || column == 0)
		return -1;
	if ((b = vec_push(&st->items)) == NULL)
		return st->oom = true, -1;
	b->relation = relation;
	b->column = (uint32_t) column;
	b->first_hash = st->hashes.n;
	b->first_param = st->params.n;
	/* VALUES: comma-separated, none empty */
	for (v = c2 + 1;;)
	{
		const char *comma = memchr(v, ',', (size_t) (end - v));
		const char *vend = comma ? comma : end;

		if (binding_value(st, v, (size_t) (vend - v)) < 0)
			return -1;
		if (comma == NULL)
			return 0;
		v = comma + 1;
	}
}

int
hd_pg_bindings_parse(const char *text, HdPgBindings *out, const char **bad)
{
	BindingsState st = {{NULL, 0, 0, sizeof(Parsed)}, {NULL, 0, 0, sizeof(uint64_t)},
	{NULL, 0, 0, sizeof(uint16_t)}, false, text};
	int			rc = -1;

	memset(out, 0, sizeof(*out));
	if (each_element(text, binding_element, &st) < 0)
		goto out;
	if (st.items.n > 0 && (out->items = calloc(st.items.n, sizeof(HdBinding))) == NULL)
	{
		st.oom = true;
		goto out;
	}
	out->n = st.items.n;
	out->hashes = st.hashes.items;
	out->params = st.params.items;
	st.hashes.items = NULL;
	st.params.items = NULL;
	/* the pointers now, the vectors having stopped moving */
	for (size_t i = 0; i < out->n; i++)
	{
		const Parsed *p = (const Parsed *) st.items.items + i;
		size_t		hash_end = i + 1 < out->n ? p[1].first_hash : st.hashes.n;
		size_t		param_end = i + 1 < out->n ? p[1].first_param : st.params.n;
		HdBinding  *b = &out->items[i];

		b->relation = p->relation;
		b->column = p->column;
		b->nhashes = (uint32_t) (hash_end - p->first_hash);
		b->hashes = b->nhashes ? out->hashes + p->first_hash : NULL;
		b->nparams = (uint32_t) (param_end - p->first_param);
		b->params = b->nparams ? out->params + p->first_param : NULL;
	}
	rc = 0;
out:
	free(st.items.items);
	free(st.hashes.items);
	free(st.params.items);
	if (bad)
		*bad = rc == 0 ? NULL : st.oom ? NULL : st.bad;
	return rc;
}

void
hd_pg_bindings_free(HdPgBindings *b)
{
	free(b->items);
	free(b->hashes);
	free(b->params);
	memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------------------
 * The fill's hashing statement
 */

size_t
hd_pg_hash_choose(const bool *want, const uint32_t *types, size_t nparams, uint16_t nbound,
				  uint16_t *chosen)
{
	size_t		k = 0;

	for (size_t i = 0; i < nparams && i < nbound; i++)
		if (want[i] && types && types[i] != 0)
			chosen[k++] = (uint16_t) (i + 1);
	return k;
}

int
hd_pg_hash_parse(HdIoBuf *out, const uint16_t *chosen, size_t nchosen, const uint32_t *types)
{
	HdMsg		m;
	char		col[96];

	hd_msg_begin(&m, out, 'P');
	hd_msg_put_str(&m, HD_PG_HASH_STMT);
	hd_msg_put_bytes(&m, "SELECT ", 7);
	for (size_t k = 1; k <= nchosen; k++)
	{
		int			n = snprintf(col, sizeof(col),
								 "%shyperdrive.hash_value($%zu), hyperdrive.hash_values(ARRAY[$%zu])",
								 k > 1 ? ", " : "", k, k);

		hd_msg_put_bytes(&m, col, (size_t) n);
	}
	hd_msg_put_byte(&m, '\0');
	hd_msg_put_u16(&m, (uint16_t) nchosen);
	for (size_t k = 0; k < nchosen; k++)
		hd_msg_put_u32(&m, types[chosen[k] - 1]);
	return hd_msg_end(&m);
}

/*
 * The chosen parameters (ascending numbers) of the client's Bind after its
 * names (ext_batch.c checked its framing; checked again here): their
 * format codes and values, in one walk over the values.
 */
typedef struct Picked
{
	uint16_t	format;
	const char *value;
	uint32_t	len;			/* UINT32_MAX: NULL */
} Picked;

static int
pick_values(const char *tail, size_t len, const uint16_t *chosen, size_t nchosen, Picked *out)
{
	uint16_t	nformats;
	uint16_t	nvalues;
	const char *formats = tail + 2;
	size_t		pos;
	size_t		k = 0;

	if (len < 2)
		return -1;
	nformats = hd_get_u16(tail);
	pos = 2 + (size_t) nformats * 2;
	if (len < pos + 2)
		return -1;
	nvalues = hd_get_u16(tail + pos);
	pos += 2;
	if (nformats > 1 && nformats != nvalues)
		return -1;
	for (uint16_t n = 1; n <= nvalues && k < nchosen; n++)
	{
		uint32_t	l;

		if (pos + 4 > len)
			return -1;
		l = hd_get_u32(tail + pos);
		pos += 4;
		if (l != UINT32_MAX && (l > INT32_MAX || l > len - pos))
			return -1;
		if (chosen[k] == n)
		{
			out[k].format = nformats == 0 ? 0 : hd_get_u16(formats + 2 * (nformats == 1 ? 0 : n - 1));
			out[k].value = tail + pos;
			out[k].len = l;
			k++;
		}
		if (l != UINT32_MAX)
			pos += l;
	}
	return k == nchosen ? 0 : -1;
}

int
hd_pg_hash_bind(HdIoBuf *out, const uint16_t *chosen, size_t nchosen, const char *bind_tail,
				size_t bind_tail_len)
{
	Picked	   *picked = malloc((nchosen ? nchosen : 1) * sizeof(Picked));
	HdMsg		m;

	if (picked == NULL)
		return -1;
	if (pick_values(bind_tail, bind_tail_len, chosen, nchosen, picked) < 0)
	{
		free(picked);
		return -1;
	}
	hd_msg_begin(&m, out, 'B');
	hd_msg_put_str(&m, "");
	hd_msg_put_str(&m, HD_PG_HASH_STMT);
	hd_msg_put_u16(&m, (uint16_t) nchosen);
	for (size_t k = 0; k < nchosen; k++)
		hd_msg_put_u16(&m, picked[k].format);
	hd_msg_put_u16(&m, (uint16_t) nchosen);
	for (size_t k = 0; k < nchosen; k++)
	{
		hd_msg_put_u32(&m, picked[k].len);
		if (picked[k].len != UINT32_MAX)
			hd_msg_put_bytes(&m, picked[k].value, picked[k].len);
	}
	hd_msg_put_u16(&m, 0);		/* every result in text */
	free(picked);
	return hd_msg_end(&m);
}

/* Column col of a DataRow body: its bytes, or NULL with *len -1 for SQL NULL. -1: malformed. */
static int
row_column(const char *body, size_t len, size_t col, const char **value, int64_t *vlen)
{
	size_t		pos = 2;

	if (len < 2 || hd_get_u16(body) <= col)
		return -1;
	for (size_t i = 0;; i++)
	{
		uint32_t	n;

		if (pos + 4 > len)
			return -1;
		n = hd_get_u32(body + pos);
		pos += 4;
		if (n != UINT32_MAX && pos + n > len)
			return -1;
		if (i == col)
		{
			*value = n == UINT32_MAX ? NULL : body + pos;
			*vlen = n == UINT32_MAX ? -1 : (int64_t) n;
			return 0;
		}
		if (n != UINT32_MAX)
			pos += n;
	}
}

/*
 * One parameter's two columns -> *p: the value's hash, then its elements'
 * hashes that differ from it (a scalar's one element is itself).
 */
static int
param_columns(const char *body, size_t len, size_t k, HdParamHashes *p)
{
	const char *v;
	int64_t		vlen;
	uint64_t	whole;
	uint64_t   *elems = NULL;
	uint64_t   *all;
	size_t		nelems = 0;
	size_t		n = 0;
	char	   *text;

	p->known = false;
	p->nhashes = 0;
	p->hashes = NULL;
	if (row_column(body, len, 2 * k, &v, &vlen) < 0)
		return -1;
	if (v == NULL)
		return 0;				/* a NULL parameter: not known */
	if (hd_pg_int8_parse(v, (size_t) vlen, &whole) < 0 ||
		row_column(body, len, 2 * k + 1, &v, &vlen) < 0 || v == NULL ||
		(text = strndup(v, (size_t) vlen)) == NULL)
		return -1;
	if (hd_pg_int8_array_parse(text, &elems, &nelems) < 0 ||
		nelems + 1 > UINT32_MAX || (all = malloc((nelems + 1) * sizeof(uint64_t))) == NULL)
	{
		free(text);
		free(elems);
		return -1;
	}
	free(text);
	all[n++] = whole;
	for (size_t i = 0; i < nelems; i++)
		if (elems[i] != whole)
			all[n++] = elems[i];
	free(elems);
	p->known = true;
	p->nhashes = (uint32_t) n;
	p->hashes = all;
	return 0;
}

int
hd_pg_hash_row(const char *body, size_t len, const uint16_t *chosen, size_t nchosen,
			   HdParamHashes *params, size_t nparams)
{
	HdParamHashes *got;

	if (len < 2 || hd_get_u16(body) != 2 * nchosen)
		return -1;
	if ((got = calloc(nchosen ? nchosen : 1, sizeof(HdParamHashes))) == NULL)
		return -1;
	for (size_t k = 0; k < nchosen; k++)
	{
		if (chosen[k] == 0 || chosen[k] > nparams || param_columns(body, len, k, &got[k]) < 0)
		{
			hd_pg_param_hashes_free(got, k);
			free(got);
			return -1;
		}
	}
	for (size_t k = 0; k < nchosen; k++)
	{
		HdParamHashes *p = &params[chosen[k] - 1];

		free((void *) p->hashes);
		*p = got[k];
	}
	free(got);
	return 0;
}

void
hd_pg_param_hashes_free(HdParamHashes *params, size_t nparams)
{
	for (size_t i = 0; i < nparams; i++)
	{
		free((void *) params[i].hashes);
		params[i].hashes = NULL;
		params[i].nhashes = 0;
		params[i].known = false;
	}
}
