/*
 * decoder.c
 *    The logical decoding output plugin "hyperdrive".
 *
 * For each committed transaction the reorder buffer replays its changes in
 * order between one begin and one commit callback. We fold them into an
 * HdTxnSummary (which relations changed, how, and which keys) and write the
 * whole summary as ONE record at commit. Aborted transactions and rolled-back
 * subtransactions are never replayed, so they produce nothing.
 *
 * Cost on the origin is kept small and bounded:
 *   - only the replica-identity key columns of a row are rendered, with their
 *     type's output function; other columns are never looked at;
 *   - a key column that is an unchanged, out-of-line TOAST value is never
 *     fetched: the relation folds to "all rows" instead;
 *   - per relation at most key-cap distinct keys are kept; past that the keys
 *     are freed and the relation says "all rows", so memory does not grow with
 *     the size of the transaction;
 *   - everything lives in a memory context reset at each transaction.
 *
 * Schema changes produce no row changes; the event triggers of ddl_capture.c
 * describe them in transactional logical messages, which are folded in here.
 * Role changes fire no event trigger at all; they are recognised from the
 * transaction's catalog invalidation messages (see txn_changed_roles()).
 *
 * Options (pg_logical_slot_get_changes / START_REPLICATION):
 *   format            'text' (default) or 'compact' (binary; docs/stream.md)
 *   key-cap           distinct keys per relation before "all rows" (default 100)
 *   heartbeat         also emit a record for committed transactions that
 *                     changed nothing the stream reports (default off)
 *   include-xids, include-lsn, include-timestamp, include-oids
 *                     text format only: show these fields (default on)
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/detoast.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "storage/sinval.h"
#include "utils/builtins.h"
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

/* Plugin state for one decoding session (ctx->output_plugin_private). */
typedef struct HdDecodingState
{
	MemoryContext txn_context;	/* reset at every BEGIN */
	MemoryContext row_context;	/* reset after each row's key is taken */
	HdFormat	format;
	int			key_cap;
	bool		heartbeat;
	HdTextOptions text;
	int			guc_nestlevel;	/* our canonical output settings, undone at shutdown */

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
	state->format = HD_FORMAT_TEXT;
	state->key_cap = HD_DEFAULT_KEY_CAP;
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
		{
			const char *value = elem->arg ? strVal(elem->arg) : "";
			char	   *end;
			long		cap;

			errno = 0;
			cap = strtol(value, &end, 10);
			if (*value == '\0' || *end != '\0' || errno != 0 || cap < 0 || cap > 1000000)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value \"%s\" for hyperdrive option \"key-cap\"", value),
						 errhint("Use an integer from 0 (never list keys) to 1000000.")));
			state->key_cap = (int) cap;
		}
		else if (strcmp(elem->defname, "heartbeat") == 0)
			state->heartbeat = parse_bool_option(elem);
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
					 errhint("Known options: format, key-cap, heartbeat, include-xids, "
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

static void
hd_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn,
		  Relation relation, ReorderBufferChange *change)
{
	HdDecodingState *state = ctx->output_plugin_private;
	HdRelChange *entry;
	HeapTuple	newtuple;
	HeapTuple	oldtuple;

	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			entry = entry_for_relation(state, relation);
			entry->kinds |= HD_KIND_INSERT;
			add_row_key(state, entry, relation, change_tuple(change->data.tp.newtuple));
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			entry = entry_for_relation(state, relation);
			entry->kinds |= HD_KIND_UPDATE;
			newtuple = change_tuple(change->data.tp.newtuple);
			oldtuple = change_tuple(change->data.tp.oldtuple);
			/* the old key is logged only when it changed (or under FULL) */
			if (oldtuple != NULL)
				add_row_key(state, entry, relation, oldtuple);
			add_row_key(state, entry, relation, newtuple);
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			entry = entry_for_relation(state, relation);
			entry->kinds |= HD_KIND_DELETE;
			/* no old tuple: REPLICA IDENTITY NOTHING, or no key to log */
			add_row_key(state, entry, relation, change_tuple(change->data.tp.oldtuple));
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
