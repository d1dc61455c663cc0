/*
 * value_hash.c
 *    The hash of one value, as analyze_query()'s bindings, the change
 *    stream's watched columns and hyperdrive.hash_value()/hash_values() give
 *    it (docs/cache-analysis.md, "Bindings"; docs/stream.md, "Watched
 *    columns").
 *
 * Contract:
 *   - A value's hash is the extended hash function (HASHEXTENDED_PROC) of a
 *     hash operator family, for the value's type on both sides, called with
 *     the comparison's collation and the seed HD_BINDING_SEED. Equal values
 *     under the family's equality hash equally, also across the family's
 *     types (int4 2 and int8 2; numeric 1.0 and 1.00; 'ABC' and 'abc' under a
 *     case-insensitive nondeterministic collation): that is what lets the
 *     agent compare a constant of a query with a changed row's value.
 *   - Everything that hashes goes through hd_value_hash(), so the three users
 *     cannot drift apart; the lookups (hd_hash_proc_in_family(),
 *     hd_default_hash_proc()) are done once by the caller, not per value.
 *   - hd_default_hash_proc() is the column's view: the default hash operator
 *     class of the type (of its base type for a domain), with the class's
 *     input type on both sides (anyarray for an array, anyenum for an enum),
 *     which is the type the family's equality operator takes for it.
 */
#include "postgres.h"

#include "access/hash.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "hyperdrive.h"

PG_FUNCTION_INFO_V1(hyperdrive_hash_value);
PG_FUNCTION_INFO_V1(hyperdrive_hash_values);

/*
 * The extended hash function of opfamily for typid on both sides, in
 * *finfo (allocated in mcxt). False if the family has none.
 */
bool
hd_hash_proc_in_family(Oid opfamily, Oid typid, FmgrInfo *finfo, MemoryContext mcxt)
{
	Oid			procid = get_opfamily_proc(opfamily, typid, typid, HASHEXTENDED_PROC);

	if (!OidIsValid(procid))
		return false;
	fmgr_info_cxt(procid, finfo, mcxt);
	return true;
}

/*
 * The extended hash function of typid's default hash operator class, in
 * *finfo (allocated in mcxt). False if the type has no default hash class or
 * the class's family no extended hash function.
 */
bool
hd_default_hash_proc(Oid typid, FmgrInfo *finfo, MemoryContext mcxt)
{
	Oid			opclass = GetDefaultOpClass(getBaseType(typid), HASH_AM_OID);

	if (!OidIsValid(opclass))
		return false;
	return hd_hash_proc_in_family(get_opclass_family(opclass),
								  get_opclass_input_type(opclass), finfo, mcxt);
}

/* The hash of a non-NULL value: finfo from one of the two functions above. */
int64
hd_value_hash(FmgrInfo *finfo, Oid collid, Datum value)
{
	return DatumGetInt64(FunctionCall2Coll(finfo, collid, value,
										   Int64GetDatum(HD_BINDING_SEED)));
}

/* The SQL functions' lookup: an error for a type without a hash. */
static void
sql_hash_proc(FunctionCallInfo fcinfo, Oid typid, FmgrInfo *finfo)
{
	if (!hd_default_hash_proc(typid, finfo, fcinfo->flinfo->fn_mcxt))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("type %s has no default hash operator class with an extended hash function",
						format_type_be(typid)),
				 errdetail("Only values of a hashable type can be compared with the "
						   "change stream's watched columns.")));
}

static Oid
sql_collation(FunctionCallInfo fcinfo)
{
	Oid			collid = PG_GET_COLLATION();

	return OidIsValid(collid) ? collid : DEFAULT_COLLATION_OID;
}

/*
 * hyperdrive.hash_value(anyelement) RETURNS int8: the value's hash, as
 * analyze_query() gives a constant compared with a column of its type.
 */
Datum
hyperdrive_hash_value(PG_FUNCTION_ARGS)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);
	FmgrInfo   *finfo = fcinfo->flinfo->fn_extra;

	if (!OidIsValid(typid))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not determine the type of hash_value()'s argument")));
	if (finfo == NULL)
	{
		finfo = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo));
		sql_hash_proc(fcinfo, typid, finfo);
		fcinfo->flinfo->fn_extra = finfo;
	}
	PG_RETURN_INT64(hd_value_hash(finfo, sql_collation(fcinfo), PG_GETARG_DATUM(0)));
}

/*
 * hyperdrive.hash_values(anyarray) RETURNS int8[]: the hashes of the array's
 * elements, in order, NULL elements left out (so possibly empty). The agent
 * sends a client's array parameter here.
 */
Datum
hyperdrive_hash_values(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	Oid			elemtype = ARR_ELEMTYPE(array);
	FmgrInfo   *finfo = fcinfo->flinfo->fn_extra;
	Oid			collid = sql_collation(fcinfo);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	Datum	   *hashes;
	int			nhashes = 0;

	if (finfo == NULL)
	{
		finfo = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo));
		sql_hash_proc(fcinfo, elemtype, finfo);
		fcinfo->flinfo->fn_extra = finfo;
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elems, &nulls, &nelems);
	hashes = palloc(sizeof(Datum) * Max(nelems, 1));
	for (int i = 0; i < nelems; i++)
	{
		if (!nulls[i])
			hashes[nhashes++] = Int64GetDatum(hd_value_hash(finfo, collid, elems[i]));
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(hashes, nhashes, INT8OID, sizeof(int64),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * hyperdrive._hashable_type(regtype) RETURNS bool: whether values of the type
 * can be hashed as above (watch_column() refuses other columns).
 */
PG_FUNCTION_INFO_V1(hyperdrive_hashable_type);

Datum
hyperdrive_hashable_type(PG_FUNCTION_ARGS)
{
	FmgrInfo	finfo;

	PG_RETURN_BOOL(hd_default_hash_proc(PG_GETARG_OID(0), &finfo, CurrentMemoryContext));
}
