/*
 * test_cache_params.c
 *    Unit tests of cache_params.c: analyze_query()'s bindings and parameter
 *    types read strictly (anything not exactly as the extension prints it
 *    is refused, never half read), and the fill's hashing statement: its
 *    Parse, its Bind of the client's very bytes and formats, its row.
 *    Prints TAP; run by t/002_cache_params_unit.pl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/be.h"
#include "pgwire/cache_params.h"
#include "tap.h"

/* ---------------------------------------------------------------------------
 * Reading
 */

static void
test_int8(void)
{
	uint64_t	v = 0;

	ok(hd_pg_int8_parse("0", 1, &v) == 0 && v == 0, "int8: 0");
	ok(hd_pg_int8_parse("-4815529876062969783", 20, &v) == 0 &&
	   (int64_t) v == -4815529876062969783LL, "int8: a negative hash");
	ok(hd_pg_int8_parse("9223372036854775807", 19, &v) == 0 && v == (uint64_t) INT64_MAX,
	   "int8: the largest");
	ok(hd_pg_int8_parse("-9223372036854775808", 20, &v) == 0 && (int64_t) v == INT64_MIN,
	   "int8: the smallest");
	ok(hd_pg_int8_parse("9223372036854775808", 19, &v) < 0 &&
	   hd_pg_int8_parse("-9223372036854775809", 20, &v) < 0 &&
	   hd_pg_int8_parse("18446744073709551616", 20, &v) < 0, "int8: out of range refused");
	ok(hd_pg_int8_parse("", 0, &v) < 0 && hd_pg_int8_parse("-", 1, &v) < 0 &&
	   hd_pg_int8_parse("-0", 2, &v) < 0 && hd_pg_int8_parse("01", 2, &v) < 0 &&
	   hd_pg_int8_parse("+1", 2, &v) < 0 && hd_pg_int8_parse(" 1", 2, &v) < 0 &&
	   hd_pg_int8_parse("1x", 2, &v) < 0, "int8: what PostgreSQL never prints is refused");
	ok(hd_pg_int8_parse("12", 1, &v) == 0 && v == 1, "int8: only len bytes are read");
}

static void
test_oids(void)
{
	uint32_t   *o;
	size_t		n;

	ok(hd_pg_oids_parse("{23,1007,0}", &o, &n) == 0 && n == 3 && o[0] == 23 && o[1] == 1007 &&
	   o[2] == 0, "oid[]: each OID, 0 too (a type left unknown)");
	free(o);
	ok(hd_pg_oids_parse("{4294967295}", &o, &n) == 0 && n == 1 && o[0] == UINT32_MAX,
	   "oid[]: the largest OID");
	free(o);
	ok(hd_pg_oids_parse("{}", &o, &n) == 0 && n == 0 && o == NULL, "oid[]: empty");
	{
		static const char *const bad[] = {
			NULL, "", "{", "}", "{}x", "{23,}", "{,23}", "{-1}", "{4294967296}", "{NULL}",
			"{\"23\"x}", "{{23}}", "[0:0]={23}", "{23 }", "{023}", "23", NULL
		};
		bool		all = true;

		for (int i = 1; bad[i]; i++)
		{
			o = (uint32_t *) &n;	/* (set back to NULL by a refusal) */
			if (hd_pg_oids_parse(bad[i], &o, &n) == 0 || o != NULL || n != 0)
			{
				printf("# accepted: %s\n", bad[i]);
				all = false;
			}
		}
		ok(all && hd_pg_oids_parse(NULL, &o, &n) < 0, "oid[]: malformed texts refused");
	}
}

static void
test_int8_array(void)
{
	uint64_t   *v;
	size_t		n;

	ok(hd_pg_int8_array_parse("{1,-2,9223372036854775807}", &v, &n) == 0 && n == 3 &&
	   v[0] == 1 && (int64_t) v[1] == -2 && v[2] == (uint64_t) INT64_MAX, "int8[]: values");
	free(v);
	ok(hd_pg_int8_array_parse("{}", &v, &n) == 0 && n == 0, "int8[]: empty");
	ok(hd_pg_int8_array_parse("{1,NULL}", &v, &n) < 0 && v == NULL &&
	   hd_pg_int8_array_parse("{1,,2}", &v, &n) < 0 &&
	   hd_pg_int8_array_parse("{{1},{2}}", &v, &n) < 0, "int8[]: NULLs, holes, dimensions refused");
	{
		/* many: the vector grows */
		char		text[8192] = "{";
		size_t		len = 1;
		bool		good;

		for (int i = 0; i < 1000; i++)
			len += (size_t) snprintf(text + len, sizeof(text) - len, "%s%d", i ? "," : "", -i);
		snprintf(text + len, sizeof(text) - len, "}");
		good = hd_pg_int8_array_parse(text, &v, &n) == 0 && n == 1000;
		for (size_t i = 0; good && i < n; i++)
			good = (int64_t) v[i] == -(int64_t) i;
		ok(good, "int8[]: a thousand values, in order");
		free(v);
	}
}

static void
test_bindings(void)
{
	HdPgBindings b;
	const char *bad;

	ok(hd_pg_bindings_parse("{}", &b, &bad) == 0 && b.n == 0 && bad == NULL,
	   "bindings: {} is none");
	hd_pg_bindings_free(&b);

	ok(hd_pg_bindings_parse("{16390:1:-4815529876062969783}", &b, &bad) == 0 && b.n == 1 &&
	   b.items[0].relation == 16390 && b.items[0].column == 1 && b.items[0].nhashes == 1 &&
	   (int64_t) b.items[0].hashes[0] == -4815529876062969783LL && b.items[0].nparams == 0 &&
	   b.items[0].params == NULL, "bindings: one constant");
	hd_pg_bindings_free(&b);

	/* as PostgreSQL quotes them: an element with a comma is in quotes */
	ok(hd_pg_bindings_parse("{\"16390:1:-48,$1\",16390:7:5,\"4294967295:32767:$2,$65535,7,8\"}",
							&b, &bad) == 0 && b.n == 3, "bindings: quoted and unquoted elements");
	ok(b.n == 3 &&
	   b.items[0].relation == 16390 && b.items[0].column == 1 &&
	   b.items[0].nhashes == 1 && (int64_t) b.items[0].hashes[0] == -48 &&
	   b.items[0].nparams == 1 && b.items[0].params[0] == 1 &&
	   b.items[1].relation == 16390 && b.items[1].column == 7 &&
	   b.items[1].nhashes == 1 && b.items[1].hashes[0] == 5 && b.items[1].nparams == 0 &&
	   b.items[2].relation == UINT32_MAX && b.items[2].column == 32767 &&
	   b.items[2].nhashes == 2 && b.items[2].hashes[0] == 7 && b.items[2].hashes[1] == 8 &&
	   b.items[2].nparams == 2 && b.items[2].params[0] == 2 && b.items[2].params[1] == 65535,
	   "bindings: each relation, column, hashes and parameters in place");
	hd_pg_bindings_free(&b);
	ok(b.items == NULL && b.n == 0, "bindings: freed");

	ok(hd_pg_bindings_parse("{\"1:2:$1,$1\"}", &b, &bad) == 0 && b.n == 1 &&
	   b.items[0].nparams == 2 && b.items[0].nhashes == 0 && b.items[0].hashes == NULL,
	   "bindings: parameters only, repeated as written");
	hd_pg_bindings_free(&b);

	{
		/* many, so that every vector grows while pointers are made at the end */
		char		text[65536] = "{";
		size_t		len = 1;
		bool		good;

		for (int i = 0; i < 200; i++)
			len += (size_t) snprintf(text + len, sizeof(text) - len, "%s\"%d:%d:%d,$%d,%d\"",
									 i ? "," : "", 16000 + i, 1 + i % 5, i, 1 + i, -i);
		snprintf(text + len, sizeof(text) - len, "}");
		good = hd_pg_bindings_parse(text, &b, &bad) == 0 && b.n == 200;
		for (size_t i = 0; good && i < b.n; i++)
		{
			const HdBinding *x = &b.items[i];

			good = x->relation == 16000 + i && x->column == 1 + i % 5 && x->nhashes == 2 &&
				x->hashes[0] == i && (int64_t) x->hashes[1] == -(int64_t) i &&
				x->nparams == 1 && x->params[0] == 1 + i;
		}
		ok(good, "bindings: two hundred, each with its own values");
		hd_pg_bindings_free(&b);
	}

	{
		static const char *const malformed[] = {
			"", "{", "{16390:1:5", "{16390:1:5}x", "{16390:1:5,}", "{,}", "{NULL}",
			"{16390:1:}", "{16390:1}", "{16390}", "{:1:5}", "{16390::5}",
			"{0:1:5}", "{16390:0:5}", "{16390:-1:5}", "{16390:32768:5}", "{4294967296:1:5}",
			"{016390:1:5}", "{16390:01:5}", "{16390:1:05}", "{16390:1:-0}", "{16390:1:+5}",
			"{16390:1:9223372036854775808}", "{16390:1:$0}", "{16390:1:$65536}",
			"{16390:1:$01}", "{16390:1:$}", "{16390:1:$-1}", "{16390:1:5:6}",
			"{\"16390:1:5,\"}", "{\"16390:1:,5\"}", "{\"16390:1:5,,6\"}", "{\"16390:1:5\\\\\"}",
			"{\"16390:1:5}", "{\"16390:1:5\"x}", "{16390:1: 5}", "{ 16390:1:5}",
			"{{16390:1:5}}", "[1:1]={16390:1:5}", "{16390:1:5}}", "{16390:1:x}",
			"{16390:1:5,16390:1:$1,NULL}", "{\"\"}", NULL
		};
		bool		all = true;

		for (int i = 0; malformed[i]; i++)
		{
			bad = NULL;
			if (hd_pg_bindings_parse(malformed[i], &b, &bad) == 0 || b.items || b.n ||
				b.hashes || b.params || bad == NULL)
			{
				printf("# accepted (or no place given): %s\n", malformed[i]);
				all = false;
			}
		}
		ok(all, "bindings: any element not exactly RELID:ATTNUM:VALUES refuses the whole text");
	}
	ok(hd_pg_bindings_parse("{16390:1:5,\"16390:2:x,$1\"}", &b, &bad) < 0 && bad &&
	   strncmp(bad, "16390:2:x", 9) == 0, "bindings: the refusal says which element");
	ok(hd_pg_bindings_parse(NULL, &b, &bad) < 0, "bindings: no text is malformed too");
}

/* ---------------------------------------------------------------------------
 * The hashing statement
 */

static void
test_choose(void)
{
	const bool	want[] = {true, false, true, true, true};
	const uint32_t types[] = {23, 23, 0, 1007, 25};
	uint16_t	chosen[5];
	size_t		k;

	k = hd_pg_hash_choose(want, types, 5, 5, chosen);
	ok(k == 3 && chosen[0] == 1 && chosen[1] == 4 && chosen[2] == 5,
	   "choose: the wanted parameters of known type");
	k = hd_pg_hash_choose(want, types, 5, 4, chosen);
	ok(k == 2 && chosen[0] == 1 && chosen[1] == 4, "choose: only those the Bind has");
	ok(hd_pg_hash_choose(want, NULL, 5, 5, chosen) == 0, "choose: no types, nothing");
	ok(hd_pg_hash_choose(want, types, 0, 5, chosen) == 0, "choose: no parameters, nothing");
}

/* A message's bytes: its type, length word, body. */
static bool
is_message(const HdIoBuf *out, char type, const char *body, size_t len)
{
	const char *m = hd_iobuf_head(out);

	return hd_iobuf_live(out) == 5 + len && m[0] == type && hd_get_u32(m + 1) == 4 + len &&
		memcmp(m + 5, body, len) == 0;
}

static void
test_parse_message(void)
{
	const uint32_t types[] = {23, 99, 0, 1007};
	const uint16_t chosen[] = {1, 4};
	static const char sql[] = "SELECT hyperdrive.hash_value($1), hyperdrive.hash_values(ARRAY[$1]), "
		"hyperdrive.hash_value($2), hyperdrive.hash_values(ARRAY[$2])";
	char		body[512];
	size_t		len = 0;
	HdIoBuf		out = {0};

	memcpy(body, HD_PG_HASH_STMT, sizeof(HD_PG_HASH_STMT));
	len += sizeof(HD_PG_HASH_STMT);
	memcpy(body + len, sql, sizeof(sql));
	len += sizeof(sql);
	hd_put_u16(body + len, 2);
	hd_put_u32(body + len + 2, 23);
	hd_put_u32(body + len + 6, 1007);
	len += 10;
	ok(hd_pg_hash_parse(&out, chosen, 2, types) == 0 && is_message(&out, 'P', body, len),
	   "Parse: the named statement, two columns per parameter, $k of the k-th one's type");
	hd_iobuf_free(&out);
}

/* A Bind's tail: formats, values (NULL: SQL NULL), no result formats. */
static size_t
bind_tail(char *buf, int nformats, const uint16_t *formats, int nvalues,
		  const char *const *values, const int *lens)
{
	size_t		len = 0;

	hd_put_u16(buf, (uint16_t) nformats);
	len += 2;
	for (int i = 0; i < nformats; i++, len += 2)
		hd_put_u16(buf + len, formats[i]);
	hd_put_u16(buf + len, (uint16_t) nvalues);
	len += 2;
	for (int i = 0; i < nvalues; i++)
	{
		hd_put_u32(buf + len, values[i] ? (uint32_t) lens[i] : UINT32_MAX);
		len += 4;
		if (values[i])
		{
			memcpy(buf + len, values[i], (size_t) lens[i]);
			len += (size_t) lens[i];
		}
	}
	hd_put_u16(buf + len, 1);	/* one result format: binary (the client's, not ours) */
	hd_put_u16(buf + len + 2, 1);
	return len + 4;
}

/* The Bind the hashing statement should get. */
static size_t
our_bind(char *buf, int n, const uint16_t *formats, const char *const *values, const int *lens)
{
	size_t		len = 0;

	buf[len++] = '\0';
	memcpy(buf + len, HD_PG_HASH_STMT, sizeof(HD_PG_HASH_STMT));
	len += sizeof(HD_PG_HASH_STMT);
	hd_put_u16(buf + len, (uint16_t) n);
	len += 2;
	for (int i = 0; i < n; i++, len += 2)
		hd_put_u16(buf + len, formats[i]);
	hd_put_u16(buf + len, (uint16_t) n);
	len += 2;
	for (int i = 0; i < n; i++)
	{
		hd_put_u32(buf + len, values[i] ? (uint32_t) lens[i] : UINT32_MAX);
		len += 4;
		if (values[i])
		{
			memcpy(buf + len, values[i], (size_t) lens[i]);
			len += (size_t) lens[i];
		}
	}
	hd_put_u16(buf + len, 0);
	return len + 2;
}

static void
test_bind_message(void)
{
	static const char bin5[4] = {0, 0, 0, 5};
	const char *const values[] = {"abc", bin5, NULL, "{1,2}"};
	const int	lens[] = {3, 4, 0, 5};
	char		tail[256];
	char		want[256];
	size_t		tlen;
	size_t		wlen;
	HdIoBuf		out = {0};

	{
		/* no format codes: all text */
		const uint16_t chosen[] = {1, 4};
		const uint16_t wf[] = {0, 0};
		const char *const wv[] = {"abc", "{1,2}"};
		const int	wl[] = {3, 5};

		tlen = bind_tail(tail, 0, NULL, 4, values, lens);
		wlen = our_bind(want, 2, wf, wv, wl);
		ok(hd_pg_hash_bind(&out, chosen, 2, tail, tlen) == 0 &&
		   is_message(&out, 'B', want, wlen), "Bind: text parameters, the chosen ones");
		hd_iobuf_free(&out);
	}
	{
		/* one format code for all: binary */
		const uint16_t one[] = {1};
		const uint16_t chosen[] = {2};
		const uint16_t wf[] = {1};
		const char *const wv[] = {bin5};
		const int	wl[] = {4};

		tlen = bind_tail(tail, 1, one, 4, values, lens);
		wlen = our_bind(want, 1, wf, wv, wl);
		ok(hd_pg_hash_bind(&out, chosen, 1, tail, tlen) == 0 &&
		   is_message(&out, 'B', want, wlen), "Bind: one format code for all, made explicit");
		hd_iobuf_free(&out);
	}
	{
		/* a code per parameter; a NULL value */
		const uint16_t each[] = {0, 1, 1, 0};
		const uint16_t chosen[] = {2, 3, 4};
		const uint16_t wf[] = {1, 1, 0};
		const char *const wv[] = {bin5, NULL, "{1,2}"};
		const int	wl[] = {4, 0, 5};

		tlen = bind_tail(tail, 4, each, 4, values, lens);
		wlen = our_bind(want, 3, wf, wv, wl);
		ok(hd_pg_hash_bind(&out, chosen, 3, tail, tlen) == 0 &&
		   is_message(&out, 'B', want, wlen), "Bind: each parameter's own code; NULL stays NULL");
		hd_iobuf_free(&out);
	}
	{
		const uint16_t chosen[] = {5};
		const uint16_t two[] = {0, 1};

		hd_iobuf_append(&out, "x", 1);
		tlen = bind_tail(tail, 0, NULL, 4, values, lens);
		ok(hd_pg_hash_bind(&out, chosen, 1, tail, tlen) < 0 && hd_iobuf_live(&out) == 1,
		   "Bind: a parameter the client's Bind lacks: refused, nothing appended");
		tlen = bind_tail(tail, 2, two, 4, values, lens);
		ok(hd_pg_hash_bind(&out, chosen, 1, tail, tlen) < 0 && hd_iobuf_live(&out) == 1,
		   "Bind: format codes neither 0, 1 nor one each: refused");
		tlen = bind_tail(tail, 0, NULL, 4, values, lens);
		ok(hd_pg_hash_bind(&out, (const uint16_t[]) {4}, 1, tail, 20) < 0 &&
		   hd_pg_hash_bind(&out, (const uint16_t[]) {1}, 1, tail, 1) < 0 &&
		   hd_iobuf_live(&out) == 1, "Bind: a cut Bind is refused");
		hd_iobuf_free(&out);
	}
}

/* A DataRow body of n columns (NULL: SQL NULL). */
static size_t
data_row(char *buf, int n, const char *const *cols)
{
	size_t		len = 2;

	hd_put_u16(buf, (uint16_t) n);
	for (int i = 0; i < n; i++)
	{
		size_t		l = cols[i] ? strlen(cols[i]) : 0;

		hd_put_u32(buf + len, cols[i] ? (uint32_t) l : UINT32_MAX);
		len += 4;
		memcpy(buf + len, cols[i] ? cols[i] : "", l);
		len += l;
	}
	return len;
}

static void
test_row(void)
{
	HdParamHashes p[5] = {{0}};
	const uint16_t chosen[] = {1, 3, 5};
	char		row[512];
	size_t		len;

	{
		/* a scalar, an array with a repeated element, a NULL parameter */
		const char *const cols[] = {"-7", "{-7}", "100", "{1,-2,100,1}", NULL, NULL};

		len = data_row(row, 6, cols);
		ok(hd_pg_hash_row(row, len, chosen, 3, p, 5) == 0, "row: read");
		ok(p[0].known && p[0].nhashes == 1 && (int64_t) p[0].hashes[0] == -7,
		   "row: a scalar's hash, once");
		ok(p[2].known && p[2].nhashes == 4 && p[2].hashes[0] == 100 && p[2].hashes[1] == 1 &&
		   (int64_t) p[2].hashes[2] == -2 && p[2].hashes[3] == 1,
		   "row: an array's whole hash and its elements' (the same as the whole left out)");
		ok(!p[4].known && p[4].nhashes == 0, "row: a NULL parameter is not known");
		ok(!p[1].known && !p[3].known, "row: the parameters not chosen are left as they were");
	}
	{
		const char *const empty[] = {"5", "{}", "6", "{}", "7", "{}"};

		len = data_row(row, 6, empty);
		ok(hd_pg_hash_row(row, len, chosen, 3, p, 5) == 0 && p[2].known && p[2].nhashes == 1 &&
		   p[2].hashes[0] == 6, "row: an empty array has its whole hash only");
	}
	{
		const char *const *bad[] = {
			(const char *const[]) {"5", "{}", "6", "{}", "x", "{}"},
			(const char *const[]) {"5", "{}", "6", "{NULL}", "7", "{}"},
			(const char *const[]) {"5", "{}", "6", NULL, "7", "{}"},
			(const char *const[]) {"5", "{}", "6", "{}", "07", "{}"},
			NULL
		};
		bool		all = true;

		for (int i = 0; bad[i]; i++)
		{
			len = data_row(row, 6, bad[i]);
			all = all && hd_pg_hash_row(row, len, chosen, 3, p, 5) < 0;
		}
		ok(all && p[0].known && p[0].hashes[0] == 5 && p[4].hashes[0] == 7,
		   "row: a malformed row is refused, the hashes read before untouched");
		len = data_row(row, 4, bad[0]);
		ok(hd_pg_hash_row(row, len, chosen, 3, p, 5) < 0, "row: too few columns refused");
		len = data_row(row, 6, bad[0]) - 1;
		ok(hd_pg_hash_row(row, 2, chosen, 3, p, 5) < 0 &&
		   hd_pg_hash_row(row, len, chosen, 3, p, 5) < 0, "row: a cut row refused");
		len = data_row(row, 2, bad[1]);
		ok(hd_pg_hash_row(row, len, (const uint16_t[]) {6}, 1, p, 5) < 0 &&
		   hd_pg_hash_row(row, len, (const uint16_t[]) {1}, 1, p, 5) == 0,
		   "row: a parameter beyond params refused");
	}
	hd_pg_param_hashes_free(p, 5);
	ok(!p[0].known && p[0].hashes == NULL && p[2].hashes == NULL, "row: freed");
}

int
main(void)
{
	test_int8();
	test_oids();
	test_int8_array();
	test_bindings();
	test_choose();
	test_parse_message();
	test_bind_message();
	test_row();
	return tap_done();
}
