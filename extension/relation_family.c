/*
 * relation_family.c
 *    Partition and inheritance relatives of a relation.
 *
 * Logical decoding reports a row change against the leaf partition (or the
 * inheritance child) that stores the row, but a query may read that row
 * through any ancestor. The stream therefore names every ancestor of a changed
 * relation. Schema changes go further: ALTER TABLE on a parent recurses into
 * its children, so DDL names the whole "family" (the relation, its
 * descendants, and the ancestors of all of them).
 *
 * Everything here reads pg_inherits with the current catalog snapshot, which is
 * the historic snapshot of the decoded transaction when called from the output
 * plugin, and the command's own snapshot when called from an event trigger.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "hyperdrive.h"

/*
 * One hop in pg_inherits: relid's parents (up = true, in inhseqno order;
 * several under multiple inheritance) or its children.
 */
static List *
inherits_neighbours(Oid relid, bool up)
{
	List	   *result = NIL;
	Relation	inherits;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	inherits = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyInit(&key, up ? Anum_pg_inherits_inhrelid : Anum_pg_inherits_inhparent,
				BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(inherits, up ? InheritsRelidSeqnoIndexId : InheritsParentIndexId,
							  true, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		Form_pg_inherits form = (Form_pg_inherits) GETSTRUCT(tuple);

		result = lappend_oid(result, up ? form->inhparent : form->inhrelid);
	}
	systable_endscan(scan);
	table_close(inherits, AccessShareLock);
	return result;
}

/* Direct parents of relid, in inhseqno order (several under multiple inheritance). */
List *
hd_relation_parents(Oid relid)
{
	return inherits_neighbours(relid, true);
}

/*
 * All ancestors of relid, nearest first (breadth first), each once. The
 * relation itself is not included.
 */
List *
hd_relation_ancestors(Oid relid)
{
	List	   *result = NIL;
	List	   *queue = hd_relation_parents(relid);

	while (queue != NIL)
	{
		Oid			parent = linitial_oid(queue);

		queue = list_delete_first(queue);
		if (parent == relid || list_member_oid(result, parent))
			continue;
		result = lappend_oid(result, parent);
		queue = list_concat(queue, hd_relation_parents(parent));
	}
	return result;
}

/*
 * The relation, all its descendants, and the ancestors of each of them, each
 * once, the relation first. A schema change to any member can change what a
 * query on another member returns.
 */
List *
hd_relation_family(Oid relid)
{
	List	   *members = list_make1_oid(relid);

	/* descendants, breadth first; members grows while we walk it */
	for (int i = 0; i < list_length(members); i++)
	{
		List	   *children = inherits_neighbours(list_nth_oid(members, i), false);
		ListCell   *child;

		foreach(child, children)
			members = list_append_unique_oid(members, lfirst_oid(child));
	}

	/* ancestors of every member (multiple inheritance reaches other trees) */
	for (int i = 0; i < list_length(members); i++)
	{
		List	   *ancestors = hd_relation_ancestors(list_nth_oid(members, i));
		ListCell   *anc;

		foreach(anc, ancestors)
			members = list_append_unique_oid(members, lfirst_oid(anc));
	}
	return members;
}

/*
 * Whether relid is a relation whose rows a query can read and the stream
 * reports: a table, partitioned table, view, materialized view or foreign
 * table that is not temporary. Indexes, sequences, TOAST tables and composite
 * types are left out.
 */
bool
hd_relation_is_cacheable_kind(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	switch (relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
		case RELKIND_VIEW:
		case RELKIND_MATVIEW:
		case RELKIND_FOREIGN_TABLE:
			return get_rel_persistence(relid) != RELPERSISTENCE_TEMP;
		default:
			return false;
	}
}
