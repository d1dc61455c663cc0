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
 * value_hash.c hashes values for both sides (bindings, watched columns, and
 * hyperdrive.hash_value() for the agent's parameters).
 */
#ifndef HYPERDRIVE_H
#define HYPERDRIVE_H

#include "postgres.h"

#include "access/attnum.h"
#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"

/* The record format's constants, shared with the agent (docs/stream.md). */
#include "stream_format.h"

/* Prefix of the logical messages written by the DDL event triggers. */
#define HD_MESSAGE_PREFIX "hyperdrive"
/* First two bytes of such a message: a tag and the message layout version. */
#define HD_MESSAGE_MAGIC 'H'
#define HD_MESSAGE_VERSION 1

/* Entry types inside a DDL message (see ddl_capture.c for the layout). */
#define HD_MSG_DDL 'E'			/* one DDL object: event, tag, type, identity, classid, objid */
#define HD_MSG_RELATION 'R'		/* a relation whose every row may have changed */
#define HD_MSG_ALL 'A'			/* invalidate everything in this database, with a reason */

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

struct HdWatchCol;				/* decoder.c's cache: how to find and hash it */

/*
 * Version 2: one watched column of a changed relation, and the distinct
 * hashes of its old and new values in the transaction (docs/stream.md,
 * "Watched columns"). The hashes are kept in the order first seen, with an
 * open-addressing index into them so that a set of value-cap hashes is
 * checked in constant time per value.
 */
typedef struct HdWatchedCol
{
	Oid			relid;			/* the watched relation: the changed one or an ancestor */
	AttrNumber	attnum;			/* in relid */
	HdValuesState state;		/* HD_VALUES_COMPLETE while hashes are collected */
	struct HdWatchCol *col;
	int			nhashes;
	int			maxhashes;
	int64	   *hashes;
	int			index_size;		/* a power of two, > 2 * maxhashes; 0: no index yet */
	int		   *index;			/* positions in hashes, -1 when free */
} HdWatchedCol;

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
	bool		watch_known;	/* watched columns resolved (nwatched valid) */
	int			nwatched;		/* written only for row changes (see record.c) */
	HdWatchedCol *watched;
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

/* record.c */
extern void hd_record_write_text(StringInfo out, const HdTxnSummary *txn,
								 const HdTextOptions *opts);
extern void hd_record_write_compact(StringInfo out, const HdTxnSummary *txn);

/* relation_family.c */
extern List *hd_relation_parents(Oid relid);
extern List *hd_relation_ancestors(Oid relid);
extern List *hd_relation_family(Oid relid);
extern bool hd_relation_is_cacheable_kind(Oid relid);

/*
 * Seed of the hashes in analyze_query()'s bindings (docs/cache-analysis.md,
 * "Bindings"): the extended hash function of the column type's default hash
 * operator family, called with this seed, on the origin. It is part of the
 * bindings' format: the agent hashes parameters and changed rows' values with
 * the same seed, so changing it changes the meaning of every stored binding.
 * The value is the ASCII text "hdbind01".
 */
#define HD_BINDING_SEED INT64CONST(0x686462696e643031)

/* value_hash.c: the one place values are hashed with HD_BINDING_SEED */
extern bool hd_hash_proc_in_family(Oid opfamily, Oid typid, FmgrInfo *finfo,
								   MemoryContext mcxt);
extern bool hd_default_hash_proc(Oid typid, FmgrInfo *finfo, MemoryContext mcxt);
extern int64 hd_value_hash(FmgrInfo *finfo, Oid collid, Datum value);

#endif							/* HYPERDRIVE_H */
