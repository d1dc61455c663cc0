/*
 * record.c
 *    The two encodings of a transaction record: text and compact.
 *
 * docs/stream.md is the specification; keep the two in step. The text form is
 * for people and for the regression tests; the compact form is for the agent.
 * Both carry the same facts, in the same order: relations in the order the
 * transaction first touched them, DDL objects in the order they were reported,
 * a relation's watched columns in the order decoder.c resolved them, each
 * column's hashes in the order first seen. Only version HD_RECORD_VERSION is
 * written (2: with watched columns).
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "hyperdrive.h"

/* "public.items", each part quoted only where SQL would need it. */
static void
append_qualified_name(StringInfo out, const char *nspname, const char *relname)
{
	appendStringInfoString(out, quote_qualified_identifier(nspname, relname));
}

static void
append_kinds(StringInfo out, uint8 kinds)
{
	bool		first = true;

	/* in bit order: insert, update, delete, truncate, ddl */
	for (unsigned int bit = 1; bit <= HD_KIND_ALL; bit <<= 1)
	{
		if (!(kinds & bit))
			continue;
		appendStringInfo(out, "%s%s", first ? "" : ",", hd_kind_name(bit));
		first = false;
	}
}

/* One key as ('v1','v2'): each value an SQL literal, or NULL. */
static void
append_text_key(StringInfo out, const HdKey *key)
{
	int			pos = 0;
	bool		first = true;

	appendStringInfoChar(out, '(');
	while (pos < key->len)
	{
		int32		len;

		memcpy(&len, key->data + pos, sizeof(len));
		pos += sizeof(len);
		if (!first)
			appendStringInfoChar(out, ',');
		first = false;
		if (len < 0)
			appendStringInfoString(out, "NULL");
		else
		{
			char	   *value = pnstrdup(key->data + pos, len);

			appendStringInfoString(out, quote_literal_cstr(value));
			pfree(value);
			pos += len;
		}
	}
	appendStringInfoChar(out, ')');
}

/*
 * Watched columns are written for row changes only: an entry that was
 * truncated or touched by DDL says "all rows", and carries none.
 */
static int
watched_count(const HdRelChange *rel)
{
	return (rel->kinds & (HD_KIND_TRUNCATE | HD_KIND_DDL)) ? 0 : rel->nwatched;
}

/* values OID.ATTNUM (H,H) or values OID.ATTNUM all (REASON), per column */
static void
append_text_values(StringInfo out, const HdRelChange *rel)
{
	for (int i = 0; i < watched_count(rel); i++)
	{
		const HdWatchedCol *wc = &rel->watched[i];

		appendStringInfo(out, " values %u.%d ", wc->relid, (int) wc->attnum);
		if (wc->state != HD_VALUES_COMPLETE)
		{
			appendStringInfo(out, "all (%s)", hd_values_state_name(wc->state));
			continue;
		}
		appendStringInfoChar(out, '(');
		for (int h = 0; h < wc->nhashes; h++)
			appendStringInfo(out, "%s" INT64_FORMAT, h > 0 ? "," : "", wc->hashes[h]);
		appendStringInfoChar(out, ')');
	}
}

static void
append_text_relation(StringInfo out, const HdRelChange *rel, const HdTextOptions *opts)
{
	ListCell   *lc;

	appendStringInfoString(out, "\nrelation ");
	append_qualified_name(out, rel->nspname, rel->relname);
	if (opts->include_oids)
		appendStringInfo(out, " oid %u", rel->relid);
	appendStringInfoString(out, " changes ");
	append_kinds(out, rel->kinds);
	if (rel->ancestors != NIL)
	{
		appendStringInfoString(out, " ancestors ");
		foreach(lc, rel->ancestors)
		{
			HdRelName  *anc = lfirst(lc);

			if (foreach_current_index(lc) > 0)
				appendStringInfoChar(out, ',');
			append_qualified_name(out, anc->nspname, anc->relname);
			if (opts->include_oids)
				appendStringInfo(out, " oid %u", anc->relid);
		}
	}
	if (rel->rows != HD_ROWS_KEYS)
		appendStringInfo(out, " rows all (%s)", hd_rows_reason_name(rel->rows));
	else
	{
		appendStringInfoString(out, " key (");
		for (int i = 0; i < rel->key_natts; i++)
			appendStringInfo(out, "%s%s", i > 0 ? "," : "",
							 quote_identifier(rel->key_names[i]));
		appendStringInfoString(out, ") rows ");
		for (int i = 0; i < rel->nkeys; i++)
		{
			if (i > 0)
				appendStringInfoChar(out, ' ');
			append_text_key(out, rel->keys[i]);
		}
	}
	append_text_values(out, rel);
}

void
hd_record_write_text(StringInfo out, const HdTxnSummary *txn, const HdTextOptions *opts)
{
	ListCell   *lc;

	appendStringInfo(out, "hyperdrive %d", HD_RECORD_VERSION);
	if (opts->include_xids)
		appendStringInfo(out, " xid " UINT64_FORMAT, txn->full_xid);
	if (opts->include_lsn)
		appendStringInfo(out, " commit_lsn %X/%X end_lsn %X/%X",
						 LSN_FORMAT_ARGS(txn->commit_lsn), LSN_FORMAT_ARGS(txn->end_lsn));
	if (opts->include_timestamp)
		appendStringInfo(out, " commit_time %s", timestamptz_to_str(txn->commit_time));
	if (txn->relations == NIL && txn->ddls == NIL && !txn->invalidate_all)
		appendStringInfoString(out, " heartbeat");

	if (txn->invalidate_all)
		appendStringInfo(out, "\ninvalidate all (%s)", txn->all_reason);
	foreach(lc, txn->relations)
		append_text_relation(out, lfirst(lc), opts);
	foreach(lc, txn->ddls)
	{
		HdDdl	   *ddl = lfirst(lc);

		appendStringInfo(out, "\nddl %s", ddl->tag);
		if (ddl->object_type[0] != '\0')
			appendStringInfo(out, " %s", ddl->object_type);
		if (ddl->identity[0] != '\0')
			appendStringInfo(out, " %s", ddl->identity);
	}
}

/* Compact encoding: big-endian integers, strings as int32 length + bytes. */
static void
send_string(StringInfo out, const char *value)
{
	int			len = value ? strlen(value) : 0;

	pq_sendint32(out, len);
	pq_sendbytes(out, value, len);
}

/* Int32 W, then per column: Int32 relid, Int16 attnum, Byte1 state, Int32 H, H x Int64 */
static void
write_compact_values(StringInfo out, const HdRelChange *rel)
{
	int			nwatched = watched_count(rel);

	pq_sendint32(out, nwatched);
	for (int i = 0; i < nwatched; i++)
	{
		const HdWatchedCol *wc = &rel->watched[i];
		int			nhashes = wc->state == HD_VALUES_COMPLETE ? wc->nhashes : 0;

		pq_sendint32(out, wc->relid);
		pq_sendint16(out, wc->attnum);
		pq_sendbyte(out, (uint8) wc->state);
		pq_sendint32(out, nhashes);
		for (int h = 0; h < nhashes; h++)
			pq_sendint64(out, wc->hashes[h]);
	}
}

static void
write_compact_relation(StringInfo out, const HdRelChange *rel)
{
	ListCell   *lc;

	pq_sendint32(out, rel->relid);
	pq_sendbyte(out, rel->kinds);
	pq_sendbyte(out, (uint8) rel->rows);
	send_string(out, rel->nspname);
	send_string(out, rel->relname);
	pq_sendint32(out, list_length(rel->ancestors));
	foreach(lc, rel->ancestors)
	{
		HdRelName  *anc = lfirst(lc);

		pq_sendint32(out, anc->relid);
		send_string(out, anc->nspname);
		send_string(out, anc->relname);
	}
	if (rel->rows != HD_ROWS_KEYS)
	{
		pq_sendint32(out, 0);	/* no key columns */
		pq_sendint32(out, 0);	/* no keys */
		write_compact_values(out, rel);
		return;
	}
	pq_sendint32(out, rel->key_natts);
	for (int i = 0; i < rel->key_natts; i++)
		send_string(out, rel->key_names[i]);
	pq_sendint32(out, rel->nkeys);
	for (int k = 0; k < rel->nkeys; k++)
	{
		const HdKey *key = rel->keys[k];
		int			pos = 0;

		/* re-encode the native-endian lengths as big-endian */
		while (pos < key->len)
		{
			int32		len;

			memcpy(&len, key->data + pos, sizeof(len));
			pos += sizeof(len);
			pq_sendint32(out, len);
			if (len > 0)
			{
				pq_sendbytes(out, key->data + pos, len);
				pos += len;
			}
		}
	}
	write_compact_values(out, rel);
}

void
hd_record_write_compact(StringInfo out, const HdTxnSummary *txn)
{
	ListCell   *lc;
	uint16		flags = 0;

	if (txn->invalidate_all)
		flags |= HD_FLAG_INVALIDATE_ALL;
	if (txn->relations == NIL && txn->ddls == NIL && !txn->invalidate_all)
		flags |= HD_FLAG_HEARTBEAT;

	pq_sendbyte(out, HD_RECORD_MAGIC);
	pq_sendbyte(out, HD_RECORD_VERSION);
	pq_sendint16(out, flags);
	pq_sendint64(out, txn->full_xid);
	pq_sendint64(out, txn->commit_lsn);
	pq_sendint64(out, txn->end_lsn);
	pq_sendint64(out, txn->commit_time);
	send_string(out, txn->invalidate_all ? txn->all_reason : NULL);
	pq_sendint32(out, list_length(txn->relations));
	foreach(lc, txn->relations)
		write_compact_relation(out, lfirst(lc));
	pq_sendint32(out, list_length(txn->ddls));
	foreach(lc, txn->ddls)
	{
		HdDdl	   *ddl = lfirst(lc);

		send_string(out, ddl->tag);
		send_string(out, ddl->object_type);
		send_string(out, ddl->identity);
		pq_sendint32(out, ddl->classid);
		pq_sendint32(out, ddl->objid);
	}
}
