/*
 * test_stream_record.c
 *    Unit tests of stream_record.c, the agent's decoder of the compact
 *    change-stream format, on records the extension itself wrote.
 *
 * The fixtures (agent/tests/data/, captured by scripts/capture-stream-fixtures
 * from a throwaway cluster) are, for each NAME:
 *   stream_NAME.bin        one compact record, as the output plugin wrote it;
 *   stream_NAME.txt        the plugin's text rendering of the same record,
 *                          include-* options all on;
 *   stream_NAME.bare.txt   the same, include-* options all off.
 * For each fixture: the record decodes; its fields are what the transaction
 * that made it did (FIXTURES below, by name; xids, LSNs, OIDs and times
 * differ between captures, so those are only checked for being plausible);
 * hd_record_render_text() equals the extension's text byte for byte under both
 * sets of switches; and every proper prefix, the record with a byte added and
 * every one-bit flip of it is refused with an offset within the input (at most
 * its length: a field may start where the input ends) or, a flip inside a
 * value, decoded; never read out of range. Inputs are placed
 * against PROT_NONE guard pages, so a read past either end is a crash, not a
 * silent pass. A fixture in the directory that FIXTURES does not check, or a
 * checked one missing, fails too.
 *
 * usage: test_stream_record [DATADIR]   (default: "data" next to the program)
 * Prints TAP; run by make agent-unit-check and t/016_stream_record_unit.pl.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stream/stream_record.h"
#include "tap.h"

#define FIRST_NORMAL_OID 16384	/* PostgreSQL's FirstNormalObjectId */
/* catalogs DDL objects belong to (fixed OIDs) */
#define PG_CLASS_OID 1259
#define PG_PROC_OID 1255
#define PG_TYPE_OID 1247
#define PG_NAMESPACE_OID 2615
#define PG_CONSTRAINT_OID 2606
/* commit times (microseconds since 2000-01-01) between 2020 and 2100 */
#define TIME_2020 INT64_C(631152000000000)
#define TIME_2100 INT64_C(3155760000000000)

static const char *data_dir;

/* ------------------------------------------------------------------------
 * Reading fixtures, and the guarded buffer the decoder reads them from.
 */

/* The whole file, malloc'd (NUL-terminated for text); NULL if it cannot be read. */
static unsigned char *
read_fixture(const char *name, const char *suffix, size_t *len)
{
	char		path[1024];
	FILE	   *f;
	unsigned char *buf = NULL;
	size_t		cap = 0;

	*len = 0;
	snprintf(path, sizeof(path), "%s/stream_%s%s", data_dir, name, suffix);
	if ((f = fopen(path, "rb")) == NULL)
	{
		printf("# cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;)
	{
		size_t		n;

		if (*len + 4096 + 1 > cap)
		{
			cap = cap * 2 + 4096 + 1;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + *len, 1, cap - *len - 1, f);
		*len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

/*
 * One mapping: a PROT_NONE page, GUARD_ROOM readable bytes, a PROT_NONE page.
 * at_end() puts bytes so that the last one is just before the second guard,
 * at_start() so that the first one is just after the first.
 */
#define GUARD_ROOM (64 * 1024)
static unsigned char *guard_room;

static void
guard_init(void)
{
	size_t		page = (size_t) sysconf(_SC_PAGESIZE);
	unsigned char *map;

	map = mmap(NULL, GUARD_ROOM + 2 * page, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || mprotect(map, page, PROT_NONE) != 0 ||
		mprotect(map + page + GUARD_ROOM, page, PROT_NONE) != 0)
	{
		perror("mmap");
		exit(2);
	}
	guard_room = map + page;
}

static const unsigned char *
at_end(const unsigned char *bytes, size_t len)
{
	unsigned char *p = guard_room + GUARD_ROOM - len;

	memmove(p, bytes, len);
	return p;
}

static const unsigned char *
at_start(const unsigned char *bytes, size_t len)
{
	memmove(guard_room, bytes, len);
	return guard_room;
}

/* ------------------------------------------------------------------------
 * Field checks: check() prints what is wrong as a TAP comment and remembers it.
 */

static bool fields_ok;
static const char *current;

static void
check(bool condition, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
check(bool condition, const char *fmt,...)
{
	va_list		ap;

	if (condition)
		return;
	fields_ok = false;
	printf("# %s: ", current);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static bool
streq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Invalidate-all reason ("" for none), relation count, DDL object count. */
static void
check_record(const HdRecord *rec, const char *all_reason, uint32_t nrelations, uint32_t nddls)
{
	bool		heartbeat = !all_reason[0] && nrelations == 0 && nddls == 0;

	/* captured as version 1 (or again as 2): no watched columns either way */
	check(rec->version >= HD_RECORD_VERSION_MIN && rec->version <= HD_RECORD_VERSION,
		  "version %u", rec->version);
	check(rec->flags == ((all_reason[0] ? HD_FLAG_INVALIDATE_ALL : 0) |
						 (heartbeat ? HD_FLAG_HEARTBEAT : 0)),
		  "flags 0x%04x", rec->flags);
	check(streq(rec->all_reason, all_reason), "invalidate-all reason \"%s\", expected \"%s\"",
		  rec->all_reason, all_reason);
	check(rec->nrelations == nrelations, "%" PRIu32 " relations, expected %" PRIu32,
		  rec->nrelations, nrelations);
	check(rec->nddls == nddls, "%" PRIu32 " DDL objects, expected %" PRIu32, rec->nddls, nddls);
	/* what differs between captures: only plausible */
	check(rec->xid >= 3, "xid %" PRIu64, rec->xid);
	check(rec->commit_lsn > 0 && rec->end_lsn > rec->commit_lsn,
		  "commit LSN %" PRIX64 ", end LSN %" PRIX64, rec->commit_lsn, rec->end_lsn);
	check(rec->commit_time > TIME_2020 && rec->commit_time < TIME_2100,
		  "commit time %" PRId64, rec->commit_time);
	for (uint32_t i = 0; i < rec->nrelations; i++)
	{
		const HdRelation *rel = &rec->relations[i];

		check(rel->rel.oid >= FIRST_NORMAL_OID, "relation %s: OID %" PRIu32,
			  rel->rel.name, rel->rel.oid);
		for (uint32_t a = 0; a < rel->nancestors; a++)
			check(rel->ancestors[a].oid >= FIRST_NORMAL_OID && rel->ancestors[a].oid != rel->rel.oid,
				  "relation %s: ancestor OID %" PRIu32, rel->rel.name, rel->ancestors[a].oid);
		check(rel->nwatched == 0, "relation %s: %" PRIu32 " watched columns", rel->rel.name,
			  rel->nwatched);
	}
}

/*
 * Relation i: "schema.name" (split at the first '.'), kinds, rows, ancestors
 * as "schema.name" nearest first (NULL-terminated, or NULL for none).
 */
static const HdRelation *
check_relation(const HdRecord *rec, uint32_t i, const char *qualified, uint8_t kinds,
			   HdRowsReason rows, const char *const *ancestors)
{
	const HdRelation *rel;
	char		schema[128];
	const char *dot = strchr(qualified, '.');
	uint32_t	n = 0;

	if (i >= rec->nrelations)
	{
		check(false, "no relation %" PRIu32 " (%s)", i + 1, qualified);
		return NULL;
	}
	rel = &rec->relations[i];
	snprintf(schema, sizeof(schema), "%.*s", (int) (dot - qualified), qualified);
	check(streq(rel->rel.schema, schema) && streq(rel->rel.name, dot + 1),
		  "relation %" PRIu32 " is %s.%s, expected %s", i + 1, rel->rel.schema, rel->rel.name,
		  qualified);
	check(rel->kinds == kinds, "relation %s: kinds 0x%02x, expected 0x%02x", qualified,
		  rel->kinds, kinds);
	check(rel->rows == rows, "relation %s: rows %s, expected %s", qualified,
		  hd_rows_reason_name(rel->rows), hd_rows_reason_name(rows));
	while (ancestors && ancestors[n])
		n++;
	check(rel->nancestors == n, "relation %s: %" PRIu32 " ancestors, expected %" PRIu32,
		  qualified, rel->nancestors, n);
	for (uint32_t a = 0; a < n && a < rel->nancestors; a++)
	{
		char		got[256];

		snprintf(got, sizeof(got), "%s.%s", rel->ancestors[a].schema, rel->ancestors[a].name);
		check(streq(got, ancestors[a]), "relation %s: ancestor %" PRIu32 " is %s, expected %s",
			  qualified, a + 1, got, ancestors[a]);
	}
	if (rows != HD_ROWS_KEYS)
		check(rel->nkeycols == 0 && rel->nkeys == 0, "relation %s: keys listed with all rows",
			  qualified);
	return rel;
}

/*
 * The key columns (ncols of them) and the keys: nkeys * ncols values, key by
 * key, NULL for a NULL value.
 */
static void
check_keys(const HdRelation *rel, uint32_t ncols, const char *const *cols, uint32_t nkeys,
		   const char *const *values)
{
	if (rel == NULL)
		return;
	check(rel->nkeycols == ncols, "relation %s: %" PRIu32 " key columns, expected %" PRIu32,
		  rel->rel.name, rel->nkeycols, ncols);
	check(rel->nkeys == nkeys, "relation %s: %" PRIu32 " keys, expected %" PRIu32,
		  rel->rel.name, rel->nkeys, nkeys);
	if (rel->nkeycols != ncols || rel->nkeys != nkeys)
		return;
	for (uint32_t c = 0; c < ncols; c++)
		check(streq(rel->keycols[c], cols[c]), "relation %s: key column %" PRIu32 " is %s, expected %s",
			  rel->rel.name, c + 1, rel->keycols[c], cols[c]);
	for (size_t v = 0; v < (size_t) nkeys * ncols; v++)
	{
		const char *got = rel->keys[v].text;

		check(values[v] == NULL ? got == NULL : streq(got, values[v]),
			  "relation %s: key %zu value %zu is %s%s%s, expected %s",
			  rel->rel.name, v / ncols + 1, v % ncols + 1, got ? "'" : "", got ? got : "NULL",
			  got ? "'" : "", values[v] ? values[v] : "NULL");
	}
}

static void
check_ddl(const HdRecord *rec, uint32_t i, const char *tag, const char *object_type,
		  const char *identity, uint32_t classid)
{
	const HdDdlObject *ddl;

	if (i >= rec->nddls)
	{
		check(false, "no DDL object %" PRIu32 " (%s)", i + 1, tag);
		return;
	}
	ddl = &rec->ddls[i];
	check(streq(ddl->tag, tag) && streq(ddl->object_type, object_type) &&
		  streq(ddl->identity, identity),
		  "DDL object %" PRIu32 " is \"%s\" \"%s\" \"%s\", expected \"%s\" \"%s\" \"%s\"", i + 1,
		  ddl->tag, ddl->object_type, ddl->identity, tag, object_type, identity);
	check(ddl->classid == classid, "DDL object %" PRIu32 ": catalog %" PRIu32 ", expected %" PRIu32,
		  i + 1, ddl->classid, classid);
	check(classid == 0 ? ddl->objid == 0 : ddl->objid >= FIRST_NORMAL_OID,
		  "DDL object %" PRIu32 ": object OID %" PRIu32, i + 1, ddl->objid);
}

/* ------------------------------------------------------------------------
 * What each captured transaction did (scripts/capture-stream-fixtures).
 */

#define NONE NULL
#define LIST(...) ((const char *const[]) {__VA_ARGS__})
#define ANCESTORS(...) ((const char *const[]) {__VA_ARGS__, NULL})

static void
fx_insert(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.items", HD_KIND_INSERT, HD_ROWS_KEYS, NONE),
			   1, LIST("id"), 3, LIST("1", "2", "3"));
}

static void
fx_update(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.items", HD_KIND_UPDATE, HD_ROWS_KEYS, NONE),
			   1, LIST("id"), 1, LIST("1"));
}

/* a changed key: the old one, then the new one */
static void
fx_update_key(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.items", HD_KIND_UPDATE, HD_ROWS_KEYS, NONE),
			   1, LIST("id"), 2, LIST("2", "10"));
}

static void
fx_delete(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.items", HD_KIND_DELETE, HD_ROWS_KEYS, NONE),
			   1, LIST("id"), 1, LIST("3"));
}

static void
fx_quoted_keys(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.Odd \"Name\"", HD_KIND_INSERT, HD_ROWS_KEYS, NONE),
			   2, LIST("k", "n"), 5,
			   LIST("o'brien", "1", "C:\\dir\\file", "2", "two\nlines", "3", "", "0",
					"\xc3\xbcn\xc3\xaf \"q\"", "-5"));
}

static void
fx_keyword_columns(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.kw", HD_KIND_INSERT, HD_ROWS_KEYS, NONE),
			   2, LIST("order", "user"), 2, LIST("1", "select", "2", "\\"));
}

/* relations in the order first touched; one without a key beside one with */
static void
fx_multi(const HdRecord *rec)
{
	check_record(rec, "", 2, 0);
	check_relation(rec, 0, "public.nokey", HD_KIND_INSERT | HD_KIND_DELETE,
				   HD_ROWS_NO_IDENTITY, NONE);
	check_keys(check_relation(rec, 1, "public.items", HD_KIND_INSERT | HD_KIND_UPDATE,
							  HD_ROWS_KEYS, NONE),
			   1, LIST("id"), 1, LIST("4"));
}

/* REPLICA IDENTITY NOTHING: a DELETE logs no old row */
static void
fx_no_identity(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_relation(rec, 0, "public.ident_nothing", HD_KIND_DELETE, HD_ROWS_NO_IDENTITY, NONE);
}

static void
fx_key_cap(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_relation(rec, 0, "public.bulk", HD_KIND_INSERT, HD_ROWS_KEY_CAP, NONE);
}

static void
fx_key_size(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_relation(rec, 0, "public.big", HD_KIND_INSERT, HD_ROWS_KEY_SIZE, NONE);
}

static void
fx_toast(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_relation(rec, 0, "public.toasty", HD_KIND_UPDATE, HD_ROWS_TOAST, NONE);
}

static void
fx_partition(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.meas_2024_a", HD_KIND_INSERT, HD_ROWS_KEYS,
							  ANCESTORS("public.meas_2024", "public.meas")),
			   2, LIST("id", "ts"), 1, LIST("1", "2024-02-02"));
}

static void
fx_partition_update(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.meas_2024_b", HD_KIND_UPDATE, HD_ROWS_KEYS,
							  ANCESTORS("public.meas_2024", "public.meas")),
			   2, LIST("id", "ts"), 1, LIST("7", "2024-03-03"));
}

/* multiple inheritance: both parents, in declaration order */
static void
fx_inherit(const HdRecord *rec)
{
	check_record(rec, "", 1, 0);
	check_keys(check_relation(rec, 0, "public.inh_child", HD_KIND_INSERT, HD_ROWS_KEYS,
							  ANCESTORS("public.inh_a", "public.inh_b")),
			   1, LIST("id"), 1, LIST("1"));
}

/* TRUNCATE of a partitioned table: the table and each partition, breadth first */
static void
fx_truncate(const HdRecord *rec)
{
	check_record(rec, "", 5, 0);
	check_relation(rec, 0, "public.meas", HD_KIND_TRUNCATE, HD_ROWS_TRUNCATE, NONE);
	check_relation(rec, 1, "public.meas_2024", HD_KIND_TRUNCATE, HD_ROWS_TRUNCATE,
				   ANCESTORS("public.meas"));
	check_relation(rec, 2, "public.meas_2025", HD_KIND_TRUNCATE, HD_ROWS_TRUNCATE,
				   ANCESTORS("public.meas"));
	check_relation(rec, 3, "public.meas_2024_a", HD_KIND_TRUNCATE, HD_ROWS_TRUNCATE,
				   ANCESTORS("public.meas_2024", "public.meas"));
	check_relation(rec, 4, "public.meas_2024_b", HD_KIND_TRUNCATE, HD_ROWS_TRUNCATE,
				   ANCESTORS("public.meas_2024", "public.meas"));
}

/* a DDL entry carries no ancestors: the family is named entry by entry */
static void
fx_ddl_table(const HdRecord *rec)
{
	check_record(rec, "", 1, 1);
	check_relation(rec, 0, "public.items", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_ddl(rec, 0, "ALTER TABLE", "table", "public.items", PG_CLASS_OID);
}

static void
fx_ddl_detach(const HdRecord *rec)
{
	check_record(rec, "", 5, 1);
	check_relation(rec, 0, "public.meas", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_relation(rec, 1, "public.meas_2024", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_relation(rec, 2, "public.meas_2025", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_relation(rec, 3, "public.meas_2024_a", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_relation(rec, 4, "public.meas_2024_b", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_ddl(rec, 0, "ALTER TABLE", "table", "public.meas", PG_CLASS_OID);
}

static void
fx_ddl_function(const HdRecord *rec)
{
	check_record(rec, "", 0, 1);
	check_ddl(rec, 0, "CREATE FUNCTION", "function", "public.add_one(integer)", PG_PROC_OID);
}

static void
fx_grant(const HdRecord *rec)
{
	check_record(rec, "GRANT", 0, 1);
	check_ddl(rec, 0, "GRANT", "TABLE", "", 0);
}

static void
fx_role_change(const HdRecord *rec)
{
	check_record(rec, "role change", 0, 0);
}

/* DROP SCHEMA ... CASCADE: the table is named, but its parents cannot be known */
static void
fx_dropped_dependency(const HdRecord *rec)
{
	check_record(rec, "table dropped as a dependency", 1, 6);
	check_relation(rec, 0, "doomed.t", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_ddl(rec, 0, "DROP SCHEMA", "schema", "doomed", PG_NAMESPACE_OID);
	check_ddl(rec, 1, "DROP SCHEMA", "table", "doomed.t", PG_CLASS_OID);
	check_ddl(rec, 2, "DROP SCHEMA", "type", "doomed.t", PG_TYPE_OID);
	check_ddl(rec, 3, "DROP SCHEMA", "type", "doomed.t[]", PG_TYPE_OID);
	check_ddl(rec, 4, "DROP SCHEMA", "table constraint", "t_pkey on doomed.t", PG_CONSTRAINT_OID);
	check_ddl(rec, 5, "DROP SCHEMA", "index", "doomed.t_pkey", PG_CLASS_OID);
}

/* everything at once: invalidate all, row changes, DDL, in commit order */
static void
fx_mixed(const HdRecord *rec)
{
	check_record(rec, "GRANT", 3, 2);
	check_keys(check_relation(rec, 0, "public.items", HD_KIND_UPDATE, HD_ROWS_KEYS, NONE),
			   1, LIST("id"), 1, LIST("1"));
	check_keys(check_relation(rec, 1, "public.Odd \"Name\"", HD_KIND_INSERT, HD_ROWS_KEYS, NONE),
			   2, LIST("k", "n"), 1, LIST("mixed", "9"));
	check_relation(rec, 2, "public.kw", HD_KIND_DDL, HD_ROWS_DDL, NONE);
	check_ddl(rec, 0, "ALTER TABLE", "table", "public.kw", PG_CLASS_OID);
	check_ddl(rec, 1, "GRANT", "TABLE", "", 0);
}

/* a committed transaction with nothing to report (a temporary table) */
static void
fx_heartbeat(const HdRecord *rec)
{
	check_record(rec, "", 0, 0);
}

static const struct
{
	const char *name;
	void		(*check) (const HdRecord *rec);
}			FIXTURES[] = {
	{"insert", fx_insert},
	{"update", fx_update},
	{"update_key", fx_update_key},
	{"delete", fx_delete},
	{"quoted_keys", fx_quoted_keys},
	{"keyword_columns", fx_keyword_columns},
	{"multi", fx_multi},
	{"no_identity", fx_no_identity},
	{"key_cap", fx_key_cap},
	{"key_size", fx_key_size},
	{"toast", fx_toast},
	{"partition", fx_partition},
	{"partition_update", fx_partition_update},
	{"inherit", fx_inherit},
	{"truncate", fx_truncate},
	{"ddl_table", fx_ddl_table},
	{"ddl_detach", fx_ddl_detach},
	{"ddl_function", fx_ddl_function},
	{"grant", fx_grant},
	{"role_change", fx_role_change},
	{"dropped_dependency", fx_dropped_dependency},
	{"mixed", fx_mixed},
	{"heartbeat", fx_heartbeat},
};

#define NFIXTURES (sizeof(FIXTURES) / sizeof(FIXTURES[0]))

/* ------------------------------------------------------------------------
 * The decoder against each fixture.
 */

/* A refusal as the contract says: -1, an offset within the input, named in the message. */
static bool
refused_properly(int rc, const HdDecodeError *err, size_t len)
{
	char		prefix[64];

	snprintf(prefix, sizeof(prefix), "at offset %zu: ", err->offset);
	return rc == -1 && err->offset <= len && strncmp(err->message, prefix, strlen(prefix)) == 0;
}

static void
test_render(const char *name, const HdRecord *rec, const char *suffix, bool all_on)
{
	HdTextOptions opts = {all_on, all_on, all_on, all_on};
	size_t		len;
	char	   *want = (char *) read_fixture(name, suffix, &len);
	char	   *got = hd_record_render_text(rec, &opts);
	char		title[128];
	bool		same = want != NULL && got != NULL && strlen(want) == len && strcmp(got, want) == 0;

	snprintf(title, sizeof(title), "%s: renders as the extension's text (include-* %s)",
			 name, all_on ? "on" : "off");
	ok(same, title);
	if (!same && want != NULL && got != NULL)
		printf("# extension:\n# %s\n# agent:\n# %s\n", want, got);
	free(want);
	free(got);
}

/* Every proper prefix, at both guards; and one byte too many. */
static void
test_truncations(const char *name, const unsigned char *bytes, size_t len)
{
	unsigned char *extended = malloc(len + 1);
	HdRecord	rec;
	HdDecodeError err;
	int			bad = 0;
	int			rc;
	char		title[160];

	for (size_t n = 0; n < len; n++)
	{
		rc = hd_record_decode(at_end(bytes, n), n, &rec, &err);
		if (!refused_properly(rc, &err, n))
		{
			if (bad++ == 0)
				printf("# %s: %zu of %zu bytes: rc %d, \"%s\"\n", name, n, len, rc, err.message);
		}
		hd_record_free(&rec);
		rc = hd_record_decode(at_start(bytes, n), n, &rec, &err);
		if (!refused_properly(rc, &err, n))
			bad++;
		hd_record_free(&rec);
	}
	snprintf(title, sizeof(title), "%s: each of its %zu truncations is refused with an offset",
			 name, len);
	ok(bad == 0, title);

	memcpy(extended, bytes, len);
	extended[len] = 0;
	rc = hd_record_decode(at_end(extended, len + 1), len + 1, &rec, &err);
	snprintf(title, sizeof(title), "%s: a byte after the record is refused at offset %zu",
			 name, len);
	ok(refused_properly(rc, &err, len + 1) && err.offset == len &&
	   strstr(err.message, "unexpected bytes") != NULL, title);
	if (rc != -1 || err.offset != len)
		printf("# rc %d, \"%s\"\n", rc, err.message);
	hd_record_free(&rec);
	free(extended);
}

/*
 * Every one-bit flip: decoded (a flip inside a value or an OID) or refused
 * with an offset; never a crash or a read out of range. The header's fields
 * that a consumer must check are refused exactly where they are: the tag
 * (offset 0), the version (1), the unknown flag bits (2), the first
 * relation's unknown kind bits and rows codes.
 */
static void
test_flips(const char *name, const unsigned char *bytes, size_t len, const HdRecord *orig)
{
	unsigned char *copy = malloc(len);
	size_t		rel_at = 36 + 4 + strlen(orig->all_reason) + 4;
	int			bad = 0;
	int			decoded = 0;
	int			misplaced = 0;
	char		title[160];

	for (size_t i = 0; i < len; i++)
	{
		for (int bit = 0; bit < 8; bit++)
		{
			HdRecord	rec;
			HdDecodeError err;
			int			rc;
			long		exact = -1;	/* where it must be refused, if it must */
			unsigned	b = 1u << bit;

			memcpy(copy, bytes, len);
			copy[i] ^= (unsigned char) b;
			rc = hd_record_decode(at_end(copy, len), len, &rec, &err);
			if (rc == 0)
			{
				char	   *text = hd_record_render_text(&rec, &(HdTextOptions) {true, true, true, true});

				if (text == NULL)
					bad++;
				free(text);
				decoded++;
			}
			else if (!refused_properly(rc, &err, len))
			{
				if (bad++ == 0)
					printf("# %s: bit %d of byte %zu: rc %d, \"%s\"\n", name, bit, i, rc, err.message);
			}
			hd_record_free(&rec);

			if (i <= 1 || i == 2 || (i == 3 && b > HD_FLAG_ALL))
				exact = i <= 1 ? (long) i : 2;
			else if (orig->nrelations > 0 && i == rel_at + 4 && b > HD_KIND_ALL)
				exact = (long) i;	/* kinds */
			else if (orig->nrelations > 0 && i == rel_at + 5 && (orig->relations[0].rows ^ b) > HD_ROWS_LAST)
				exact = (long) i;	/* rows */
			if (exact >= 0 && (rc != -1 || err.offset != (size_t) exact))
			{
				if (misplaced++ == 0)
					printf("# %s: bit %d of byte %zu: rc %d, \"%s\", expected a refusal at %ld\n",
						   name, bit, i, rc, err.message, exact);
			}
		}
	}
	snprintf(title, sizeof(title),
			 "%s: its %zu one-bit flips are decoded (%d) or refused with an offset",
			 name, 8 * len, decoded);
	ok(bad == 0, title);
	snprintf(title, sizeof(title),
			 "%s: flips of the tag, version, flags, kinds and rows are refused where they are", name);
	ok(misplaced == 0, title);
	free(copy);
}

static void
test_fixture(const char *name, void (*checker) (const HdRecord *rec))
{
	size_t		len;
	unsigned char *bytes = read_fixture(name, ".bin", &len);
	HdRecord	rec;
	HdDecodeError err;
	char		title[128];
	int			rc;

	snprintf(title, sizeof(title), "%s: decodes", name);
	if (bytes == NULL || len > GUARD_ROOM - 1)
	{
		ok(false, title);
		free(bytes);
		return;
	}
	rc = hd_record_decode(at_end(bytes, len), len, &rec, &err);
	ok(rc == 0, title);
	if (rc != 0)
	{
		printf("# %s\n", err.message);
		free(bytes);
		return;
	}

	current = name;
	fields_ok = true;
	checker(&rec);
	snprintf(title, sizeof(title), "%s: its fields are what the transaction did", name);
	ok(fields_ok, title);

	test_render(name, &rec, ".txt", true);
	test_render(name, &rec, ".bare.txt", false);
	test_truncations(name, bytes, len);
	test_flips(name, bytes, len, &rec);
	hd_record_free(&rec);
	free(bytes);
}

/* Every stream_*.bin in the directory has its checks above. */
static void
test_all_checked(void)
{
	DIR		   *dir = opendir(data_dir);
	struct dirent *de;
	int			unchecked = 0;
	int			seen = 0;

	if (dir == NULL)
	{
		printf("# cannot open %s: %s\n", data_dir, strerror(errno));
		ok(false, "the fixture directory can be read");
		return;
	}
	while ((de = readdir(dir)) != NULL)
	{
		size_t		n = strlen(de->d_name);
		bool		known = false;

		if (strncmp(de->d_name, "stream_", 7) != 0 || n < 11 || strcmp(de->d_name + n - 4, ".bin") != 0)
			continue;
		seen++;
		for (size_t i = 0; i < NFIXTURES; i++)
			if (strlen(FIXTURES[i].name) == n - 11 &&
				strncmp(de->d_name + 7, FIXTURES[i].name, n - 11) == 0)
				known = true;
		if (!known)
		{
			printf("# %s has no checks in test_stream_record.c\n", de->d_name);
			unchecked++;
		}
	}
	closedir(dir);
	ok(unchecked == 0 && seen == (int) NFIXTURES,
	   "every fixture in the directory is checked, and every checked one is there");
	if (seen != (int) NFIXTURES)
		printf("# %d fixtures in %s, %zu checked\n", seen, data_dir, NFIXTURES);
}

/* ------------------------------------------------------------------------
 * Version 2's watched columns, on hand-built records (the fixtures above
 * are version 1 captures, which must keep decoding).
 */

typedef struct Builder
{
	unsigned char buf[1024];
	size_t		len;
} Builder;

static void
put_uint(Builder *b, uint64_t value, int n)
{
	for (int i = n - 1; i >= 0; i--)
		b->buf[b->len++] = (unsigned char) (value >> (8 * i));
}

static void
put_str(Builder *b, const char *s)
{
	put_uint(b, strlen(s), 4);
	memcpy(b->buf + b->len, s, strlen(s));
	b->len += strlen(s);
}

/* Offsets in the record build_v2() makes, for the refusal tests. */
typedef struct V2Offsets
{
	size_t		nwatched;		/* the first relation's W */
	size_t		state2;			/* its second column's state */
	size_t		nhashes1;		/* its first column's H */
	size_t		nwatched_truncate;	/* the second relation's W */
} V2Offsets;

/*
 * Two relations: public.t (insert, update; ancestor public.p; key id = '1')
 * watching three columns, complete with two hashes, no-old-value, and
 * complete with none; then public.u, truncated, with W = 0. With
 * watched = false, the same record in version 1 (no W lists).
 */
static void
build_record(Builder *b, V2Offsets *off, bool watched)
{
	b->len = 0;
	put_uint(b, 'H', 1);
	put_uint(b, watched ? 2 : 1, 1);
	put_uint(b, 0, 2);
	put_uint(b, 4294967301u, 8);
	put_uint(b, UINT64_C(0x100000010), 8);
	put_uint(b, UINT64_C(0x100000040), 8);
	put_uint(b, 1234567, 8);
	put_str(b, "");
	put_uint(b, 2, 4);

	put_uint(b, 16500, 4);
	put_uint(b, HD_KIND_INSERT | HD_KIND_UPDATE, 1);
	put_uint(b, HD_ROWS_KEYS, 1);
	put_str(b, "public");
	put_str(b, "t");
	put_uint(b, 1, 4);
	put_uint(b, 16400, 4);
	put_str(b, "public");
	put_str(b, "p");
	put_uint(b, 1, 4);
	put_str(b, "id");
	put_uint(b, 1, 4);
	put_str(b, "1");
	if (watched)
	{
		off->nwatched = b->len;
		put_uint(b, 3, 4);
		put_uint(b, 16500, 4);
		put_uint(b, 2, 2);
		put_uint(b, HD_VALUES_COMPLETE, 1);
		off->nhashes1 = b->len;
		put_uint(b, 2, 4);
		put_uint(b, 5, 8);
		put_uint(b, (uint64_t) INT64_C(-7), 8);
		put_uint(b, 16400, 4);
		put_uint(b, 3, 2);
		off->state2 = b->len;
		put_uint(b, HD_VALUES_NO_OLD, 1);
		put_uint(b, 0, 4);
		put_uint(b, 16400, 4);
		put_uint(b, 4, 2);
		put_uint(b, HD_VALUES_COMPLETE, 1);
		put_uint(b, 0, 4);
	}

	put_uint(b, 16600, 4);
	put_uint(b, HD_KIND_TRUNCATE, 1);
	put_uint(b, HD_ROWS_TRUNCATE, 1);
	put_str(b, "public");
	put_str(b, "u");
	put_uint(b, 0, 4);
	put_uint(b, 0, 4);
	put_uint(b, 0, 4);
	if (watched)
	{
		off->nwatched_truncate = b->len;
		put_uint(b, 0, 4);
	}
	put_uint(b, 0, 4);			/* no DDL objects */
}

static const char V2_TEXT[] =
	"hyperdrive 2 xid 4294967301 commit_lsn 1/10 end_lsn 1/40\n"
	"relation public.t oid 16500 changes insert,update ancestors public.p oid 16400 "
	"key (id) rows ('1') values 16500.2 (5,-7) values 16400.3 all (no-old-value) "
	"values 16400.4 ()\n"
	"relation public.u oid 16600 changes truncate rows all (truncate)";

/*
 * The record with one field overwritten must be refused at offset where
 * (SIZE_MAX: anywhere), with a message containing what.
 */
static void
refused_at(const Builder *orig, size_t at, uint64_t value, int n, size_t where,
		   const char *what, const char *title)
{
	Builder		b = *orig;
	HdRecord	rec;
	HdDecodeError err;
	int			rc;

	for (int i = n - 1, k = 0; i >= 0; i--, k++)
		b.buf[at + k] = (unsigned char) (value >> (8 * i));
	rc = hd_record_decode(at_end(b.buf, b.len), b.len, &rec, &err);
	if (where == SIZE_MAX)
		where = err.offset;		/* anywhere */
	ok(refused_properly(rc, &err, b.len) && err.offset == where &&
	   strstr(err.message, what) != NULL, title);
	if (rc != -1 || err.offset != where || strstr(err.message, what) == NULL)
		printf("# rc %d, \"%s\", expected a refusal at %zu naming \"%s\"\n",
			   rc, err.message, where, what);
	hd_record_free(&rec);
}

static void
test_version2(void)
{
	Builder		b;
	V2Offsets	off;
	HdRecord	rec;
	HdDecodeError err;
	HdTextOptions all = {true, true, false, true};
	char	   *text;
	int			rc;

	build_record(&b, &off, true);
	rc = hd_record_decode(at_end(b.buf, b.len), b.len, &rec, &err);
	ok(rc == 0, "version 2: a record with watched columns decodes");
	if (rc != 0)
	{
		printf("# %s\n", err.message);
		return;
	}
	ok(rec.version == 2 && rec.nrelations == 2 &&
	   rec.relations[0].nwatched == 3 &&
	   rec.relations[0].watched[0].relid == 16500 && rec.relations[0].watched[0].attnum == 2 &&
	   rec.relations[0].watched[0].state == HD_VALUES_COMPLETE &&
	   rec.relations[0].watched[0].nhashes == 2 &&
	   rec.relations[0].watched[0].hashes[0] == 5 &&
	   (int64_t) rec.relations[0].watched[0].hashes[1] == -7 &&
	   rec.relations[0].watched[1].relid == 16400 && rec.relations[0].watched[1].attnum == 3 &&
	   rec.relations[0].watched[1].state == HD_VALUES_NO_OLD &&
	   rec.relations[0].watched[1].nhashes == 0 &&
	   rec.relations[0].watched[2].state == HD_VALUES_COMPLETE &&
	   rec.relations[0].watched[2].nhashes == 0 &&
	   rec.relations[1].nwatched == 0,
	   "version 2: the watched columns' fields are the record's");
	text = hd_record_render_text(&rec, &all);
	ok(text != NULL && strcmp(text, V2_TEXT) == 0,
	   "version 2: renders values OID.ATTNUM (H,H) and all (REASON) per docs/stream.md");
	if (text != NULL && strcmp(text, V2_TEXT) != 0)
		printf("# got:\n# %s\n# expected:\n# %s\n", text, V2_TEXT);
	free(text);
	test_flips("version 2", b.buf, b.len, &rec);
	hd_record_free(&rec);
	test_truncations("version 2", b.buf, b.len);

	/* each values state has its name */
	ok(strcmp(hd_values_state_name(HD_VALUES_COMPLETE), "complete") == 0 &&
	   strcmp(hd_values_state_name(HD_VALUES_CAP), "value-cap") == 0 &&
	   strcmp(hd_values_state_name(HD_VALUES_NO_OLD), "no-old-value") == 0 &&
	   strcmp(hd_values_state_name(HD_VALUES_TOAST), "toast") == 0 &&
	   strcmp(hd_values_state_name(HD_VALUES_NO_COLUMN), "no-column") == 0 &&
	   strcmp(hd_values_state_name((HdValuesState) 5), "unknown") == 0,
	   "version 2: the values states' names");

	refused_at(&b, off.state2, HD_VALUES_LAST + 1, 1, off.state2, "unknown values state",
			   "version 2: an unknown values state is refused where it is");
	refused_at(&b, off.state2, 255, 1, off.state2, "unknown values state",
			   "version 2: values state 255 is refused");
	refused_at(&b, off.nwatched, INT32_MAX, 4, off.nwatched, "number of watched columns",
			   "version 2: a huge number of watched columns is refused before allocating");
	refused_at(&b, off.nwatched, UINT32_MAX, 4, off.nwatched, "negative",
			   "version 2: a negative number of watched columns is refused");
	refused_at(&b, off.nhashes1, INT32_MAX, 4, off.nhashes1, "number of value hashes",
			   "version 2: a huge number of hashes is refused before allocating");
	refused_at(&b, off.state2 + 1, 1, 4, off.state2 + 1, "hashes are listed",
			   "version 2: hashes listed for an incomplete column are refused");
	refused_at(&b, off.state2 - 2, 0, 2, off.state2 - 2, "column number",
			   "version 2: column number 0 is refused");
	refused_at(&b, off.state2 - 2, 0x8001, 2, off.state2 - 2, "column number",
			   "version 2: a negative column number is refused");
	refused_at(&b, off.nwatched_truncate, 1, 4, off.nwatched_truncate, "truncate or ddl",
			   "version 2: watched columns on a truncate entry are refused");
	refused_at(&b, 1, 3, 1, 1, "unsupported format version 3",
			   "version 3 is refused");

	/* the same record in version 1: no W lists, still decoded */
	build_record(&b, &off, false);
	rc = hd_record_decode(at_end(b.buf, b.len), b.len, &rec, &err);
	ok(rc == 0 && rec.version == 1 && rec.nrelations == 2 &&
	   rec.relations[0].nwatched == 0 && rec.relations[0].watched == NULL,
	   "version 1: a record without watched columns still decodes");
	if (rc != 0)
		printf("# %s\n", err.message);
	text = rc == 0 ? hd_record_render_text(&rec, &all) : NULL;
	ok(text != NULL && strncmp(text, "hyperdrive 1 xid", 16) == 0 && strstr(text, " values ") == NULL,
	   "version 1: renders as version 1, without values");
	free(text);
	hd_record_free(&rec);
	test_truncations("version 1", b.buf, b.len);
	/* a version 2 record read as version 1 does not end where it should */
	build_record(&b, &off, true);
	refused_at(&b, 1, 1, 1, SIZE_MAX, "",
			   "a version 2 record labelled 1 is refused");
}

int
main(int argc, char **argv)
{
	char		default_dir[1024];

	if (argc > 1)
		data_dir = argv[1];
	else
	{
		const char *slash = strrchr(argv[0], '/');

		snprintf(default_dir, sizeof(default_dir), "%.*sdata",
				 slash ? (int) (slash - argv[0] + 1) : 0, argv[0]);
		data_dir = default_dir;
	}
	guard_init();
	test_all_checked();
	for (size_t i = 0; i < NFIXTURES; i++)
		test_fixture(FIXTURES[i].name, FIXTURES[i].check);
	test_version2();
	return tap_done();
}
