/*
 * test_ext_batch.c
 *    Unit tests of ext_batch.c: which extended-protocol batches the cache
 *    may answer as a whole, and that malformed, partial or oversized input
 *    is refused or waited for, never misread. Prints TAP; run by
 *    t/008_ext_batch_unit.pl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/be.h"
#include "pgwire/ext_batch.h"
#include "tap.h"

/* A buffer of frontend messages being built. */
typedef struct Buf
{
	char		data[4096];
	size_t		len;
} Buf;

static void
put(Buf *b, const void *p, size_t n)
{
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

static void
put_u32(Buf *b, unsigned v)
{
	unsigned char x[4];

	hd_put_u32(x, v);
	put(b, x, 4);
}

static void
put_u16(Buf *b, unsigned v)
{
	unsigned char x[2];

	hd_put_u16(x, (uint16_t) v);
	put(b, x, 2);
}

/* Begin a message; msg_end() fills its length in. */
static size_t
msg_begin(Buf *b, char type)
{
	size_t		at = b->len;

	put(b, &type, 1);
	put_u32(b, 0);
	return at;
}

static void
msg_end(Buf *b, size_t at)
{
	unsigned	len = (unsigned) (b->len - at - 1);

	hd_put_u32(b->data + at + 1, len);
}

static void
parse(Buf *b, const char *name, const char *sql, int ntypes)
{
	size_t		at = msg_begin(b, 'P');

	put(b, name, strlen(name) + 1);
	put(b, sql, strlen(sql) + 1);
	put_u16(b, ntypes);
	for (int i = 0; i < ntypes; i++)
		put_u32(b, 23);
	msg_end(b, at);
}

static void
bind(Buf *b, const char *portal, const char *stmt, const char *value)
{
	size_t		at = msg_begin(b, 'B');

	put(b, portal, strlen(portal) + 1);
	put(b, stmt, strlen(stmt) + 1);
	put_u16(b, 0);
	put_u16(b, 1);
	if (value)
	{
		put_u32(b, strlen(value));
		put(b, value, strlen(value));
	}
	else
		put_u32(b, 0xFFFFFFFFu);
	put_u16(b, 1);
	put_u16(b, 1);
	msg_end(b, at);
}

static void
describe(Buf *b, char kind, const char *name)
{
	size_t		at = msg_begin(b, 'D');

	put(b, &kind, 1);
	put(b, name, strlen(name) + 1);
	msg_end(b, at);
}

static void
execute(Buf *b, const char *portal, unsigned rows)
{
	size_t		at = msg_begin(b, 'E');

	put(b, portal, strlen(portal) + 1);
	put_u32(b, rows);
	msg_end(b, at);
}

static void
simple(Buf *b, char type)
{
	msg_end(b, msg_begin(b, type));
}

static HdBatchResult
check(const Buf *b, size_t avail, HdExtBatch *batch, bool *has_execute, const char **why)
{
	return hd_ext_batch_parse(b->data, avail, 64 * 1024, batch, has_execute, why);
}

static void
expect_no(const Buf *b, const char *want_why, bool want_execute, const char *name)
{
	HdExtBatch	batch;
	bool		has_execute;
	const char *why;
	char		label[200];

	snprintf(label, sizeof(label), "%s: refused (%s)", name, want_why);
	ok(check(b, b->len, &batch, &has_execute, &why) == HD_BATCH_NO && why &&
	   strcmp(why, want_why) == 0 && has_execute == want_execute, label);
}

static void
test_shapes(void)
{
	Buf			b = {0};
	HdExtBatch	batch;
	bool		has_execute;
	const char *why;

	/* node-postgres / libpq: Parse, Bind, Describe P, Execute, Sync */
	parse(&b, "", "SELECT $1", 0);
	bind(&b, "", "", "7");
	describe(&b, 'P', "");
	execute(&b, "", 0);
	simple(&b, 'S');
	ok(check(&b, b.len, &batch, &has_execute, &why) == HD_BATCH_OK, "PBDES accepted");
	ok(strcmp(batch.shape, "PBDE") == 0, "its shape is PBDE");
	ok(batch.len == b.len, "the batch is every byte up to its Sync");
	ok(batch.has_parse && strcmp(batch.query, "SELECT $1") == 0, "the Parse's text");
	ok(batch.nparams == 1 && batch.describe_portal && !batch.describe_stmt, "one value, Describe P");
	ok(batch.types_len == 2, "no parameter types given");

	/* every shorter prefix waits for the rest */
	{
		bool		all_more = true;

		for (size_t n = 0; n < b.len; n++)
			all_more &= check(&b, n, &batch, &has_execute, &why) == HD_BATCH_MORE;
		ok(all_more, "every prefix of it: wait for more");
	}

	/* with more after the Sync: only the batch */
	{
		Buf			two = b;

		parse(&two, "", "SELECT 2", 0);
		ok(check(&two, two.len, &batch, &has_execute, &why) == HD_BATCH_OK &&
		   batch.len == b.len, "bytes after the Sync are not part of it");
	}

	/* Postgres.js: Parse name, Describe S name, Bind name, Execute, Sync */
	memset(&b, 0, sizeof(b));
	parse(&b, "s1", "SELECT $1::int", 1);
	describe(&b, 'S', "s1");
	bind(&b, "", "s1", NULL);
	execute(&b, "", 0);
	simple(&b, 'S');
	ok(check(&b, b.len, &batch, &has_execute, &why) == HD_BATCH_OK &&
	   strcmp(batch.shape, "PSBE") == 0 && batch.describe_stmt, "PSBES (named) accepted");
	ok(batch.types_len == 6 && strcmp(batch.stmt_name, "s1") == 0, "its types and statement");

	/* a named statement prepared before: Bind, Execute, Sync */
	memset(&b, 0, sizeof(b));
	bind(&b, "", "s1", "1");
	execute(&b, "", 0);
	simple(&b, 'S');
	ok(check(&b, b.len, &batch, &has_execute, &why) == HD_BATCH_OK &&
	   strcmp(batch.shape, "BE") == 0 && !batch.has_parse && batch.query == NULL,
	   "BES accepted, without a text");
}

static void
test_refusals(void)
{
	Buf			b = {0};

	parse(&b, "", "SELECT 1", 0);
	bind(&b, "", "", "1");
	execute(&b, "", 10);
	simple(&b, 'S');
	expect_no(&b, "row limit", true, "Execute with a row limit");

	memset(&b, 0, sizeof(b));
	parse(&b, "", "SELECT 1", 0);
	bind(&b, "p1", "", "1");
	execute(&b, "p1", 0);
	simple(&b, 'S');
	expect_no(&b, "named portal", true, "a named portal");

	memset(&b, 0, sizeof(b));
	parse(&b, "", "SELECT 1", 0);
	bind(&b, "", "", "1");
	execute(&b, "", 0);
	bind(&b, "", "", "2");
	execute(&b, "", 0);
	simple(&b, 'S');
	expect_no(&b, "several statements", true, "two Executes before one Sync");

	memset(&b, 0, sizeof(b));
	parse(&b, "a", "SELECT 1", 0);
	describe(&b, 'S', "a");
	simple(&b, 'H');
	expect_no(&b, "Flush", false, "Parse, Describe, Flush (no Execute yet)");

	memset(&b, 0, sizeof(b));
	parse(&b, "a", "SELECT 1", 0);
	bind(&b, "", "b", "1");
	execute(&b, "", 0);
	simple(&b, 'S');
	expect_no(&b, "Bind of another statement", true, "Parse a, Bind b");

	memset(&b, 0, sizeof(b));
	parse(&b, "a", "SELECT 1", 0);
	simple(&b, 'S');
	expect_no(&b, "no Execute", false, "Parse, Sync");

	memset(&b, 0, sizeof(b));
	parse(&b, "", "SELECT 1", 0);
	{
		size_t		at = msg_begin(&b, 'C');

		put(&b, "S", 1);
		put(&b, "x", 2);
		msg_end(&b, at);
	}
	expect_no(&b, "other messages", false, "a Close");

	/* a Bind whose value runs past the message */
	memset(&b, 0, sizeof(b));
	parse(&b, "", "SELECT 1", 0);
	{
		size_t		at = msg_begin(&b, 'B');

		put(&b, "\0\0", 2);
		put_u16(&b, 0);
		put_u16(&b, 1);
		put_u32(&b, 1000);
		put(&b, "abc", 3);
		put_u16(&b, 0);
		msg_end(&b, at);
	}
	execute(&b, "", 0);
	simple(&b, 'S');
	expect_no(&b, "malformed Bind", true, "a Bind value longer than its message");

	/* a Parse with a type count past its end */
	memset(&b, 0, sizeof(b));
	{
		size_t		at = msg_begin(&b, 'P');

		put(&b, "\0SELECT 1\0", 10);
		put_u16(&b, 5);
		msg_end(&b, at);
	}
	simple(&b, 'S');
	expect_no(&b, "malformed Parse", false, "a Parse with missing types");

	/* a length below 4 */
	memset(&b, 0, sizeof(b));
	put(&b, "P\0\0\0\2", 5);
	expect_no(&b, "malformed message", false, "a length below 4");
}

static void
test_sizes(void)
{
	Buf			b = {0};
	HdExtBatch	batch;
	bool		has_execute;
	const char *why;
	const char	hdr[5] = {'P', 0, 0x01, 0x11, 0x74};	/* a length of 70004 */

	/* a message longer than the limit: refused from its header on, not waited for */
	put(&b, hdr, 5);
	ok(check(&b, b.len, &batch, &has_execute, &why) == HD_BATCH_NO &&
	   strcmp(why, "too large") == 0, "a 70 kB Parse: too large from its header");

	/* small messages adding up past the limit */
	memset(&b, 0, sizeof(b));
	parse(&b, "", "SELECT 1", 0);
	ok(hd_ext_batch_parse(b.data, b.len, b.len - 1, &batch, &has_execute, &why) == HD_BATCH_NO &&
	   strcmp(why, "too large") == 0, "a batch longer than the limit: too large");
}

int
main(void)
{
	test_shapes();
	test_refusals();
	test_sizes();
	return tap_done();
}
