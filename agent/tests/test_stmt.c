/*
 * test_stmt.c
 *    Unit tests of stmt.c, the data structures of prepared statements under
 *    pooling: the registry and its retirement after schema changes, client
 *    names, statement shapes (what a Describe showed), the unnamed
 *    statement, the queue of replies a server owes, and the rule that
 *    matches replies to it (with a cache fill's replies: which entry each
 *    reply goes to, and when each entry ends).
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

/* ---------------------------------------------------------------------------
 * Matching replies to the queue, as server.c does it
 */

/* One letter per action, for the traces below. */
static char
owner_letter(const HdExpect *e)
{
	switch ((HdExpectAction) e->action)
	{
		case HD_REPLY_FORWARD:
			return 'f';
		case HD_REPLY_CACHE_ANALYSIS:
			return 'a';
		case HD_REPLY_CACHE_RYW:
			return 'w';
		case HD_REPLY_FILL_BEGIN:
			return 'b';
		case HD_REPLY_FILL_OWN_PARSE:
			return 'p';
		case HD_REPLY_FILL_CHECK_SHAPE:
			return 'k';
		case HD_REPLY_FILL_DESCRIBE:
			return 'd';
		case HD_REPLY_FILL_STATEMENT:
			return 's';
		case HD_REPLY_FILL_PARAM_HASHES:
			return 'h';
		case HD_REPLY_FILL_END:
			return 'e';
		default:
			return '?';
	}
}

/*
 * Feed the reply types to the queue in server.c's order (handle_reply():
 * an asynchronous message goes to whoever the head is; then match, pop
 * what it ends, void to Sync after an extended-protocol error). The trace
 * has one token per reply: its type, the letter of the entry it goes to
 * ('-': none), then '^' (asynchronous), '!' (ended that entry) or '~' and
 * how many entries the error voided (the failed one and those skipped).
 */
static void
feed(HdExpectQueue *q, const char *replies, char *trace, size_t cap)
{
	size_t		n = 0;

	trace[0] = '\0';
	for (const char *r = replies; *r; r++)
	{
		HdExpect   *head = hd_expect_head(q);
		HdExpect	entry;
		char		owner = head ? owner_letter(head) : '-';
		char		effect[16] = "";

		switch (hd_expect_match(head, *r))
		{
			case HD_MATCH_ASYNC:
				strcpy(effect, "^");
				break;
			case HD_MATCH_ENDS:
				hd_expect_pop(q);
				strcpy(effect, "!");
				break;
			case HD_MATCH_VOIDS:
				{
					int			voided = 0;

					while (hd_expect_pop_void(q, &entry))
						voided++;
					snprintf(effect, sizeof(effect), "~%d", voided);
					break;
				}
			case HD_MATCH_UNOWED:
			case HD_MATCH_PART:
				break;
		}
		n += (size_t) snprintf(trace + n, cap - n, "%s%c%c%s", n ? " " : "", *r, owner, effect);
	}
}

/* The trace is the one wanted (else it is shown). */
static void
ok_trace(const char *trace, const char *want, const char *name)
{
	ok(strcmp(trace, want) == 0, name);
	if (strcmp(trace, want) != 0)
		printf("#   got: %s\n# wanted: %s\n", trace, want);
}

/*
 * A fill of an extended-protocol statement the client prepared earlier
 * (cache_fill.c): BEGIN + snapshot; our Parse (the batch has none), the
 * shape check's Describe S, the client's Describe S, Bind, Describe P,
 * Execute, Sync; COMMIT.
 */
static void
push_ext_fill(HdExpectQueue *q)
{
	hd_expect_push(q, HD_EXPECT_QUERY, HD_REPLY_FILL_BEGIN, 0, 0);
	hd_expect_push(q, HD_EXPECT_PARSE, HD_REPLY_FILL_OWN_PARSE, 0, 0);
	hd_expect_push(q, HD_EXPECT_DESCRIBE_STMT, HD_REPLY_FILL_CHECK_SHAPE, 7, 0);
	hd_expect_push(q, HD_EXPECT_DESCRIBE_STMT, HD_REPLY_FILL_DESCRIBE, 0, 0);
	hd_expect_push(q, HD_EXPECT_BIND, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_DESCRIBE_PORTAL, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_EXECUTE, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_SYNC, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_QUERY, HD_REPLY_FILL_END, 0, 0);
}

/*
 * A fill that hashes its parameters (cache_fill.c append_param_hashes()):
 * BEGIN + snapshot; the client's Parse, Bind, Execute, Sync; the hashing
 * statement's Parse, Bind, Execute, Sync, then its Close and Sync; COMMIT.
 */
static void
push_hashing_fill(HdExpectQueue *q)
{
	hd_expect_push(q, HD_EXPECT_QUERY, HD_REPLY_FILL_BEGIN, 0, 0);
	hd_expect_push(q, HD_EXPECT_PARSE, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_BIND, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_EXECUTE, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_SYNC, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_PARSE, HD_REPLY_FILL_PARAM_HASHES, 0, 0);
	hd_expect_push(q, HD_EXPECT_BIND, HD_REPLY_FILL_PARAM_HASHES, 0, 0);
	hd_expect_push(q, HD_EXPECT_EXECUTE, HD_REPLY_FILL_PARAM_HASHES, 0, 0);
	hd_expect_push(q, HD_EXPECT_SYNC, HD_REPLY_FILL_PARAM_HASHES, 0, 0);
	hd_expect_push(q, HD_EXPECT_CLOSE, HD_REPLY_FILL_PARAM_HASHES, 0, 0);
	hd_expect_push(q, HD_EXPECT_SYNC, HD_REPLY_FILL_PARAM_HASHES, 0, 0);
	hd_expect_push(q, HD_EXPECT_QUERY, HD_REPLY_FILL_END, 0, 0);
}

/* A fill of a simple Query: BEGIN + snapshot, the client's Query, COMMIT. */
static void
push_simple_fill(HdExpectQueue *q)
{
	hd_expect_push(q, HD_EXPECT_QUERY, HD_REPLY_FILL_BEGIN, 0, 0);
	hd_expect_push(q, HD_EXPECT_QUERY, HD_REPLY_FILL_STATEMENT, 0, 0);
	hd_expect_push(q, HD_EXPECT_QUERY, HD_REPLY_FILL_END, 0, 0);
}

static void
test_match_fill(void)
{
	HdExpectQueue q = {0};
	char		trace[512];

	push_ext_fill(&q);
	/* BEGIN; SELECT snapshot, state | 1 t T t T 2 T D D C Z | COMMIT */
	feed(&q, "CTDCZ" "1tTtT2TDDCZ" "CZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Db Cb Zb! 1p! tk Tk! td Td! 2s! Ts! Ds Ds Cs! Zs! Ce Ze!",
			 "a fill's replies: each to its part, each entry ended by its last reply");
	ok(q.count == 0 && !q.error_until_sync, "... and nothing is owed after its last ReadyForQuery");

	push_ext_fill(&q);
	/* the Bind fails: Describe P and Execute are skipped; the COMMIT is a ROLLBACK */
	feed(&q, "CTDCZ" "1tTtTEZ" "CZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Db Cb Zb! 1p! tk Tk! td Td! Es~3 Zs! Ce Ze!",
			 "an error in the fill's statement voids its entries up to its Sync, which ends it");
	ok(q.count == 0, "... and the fill's end still gets the COMMIT's replies");

	push_ext_fill(&q);
	/* the BEGIN part fails: the statement's Parse is refused in the aborted transaction */
	feed(&q, "CTEZ" "EZ" "CZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Eb Zb! Ep~6 Zs! Ce Ze!",
			 "an error in the BEGIN part stays the BEGIN's until its ReadyForQuery");

	push_simple_fill(&q);
	/* a simple Query that fails after its RowDescription */
	feed(&q, "CTDCZ" "TEZ" "CZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Db Cb Zb! Ts Es Zs! Ce Ze!",
			 "an error in a fill's simple Query goes on to its ReadyForQuery");

	push_simple_fill(&q);
	/* a notice (and a ParameterStatus) while the statement runs, one during COMMIT */
	feed(&q, "CTDCZ" "TNDSCZ" "NCZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Db Cb Zb! Ts Ns^ Ds Ss^ Cs Zs! Ne^ Ce Ze!",
			 "a notice goes to the part running when it comes, and ends nothing");
	ok(q.count == 0, "... the fill still ends at the COMMIT's ReadyForQuery");

	push_hashing_fill(&q);
	/* the client's statement, the hashes' row, the Close, COMMIT */
	feed(&q, "CTDCZ" "12DCZ" "12DCZ" "3Z" "CZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Db Cb Zb! 1s! 2s! Ds Cs! Zs! 1h! 2h! Dh Ch! Zh! 3h! Zh! Ce Ze!",
			 "a fill that hashes its parameters: their replies are the hashing's");
	ok(q.count == 0, "... and nothing is owed after the COMMIT's ReadyForQuery");

	push_hashing_fill(&q);
	/* the client's Bind fails: the hashing Parse is refused in the aborted transaction */
	feed(&q, "CTDCZ" "1EZ" "EZ" "3Z" "CZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Db Cb Zb! 1s! Es~2 Zs! Eh~3 Zh! 3h! Zh! Ce Ze!",
			 "the client's statement fails: the hashing's error is its own, its Close still runs");

	push_hashing_fill(&q);
	/* the hashing's Bind fails (a parameter the origin cannot hash) */
	feed(&q, "CTDCZ" "12DCZ" "1EZ" "3Z" "CZ", trace, sizeof(trace));
	ok_trace(trace, "Cb Tb Db Cb Zb! 1s! 2s! Ds Cs! Zs! 1h! Eh~2 Zh! 3h! Zh! Ce Ze!",
			 "the hashing fails after its Parse: its Close, in a batch of its own, still runs");
	ok(q.count == 0, "... and the fill still ends at the COMMIT's ReadyForQuery");

	/* after it: nothing owed */
	feed(&q, "NZ", trace, sizeof(trace));
	ok_trace(trace, "N-^ Z-", "replies with nothing owed belong to no entry");
	hd_expect_free(&q);
}

static void
test_match_agent_queries(void)
{
	HdExpectQueue q = {0};
	char		trace[256];

	hd_expect_push(&q, HD_EXPECT_PARSE, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	hd_expect_push(&q, HD_EXPECT_BIND, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	hd_expect_push(&q, HD_EXPECT_EXECUTE, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	hd_expect_push(&q, HD_EXPECT_SYNC, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	hd_expect_push(&q, HD_EXPECT_QUERY, HD_REPLY_CACHE_RYW, 0, 0);
	feed(&q, "12DCZ" "TDCZ", trace, sizeof(trace));
	ok_trace(trace, "1a! 2a! Da Ca! Za! Tw Dw Cw Zw!",
			 "an analysis's row and a read-your-writes row, each its own");
	hd_expect_push(&q, HD_EXPECT_PARSE, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	hd_expect_push(&q, HD_EXPECT_BIND, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	hd_expect_push(&q, HD_EXPECT_EXECUTE, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	hd_expect_push(&q, HD_EXPECT_SYNC, HD_REPLY_CACHE_ANALYSIS, 0, 0);
	feed(&q, "EZ", trace, sizeof(trace));
	ok(strcmp(trace, "Ea~3 Za!") == 0 && q.count == 0,
	   "an analysis whose Parse fails ends at its Sync's ReadyForQuery");

	/* an error with no Sync queued: the rest of the batch is void */
	hd_expect_push(&q, HD_EXPECT_BIND, HD_REPLY_FORWARD, 0, 0);
	hd_expect_push(&q, HD_EXPECT_EXECUTE, HD_REPLY_FORWARD, 0, 0);
	feed(&q, "E", trace, sizeof(trace));
	ok(strcmp(trace, "Ef~2") == 0 && q.count == 0 && q.error_until_sync,
	   "an error before the batch's Sync was sent voids all and waits for it");
	hd_expect_free(&q);
}

int
main(void)
{
	test_shapes();
	test_registry();
	test_unnamed();
	test_expect();
	test_match_fill();
	test_match_agent_queries();
	return tap_done();
}
