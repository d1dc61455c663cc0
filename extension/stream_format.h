/*
 * stream_format.h
 *    The numbers of the hyperdrive change stream's compact format, and the
 *    text format's names for them: one definition shared by the writer
 *    (the extension, extension/record.c and decoder.c) and the reader (the
 *    agent, agent/stream/stream_record.c).
 *
 * Contract:
 *   - docs/stream.md ("Compact format", "Text format") is the specification;
 *     every value here is written there too, and changes with it. Anything an
 *     old consumer could misread changes HD_RECORD_VERSION.
 *   - Plain C: no PostgreSQL or agent header is included, and nothing here
 *     needs one, so that both the extension (after postgres.h) and the agent
 *     (built without PostgreSQL's server headers) can include it. The agent
 *     names it "extension/stream_format.h" (its Makefile puts the source root
 *     on the include path); the extension includes it from hyperdrive.h.
 *   - Only constants, the text format's switches and pure functions: no
 *     state, no allocation. bool is C99's (<stdbool.h>, as PostgreSQL's c.h
 *     has it too).
 *   - The extension's own DDL messages (ddl_capture.c to decoder.c) are not
 *     part of the stream; their constants stay in extension/hyperdrive.h.
 */
#ifndef HD_STREAM_FORMAT_H
#define HD_STREAM_FORMAT_H

#include <stdbool.h>

/* First two bytes of every compact record. */
#define HD_RECORD_MAGIC 'H'
#define HD_RECORD_VERSION 2
/* The oldest version a reader must still decode: 1 lacks the watched columns. */
#define HD_RECORD_VERSION_MIN 1

/* Record flags (Int16). */
#define HD_FLAG_INVALIDATE_ALL 0x0001	/* the invalidate-all reason is set */
#define HD_FLAG_HEARTBEAT 0x0002	/* nothing else in the record */
#define HD_FLAG_ALL (HD_FLAG_INVALIDATE_ALL | HD_FLAG_HEARTBEAT)

/* Change kinds of a relation within one transaction (a bit mask, Byte1). */
#define HD_KIND_INSERT 0x01
#define HD_KIND_UPDATE 0x02
#define HD_KIND_DELETE 0x04
#define HD_KIND_TRUNCATE 0x08
#define HD_KIND_DDL 0x10
#define HD_KIND_ALL (HD_KIND_INSERT | HD_KIND_UPDATE | HD_KIND_DELETE | \
					 HD_KIND_TRUNCATE | HD_KIND_DDL)

/*
 * Why a relation's entry says "all rows" instead of listing keys (Byte1).
 * Zero means the keys are listed and complete.
 */
typedef enum HdRowsReason
{
	HD_ROWS_KEYS = 0,			/* keys listed, complete */
	HD_ROWS_KEY_CAP = 1,		/* more distinct keys than the key-cap option */
	HD_ROWS_NO_IDENTITY = 2,	/* no usable replica identity key */
	HD_ROWS_TOAST = 3,			/* a key column is an unchanged TOAST value */
	HD_ROWS_TRUNCATE = 4,		/* TRUNCATE */
	HD_ROWS_DDL = 5,			/* a DDL command touched the relation */
	HD_ROWS_KEY_SIZE = 6		/* one key is longer than HD_MAX_KEY_BYTES */
} HdRowsReason;

#define HD_ROWS_LAST HD_ROWS_KEY_SIZE

/*
 * Version 2: whether a watched column's value hashes of a relation's changed
 * rows are complete (Byte1), and if not, why (docs/stream.md, "Watched
 * columns"). A consumer must treat an incomplete column as "any value".
 */
typedef enum HdValuesState
{
	HD_VALUES_COMPLETE = 0,		/* every old and new value's hash is listed */
	HD_VALUES_CAP = 1,			/* more distinct hashes than the value-cap option */
	HD_VALUES_NO_OLD = 2,		/* an old value is not in the WAL (replica identity) */
	HD_VALUES_TOAST = 3,		/* an unchanged out-of-line TOAST value, never fetched */
	HD_VALUES_NO_COLUMN = 4		/* the changed relation has no column of that name */
} HdValuesState;

#define HD_VALUES_LAST HD_VALUES_NO_COLUMN

/* The text format's name of a values state ("value-cap", ...), "unknown" if none. */
static inline const char *
hd_values_state_name(HdValuesState state)
{
	switch (state)
	{
		case HD_VALUES_COMPLETE:
			return "complete";
		case HD_VALUES_CAP:
			return "value-cap";
		case HD_VALUES_NO_OLD:
			return "no-old-value";
		case HD_VALUES_TOAST:
			return "toast";
		case HD_VALUES_NO_COLUMN:
			return "no-column";
	}
	return "unknown";
}

/* Longest serialized key the stream carries; longer ones fold to all rows. */
#define HD_MAX_KEY_BYTES 1024

/* The text format's name of a rows reason ("key-cap", ...), "unknown" if none. */
static inline const char *
hd_rows_reason_name(HdRowsReason reason)
{
	switch (reason)
	{
		case HD_ROWS_KEYS:
			return "keys";
		case HD_ROWS_KEY_CAP:
			return "key-cap";
		case HD_ROWS_NO_IDENTITY:
			return "no-identity";
		case HD_ROWS_TOAST:
			return "toast";
		case HD_ROWS_TRUNCATE:
			return "truncate";
		case HD_ROWS_DDL:
			return "ddl";
		case HD_ROWS_KEY_SIZE:
			return "key-size";
	}
	return "unknown";
}

/*
 * The text format's name of one kind bit (HD_KIND_INSERT, ...), NULL if kind
 * is not exactly one known bit. The text lists kinds in bit order.
 */
static inline const char *
hd_kind_name(unsigned int kind)
{
	switch (kind)
	{
		case HD_KIND_INSERT:
			return "insert";
		case HD_KIND_UPDATE:
			return "update";
		case HD_KIND_DELETE:
			return "delete";
		case HD_KIND_TRUNCATE:
			return "truncate";
		case HD_KIND_DDL:
			return "ddl";
	}
	return NULL;
}

/* The text format's switches (the plugin's include-* options); the compact format always carries everything. */
typedef struct HdTextOptions
{
	bool		include_xids;
	bool		include_lsn;
	bool		include_timestamp;
	bool		include_oids;
} HdTextOptions;

#endif							/* HD_STREAM_FORMAT_H */
