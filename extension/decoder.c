/*
 * decoder.c
 *    The logical decoding output plugin "hyperdrive".
 *
 * For each committed transaction the reorder buffer replays its changes in
 * order between one begin and one commit callback. We fold them into an
 * HdTxnSummary (which relations changed, how, which keys, and the hashes of
 * watched columns' values) and write the whole summary as ONE record at
 * commit, in format version HD_RECORD_VERSION (2). Aborted transactions and
 * rolled-back subtransactions are never replayed, so they produce nothing.
 *
 * Cost on the origin is kept small and bounded:
 *   - only the replica-identity key columns of a row are rendered, with their
 *     type's output function, and only the watched columns are hashed; other
 *     columns are never looked at;
 *   - a key or watched column that is an unchanged, out-of-line TOAST value
 *     is never fetched: the relation folds to "all rows", the column to "all
 *     values" (toast) instead;
 *   - per relation at most key-cap distinct keys, and per watched column
 *     value-cap distinct hashes, are kept; past that they are freed and the
 *     relation says "all rows" (the column "all values"), so memory does not
 *     grow with the size of the transaction;
 *   - everything per transaction lives in a memory context reset at each
 *     transaction; the watched columns (hyperdrive.watched_column, a user
 *     catalog table read under the historic snapshot) are cached across
 *     transactions, per relation with their hash functions, and read again
 *     after a transaction that changed the table or ran DDL. A slot that
 *     watches nothing costs one test per changed relation and transaction.
 *
 * Schema changes produce no row changes; the event triggers of ddl_capture.c
 * describe them in transactional logical messages, which are folded in here.
 * Role changes fire no event trigger at all; they are recognised from the
 * transaction's catalog invalidation messages (see txn_changed_roles()).
 *
 * Options (pg_logical_slot_get_changes / START_REPLICATION):
 *   format            'text' (default) or 'compact' (binary; docs/stream.md)
 *   key-cap           distinct keys per relation before "all rows" (default 100)
 *   value-cap         distinct value hashes per watched column and relation
 *                     before "all values" (default 100)
 *   heartbeat         also emit a record for committed transactions that
 *                     changed nothing the stream reports (default off)
 *   values-test-drop-old
 *                     tests of consumers only: watched columns leave old
 *                     values out and still say complete (default off)
 *   include-xids, include-lsn, include-timestamp, include-oids
 *                     text format only: show these fields (default on)
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/detoast.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "replication/slot.h"
#include "storage/sinval.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

#include "hyperdrive.h"

typedef enum HdFormat
{
	HD_FORMAT_TEXT,
	HD_FORMAT_COMPACT
} HdFormat;

#define HD_DEFAULT_KEY_CAP 100
#define HD_DEFAULT_VALUE_CAP 100

/* The user catalog table of watched columns (hyperdrive--0.2--0.3.sql). */
#define HD_SCHEMA_NAME "hyperdrive"
#define HD_WATCH_TABLE_NAME "watched_column"
#define Anum_watched_column_slot 1
#define Anum_watched_column_relid 2
#define Anum_watched_column_attnum 3

/* One row of watched_column for the decoding slot. */
typedef struct HdWatchRow
{
	Oid			relid;
	AttrNumber	attnum;
} HdWatchRow;

/*
 * How to take one watched column's value from a changed relation's rows:
 * the column of the same name in that relation, and its type's hash.
 */
typedef struct HdWatchCol
{
	Oid			relid;			/* the watched relation (the changed one or an ancestor) */
	AttrNumber	attnum;			/* in relid */
	AttrNumber	local_attnum;	/* in the changed relation; InvalidAttrNumber: none */
	Oid			typid;			/* the local column's type, checked on every row */
	bool		varlena;
	bool		identity;		/* a replica identity column (its old value is logged) */
	Oid			collid;
	FmgrInfo	hash;
} HdWatchCol;

/* The watched columns of one changed relation (watch_rels's entry). */
typedef struct HdWatchRel
{
	Oid			relid;			/* hash key: must be first */
	int			ncols;
	HdWatchCol *cols;
} HdWatchRel;

/* Plugin state for one decoding session (ctx->output_plugin_private). */
typedef struct HdDecodingState
{
	MemoryContext txn_context;	/* reset at every BEGIN */
	MemoryContext row_context;	/* reset after each row's key is taken */
	HdFormat	format;
	int			key_cap;
	int			value_cap;
	bool		test_drop_old_values;	/* values-test-drop-old: a wrong stream */
	bool		heartbeat;
	HdTextOptions text;
	int			guc_nestlevel;	/* our canonical output settings, undone at shutdown */

	/*
	 * The watched columns, read under the historic snapshot and kept across
	 * transactions until a decoded transaction changes the table or runs DDL
	 * (then dropped at its commit: later transactions see the new state).
	 */
	MemoryContext watch_context;	/* everything below; reset with it */
	bool		watch_loaded;	/* watch_rows are the slot's rows */
	XLogRecPtr	watch_load_lsn; /* under the snapshot of the change at this LSN */
	bool		watch_loaded_in_txn;	/* by the transaction being decoded */
	bool		watch_verified; /* checked once at a commit this session */
	XLogRecPtr	watch_change_lsn;	/* last decoded commit that changed the table */
	Oid			watch_table;	/* hyperdrive.watched_column, when known */
	int			nwatch_rows;
	HdWatchRow *watch_rows;		/* sorted by relid, attnum */
	HTAB	   *watch_rels;		/* relid -> HdWatchRel */
	bool		watch_stale;	/* this transaction made the cache stale */

	/* the transaction being replayed; valid between begin and commit */
	HTAB	   *relations;		/* relid -> HdRelChange */
	HdTxnSummary summary;
} HdDecodingState;

extern void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void hd_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init);
static void hd_shutdown(LogicalDecodingContext *ctx);
static void hd_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn);
static void hd_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					  Relation relation, ReorderBufferChange *change);
static void hd_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
						int nrelations, Relation relations[], ReorderBufferChange *change);
static void hd_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
					   XLogRecPtr message_lsn, bool transactional, const char *prefix,
					   Size message_size, const char *message);
static void hd_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn);

void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = hd_startup;
	cb->begin_cb = hd_begin;
	cb->change_cb = hd_change;
	/* without truncate_cb, TRUNCATE would be skipped silently */
	cb->truncate_cb = hd_truncate;
	cb->message_cb = hd_message;
	cb->commit_cb = hd_commit;
	cb->shutdown_cb = hd_shutdown;

	/*
	 * No stream_* callbacks: a large transaction is spilled to disk by the
	 * server and replayed at commit, so every record describes a committed
	 * transaction. No two-phase callbacks either: a prepared transaction is
	 * reported at COMMIT PREPARED.
	 */
}

static bool
parse_bool_option(DefElem *elem)
{
	bool		value;

	if (elem->arg == NULL)
		return true;
	if (!parse_bool(strVal(elem->arg), &value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not parse value \"%s\" for hyperdrive option \"%s\"",
						strVal(elem->arg), elem->defname),
				 errhint("Use a boolean: on/off, true/false, 1/0.")));
	return value;
}

/* key-cap, value-cap: an integer from 0 to 1000000. */
static int
parse_cap_option(DefElem *elem, const char *zero)
{
	const char *value = elem->arg ? strVal(elem->arg) : "";
	char	   *end;
	long		cap;

	errno = 0;
	cap = strtol(value, &end, 10);
	if (*value == '\0' || *end != '\0' || errno != 0 || cap < 0 || cap > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value \"%s\" for hyperdrive option \"%s\"", value, elem->defname),
				 errhint("Use an integer from %s to 1000000.", zero)));
	return (int) cap;
}

/*
 * Key values are rendered with their type's output function, whose result
 * depends on session settings (a date is 02-29-2024 under DateStyle
 * "Postgres, MDY"). So that a key means the same whatever session decodes the
 * slot, decoding runs under fixed settings, documented in docs/stream.md. They
 * are pushed on a GUC nest level and popped at shutdown (or by the
 * transaction's abort), so an SQL session reading the slot gets its own back.
 * GUC_ACTION_SAVE needs an open transaction; see below for a walsender.
 */
static void
use_canonical_output_settings(HdDecodingState *state)
{
	static const char *const settings[][2] = {
		{"DateStyle", "ISO, YMD"},
		{"IntervalStyle", "postgres"},
		{"TimeZone", "UTC"},
		{"extra_float_digits", "1"},
		{"bytea_output", "hex"},
	};

	/*
	 * A walsender runs START_REPLICATION outside any transaction, where the
	 * GUC stack cannot be used (it lives in the transaction's memory); the
	 * session is the walsender's own, so set the values for good. An SQL
	 * session reading the slot is inside a transaction: save and restore.
	 */
	bool		in_transaction = IsTransactionState();

	state->guc_nestlevel = in_transaction ? NewGUCNestLevel() : 0;
	for (int i = 0; i < (int) lengthof(settings); i++)
		(void) set_config_option(settings[i][0], settings[i][1], PGC_USERSET, PGC_S_SESSION,
								 in_transaction ? GUC_ACTION_SAVE : GUC_ACTION_SET,
								 true, 0, false);
}

static void
hd_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	HdDecodingState *state;
	ListCell   *option;

	state = palloc0(sizeof(HdDecodingState));
	state->txn_context = AllocSetContextCreate(ctx->context, "hyperdrive transaction",
											   ALLOCSET_DEFAULT_SIZES);
	state->row_context = AllocSetContextCreate(ctx->context, "hyperdrive row",
											   ALLOCSET_SMALL_SIZES);
	state->watch_context = AllocSetContextCreate(ctx->context, "hyperdrive watched columns",
												 ALLOCSET_SMALL_SIZES);
	state->format = HD_FORMAT_TEXT;
	state->key_cap = HD_DEFAULT_KEY_CAP;
	state->value_cap = HD_DEFAULT_VALUE_CAP;
	state->heartbeat = false;
	state->text.include_xids = true;
	state->text.include_lsn = true;
	state->text.include_timestamp = true;
	state->text.include_oids = true;

	foreach(option, ctx->output_plugin_options)
	{
		DefElem    *elem = lfirst(option);

		if (strcmp(elem->defname, "format") == 0)
		{
			const char *value = elem->arg ? strVal(elem->arg) : "";

			if (strcmp(value, "text") == 0)
				state->format = HD_FORMAT_TEXT;
			else if (strcmp(value, "compact") == 0)
				state->format = HD_FORMAT_COMPACT;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value \"%s\" for hyperdrive option \"format\"", value),
						 errhint("Valid values are \"text\" and \"compact\".")));
		}
		else if (strcmp(elem->defname, "key-cap") == 0)
			state->key_cap = parse_cap_option(elem, "0 (never list keys)");
		else if (strcmp(elem->defname, "value-cap") == 0)
			state->value_cap = parse_cap_option(elem, "0 (never list values)");
		else if (strcmp(elem->defname, "heartbeat") == 0)
			state->heartbeat = parse_bool_option(elem);
		else if (strcmp(elem->defname, "values-test-drop-old") == 0)
		{
			state->test_drop_old_values = parse_bool_option(elem);
			if (state->test_drop_old_values)
				ereport(WARNING,
						(errmsg("hyperdrive option \"values-test-drop-old\" is on: watched "
								"columns leave old values out yet say they are complete"),
						 errdetail("This stream is wrong on purpose, for tests of its "
								   "consumers; a cache reading it serves stale results.")));
		}
		else if (strcmp(elem->defname, "include-xids") == 0)
			state->text.include_xids = parse_bool_option(elem);
		else if (strcmp(elem->defname, "include-lsn") == 0)
			state->text.include_lsn = parse_bool_option(elem);
		else if (strcmp(elem->defname, "include-timestamp") == 0)
			state->text.include_timestamp = parse_bool_option(elem);
		else if (strcmp(elem->defname, "include-oids") == 0)
			state->text.include_oids = parse_bool_option(elem);
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("hyperdrive option \"%s\" is unknown", elem->defname),
					 errhint("Known options: format, key-cap, value-cap, heartbeat, include-xids, "
							 "include-lsn, include-timestamp, include-oids.")));
	}

	use_canonical_output_settings(state);

	opt->output_type = state->format == HD_FORMAT_COMPACT ?
		OUTPUT_PLUGIN_BINARY_OUTPUT : OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	opt->receive_rewrites = false;
	ctx->output_plugin_private = state;
}

static void
hd_shutdown(LogicalDecodingContext *ctx)
{
	HdDecodingState *state = ctx->output_plugin_private;

	if (state->guc_nestlevel > 0)
		AtEOXact_GUC(true, state->guc_nestlevel);
	MemoryContextDelete(state->row_context);
	MemoryContextDelete(state->txn_context);
	MemoryContextDelete(state->watch_context);
}

/*
 * The transaction's xid with its epoch, as pg_current_snapshot() and
 * pg_current_xact_id() report xids (xid8). The transaction being decoded is
 * never more than 2^31 transactions older than the next xid, because the slot
 * holds back the catalog xmin.
 */
static uint64
full_xid_of(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (!TransactionIdIsNormal(xid))
		return (uint64) xid;
	if (xid > XidFromFullTransactionId(next) && epoch > 0)
		epoch--;
	return ((uint64) epoch << 32) | xid;
}

static void
hd_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	HdDecodingState *state = ctx->output_plugin_private;
	HASHCTL		hash_ctl;

	MemoryContextReset(state->txn_context);
	memset(&state->summary, 0, sizeof(state->summary));
	state->watch_loaded_in_txn = false;

	hash_ctl.keysize = sizeof(Oid);
	hash_ctl.entrysize = sizeof(HdRelChange);
	hash_ctl.hcxt = state->txn_context;
	state->relations = hash_create("hyperdrive changed relations", 16, &hash_ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/* The entry for relid in this transaction, created (with names) on first use. */
static HdRelChange *
relation_entry(HdDecodingState *state, Oid relid, const char *nspname, const char *relname)
{
	HdRelChange *entry;
	bool		found;
	MemoryContext old = MemoryContextSwitchTo(state->txn_context);

	entry = hash_search(state->relations, &relid, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) entry) + sizeof(Oid), 0, sizeof(HdRelChange) - sizeof(Oid));
		entry->nspname = pstrdup(nspname);
		entry->relname = pstrdup(relname);
		entry->rows = HD_ROWS_KEYS;
		state->summary.relations = lappend(state->summary.relations, entry);
	}
	MemoryContextSwitchTo(old);
	return entry;
}

/*
 * A schema's name, or "" if it vanished (both encodings then show the same
 * empty schema).
 */
static char *
namespace_name(Oid nspid)
{
	char	   *name = get_namespace_name(nspid);

	return name ? name : pstrdup("");
}

/* Names of relid's ancestors, nearest first; resolved once per transaction. */
static void
resolve_ancestors(HdDecodingState *state, HdRelChange *entry)
{
	MemoryContext old;
	List	   *ancestors;
	ListCell   *lc;

	if (entry->ancestors_known)
		return;
	old = MemoryContextSwitchTo(state->txn_context);
	ancestors = hd_relation_ancestors(entry->relid);
	foreach(lc, ancestors)
	{
		Oid			ancestor = lfirst_oid(lc);
		char	   *relname = get_rel_name(ancestor);
		HdRelName  *name;

		if (relname == NULL)
			continue;			/* dropped later in this transaction */
		name = palloc(sizeof(HdRelName));
		name->relid = ancestor;
		name->relname = relname;
		name->nspname = namespace_name(get_rel_namespace(ancestor));
		entry->ancestors = lappend(entry->ancestors, name);
	}
	entry->ancestors_known = true;
	MemoryContextSwitchTo(old);
}

/* Stop collecting keys for this relation: every row may have changed. */
static void
fold_to_all_rows(HdRelChange *entry, HdRowsReason reason)
{
	if (entry->rows != HD_ROWS_KEYS)
		return;					/* keep the first reason */
	entry->rows = reason;
	for (int i = 0; i < entry->nkeys; i++)
		pfree(entry->keys[i]);
	if (entry->keys)
		pfree(entry->keys);
	entry->keys = NULL;
	entry->nkeys = entry->maxkeys = 0;
}

/*
 * Find the key columns of a relation: its replica identity index, or, under
 * REPLICA IDENTITY FULL, its primary key (the old row then carries every
 * column). Without either, deletes carry no usable key, so the stream cannot
 * name rows and reports all rows.
 */
static void
resolve_key_columns(HdDecodingState *state, HdRelChange *entry, Relation relation)
{
	Oid			indexoid;
	HeapTuple	indextup;
	Form_pg_index index;
	TupleDesc	desc = RelationGetDescr(relation);
	MemoryContext old;

	entry->key_known = true;
	indexoid = RelationGetReplicaIndex(relation);
	if (!OidIsValid(indexoid) &&
		relation->rd_rel->relreplident == REPLICA_IDENTITY_FULL)
		indexoid = RelationGetPrimaryKeyIndex(relation);
	if (!OidIsValid(indexoid))
		return;

	indextup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(indextup))
		return;
	index = (Form_pg_index) GETSTRUCT(indextup);

	old = MemoryContextSwitchTo(state->txn_context);
	entry->key_natts = index->indnkeyatts;
	entry->key_attnums = palloc(sizeof(AttrNumber) * entry->key_natts);
	entry->key_names = palloc(sizeof(char *) * entry->key_natts);
	for (int i = 0; i < entry->key_natts; i++)
	{
		AttrNumber	attnum = index->indkey.values[i];

		if (attnum <= 0)
		{
			/* expression index: cannot be a replica identity; be safe anyway */
			entry->key_natts = 0;
			break;
		}
		entry->key_attnums[i] = attnum;
		entry->key_names[i] = pstrdup(NameStr(TupleDescAttr(desc, attnum - 1)->attname));
	}
	MemoryContextSwitchTo(old);
	ReleaseSysCache(indextup);
}

/*
 * Serialize the key columns of tuple into buf. Returns HD_ROWS_KEYS on
 * success, or the reason the key cannot be given.
 */
static HdRowsReason
serialize_key(HdRelChange *entry, TupleDesc desc, HeapTuple tuple, StringInfo buf)
{
	for (int i = 0; i < entry->key_natts; i++)
	{
		AttrNumber	attnum = entry->key_attnums[i];
		Form_pg_attribute attr = TupleDescAttr(desc, attnum - 1);
		bool		isnull;
		Datum		value = heap_getattr(tuple, attnum, desc, &isnull);
		Oid			typoutput;
		bool		typisvarlena;
		char	   *text;
		int32		len;

		if (isnull)
		{
			len = -1;
			appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
			continue;
		}
		getTypeOutputInfo(attr->atttypid, &typoutput, &typisvarlena);
		/* never read an out-of-line TOAST value: it may be unchanged and absent */
		if (typisvarlena && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value)))
			return HD_ROWS_TOAST;
		text = OidOutputFunctionCall(typoutput, value);
		len = strlen(text);
		if (buf->len + len + sizeof(len) > HD_MAX_KEY_BYTES)
			return HD_ROWS_KEY_SIZE;
		appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
		appendBinaryStringInfo(buf, text, len);
		pfree(text);
	}
	return HD_ROWS_KEYS;
}

/* Whether the relation's key set already holds this serialized key. */
static bool
key_listed(HdRelChange *entry, uint32 hash, const char *data, int len)
{
	for (int i = 0; i < entry->nkeys; i++)
	{
		if (entry->keys[i]->hash == hash && entry->keys[i]->len == len &&
			memcmp(entry->keys[i]->data, data, len) == 0)
			return true;
	}
	return false;
}

/* Copy a serialized key into the relation's set (in the transaction context). */
static void
append_key(HdDecodingState *state, HdRelChange *entry, uint32 hash, const char *data, int len)
{
	MemoryContext old = MemoryContextSwitchTo(state->txn_context);
	HdKey	   *key;

	if (entry->nkeys == entry->maxkeys)
	{
		entry->maxkeys = entry->maxkeys == 0 ? 8 : entry->maxkeys * 2;
		entry->keys = entry->keys == NULL ?
			palloc(sizeof(HdKey *) * entry->maxkeys) :
			repalloc(entry->keys, sizeof(HdKey *) * entry->maxkeys);
	}
	key = palloc(offsetof(HdKey, data) + len);
	key->hash = hash;
	key->len = len;
	memcpy(key->data, data, len);
	entry->keys[entry->nkeys++] = key;
	MemoryContextSwitchTo(old);
}

/*
 * Add the key of tuple to the relation's set, folding to all rows when needed.
 * The output functions run in a per-row context that is reset here, so what
 * they leave behind does not accumulate over a long transaction.
 */
static void
add_row_key(HdDecodingState *state, HdRelChange *entry, Relation relation, HeapTuple tuple)
{
	StringInfoData buf;
	HdRowsReason result;
	MemoryContext old;

	if (entry->rows != HD_ROWS_KEYS)
		return;					/* already all rows: no more work per row */
	if (!entry->key_known)
		resolve_key_columns(state, entry, relation);
	if (entry->key_natts == 0 || tuple == NULL)
	{
		fold_to_all_rows(entry, HD_ROWS_NO_IDENTITY);
		return;
	}

	old = MemoryContextSwitchTo(state->row_context);
	initStringInfo(&buf);
	result = serialize_key(entry, RelationGetDescr(relation), tuple, &buf);
	MemoryContextSwitchTo(old);

	if (result != HD_ROWS_KEYS)
		fold_to_all_rows(entry, result);
	else
	{
		uint32		hash = hash_bytes((unsigned char *) buf.data, buf.len);

		if (!key_listed(entry, hash, buf.data, buf.len))
		{
			if (entry->nkeys >= state->key_cap)
				fold_to_all_rows(entry, HD_ROWS_KEY_CAP);
			else
				append_key(state, entry, hash, buf.data, buf.len);
		}
	}
	MemoryContextReset(state->row_context);
}

/* ---------------------------------------------------------------------------
 * Watched columns (stream version 2; docs/stream.md, "Watched columns")
 *
 * The slot's rows of hyperdrive.watched_column are read once, under the
 * historic snapshot of the transaction being decoded (systable_beginscan with
 * a NULL snapshot uses it in a decoding callback), and kept in watch_context
 * with, per changed relation, how to find and hash each watched column. The
 * cache stays valid until a decoded transaction changes the table or runs DDL;
 * at that transaction's commit it is dropped, and the next transaction in
 * commit order reads the table again. Per row, a relation without watched
 * columns costs one test of entry->nwatched; no catalog is read per row.
 */

/* Drop everything cached about watched columns. */
static void
reset_watch_cache(HdDecodingState *state)
{
	MemoryContextReset(state->watch_context);
	state->watch_loaded = false;
	state->watch_table = InvalidOid;
	state->nwatch_rows = 0;
	state->watch_rows = NULL;
	state->watch_rels = NULL;
}

static int
watch_row_cmp(const void *a, const void *b)
{
	const HdWatchRow *ra = a;
	const HdWatchRow *rb = b;

	if (ra->relid != rb->relid)
		return ra->relid < rb->relid ? -1 : 1;
	return (ra->attnum > rb->attnum) - (ra->attnum < rb->attnum);
}

/*
 * The decoding slot's rows of watched_column under the current (historic)
 * snapshot, sorted, allocated in mcxt. False, and no rows, without the table
 * (the extension is not installed here).
 */
static bool
scan_watch_rows(HdDecodingState *state, MemoryContext mcxt, HdWatchRow **rowsp, int *nrowsp)
{
	Oid			nspid;
	Relation	table;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			maxrows = 8;
	int			nrows = 0;
	HdWatchRow *rows;

	*rowsp = NULL;
	*nrowsp = 0;
	if (MyReplicationSlot == NULL)
		return false;
	if (!OidIsValid(state->watch_table))
	{
		nspid = get_namespace_oid(HD_SCHEMA_NAME, true);
		if (OidIsValid(nspid))
			state->watch_table = get_relname_relid(HD_WATCH_TABLE_NAME, nspid);
		if (!OidIsValid(state->watch_table))
			return false;
	}

	rows = MemoryContextAlloc(mcxt, sizeof(HdWatchRow) * maxrows);
	table = table_open(state->watch_table, AccessShareLock);
	ScanKeyInit(&key, Anum_watched_column_slot, BTEqualStrategyNumber, F_NAMEEQ,
				NameGetDatum(&MyReplicationSlot->data.name));
	scan = systable_beginscan(table, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull1;
		bool		isnull2;
		Datum		relid = heap_getattr(tuple, Anum_watched_column_relid,
										 RelationGetDescr(table), &isnull1);
		Datum		attnum = heap_getattr(tuple, Anum_watched_column_attnum,
										  RelationGetDescr(table), &isnull2);

		if (isnull1 || isnull2)
			continue;
		if (nrows == maxrows)
		{
			maxrows *= 2;
			rows = repalloc(rows, sizeof(HdWatchRow) * maxrows);
		}
		rows[nrows].relid = DatumGetObjectId(relid);
		rows[nrows].attnum = DatumGetInt16(attnum);
		nrows++;
	}
	systable_endscan(scan);
	table_close(table, AccessShareLock);
	qsort(rows, nrows, sizeof(HdWatchRow), watch_row_cmp);
	*rowsp = rows;
	*nrowsp = nrows;
	return true;
}

/*
 * Read the slot's watched columns into the cache, once per cache, under the
 * snapshot of the change at lsn. Without the table nothing is watched; that
 * is not cached, so that the extension's creation is seen by the next
 * transaction.
 */
static void
load_watch_rows(HdDecodingState *state, XLogRecPtr lsn)
{
	if (state->watch_loaded)
		return;
	if (!scan_watch_rows(state, state->watch_context, &state->watch_rows, &state->nwatch_rows))
		return;
	state->watch_loaded = true;
	state->watch_load_lsn = lsn;
	state->watch_loaded_in_txn = true;
}

/*
 * How to take watched column (relid, attnum) from relation's rows: its column
 * of the same name (a partition or inheritance child may number it
 * differently), that column's type's default hash and collation. Sets
 * local_attnum to InvalidAttrNumber when there is no such live column or its
 * type cannot be hashed (a later ALTER COLUMN TYPE).
 */
static void
resolve_watch_col(HdDecodingState *state, HdWatchCol *col, Relation relation,
				  Bitmapset *identity)
{
	TupleDesc	desc = RelationGetDescr(relation);
	HeapTuple	atttup;
	char	   *name = NULL;

	col->local_attnum = InvalidAttrNumber;
	atttup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(col->relid), Int16GetDatum(col->attnum));
	if (HeapTupleIsValid(atttup))
	{
		Form_pg_attribute att = (Form_pg_attribute) GETSTRUCT(atttup);

		if (!att->attisdropped && att->attnum > 0)
			name = pstrdup(NameStr(att->attname));
		ReleaseSysCache(atttup);
	}
	if (name == NULL)
		return;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);

		if (attr->attisdropped || strcmp(NameStr(attr->attname), name) != 0)
			continue;
		if (!hd_default_hash_proc(attr->atttypid, &col->hash, state->watch_context))
			break;
		col->local_attnum = attr->attnum;
		col->typid = attr->atttypid;
		col->varlena = attr->attlen == -1;
		col->collid = attr->attcollation;
		col->identity = bms_is_member(attr->attnum - FirstLowInvalidHeapAttributeNumber,
									  identity);
		break;
	}
	pfree(name);
}

/*
 * The watched columns of relation: the slot's rows for the relation itself,
 * then for each of its ancestors, nearest first (the ancestors the record
 * lists), each by attnum.
 */
static void
build_watch_rel(HdDecodingState *state, HdWatchRel *wr, Relation relation)
{
	List	   *rels = list_make1_oid(wr->relid);
	Bitmapset  *identity = RelationGetIdentityKeyBitmap(relation);
	ListCell   *lc;
	int			n = 0;

	rels = list_concat(rels, hd_relation_ancestors(wr->relid));
	wr->ncols = 0;
	foreach(lc, rels)
	{
		for (int i = 0; i < state->nwatch_rows; i++)
			if (state->watch_rows[i].relid == lfirst_oid(lc))
				wr->ncols++;
	}
	wr->cols = wr->ncols == 0 ? NULL :
		MemoryContextAllocZero(state->watch_context, sizeof(HdWatchCol) * wr->ncols);
	foreach(lc, rels)
	{
		for (int i = 0; i < state->nwatch_rows; i++)
		{
			HdWatchCol *col;

			if (state->watch_rows[i].relid != lfirst_oid(lc))
				continue;
			col = &wr->cols[n++];
			col->relid = state->watch_rows[i].relid;
			col->attnum = state->watch_rows[i].attnum;
			resolve_watch_col(state, col, relation, identity);
		}
	}
}

/* The cache's watched columns of relation, built on first use. */
static HdWatchRel *
watch_rel_for(HdDecodingState *state, Relation relation)
{
	HdWatchRel *wr;
	Oid			relid = RelationGetRelid(relation);
	bool		found;
	MemoryContext old;

	old = MemoryContextSwitchTo(state->watch_context);
	if (state->watch_rels == NULL)
	{
		HASHCTL		hash_ctl;

		hash_ctl.keysize = sizeof(Oid);
		hash_ctl.entrysize = sizeof(HdWatchRel);
		hash_ctl.hcxt = state->watch_context;
		state->watch_rels = hash_create("hyperdrive watched relations", 16, &hash_ctl,
										HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	wr = hash_search(state->watch_rels, &relid, HASH_ENTER, &found);
	if (!found)
		build_watch_rel(state, wr, relation);
	MemoryContextSwitchTo(old);
	return wr;
}

/*
 * The transaction's watched columns of entry, once per relation and
 * transaction, as the cache has them (the change at lsn may load it).
 */
static void
resolve_watch(HdDecodingState *state, HdRelChange *entry, Relation relation, XLogRecPtr lsn)
{
	HdWatchRel *wr;

	entry->watch_known = true;
	load_watch_rows(state, lsn);
	if (state->nwatch_rows == 0)
		return;

	wr = watch_rel_for(state, relation);
	if (wr->ncols == 0)
		return;
	entry->watched = MemoryContextAllocZero(state->txn_context,
											sizeof(HdWatchedCol) * wr->ncols);
	for (int i = 0; i < wr->ncols; i++)
	{
		HdWatchedCol *wc = &entry->watched[i];

		wc->relid = wr->cols[i].relid;
		wc->attnum = wr->cols[i].attnum;
		wc->col = &wr->cols[i];
		wc->state = AttributeNumberIsValid(wr->cols[i].local_attnum) ?
			HD_VALUES_COMPLETE : HD_VALUES_NO_COLUMN;
	}
	entry->nwatched = wr->ncols;
}

/* Stop collecting a column's values: the consumer must assume any value. */
static void
values_incomplete(HdWatchedCol *wc, HdValuesState reason)
{
	if (wc->state != HD_VALUES_COMPLETE)
		return;					/* keep the first reason */
	wc->state = reason;
	if (wc->hashes)
		pfree(wc->hashes);
	if (wc->index)
		pfree(wc->index);
	wc->hashes = NULL;
	wc->index = NULL;
	wc->nhashes = wc->maxhashes = wc->index_size = 0;
}

static inline int
hash_slot(int64 hash, int size)
{
	uint64		h = (uint64) hash;

	return (int) ((h ^ (h >> 32)) & (uint64) (size - 1));
}

/* Add a hash to the column's set (in the transaction context), up to value-cap. */
static void
add_value_hash(HdDecodingState *state, HdWatchedCol *wc, int64 hash)
{
	int			slot;
	MemoryContext old;

	if (wc->index_size > 0)
	{
		for (slot = hash_slot(hash, wc->index_size); wc->index[slot] >= 0;
			 slot = (slot + 1) & (wc->index_size - 1))
		{
			if (wc->hashes[wc->index[slot]] == hash)
				return;
		}
	}
	if (wc->nhashes >= state->value_cap)
	{
		values_incomplete(wc, HD_VALUES_CAP);
		return;
	}

	old = MemoryContextSwitchTo(state->txn_context);
	if (wc->nhashes == wc->maxhashes)
	{
		wc->maxhashes = wc->maxhashes == 0 ? 8 : wc->maxhashes * 2;
		wc->hashes = wc->hashes == NULL ?
			palloc(sizeof(int64) * wc->maxhashes) :
			repalloc(wc->hashes, sizeof(int64) * wc->maxhashes);
		/* a new index, at most half full, with every hash so far */
		if (wc->index)
			pfree(wc->index);
		wc->index_size = 4 * wc->maxhashes;
		wc->index = palloc(sizeof(int) * wc->index_size);
		memset(wc->index, -1, sizeof(int) * wc->index_size);
		for (int i = 0; i < wc->nhashes; i++)
		{
			for (slot = hash_slot(wc->hashes[i], wc->index_size); wc->index[slot] >= 0;
				 slot = (slot + 1) & (wc->index_size - 1))
				;
			wc->index[slot] = i;
		}
	}
	for (slot = hash_slot(hash, wc->index_size); wc->index[slot] >= 0;
		 slot = (slot + 1) & (wc->index_size - 1))
		;
	wc->index[slot] = wc->nhashes;
	wc->hashes[wc->nhashes++] = hash;
	MemoryContextSwitchTo(old);
}

/*
 * Add one value of the column, unless NULL. An out-of-line TOAST value is
 * never fetched: the column's values are then incomplete.
 */
static void
add_value(HdDecodingState *state, HdWatchedCol *wc, Datum value, bool isnull)
{
	if (isnull)
		return;
	if (wc->col->varlena && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value)))
	{
		values_incomplete(wc, HD_VALUES_TOAST);
		return;
	}
	add_value_hash(state, wc, hd_value_hash(&wc->col->hash, wc->col->collid, value));
}

/*
 * Add the watched columns' values of one changed row: the new tuple's (INSERT,
 * UPDATE) and the old one's (UPDATE, DELETE). The old tuple is in the WAL
 * only under REPLICA IDENTITY FULL (every column, TOAST values flattened) or,
 * under DEFAULT / USING INDEX, when the key changed (its identity columns
 * only; the others read as NULL and are not the old values). Without it, an
 * identity column's old value is its new one; any other old value is
 * missing. An unchanged out-of-line TOAST value in the new tuple is the old
 * value.
 */
static void
add_row_values(HdDecodingState *state, HdRelChange *entry, Relation relation,
			   HeapTuple newtuple, HeapTuple oldtuple, bool has_old)
{
	TupleDesc	desc = RelationGetDescr(relation);
	bool		full = relation->rd_rel->relreplident == REPLICA_IDENTITY_FULL;
	MemoryContext old;

	if (entry->kinds & (HD_KIND_TRUNCATE | HD_KIND_DDL))
		return;					/* the entry carries no values */

	old = MemoryContextSwitchTo(state->row_context);
	for (int i = 0; i < entry->nwatched; i++)
	{
		HdWatchedCol *wc = &entry->watched[i];
		const HdWatchCol *col = wc->col;
		AttrNumber	attnum = col->local_attnum;
		bool		old_logged = oldtuple != NULL && (full || col->identity);
		Datum		value;
		bool		isnull;

		if (wc->state != HD_VALUES_COMPLETE)
			continue;
		/* the cache was built for this column and type: a DDL since is a new one */
		if (attnum > desc->natts || TupleDescAttr(desc, attnum - 1)->attisdropped ||
			TupleDescAttr(desc, attnum - 1)->atttypid != col->typid)
		{
			values_incomplete(wc, HD_VALUES_NO_COLUMN);
			continue;
		}

		if (newtuple != NULL)
		{
			value = heap_getattr(newtuple, attnum, desc, &isnull);
			if (!isnull && col->varlena && has_old &&
				VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value)))
			{
				/* unchanged: the old value, if the WAL has it */
				if (!old_logged)
				{
					values_incomplete(wc, HD_VALUES_TOAST);
					continue;
				}
				/* its old value is added below */
			}
			else
				add_value(state, wc, value, isnull);
		}

		if (!has_old || wc->state != HD_VALUES_COMPLETE || state->test_drop_old_values)
			continue;
		if (old_logged)
		{
			value = heap_getattr(oldtuple, attnum, desc, &isnull);
			add_value(state, wc, value, isnull);
		}
		else if (newtuple == NULL || !col->identity)
			values_incomplete(wc, HD_VALUES_NO_OLD);
		/* else: an identity column without an old tuple did not change */
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(state->row_context);
}

/*
 * The watched columns at the transaction's commit, when the cache may be
 * older. The cache was read under the snapshot of one of this transaction's
 * changes; a transaction that changed the table and committed after that
 * change but before this commit (or, the first time in a session, one the
 * server skipped as already confirmed) is not in it, yet comes first in commit
 * order, so this record must carry its columns. Read the rows again under the
 * commit's snapshot (it sees every such commit); if they differ, rebuild the
 * cache and each entry's list: a column collected all along keeps its values,
 * one watched while this transaction was in progress says no-old-value (its
 * earlier rows' values were not collected), one no longer watched goes.
 */
static void
verify_watch_at_commit(HdDecodingState *state, XLogRecPtr commit_lsn)
{
	HdWatchRow *rows;
	int			nrows;
	bool		same;
	ListCell   *lc;

	(void) scan_watch_rows(state, state->txn_context, &rows, &nrows);
	state->watch_verified = true;
	same = nrows == state->nwatch_rows;
	for (int i = 0; same && i < nrows; i++)
		same = rows[i].relid == state->watch_rows[i].relid &&
			rows[i].attnum == state->watch_rows[i].attnum;
	if (same)
		return;

	reset_watch_cache(state);
	if (!scan_watch_rows(state, state->watch_context, &state->watch_rows, &state->nwatch_rows))
		return;
	state->watch_loaded = true;
	state->watch_load_lsn = commit_lsn;

	foreach(lc, state->summary.relations)
	{
		HdRelChange *entry = lfirst(lc);
		HdWatchedCol *watched = NULL;
		HdWatchRel *wr;
		Relation	relation;

		if (!entry->watch_known || (entry->kinds & (HD_KIND_TRUNCATE | HD_KIND_DDL)))
			continue;
		relation = RelationIdGetRelation(entry->relid);
		if (!RelationIsValid(relation))
			continue;
		wr = state->nwatch_rows > 0 ? watch_rel_for(state, relation) : NULL;
		RelationClose(relation);
		if (wr != NULL && wr->ncols > 0)
			watched = MemoryContextAllocZero(state->txn_context, sizeof(HdWatchedCol) * wr->ncols);
		for (int i = 0; watched != NULL && i < wr->ncols; i++)
		{
			HdWatchedCol *wc = &watched[i];
			bool		found = false;

			for (int j = 0; j < entry->nwatched && !found; j++)
			{
				if (entry->watched[j].relid == wr->cols[i].relid &&
					entry->watched[j].attnum == wr->cols[i].attnum)
				{
					*wc = entry->watched[j];
					found = true;
				}
			}
			wc->relid = wr->cols[i].relid;
			wc->attnum = wr->cols[i].attnum;
			wc->col = &wr->cols[i];
			if (!found)
				wc->state = AttributeNumberIsValid(wr->cols[i].local_attnum) ?
					HD_VALUES_NO_OLD : HD_VALUES_NO_COLUMN;
		}
		entry->watched = watched;
		entry->nwatched = watched != NULL ? wr->ncols : 0;
	}
}

/* Whether relation is hyperdrive.watched_column (a user catalog table). */
static bool
is_watch_table(HdDecodingState *state, Relation relation)
{
	bool		result;
	char	   *nspname;

	if (!RelationIsUsedAsCatalogTable(relation))
		return false;
	if (OidIsValid(state->watch_table))
		return RelationGetRelid(relation) == state->watch_table;
	if (strcmp(RelationGetRelationName(relation), HD_WATCH_TABLE_NAME) != 0)
		return false;
	nspname = get_namespace_name(RelationGetNamespace(relation));
	result = nspname != NULL && strcmp(nspname, HD_SCHEMA_NAME) == 0;
	if (nspname)
		pfree(nspname);
	return result;
}

static HeapTuple
change_tuple(ReorderBufferTupleBuf *buf)
{
	return buf == NULL ? NULL : &buf->tuple;
}

static HdRelChange *
entry_for_relation(HdDecodingState *state, Relation relation)
{
	HdRelChange *entry;
	Oid			relid = RelationGetRelid(relation);
	bool		found;

	entry = hash_search(state->relations, &relid, HASH_FIND, &found);
	if (entry == NULL)
		entry = relation_entry(state, relid,
							   namespace_name(RelationGetNamespace(relation)),
							   RelationGetRelationName(relation));
	resolve_ancestors(state, entry);
	return entry;
}

/*
 * The entry of a changed relation, with its watched columns: once per
 * relation and transaction.
 */
static HdRelChange *
entry_for_row_change(HdDecodingState *state, Relation relation, XLogRecPtr lsn)
{
	HdRelChange *entry = entry_for_relation(state, relation);

	if (!entry->watch_known)
		resolve_watch(state, entry, relation, lsn);
	return entry;
}

static void
hd_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		  Relation relation, ReorderBufferChange *change)
{
	HdDecodingState *state = ctx->output_plugin_private;
	HdRelChange *entry;
	HeapTuple	newtuple;
	HeapTuple	oldtuple;

	/* later transactions read the watched columns again */
	if (is_watch_table(state, relation))
		state->watch_stale = true;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			entry = entry_for_row_change(state, relation, change->lsn);
			entry->kinds |= HD_KIND_INSERT;
			newtuple = change_tuple(change->data.tp.newtuple);
			add_row_key(state, entry, relation, newtuple);
			if (entry->nwatched > 0)
				add_row_values(state, entry, relation, newtuple, NULL, false);
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			entry = entry_for_row_change(state, relation, change->lsn);
			entry->kinds |= HD_KIND_UPDATE;
			newtuple = change_tuple(change->data.tp.newtuple);
			oldtuple = change_tuple(change->data.tp.oldtuple);
			/* the old key is logged only when it changed (or under FULL) */
			if (oldtuple != NULL)
				add_row_key(state, entry, relation, oldtuple);
			add_row_key(state, entry, relation, newtuple);
			if (entry->nwatched > 0)
				add_row_values(state, entry, relation, newtuple, oldtuple, true);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			entry = entry_for_row_change(state, relation, change->lsn);
			entry->kinds |= HD_KIND_DELETE;
			oldtuple = change_tuple(change->data.tp.oldtuple);
			/* no old tuple: REPLICA IDENTITY NOTHING, or no key to log */
			add_row_key(state, entry, relation, oldtuple);
			if (entry->nwatched > 0)
				add_row_values(state, entry, relation, NULL, oldtuple, true);
			break;
		default:
			/* the reorder buffer hands output plugins only the three above */
			break;
	}
}

static void
hd_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
			int nrelations, Relation relations[], ReorderBufferChange *change)
{
	HdDecodingState *state = ctx->output_plugin_private;

	for (int i = 0; i < nrelations; i++)
	{
		HdRelChange *entry = entry_for_relation(state, relations[i]);

		if (is_watch_table(state, relations[i]))
			state->watch_stale = true;
		entry->kinds |= HD_KIND_TRUNCATE;
		fold_to_all_rows(entry, HD_ROWS_TRUNCATE);
	}
}

/*
 * Reads a DDL message written by ddl_capture.c. Any session may write a
 * logical message with our prefix (pg_logical_emit_message is executable by
 * PUBLIC), so a malformed one must not wedge the slot with an error that every
 * retry would hit again: it marks the reader bad, and the record then says
 * "invalidate all", which is always safe.
 */
typedef struct MessageReader
{
	const char *data;
	Size		len;
	Size		pos;
	bool		bad;
} MessageReader;

static uint32
read_uint32(MessageReader *reader)
{
	uint32		value;

	if (reader->bad || reader->len - reader->pos < sizeof(value))
	{
		reader->bad = true;
		return 0;
	}
	memcpy(&value, reader->data + reader->pos, sizeof(value));
	reader->pos += sizeof(value);
	return value;
}

static char *
read_string(MessageReader *reader)
{
	uint32		len = read_uint32(reader);

	if (reader->bad || reader->len - reader->pos < len)
	{
		reader->bad = true;
		return pstrdup("");
	}
	reader->pos += len;
	return pnstrdup(reader->data + reader->pos - len, len);
}

static void
fold_ddl_entry(HdDecodingState *state, MessageReader *reader, char type)
{
	/*
	 * A schema change may rename, drop or retype a watched column, attach a
	 * partition, or drop the watched_column table: at commit the watched
	 * columns are read again (DDL is rare; the whole cache goes).
	 */
	state->watch_stale = true;
	if (type == HD_MSG_DDL)
	{
		HdDdl	   *ddl = palloc(sizeof(HdDdl));

		ddl->tag = read_string(reader);
		ddl->object_type = read_string(reader);
		ddl->identity = read_string(reader);
		ddl->classid = read_uint32(reader);
		ddl->objid = read_uint32(reader);
		if (!reader->bad)
			state->summary.ddls = lappend(state->summary.ddls, ddl);
	}
	else if (type == HD_MSG_RELATION)
	{
		Oid			relid = read_uint32(reader);
		char	   *nspname = read_string(reader);
		char	   *relname = read_string(reader);
		HdRelChange *entry;

		if (reader->bad)
			return;
		entry = relation_entry(state, relid, nspname, relname);
		/* the trigger listed the whole family as entries of their own */
		entry->ancestors_known = true;
		entry->kinds |= HD_KIND_DDL;
		fold_to_all_rows(entry, HD_ROWS_DDL);
	}
	else if (type == HD_MSG_ALL)
	{
		char	   *reason = read_string(reader);

		if (!reader->bad && !state->summary.invalidate_all)
		{
			state->summary.invalidate_all = true;
			state->summary.all_reason = reason;
		}
	}
	else
		reader->bad = true;
}

static void
hd_message(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		   XLogRecPtr message_lsn, bool transactional, const char *prefix,
		   Size message_size, const char *message)
{
	HdDecodingState *state = ctx->output_plugin_private;
	MessageReader reader = {message, message_size, 2, false};
	MemoryContext old;

	/*
	 * Our event triggers write transactional messages only; a
	 * non-transactional one arrives outside any transaction and is not ours.
	 */
	if (!transactional || strcmp(prefix, HD_MESSAGE_PREFIX) != 0)
		return;

	old = MemoryContextSwitchTo(state->txn_context);
	if (message_size < 2 || message[0] != HD_MESSAGE_MAGIC || message[1] != HD_MESSAGE_VERSION)
		reader.bad = true;
	while (!reader.bad && reader.pos < reader.len)
		fold_ddl_entry(state, &reader, reader.data[reader.pos++]);
	if (reader.bad)
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed \"%s\" logical decoding message", HD_MESSAGE_PREFIX),
				 errdetail("The message at %X/%X in transaction %u was not written by the "
						   "hyperdrive extension's event triggers.",
						   LSN_FORMAT_ARGS(message_lsn), txn->xid),
				 errhint("The transaction's record says \"invalidate all\".")));
		state->summary.invalidate_all = true;
		state->summary.all_reason = "malformed hyperdrive message";
	}
	MemoryContextSwitchTo(old);
}

/*
 * Role changes (CREATE/ALTER/DROP ROLE, GRANT role TO role, ALTER ROLE SET)
 * fire no event trigger, yet they change what a role may read. Their catalogs
 * are shared, and their transactions carry catalog invalidation messages for
 * them; that is how we see them.
 */
static bool
txn_changed_roles(ReorderBufferTXN *txn)
{
	for (uint32 i = 0; i < txn->ninvalidations; i++)
	{
		SharedInvalidationMessage *msg = &txn->invalidations[i];

		if (msg->id >= 0)
		{
			int			cacheid = msg->cc.id;

			if (cacheid == AUTHOID || cacheid == AUTHNAME ||
				cacheid == AUTHMEMMEMROLE || cacheid == AUTHMEMROLEMEM)
				return true;
		}
		else if (msg->id == SHAREDINVALSNAPSHOT_ID &&
				 msg->sn.relId == DbRoleSettingRelationId)
			return true;
	}
	return false;
}

static void
hd_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	HdDecodingState *state = ctx->output_plugin_private;
	HdTxnSummary *summary = &state->summary;
	MemoryContext old;

	if (state->watch_loaded && state->watch_loaded_in_txn &&
		(!state->watch_verified || state->watch_load_lsn < state->watch_change_lsn))
		verify_watch_at_commit(state, commit_lsn);

	/* the entries copied what they need: the cache may go before writing */
	if (state->watch_stale)
	{
		reset_watch_cache(state);
		state->watch_stale = false;
		state->watch_change_lsn = commit_lsn;
	}

	if (!summary->invalidate_all && txn_changed_roles(txn))
	{
		summary->invalidate_all = true;
		summary->all_reason = "role change";
	}

	if (summary->relations == NIL && summary->ddls == NIL &&
		!summary->invalidate_all && !state->heartbeat)
		return;					/* nothing the stream reports */

	summary->full_xid = full_xid_of(txn->xid);
	summary->commit_lsn = commit_lsn;
	summary->end_lsn = txn->end_lsn;
	summary->commit_time = txn->xact_time.commit_time;

	old = MemoryContextSwitchTo(state->txn_context);
	OutputPluginPrepareWrite(ctx, true);
	if (state->format == HD_FORMAT_COMPACT)
		hd_record_write_compact(ctx->out, summary);
	else
		hd_record_write_text(ctx->out, summary, &state->text);
	OutputPluginWrite(ctx, true);
	MemoryContextSwitchTo(old);
}
