/*
 * stream_record.c
 *    Decoding a compact hyperdrive record and rendering it as text
 *    (see stream_record.h; the formats are specified in docs/stream.md).
 *
 * The decoder treats its input as hostile: every read goes through
 * reader_need(), which checks the bytes are there before touching them, and
 * every count read from the wire is checked against the bytes left before
 * anything is allocated for it, so a short malformed buffer cannot make us
 * allocate gigabytes.
 */
#include "stream/stream_record.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/be.h"
#include "base/sql_quote.h"
#include "base/text_buf.h"

/* ------------------------------------------------------------------------
 * Reading big-endian fields, bounds-checked.
 */

typedef struct Reader
{
	const unsigned char *buf;
	size_t		len;
	size_t		pos;
	HdDecodeError *err;
	bool		failed;
	char		where[64];		/* which element is being read, for messages */
} Reader;

/* Record the first error only: later ones are consequences of it. */
static void
reader_fail(Reader *r, size_t offset, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

static void
reader_fail(Reader *r, size_t offset, const char *fmt,...)
{
	char		detail[160];
	va_list		ap;

	if (r->failed)
		return;
	r->failed = true;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	r->err->offset = offset;
	snprintf(r->err->message, sizeof(r->err->message), "at offset %zu: %s%s%s",
			 offset, r->where, r->where[0] ? ": " : "", detail);
}

static void
reader_where(Reader *r, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

static void
reader_where(Reader *r, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(r->where, sizeof(r->where), fmt, ap);
	va_end(ap);
}

static size_t
reader_left(const Reader *r)
{
	return r->len - r->pos;
}

/* Whether n bytes of `what` can be read at the current position. */
static bool
reader_need(Reader *r, size_t n, const char *what)
{
	if (r->failed)
		return false;
	if (reader_left(r) < n)
	{
		reader_fail(r, r->pos, "truncated: %s needs %zu bytes, %zu left",
					what, n, reader_left(r));
		return false;
	}
	return true;
}

/* An unsigned big-endian integer of n bytes (1, 2, 4 or 8); 0 after a failure. */
static uint64_t
read_uint(Reader *r, size_t n, const char *what)
{
	const unsigned char *p = r->buf + r->pos;
	uint64_t	value;

	if (!reader_need(r, n, what))
		return 0;
	switch (n)
	{
		case 1:
			value = p[0];
			break;
		case 2:
			value = hd_get_u16(p);
			break;
		case 4:
			value = hd_get_u32(p);
			break;
		default:
			value = hd_get_u64(p);
			break;
	}
	r->pos += n;
	return value;
}

static uint32_t
read_uint32(Reader *r, const char *what)
{
	return (uint32_t) read_uint(r, 4, what);
}

/* An Int32 the spec uses as a length or count: negative is malformed. */
static uint32_t
read_count(Reader *r, const char *what)
{
	size_t		at = r->pos;
	uint32_t	value = read_uint32(r, what);

	if (value > INT32_MAX)
	{
		reader_fail(r, at, "%s is negative (%" PRId32 ")", what, (int32_t) value);
		return 0;
	}
	return value;
}

/*
 * A count of elements, each at least min_size bytes: refusing counts the
 * remaining bytes cannot hold keeps allocations proportional to the input.
 */
static uint32_t
read_element_count(Reader *r, size_t min_size, const char *what)
{
	size_t		at = r->pos;
	uint32_t	count = read_count(r, what);

	if (!r->failed && min_size > 0 && count > reader_left(r) / min_size)
		reader_fail(r, at, "truncated: %s is %" PRIu32 " but only %zu bytes follow",
					what, count, reader_left(r));
	return r->failed ? 0 : count;
}

static void *
reader_calloc(Reader *r, size_t count, size_t size)
{
	void	   *p;

	if (r->failed || count == 0)
		return NULL;
	p = calloc(count, size);
	if (p == NULL)
		reader_fail(r, r->pos, "out of memory");
	return p;
}

/* n bytes as a C string; refused if they hold a NUL (see stream_record.h). */
static char *
copy_bytes(Reader *r, size_t n, const char *what)
{
	char	   *s;

	if (!reader_need(r, n, what))
		return NULL;
	if (memchr(r->buf + r->pos, '\0', n) != NULL)
	{
		reader_fail(r, r->pos, "%s contains a NUL byte", what);
		return NULL;
	}
	s = malloc(n + 1);
	if (s == NULL)
	{
		reader_fail(r, r->pos, "out of memory");
		return NULL;
	}
	memcpy(s, r->buf + r->pos, n);
	s[n] = '\0';
	r->pos += n;
	return s;
}

/* String: Int32 length, then that many bytes. */
static char *
read_string(Reader *r, const char *what)
{
	uint32_t	len = read_count(r, what);

	return r->failed ? NULL : copy_bytes(r, len, what);
}

/* ------------------------------------------------------------------------
 * Decoding the parts of a record.
 */

static void
read_rel_name(Reader *r, HdRelName *name, bool with_oid)
{
	if (with_oid)
		name->oid = read_uint32(r, "OID");
	name->schema = read_string(r, "schema");
	name->name = read_string(r, "name");
}

static void
read_ancestors(Reader *r, HdRelation *rel, uint32_t index)
{
	/* an ancestor is at least an OID and two empty strings */
	rel->nancestors = read_element_count(r, 12, "number of ancestors");
	rel->ancestors = reader_calloc(r, rel->nancestors, sizeof(HdRelName));
	for (uint32_t i = 0; i < rel->nancestors && !r->failed; i++)
	{
		reader_where(r, "relation %" PRIu32 ", ancestor %" PRIu32, index + 1, i + 1);
		read_rel_name(r, &rel->ancestors[i], true);
	}
}

/* One key: nkeycols values, each Int32 length (-1 for NULL) and bytes. */
static void
read_key(Reader *r, HdRelation *rel, uint32_t key)
{
	for (uint32_t c = 0; c < rel->nkeycols && !r->failed; c++)
	{
		size_t		at = r->pos;
		uint32_t	len = read_uint32(r, "key value length");
		HdKeyValue *value = &rel->keys[(size_t) key * rel->nkeycols + c];

		if (len == UINT32_MAX)
			continue;			/* -1: NULL */
		if (len > INT32_MAX)
		{
			reader_fail(r, at, "key value length is %" PRId32 " (only -1 may be negative)",
						(int32_t) len);
			return;
		}
		value->text = copy_bytes(r, len, "key value");
	}
}

static void
read_keys(Reader *r, HdRelation *rel, uint32_t index)
{
	size_t		at;

	reader_where(r, "relation %" PRIu32, index + 1);
	/* a key column name is at least its length */
	rel->nkeycols = read_element_count(r, 4, "number of key columns");
	rel->keycols = reader_calloc(r, rel->nkeycols, sizeof(char *));
	for (uint32_t c = 0; c < rel->nkeycols && !r->failed; c++)
		rel->keycols[c] = read_string(r, "key column name");

	at = r->pos;
	/* a key is at least one Int32 length per column */
	rel->nkeys = read_element_count(r, 4 * (size_t) rel->nkeycols, "number of keys");
	if (r->failed)
		return;
	if (rel->rows != HD_ROWS_KEYS && (rel->nkeycols != 0 || rel->nkeys != 0))
		reader_fail(r, at, "rows say all rows (%s) but key columns or keys are listed",
					hd_rows_reason_name(rel->rows));
	else if (rel->nkeycols == 0 && rel->nkeys != 0)
		reader_fail(r, at, "%" PRIu32 " keys listed without key columns", rel->nkeys);
	rel->keys = reader_calloc(r, (size_t) rel->nkeys * rel->nkeycols, sizeof(HdKeyValue));
	for (uint32_t k = 0; k < rel->nkeys && !r->failed; k++)
	{
		reader_where(r, "relation %" PRIu32 ", key %" PRIu32, index + 1, k + 1);
		read_key(r, rel, k);
	}
}

/*
 * Version 2: Int32 W watched columns, each Int32 relid, Int16 attnum, Byte1
 * state, Int32 H (0 unless complete), H x Int64 hashes.
 */
static void
read_watched(Reader *r, HdRelation *rel, uint32_t index)
{
	size_t		at = r->pos;

	reader_where(r, "relation %" PRIu32, index + 1);
	rel->nwatched = read_count(r, "number of watched columns");
	if (!r->failed && rel->nwatched > 0 && (rel->kinds & (HD_KIND_TRUNCATE | HD_KIND_DDL)))
		reader_fail(r, at, "watched columns listed for a truncate or ddl entry");
	/* a watched column is at least 11 bytes: relid, attnum, state, count */
	else if (!r->failed && rel->nwatched > reader_left(r) / 11)
		reader_fail(r, at, "truncated: number of watched columns is %" PRIu32
					" but only %zu bytes follow", rel->nwatched, reader_left(r));
	if (r->failed)
		rel->nwatched = 0;
	rel->watched = reader_calloc(r, rel->nwatched, sizeof(HdWatchedValues));
	for (uint32_t i = 0; i < rel->nwatched && !r->failed; i++)
	{
		HdWatchedValues *w = &rel->watched[i];
		uint8_t		state;

		reader_where(r, "relation %" PRIu32 ", watched column %" PRIu32, index + 1, i + 1);
		w->relid = read_uint32(r, "watched relation OID");
		at = r->pos;
		w->attnum = (uint16_t) read_uint(r, 2, "column number");
		if (!r->failed && (int16_t) w->attnum <= 0)
			reader_fail(r, at, "column number %d is not a column's", (int16_t) w->attnum);
		at = r->pos;
		state = (uint8_t) read_uint(r, 1, "values state");
		if (!r->failed && state > HD_VALUES_LAST)
			reader_fail(r, at, "unknown values state %u", state);
		w->state = state;
		at = r->pos;
		w->nhashes = read_element_count(r, 8, "number of value hashes");
		if (!r->failed && state != HD_VALUES_COMPLETE && w->nhashes != 0)
			reader_fail(r, at, "values say all (%s) but %" PRIu32 " hashes are listed",
						hd_values_state_name((HdValuesState) state), w->nhashes);
		w->hashes = reader_calloc(r, w->nhashes, sizeof(uint64_t));
		for (uint32_t h = 0; h < w->nhashes && !r->failed; h++)
			w->hashes[h] = read_uint(r, 8, "value hash");
	}
}

static void
read_relation(Reader *r, HdRelation *rel, uint32_t index, uint8_t version)
{
	size_t		at;
	uint8_t		rows;

	reader_where(r, "relation %" PRIu32, index + 1);
	rel->rel.oid = read_uint32(r, "OID");
	at = r->pos;
	rel->kinds = (uint8_t) read_uint(r, 1, "kinds");
	if (rel->kinds & ~HD_KIND_ALL)
		reader_fail(r, at, "unknown change kind bits 0x%02x", rel->kinds & ~HD_KIND_ALL);
	at = r->pos;
	rows = (uint8_t) read_uint(r, 1, "rows");
	if (rows > HD_ROWS_LAST)
		reader_fail(r, at, "unknown rows reason %u", rows);
	rel->rows = (HdRowsReason) rows;
	read_rel_name(r, &rel->rel, false);
	read_ancestors(r, rel, index);
	read_keys(r, rel, index);
	if (version >= 2)
		read_watched(r, rel, index);
}

static void
read_ddl(Reader *r, HdDdlObject *ddl, uint32_t index)
{
	reader_where(r, "DDL object %" PRIu32, index + 1);
	ddl->tag = read_string(r, "command tag");
	ddl->object_type = read_string(r, "object type");
	ddl->identity = read_string(r, "object identity");
	ddl->classid = read_uint32(r, "catalog OID");
	ddl->objid = read_uint32(r, "object OID");
}

static void
read_header(Reader *r, HdRecord *record)
{
	size_t		at;
	uint8_t		magic;

	magic = (uint8_t) read_uint(r, 1, "record tag");
	if (!r->failed && magic != HD_RECORD_MAGIC)
		reader_fail(r, 0, "not a hyperdrive record: first byte is 0x%02x, expected 'H'", magic);
	record->version = (uint8_t) read_uint(r, 1, "format version");
	if (!r->failed && (record->version < HD_RECORD_VERSION_MIN ||
					   record->version > HD_RECORD_VERSION))
		reader_fail(r, 1, "unsupported format version %u (this decoder knows %d to %d)",
					record->version, HD_RECORD_VERSION_MIN, HD_RECORD_VERSION);
	at = r->pos;
	record->flags = (uint16_t) read_uint(r, 2, "flags");
	if (record->flags & ~HD_FLAG_ALL)
		reader_fail(r, at, "unknown flag bits 0x%04x", record->flags & ~HD_FLAG_ALL);
	record->xid = read_uint(r, 8, "xid");
	record->commit_lsn = read_uint(r, 8, "commit LSN");
	record->end_lsn = read_uint(r, 8, "end LSN");
	record->commit_time = (int64_t) read_uint(r, 8, "commit time");
	at = r->pos;
	record->all_reason = read_string(r, "invalidate-all reason");
	if (!r->failed && !(record->flags & HD_FLAG_INVALIDATE_ALL) && record->all_reason[0])
		reader_fail(r, at, "invalidate-all reason given but flag 0x0001 is clear");
}

/* The heartbeat flag says exactly "nothing else in the record". */
static void
check_heartbeat(Reader *r, const HdRecord *record)
{
	bool		empty = record->nrelations == 0 && record->nddls == 0 &&
		!(record->flags & HD_FLAG_INVALIDATE_ALL);

	if (r->failed || empty == ((record->flags & HD_FLAG_HEARTBEAT) != 0))
		return;
	r->where[0] = '\0';
	reader_fail(r, 2, empty ? "record reports nothing but the heartbeat flag is clear"
				: "heartbeat flag set on a record that reports changes");
}

int
hd_record_decode(const unsigned char *buf, size_t len, HdRecord *record, HdDecodeError *err)
{
	Reader		r = {buf, len, 0, err, false, ""};

	memset(record, 0, sizeof(*record));
	memset(err, 0, sizeof(*err));
	read_header(&r, record);

	/*
	 * a relation is at least 26 bytes: OID, kinds, rows, 2 strings, 3 counts;
	 * from version 2 a fourth count
	 */
	record->nrelations = read_element_count(&r, record->version >= 2 ? 30 : 26,
											"number of relations");
	record->relations = reader_calloc(&r, record->nrelations, sizeof(HdRelation));
	for (uint32_t i = 0; i < record->nrelations && !r.failed; i++)
		read_relation(&r, &record->relations[i], i, record->version);

	r.where[0] = '\0';
	/* a DDL object is at least 20 bytes: 3 strings and 2 OIDs */
	record->nddls = read_element_count(&r, 20, "number of DDL objects");
	record->ddls = reader_calloc(&r, record->nddls, sizeof(HdDdlObject));
	for (uint32_t i = 0; i < record->nddls && !r.failed; i++)
		read_ddl(&r, &record->ddls[i], i);

	r.where[0] = '\0';
	if (!r.failed && r.pos != len)
		reader_fail(&r, r.pos, "%zu unexpected bytes after the record", len - r.pos);
	check_heartbeat(&r, record);
	if (!r.failed)
		return 0;
	hd_record_free(record);
	return -1;
}

/* ------------------------------------------------------------------------
 * Freeing. Works on a partly filled record: every array was calloc'd, so an
 * element not reached yet holds only NULLs.
 */

static void
free_rel_name(HdRelName *name)
{
	free(name->schema);
	free(name->name);
}

static void
free_relation(HdRelation *rel)
{
	free_rel_name(&rel->rel);
	for (uint32_t i = 0; rel->ancestors && i < rel->nancestors; i++)
		free_rel_name(&rel->ancestors[i]);
	free(rel->ancestors);
	for (uint32_t i = 0; rel->keycols && i < rel->nkeycols; i++)
		free(rel->keycols[i]);
	free(rel->keycols);
	for (uint32_t i = 0; rel->watched && i < rel->nwatched; i++)
		free(rel->watched[i].hashes);
	free(rel->watched);
	for (size_t i = 0; rel->keys && i < (size_t) rel->nkeys * rel->nkeycols; i++)
		free(rel->keys[i].text);
	free(rel->keys);
}

void
hd_record_free(HdRecord *record)
{
	free(record->all_reason);
	for (uint32_t i = 0; record->relations && i < record->nrelations; i++)
		free_relation(&record->relations[i]);
	free(record->relations);
	for (uint32_t i = 0; record->ddls && i < record->nddls; i++)
	{
		free(record->ddls[i].tag);
		free(record->ddls[i].object_type);
		free(record->ddls[i].identity);
	}
	free(record->ddls);
	memset(record, 0, sizeof(*record));
}

/* ------------------------------------------------------------------------
 * Rendering the text format, field for field as extension/record.c writes it.
 */

/* PostgreSQL's %X/%X: high and low 32 bits, uppercase hex, no padding. */
static void
render_lsn(HdTextBuf *out, uint64_t lsn)
{
	hd_text_buf_printf(out, "%" PRIX32 "/%" PRIX32, (uint32_t) (lsn >> 32), (uint32_t) lsn);
}

/* Julian day number to Gregorian date: PostgreSQL's j2date(), verbatim. */
static void
j2date(int jd, int *year, int *month, int *day)
{
	unsigned int julian = (unsigned int) jd;
	unsigned int quad;
	unsigned int extra;
	int			y;

	julian += 32044;
	quad = julian / 146097;
	extra = (julian - quad * 146097) * 4 + 3;
	julian += 60 + quad * 3 + extra / 146097;
	quad = julian / 1461;
	julian -= quad * 1461;
	y = (int) (julian * 4 / 1461);
	julian = ((y != 0) ? ((julian + 305) % 365) : ((julian + 306) % 366)) + 123;
	y += (int) quad * 4;
	*year = y - 4800;
	quad = julian * 2141 / 65536;
	*day = (int) (julian - 7834 * quad / 256);
	*month = (int) ((quad + 10) % 12 + 1);
}

#define USECS_PER_DAY INT64_C(86400000000)
#define POSTGRES_EPOCH_JDATE 2451545	/* 2000-01-01 */

/*
 * timestamptz_to_str() in a session whose TimeZone is UTC: ISO date style,
 * seconds with the fraction's trailing zeros dropped, "+00", " BC" for years
 * before 1.
 */
static void
render_timestamp(HdTextBuf *out, int64_t ts)
{
	int64_t		date = ts / USECS_PER_DAY;
	int64_t		time = ts % USECS_PER_DAY;
	int			year, month, day;
	int			usec;
	char		frac[8];

	if (ts == INT64_MIN || ts == INT64_MAX)
	{
		hd_text_buf_puts(out, ts == INT64_MIN ? "-infinity" : "infinity");
		return;
	}
	if (time < 0)
	{
		time += USECS_PER_DAY;
		date--;
	}
	date += POSTGRES_EPOCH_JDATE;
	if (date < 0 || date > INT32_MAX)
	{
		hd_text_buf_puts(out, "(timestamp out of range)");
		return;
	}
	j2date((int) date, &year, &month, &day);
	usec = (int) (time % 1000000);
	time /= 1000000;
	hd_text_buf_printf(out, "%04d-%02d-%02d %02d:%02d:%02d", year > 0 ? year : -(year - 1),
					   month, day, (int) (time / 3600), (int) (time / 60 % 60), (int) (time % 60));
	if (usec != 0)
	{
		snprintf(frac, sizeof(frac), "%06d", usec);
		for (int i = 5; frac[i] == '0'; i--)
			frac[i] = '\0';
		hd_text_buf_printf(out, ".%s", frac);
	}
	hd_text_buf_puts(out, year > 0 ? "+00" : "+00 BC");
}

/* quote_qualified_identifier(): schema.name, each part quoted as needed. */
static void
render_name(HdTextBuf *out, const HdRelName *name, const HdTextOptions *opts)
{
	hd_quote_identifier(out, name->schema);
	hd_text_buf_putc(out, '.');
	hd_quote_identifier(out, name->name);
	if (opts->include_oids)
		hd_text_buf_printf(out, " oid %" PRIu32, name->oid);
}

/* Kind names in bit order, comma-separated. */
static void
render_kinds(HdTextBuf *out, uint8_t kinds)
{
	bool		first = true;

	for (unsigned int bit = 1; bit <= HD_KIND_ALL; bit <<= 1)
	{
		if (!(kinds & bit))
			continue;
		if (!first)
			hd_text_buf_putc(out, ',');
		hd_text_buf_puts(out, hd_kind_name(bit));
		first = false;
	}
}

/* key (c1,c2) rows ('v1','v2') ('v3',NULL) */
static void
render_keys(HdTextBuf *out, const HdRelation *rel)
{
	hd_text_buf_puts(out, " key (");
	for (uint32_t c = 0; c < rel->nkeycols; c++)
	{
		if (c > 0)
			hd_text_buf_putc(out, ',');
		hd_quote_identifier(out, rel->keycols[c]);
	}
	hd_text_buf_puts(out, ") rows ");
	for (uint32_t k = 0; k < rel->nkeys; k++)
	{
		hd_text_buf_puts(out, k > 0 ? " (" : "(");
		for (uint32_t c = 0; c < rel->nkeycols; c++)
		{
			const char *text = rel->keys[(size_t) k * rel->nkeycols + c].text;

			if (c > 0)
				hd_text_buf_putc(out, ',');
			if (text == NULL)
				hd_text_buf_puts(out, "NULL");
			else
				hd_quote_literal(out, text);
		}
		hd_text_buf_putc(out, ')');
	}
}

/* values OID.ATTNUM (H,H) or values OID.ATTNUM all (REASON), per watched column */
static void
render_watched(HdTextBuf *out, const HdRelation *rel)
{
	for (uint32_t i = 0; i < rel->nwatched; i++)
	{
		const HdWatchedValues *w = &rel->watched[i];

		hd_text_buf_printf(out, " values %" PRIu32 ".%d ", w->relid, (int16_t) w->attnum);
		if (w->state != HD_VALUES_COMPLETE)
		{
			hd_text_buf_printf(out, "all (%s)", hd_values_state_name((HdValuesState) w->state));
			continue;
		}
		hd_text_buf_putc(out, '(');
		for (uint32_t h = 0; h < w->nhashes; h++)
			hd_text_buf_printf(out, "%s%" PRId64, h > 0 ? "," : "", (int64_t) w->hashes[h]);
		hd_text_buf_putc(out, ')');
	}
}

static void
render_relation(HdTextBuf *out, const HdRelation *rel, const HdTextOptions *opts)
{
	hd_text_buf_puts(out, "\nrelation ");
	render_name(out, &rel->rel, opts);
	hd_text_buf_puts(out, " changes ");
	render_kinds(out, rel->kinds);
	for (uint32_t i = 0; i < rel->nancestors; i++)
	{
		hd_text_buf_puts(out, i == 0 ? " ancestors " : ",");
		render_name(out, &rel->ancestors[i], opts);
	}
	if (rel->rows != HD_ROWS_KEYS)
		hd_text_buf_printf(out, " rows all (%s)", hd_rows_reason_name(rel->rows));
	else
		render_keys(out, rel);
	render_watched(out, rel);
}

static void
render_ddl(HdTextBuf *out, const HdDdlObject *ddl)
{
	hd_text_buf_printf(out, "\nddl %s", ddl->tag);
	if (ddl->object_type[0] != '\0')
		hd_text_buf_printf(out, " %s", ddl->object_type);
	if (ddl->identity[0] != '\0')
		hd_text_buf_printf(out, " %s", ddl->identity);
}

static void
render_first_line(HdTextBuf *out, const HdRecord *record, const HdTextOptions *opts)
{
	hd_text_buf_printf(out, "hyperdrive %u", record->version);
	if (opts->include_xids)
		hd_text_buf_printf(out, " xid %" PRIu64, record->xid);
	if (opts->include_lsn)
	{
		hd_text_buf_puts(out, " commit_lsn ");
		render_lsn(out, record->commit_lsn);
		hd_text_buf_puts(out, " end_lsn ");
		render_lsn(out, record->end_lsn);
	}
	if (opts->include_timestamp)
	{
		hd_text_buf_puts(out, " commit_time ");
		render_timestamp(out, record->commit_time);
	}
	if (record->flags & HD_FLAG_HEARTBEAT)
		hd_text_buf_puts(out, " heartbeat");
}

char *
hd_record_render_text(const HdRecord *record, const HdTextOptions *opts)
{
	HdTextBuf	out = HD_TEXT_BUF_INIT;

	render_first_line(&out, record, opts);
	if (record->flags & HD_FLAG_INVALIDATE_ALL)
		hd_text_buf_printf(&out, "\ninvalidate all (%s)", record->all_reason);
	for (uint32_t i = 0; i < record->nrelations; i++)
		render_relation(&out, &record->relations[i], opts);
	for (uint32_t i = 0; i < record->nddls; i++)
		render_ddl(&out, &record->ddls[i]);
	return hd_text_buf_finish(&out);
}
