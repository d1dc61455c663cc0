/*
 * stream_record.h
 *    One record of the hyperdrive change stream: decoding the compact
 *    (binary) format and rendering the text format.
 *
 * Contract:
 *   - hd_record_decode() parses exactly one compact record (docs/stream.md,
 *     "Compact format") from buf[0 .. len). It never reads outside that
 *     range. On success it returns 0 and fills *record, which the caller
 *     releases with hd_record_free(). On failure it returns -1, leaves
 *     *record empty (safe to pass to hd_record_free()), and writes into *err
 *     what was wrong and at which byte offset. Versions 1 (no watched
 *     columns: nwatched is 0) and 2 are decoded; record->version says which.
 *     Trailing bytes after the record, an unknown version, unknown flag/kind
 *     bits, rows reason or values state, and fields that contradict each
 *     other are errors: the version byte must change for anything an old
 *     consumer could misread, so anything this decoder does not know means
 *     the record is not one it understands.
 *   - Every string is copied, NUL-terminated; a string containing a NUL byte
 *     is refused (PostgreSQL never produces one), so the fields are plain C
 *     strings.
 *   - hd_record_render_text() renders the record exactly as the plugin's text
 *     format would (docs/stream.md, "Text format"), under the same switches.
 *     The commit time is rendered as timestamptz_to_str() does under
 *     TimeZone = UTC, which the plugin fixes while decoding (docs/stream.md).
 *     Identifiers are quoted as PostgreSQL 15's quote_identifier() does,
 *     including its keyword list (sql_quote.h).
 *   - No global state; all functions are reentrant.
 */
#ifndef HD_STREAM_RECORD_H
#define HD_STREAM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The format's constants and names, shared with the extension. */
#include "extension/stream_format.h"

typedef struct HdRelName
{
	uint32_t	oid;
	char	   *schema;
	char	   *name;
} HdRelName;

/* One key value: NULL when the column is NULL, else its text output. */
typedef struct HdKeyValue
{
	char	   *text;
} HdKeyValue;

/*
 * Version 2: the hashes of one watched column's old and new values in a
 * relation's changed rows (docs/stream.md, "Watched columns"). The column is
 * named as the consumer asked for it to be watched: relid is the changed
 * relation's OID or one of its ancestors'.
 */
typedef struct HdWatchedValues
{
	uint32_t	relid;			/* the watched relation */
	uint16_t	attnum;			/* the column's number in relid */
	uint8_t		state;			/* HdValuesState; hashes only when complete */
	uint32_t	nhashes;
	uint64_t   *hashes;			/* distinct, NULLs left out */
} HdWatchedValues;

typedef struct HdRelation
{
	HdRelName	rel;
	uint8_t		kinds;			/* HD_KIND_* */
	HdRowsReason rows;
	uint32_t	nancestors;
	HdRelName  *ancestors;		/* nearest first */
	uint32_t	nkeycols;		/* 0 unless rows == HD_ROWS_KEYS */
	char	  **keycols;
	uint32_t	nkeys;
	HdKeyValue *keys;			/* nkeys * nkeycols values, key by key */
	uint32_t	nwatched;		/* version 2; 0 in version 1 */
	HdWatchedValues *watched;
} HdRelation;

typedef struct HdDdlObject
{
	char	   *tag;
	char	   *object_type;	/* may be "" */
	char	   *identity;		/* may be "" */
	uint32_t	classid;
	uint32_t	objid;
} HdDdlObject;

typedef struct HdRecord
{
	uint8_t		version;
	uint16_t	flags;			/* HD_FLAG_* */
	uint64_t	xid;			/* with epoch */
	uint64_t	commit_lsn;
	uint64_t	end_lsn;
	int64_t		commit_time;	/* microseconds since 2000-01-01 00:00 UTC */
	char	   *all_reason;		/* "" unless HD_FLAG_INVALIDATE_ALL */
	uint32_t	nrelations;
	HdRelation *relations;
	uint32_t	nddls;
	HdDdlObject *ddls;
} HdRecord;

typedef struct HdDecodeError
{
	size_t		offset;			/* where the offending field starts */
	char		message[256];	/* includes the offset */
} HdDecodeError;

extern int	hd_record_decode(const unsigned char *buf, size_t len,
							 HdRecord *record, HdDecodeError *err);
extern void hd_record_free(HdRecord *record);

/* The text of one record, malloc'd and NUL-terminated; NULL if out of memory. */
extern char *hd_record_render_text(const HdRecord *record, const HdTextOptions *opts);

#endif							/* HD_STREAM_RECORD_H */
