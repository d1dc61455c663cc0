/*
 * test_stmt.c
 *    Unit tests of stmt.c, the data structures of prepared statements under
 *    pooling: the registry and its retirement after schema changes, client
 *    names, statement shapes (what a Describe showed), the unnamed
 *    statement, and the queue of replies a server owes.
 *    Prints TAP; run by t/011_stmt_unit.pl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire/stmt.h"
#include "tap.h"

/* A RowDescription body: columns of (name, table, attnum, type, typlen, typmod). */
static size_t
row_description(char *out, int n, const char *const *names, const unsigned *types,
				unsigned table)
{
	size_t		pos = 0;

	out[pos++] = (char) (n >> 8);
	out[pos++] = (char) n;
	for (int i = 0; i < n; i++)
	{
		unsigned char field[18] = {0};

		memcpy(out + pos, names[i], strlen(names[i]) + 1);
		pos += strlen(names[i]) + 1;
		field[0] = (unsigned char) (table >> 24);
		field[3] = (unsigned char) table;
		field[5] = (unsigned char) (i + 1);	/* attnum */
		field[9] = (unsigned char) types[i];	/* type OID (small) */
		field[11] = 4;			/* typlen */
		field[12] = field[13] = field[14] = field[15] = 0xff;	/* typmod -1 */
		memcpy(out + pos, field, sizeof(field));
		pos += sizeof(field);
	}
	return pos;
}

static void
test_shapes(void)
{
	const char params[] = {0, 1, 0, 0, 0, 23};	/* one int4 parameter */
	const char *const names_ab[] = {"id", "b"};
	const char *const names_abc[] = {"id", "b", "c"};
	const unsigned types_ab[] = {23, 25};
	const unsigned types_ab_int[] = {23, 23};
	const unsigned types_abc[] = {23, 25, 23};
	char		row1[256];
	char		row2[256];
	size_t		n1 = row_description(row1, 2, names_ab, types_ab, 16390);
	size_t		n2;
	size_t		l1;
	size_t		l2;
	char	   *s1 = hd_shape_build(params, sizeof(params), row1, n1, &l1);
	char	   *s2;

	ok(s1 != NULL, "a shape from ParameterDescription and RowDescription");
	n2 = row_description(row2, 2, names_ab, types_ab, 99999);
	s2 = hd_shape_build(params, sizeof(params), row2, n2, &l2);
	ok(s2 && l1 == l2 && memcmp(s1, s2, l1) == 0,
	   "the column's table is not part of it (a table dropped and made again)");
	free(s2);
	n2 = row_description(row2, 3, names_abc, types_abc, 16390);
	s2 = hd_shape_build(params, sizeof(params), row2, n2, &l2);
	ok(s2 && (l1 != l2 || memcmp(s1, s2, l1) != 0), "a column more: another shape");
	free(s2);
	n2 = row_description(row2, 2, names_ab, types_ab_int, 16390);
	s2 = hd_shape_build(params, sizeof(params), row2, n2, &l2);
	ok(s2 && (l1 != l2 || memcmp(s1, s2, l1) != 0), "a column of another type: another shape");
	free(s2);
	s2 = hd_shape_build(params, sizeof(params), NULL, 0, &l2);
	ok(s2 && (l1 != l2 || memcmp(s1, s2, l1) != 0), "NoData: a shape of its own");
	free(s2);
	ok(hd_shape_build(params, sizeof(params), row1, n1 - 1, &l2) == NULL,
	   "a truncated RowDescription: no shape");
	ok(hd_shape_build(params, 3, row1, n1, &l2) == NULL, "a malformed ParameterDescription: no shape");
	free(s1);
}

static void
test_registry(void)
{
	HdStatementRegistry reg = {0};
	HdClientStmts names = {0};
	HdStatement *a = hd_registry_intern(&reg, "SELECT 1", "\0\0", 2, "");
	HdStatement *b = hd_registry_intern(&reg, "SELECT 1", "\0\0", 2, "SET search_path = x");
	HdStatement *again = hd_registry_intern(&reg, "SELECT 1", "\0\0", 2, "");
	HdStatement *fresh;

	ok(a && b && a != b, "the same text under another search_path is another statement");
	ok(again == a, "the same text, types and search_path: the same statement");
	hd_client_stmt_set(&names, "s1", a->id);
	hd_client_stmt_set(&names, "s2", a->id);
	hd_registry_retire_all(&reg);
	ok(hd_registry_find(&reg, "SELECT 1", "\0\0", 2, "SET search_path = x") == NULL,
	   "after DDL every statement is retired (not found by its text)");
	ok(hd_registry_find(&reg, "SELECT 1", "\0\0", 2, "") == NULL, "... and not found by its text");
	ok(hd_registry_get(&reg, a->id) == a, "... but its holders still find it by id");
	fresh = hd_registry_intern(&reg, "SELECT 1", "\0\0", 2, "");
	ok(fresh && fresh != a && fresh->id != a->id, "a later Parse of the text: a new statement");
	hd_client_stmt_rename_id(&names, a->id, fresh->id);
	ok(hd_client_stmt_find(&names, "s1") == fresh->id && hd_client_stmt_find(&names, "s2") == fresh->id,
	   "a client's names of the old one can move to the new one");
	hd_client_stmts_free(&names);
	hd_registry_free(&reg);
}

static void
test_unnamed(void)
{
	HdUnnamed	u = {0};

	u.gen = 7;
	u.state = HD_UNNAMED_KNOWN;
	u.query = strdup("SELECT 2");
	u.types = malloc(2);
	u.shape = malloc(4);
	hd_unnamed_clear(&u);
	ok(u.state == HD_UNNAMED_NONE && u.query == NULL && u.shape == NULL && u.gen == 7,
	   "clearing the unnamed statement keeps its generation");
}

static void
test_expect(void)
{
	HdExpectQueue q = {0};
	int			good = 1;

	for (uint32_t i = 0; i < 100; i++)
		hd_expect_push(&q, HD_EXPECT_BIND, HD_REPLY_FORWARD, i, i * 2);
	for (uint32_t i = 0; i < 50; i++)
	{
		HdExpect   *h = hd_expect_head(&q);

		good = good && h && h->stmt_id == i && h->gen == i * 2;
		hd_expect_pop(&q);
	}
	for (uint32_t i = 100; i < 200; i++)
		hd_expect_push(&q, HD_EXPECT_PARSE, HD_REPLY_SWALLOW, i, 0);
	for (uint32_t i = 50; i < 200; i++)
	{
		HdExpect   *h = hd_expect_head(&q);

		good = good && h && h->stmt_id == i;
		hd_expect_pop(&q);
	}
	ok(good && hd_expect_head(&q) == NULL, "the owed replies come out in order as the ring grows");
	hd_expect_free(&q);
}

int
main(void)
{
	test_shapes();
	test_registry();
	test_unnamed();
	test_expect();
	return tap_done();
}
