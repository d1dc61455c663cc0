/*
 * hyperdrive.h
 *    Shared declarations of the hyperdrive extension.
 *
 * The extension has three parts:
 *   - ddl_capture.c: event triggers that describe each DDL command as a
 *     transactional logical message (prefix "hyperdrive"), so that schema
 *     changes reach the change stream inside their own transaction;
 *   - decoder.c: the logical decoding output plugin "hyperdrive", which folds
 *     the row changes, TRUNCATEs and those messages of one committed
 *     transaction into a single record;
 *   - record.c: the two encodings of that record (text and compact), whose
 *     layout is specified in docs/stream.md.
 * relation_family.c resolves partition / inheritance ancestors, so that a change
 * to a leaf also names every table a query could have read it through.
 * analyze.c (hyperdrive.analyze_query()) is the cache's side: whether a
 * query's result may be cached, and the relations whose changes invalidate it.
 */
#ifndef HYPERDRIVE_H
#define HYPERDRIVE_H

#include "postgres.h"

#include "access/attnum.h"
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"

/* Version of the record layout (docs/stream.md); bump on any incompatible change. */
#define HD_STREAM_VERSION 1

/* Prefix of the logical messages written by the DDL event triggers. */
#define HD_MESSAGE_PREFIX "hyperdrive"
/* First two bytes of such a message: a tag and the message layout version. */
#define HD_MESSAGE_MAGIC 'H'
#define HD_MESSAGE_VERSION 1

/* Entry types inside a DDL message (see ddl_capture.c for the layout). */
#define HD_MSG_DDL 'E'			/* one DDL object: event, tag, type, identity, classid, objid */
#define HD_MSG_RELATION 'R'		/* a relation whose every row may have changed */
#define HD_MSG_ALL 'A'			/* invalidate everything in this database, with a reason */

/* Change kinds of a relation within one transaction (a bit mask). */
#define HD_KIND_INSERT		0x01
#define HD_KIND_UPDATE		0x02
#define HD_KIND_DELETE		0x04
#define HD_KIND_TRUNCATE	0x08
#define HD_KIND_DDL			0x10

/*
 * Why a relation's entry says "all rows" instead of listing keys. Zero means
 * the keys are complete. The numbers are part of the compact format.
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

/* Longest serialized key the stream carries; longer ones fold to all rows. */
#define HD_MAX_KEY_BYTES 1024

typedef struct HdRelName
{
	Oid			relid;
	char	   *nspname;
	char	   *relname;
} HdRelName;

/* One serialized key: per key column an int32 length (-1 = NULL) and bytes. */
typedef struct HdKey
{
	uint32		hash;
	int			len;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} HdKey;

/* What one transaction did to one relation. */
typedef struct HdRelChange
{
	Oid			relid;			/* hash key: must be first */
	char	   *nspname;
	char	   *relname;
	uint8		kinds;			/* HD_KIND_* */
	HdRowsReason rows;			/* HD_ROWS_KEYS while keys are being collected */
	bool		key_known;		/* key columns resolved (key_natts valid) */
	int			key_natts;		/* 0: no usable identity */
	AttrNumber *key_attnums;
	char	  **key_names;
	int			nkeys;
	int			maxkeys;
	HdKey	  **keys;
	List	   *ancestors;		/* of HdRelName, nearest first */
	bool		ancestors_known;
} HdRelChange;

/* One DDL object reported by the event triggers. */
typedef struct HdDdl
{
	char	   *tag;
	char	   *object_type;
	char	   *identity;
	Oid			classid;
	Oid			objid;
} HdDdl;

/* Everything one committed transaction did, as the record will say it. */
typedef struct HdTxnSummary
{
	uint64		full_xid;
	XLogRecPtr	commit_lsn;
	XLogRecPtr	end_lsn;
	TimestampTz commit_time;
	bool		invalidate_all;
	char	   *all_reason;
	List	   *relations;		/* of HdRelChange *, in first-seen order */
	List	   *ddls;			/* of HdDdl * */
} HdTxnSummary;

/* Text-format switches (the compact format always carries everything). */
typedef struct HdTextOptions
{
	bool		include_xids;
	bool		include_lsn;
	bool		include_timestamp;
	bool		include_oids;
} HdTextOptions;

/* record.c */
extern void hd_record_write_text(StringInfo out, const HdTxnSummary *txn,
								 const HdTextOptions *opts);
extern void hd_record_write_compact(StringInfo out, const HdTxnSummary *txn);
extern const char *hd_rows_reason_name(HdRowsReason reason);

/* relation_family.c */
extern List *hd_relation_parents(Oid relid);
extern List *hd_relation_ancestors(Oid relid);
extern List *hd_relation_family(Oid relid);
extern bool hd_relation_is_cacheable_kind(Oid relid);

#endif							/* HYPERDRIVE_H */
