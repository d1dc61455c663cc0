/*
 * ddl_capture.c
 *    Describe schema changes in the change stream.
 *
 * Logical decoding delivers no DDL: an ALTER TABLE arrives as an empty
 * transaction, REFRESH MATERIALIZED VIEW and partition ATTACH/DETACH produce no
 * row changes at all. Yet each of them changes what a cached query returns.
 * The extension's event triggers therefore write a *transactional* logical
 * message (prefix "hyperdrive") describing every DDL object; the output
 * plugin folds it into the record of the same transaction, so it arrives in
 * commit order and disappears with a rollback.
 *
 * Message layout (native byte order; it never leaves the server that wrote it):
 *   byte 'H', byte version (1), then entries until the end:
 *   'E' string tag, string object_type, string identity, uint32 classid, uint32 objid
 *   'R' uint32 relid, string schema, string name      (every row may have changed)
 *   'A' string reason                                  (invalidate the whole database)
 * where string = uint32 length + bytes.
 *
 * Three triggers feed it:
 *   ddl_command_start (C, hyperdrive_capture_ddl_start): ALTER TABLE and DROP
 *     TABLE, *before* they run, while pg_inherits still holds the relatives the
 *     command is about to detach or drop (NO INHERIT, DETACH PARTITION, DROP of
 *     a partition all change what the old parent returns);
 *   ddl_command_end and sql_drop (PL/pgSQL wrappers in hyperdrive--*.sql, which
 *     call hyperdrive_log_ddl_object for each reported object).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "commands/event_trigger.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "replication/message.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "hyperdrive.h"

PG_FUNCTION_INFO_V1(hyperdrive_capture_ddl_start);
PG_FUNCTION_INFO_V1(hyperdrive_log_ddl_object);

/* A DDL message being built. */
typedef struct DdlMessage
{
	StringInfoData buf;
	List	   *relids;			/* relations already added, to add each once */
} DdlMessage;

static void
message_init(DdlMessage *msg)
{
	initStringInfo(&msg->buf);
	appendStringInfoChar(&msg->buf, HD_MESSAGE_MAGIC);
	appendStringInfoChar(&msg->buf, HD_MESSAGE_VERSION);
	msg->relids = NIL;
}

static void
put_uint32(DdlMessage *msg, uint32 value)
{
	appendBinaryStringInfo(&msg->buf, (char *) &value, sizeof(value));
}

static void
put_string(DdlMessage *msg, const char *value)
{
	uint32		len = value ? strlen(value) : 0;

	put_uint32(msg, len);
	appendBinaryStringInfo(&msg->buf, value ? value : "", len);
}

static void
put_relation(DdlMessage *msg, Oid relid, const char *nspname, const char *relname)
{
	if (list_member_oid(msg->relids, relid))
		return;
	msg->relids = lappend_oid(msg->relids, relid);
	appendStringInfoChar(&msg->buf, HD_MSG_RELATION);
	put_uint32(msg, relid);
	put_string(msg, nspname);
	put_string(msg, relname);
}

/* Add relid's whole family (see relation_family.c), skipping what no query caches. */
static void
put_relation_family(DdlMessage *msg, Oid relid)
{
	ListCell   *lc;

	if (!hd_relation_is_cacheable_kind(relid))
		return;
	foreach(lc, hd_relation_family(relid))
	{
		Oid			member = lfirst_oid(lc);
		char	   *relname = get_rel_name(member);

		if (relname == NULL || !hd_relation_is_cacheable_kind(member))
			continue;
		put_relation(msg, member, get_namespace_name(get_rel_namespace(member)), relname);
	}
}

static void
put_all(DdlMessage *msg, const char *reason)
{
	appendStringInfoChar(&msg->buf, HD_MSG_ALL);
	put_string(msg, reason);
}

static void
message_emit(DdlMessage *msg)
{
	if (msg->buf.len <= 2)
		return;					/* nothing to say */
#if PG_VERSION_NUM >= 170000
	LogLogicalMessage(HD_MESSAGE_PREFIX, msg->buf.data, msg->buf.len, true, false);
#else
	LogLogicalMessage(HD_MESSAGE_PREFIX, msg->buf.data, msg->buf.len, true);
#endif
}

static void
put_rangevar_family(DdlMessage *msg, RangeVar *rv)
{
	Oid			relid;

	if (rv == NULL)
		return;
	/* NoLock: we only read pg_inherits; the command takes its own locks next */
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (OidIsValid(relid))
		put_relation_family(msg, relid);
}

/*
 * ddl_command_start for ALTER TABLE and DROP TABLE (and their FOREIGN TABLE
 * forms): name the relatives as they are before the command runs.
 */
Datum
hyperdrive_capture_ddl_start(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata;
	DdlMessage	msg;
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hyperdrive_capture_ddl_start must be called as an event trigger")));
	trigdata = (EventTriggerData *) fcinfo->context;
	message_init(&msg);

	if (IsA(trigdata->parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) trigdata->parsetree;

		put_rangevar_family(&msg, stmt->relation);
		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			switch (cmd->subtype)
			{
				case AT_AddInherit:
				case AT_DropInherit:
					put_rangevar_family(&msg, (RangeVar *) cmd->def);
					break;
				case AT_AttachPartition:
				case AT_DetachPartition:
				case AT_DetachPartitionFinalize:
					put_rangevar_family(&msg, ((PartitionCmd *) cmd->def)->name);
					break;
				default:
					break;
			}
		}
	}
	else if (IsA(trigdata->parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) trigdata->parsetree;

		if (stmt->removeType == OBJECT_TABLE || stmt->removeType == OBJECT_FOREIGN_TABLE)
		{
			foreach(lc, stmt->objects)
				put_rangevar_family(&msg, makeRangeVarFromNameList(lfirst(lc)));
		}
	}

	message_emit(&msg);
	PG_RETURN_NULL();
}

/*
 * The relation a policy, rewrite rule or trigger belongs to, found by the
 * object's OID; InvalidOid for other objects.
 */
static Oid
owning_relation(Oid classid, Oid objid)
{
	Oid			indexid;
	AttrNumber	oidattr;
	Relation	catalog;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			relid = InvalidOid;

	if (classid == PolicyRelationId)
	{
		indexid = PolicyOidIndexId;
		oidattr = Anum_pg_policy_oid;
	}
	else if (classid == RewriteRelationId)
	{
		indexid = RewriteOidIndexId;
		oidattr = Anum_pg_rewrite_oid;
	}
	else if (classid == TriggerRelationId)
	{
		indexid = TriggerOidIndexId;
		oidattr = Anum_pg_trigger_oid;
	}
	else
		return InvalidOid;

	catalog = table_open(classid, AccessShareLock);
	ScanKeyInit(&key, oidattr, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(objid));
	scan = systable_beginscan(catalog, indexid, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		if (classid == PolicyRelationId)
			relid = ((Form_pg_policy) GETSTRUCT(tuple))->polrelid;
		else if (classid == RewriteRelationId)
			relid = ((Form_pg_rewrite) GETSTRUCT(tuple))->ev_class;
		else
			relid = ((Form_pg_trigger) GETSTRUCT(tuple))->tgrelid;
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);
	return relid;
}

/*
 * For a dropped policy, rule or trigger, address_names is {schema, table,
 * name}: the table still exists (unless dropped by the same command, which
 * reports it too). *temporary is set when the schema is a temporary one.
 */
static Oid
relation_from_address(ArrayType *address_names, bool *temporary)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	char	   *nspname;
	Oid			nspid;

	*temporary = false;
	if (address_names == NULL)
		return InvalidOid;
	deconstruct_array(address_names, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	if (nelems != 3 || nulls[0] || nulls[1])
		return InvalidOid;
	nspname = TextDatumGetCString(elems[0]);
	if (strncmp(nspname, "pg_temp", 7) == 0)
	{
		*temporary = true;
		return InvalidOid;
	}
	nspid = get_namespace_oid(nspname, true);
	if (!OidIsValid(nspid))
		return InvalidOid;
	return get_relname_relid(TextDatumGetCString(elems[1]), nspid);
}

static bool
relation_is_temporary(Oid relid)
{
	return OidIsValid(relid) && get_rel_relkind(relid) != '\0' &&
		get_rel_persistence(relid) == RELPERSISTENCE_TEMP;
}

static char *
text_arg_or_null(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* Whether a dropped object of this type could have been an inheritance child. */
static bool
is_table_type(const char *object_type)
{
	return strcmp(object_type, "table") == 0 || strcmp(object_type, "foreign table") == 0;
}

static bool
is_relation_type(const char *object_type)
{
	return is_table_type(object_type) || strcmp(object_type, "view") == 0 ||
		strcmp(object_type, "materialized view") == 0;
}

/*
 * hyperdrive._log_ddl_object(event, command_tag, classid, objid, objsubid,
 *     object_type, object_identity, schema_name, object_name, address_names,
 *     original)
 *
 * Called by the ddl_command_end and sql_drop wrappers for each object the
 * command reported. Writes one message: the DDL object, and the relations
 * whose rows it may have changed, or "invalidate all" where the objects cannot
 * be known.
 */
Datum
hyperdrive_log_ddl_object(PG_FUNCTION_ARGS)
{
	char	   *event = text_arg_or_null(fcinfo, 0);
	char	   *tag = text_arg_or_null(fcinfo, 1);
	Oid			classid = PG_ARGISNULL(2) ? InvalidOid : PG_GETARG_OID(2);
	Oid			objid = PG_ARGISNULL(3) ? InvalidOid : PG_GETARG_OID(3);
	int32		objsubid = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	char	   *object_type = text_arg_or_null(fcinfo, 5);
	char	   *identity = text_arg_or_null(fcinfo, 6);
	char	   *schema = text_arg_or_null(fcinfo, 7);
	char	   *object_name = text_arg_or_null(fcinfo, 8);
	ArrayType  *address_names = PG_ARGISNULL(9) ? NULL : PG_GETARG_ARRAYTYPE_P(9);
	bool		original = PG_ARGISNULL(10) ? true : PG_GETARG_BOOL(10);
	bool		dropped;
	Oid			owner = InvalidOid;
	DdlMessage	msg;

	if (event == NULL || tag == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hyperdrive._log_ddl_object needs an event and a command tag")));
	if (object_type == NULL)
		object_type = "";

	dropped = strcmp(event, "sql_drop") == 0;

	/*
	 * Temporary objects are invisible to other sessions and never cached.
	 * Policies, rules and triggers have no schema of their own: look at their
	 * table. (sql_drop already filters out what it flags is_temporary.)
	 */
	if (schema != NULL && strncmp(schema, "pg_temp", 7) == 0)
		PG_RETURN_VOID();
	if (classid == PolicyRelationId || classid == RewriteRelationId ||
		classid == TriggerRelationId)
	{
		bool		temporary = false;

		owner = dropped ? relation_from_address(address_names, &temporary) :
			owning_relation(classid, objid);
		if (temporary || relation_is_temporary(owner))
			PG_RETURN_VOID();
	}
	else if (!dropped && classid == RelationRelationId && relation_is_temporary(objid))
		PG_RETURN_VOID();

	message_init(&msg);
	appendStringInfoChar(&msg.buf, HD_MSG_DDL);
	put_string(&msg, tag);
	put_string(&msg, object_type);
	put_string(&msg, identity);
	put_uint32(&msg, classid);
	put_uint32(&msg, objid);

	if (strcmp(tag, "GRANT") == 0 || strcmp(tag, "REVOKE") == 0)
	{
		/* event triggers do not say which objects a GRANT touched */
		put_all(&msg, tag);
	}
	else if (dropped && classid == RelationRelationId && objsubid == 0)
	{
		/* the relation is gone: name it from what sql_drop reported */
		if (is_relation_type(object_type) && schema != NULL && object_name != NULL)
			put_relation(&msg, objid, schema, object_name);

		/*
		 * DROP TABLE named its relatives before it ran (ddl_command_start).
		 * A table dropped as a dependency of something else (DROP SCHEMA ...
		 * CASCADE, DROP OWNED, DROP TYPE ... CASCADE) may have been a
		 * partition or child of a table that remains, and its parents are
		 * gone from pg_inherits now.
		 */
		if (is_table_type(object_type) && !original &&
			strcmp(tag, "DROP TABLE") != 0 && strcmp(tag, "DROP FOREIGN TABLE") != 0)
			put_all(&msg, "table dropped as a dependency");
	}
	else if (classid == RelationRelationId)
	{
		/* the relation (or one of its columns) changed, or was created */
		put_relation_family(&msg, objid);
	}
	else if (classid == PolicyRelationId || classid == RewriteRelationId)
	{
		/* a policy or rule changes what queries on its table return */
		if (OidIsValid(owner))
			put_relation_family(&msg, owner);
	}

	message_emit(&msg);
	PG_RETURN_VOID();
}
