/*
 * analyze.c
 *    hyperdrive.analyze_query(): the server's own view of whether a query's
 *    result may be cached, and which relations the result depends on.
 *
 * The agent may serve a SELECT from its cache only if the origin, asked again,
 * would return the same result until the change stream names one of the
 * relations the query read. That holds when the query is a plain SELECT whose
 * every function is IMMUTABLE and which reads only relations whose changes
 * reach the stream (logged, permanent tables, partitioned tables and
 * materialized views). Rather than guess from the text, this file asks the
 * server: the raw parser, parse analysis and the rewriter (which expands views
 * and applies row-level security) run exactly as for the query itself, in the
 * calling session, so the caller's role and search_path decide what each name
 * means. The agent calls it on an origin connection logged in as the client's
 * role with the client's settings applied.
 *
 * Contract (docs/cache-analysis.md is the user-facing version):
 *   - one output row: cacheable, reason (NULL when cacheable, otherwise the
 *     first reason found, a short fixed text plus a name), relations (OIDs,
 *     sorted) and relation_names (schema-qualified, quoted, same order);
 *   - relations are the relations the query references after view expansion:
 *     each view, each table it reads, as written (a partitioned parent, not
 *     its partitions: the stream names a changed leaf's ancestors too);
 *   - bindings (a cacheable SELECT only, else empty): per relation read
 *     once, directly in the top-level FROM, each column its result is
 *     restricted to by equality with constants or parameters, as
 *     "RELID:ATTNUM:VALUES", VALUES the constants' hashes (the column type's
 *     default hash family, seed HD_BINDING_SEED) and "$n"s; sorted by
 *     relation and column. Every element restricts the result on its own: a
 *     row whose column matches none of its values is not in the result. A
 *     relation without an element is bound to all of it. See "Bindings"
 *     below for the rules;
 *   - param_types: the type of each parameter $1..$n as parse analysis
 *     resolved it (a 0 or unknown given is what the parser inferred, as a
 *     Describe would report it; 0 if it stayed unknown), whatever the
 *     statement; empty after an error. The agent hashes a client's
 *     parameters as these types (hyperdrive.hash_value());
 *   - relations are filled whenever the statement was analysed as a SELECT,
 *     cacheable or not; they are empty for errors, several or no statements,
 *     and statements other than SELECT;
 *   - it never raises for a bad query: parse and analysis errors are caught in
 *     a subtransaction and reported as the reason ("syntax error: ..." from
 *     the raw parser, "error: ..." later). Only a query cancel (or statement
 *     timeout) is re-raised;
 *   - it has no side effects: the subtransaction is always rolled back, which
 *     also releases the locks analysis took;
 *   - it reveals nothing the caller could not find out: it runs with the
 *     caller's privileges, and reports "permission denied" where the executor
 *     would refuse the query.
 */
#include "postgres.h"

#include "access/hash.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/heap.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "hyperdrive.h"

PG_FUNCTION_INFO_V1(hyperdrive_analyze_query);

/* A relation the query references. */
typedef struct AnalyzedRel
{
	Oid			relid;
	char	   *name;			/* schema-qualified, quoted */
} AnalyzedRel;

/* What the analysis found so far. */
typedef struct Analysis
{
	char	   *reason;			/* first reason not to cache; NULL: cacheable */
	List	   *rels;			/* of AnalyzedRel *, each relation once */
	const char *time_word;		/* "now", "today", ... in a string literal */
	List	   *bindings;		/* of "RELID:ATTNUM:VALUES" texts, sorted */
	Oid		   *param_types;	/* $1..$n as parse analysis resolved them */
	int			nparams;
} Analysis;

static bool analyze_walker(Node *node, Analysis *an);

/*
 * Record a reason not to cache, unless one was found already: the reason is
 * the first one in walk order, which makes it deterministic.
 */
static void
not_cacheable(Analysis *an, const char *fmt,...)
pg_attribute_printf(2, 3);

static void
not_cacheable(Analysis *an, const char *fmt,...)
{
	StringInfoData buf;

	if (an->reason != NULL)
		return;
	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	an->reason = buf.data;
}

/* ---------------------------------------------------------------------------
 * Functions
 */

/*
 * check_functions_in_node() callback: the caller must be allowed to execute
 * the function (the executor checks that as the current user, even inside a
 * view), and it must be IMMUTABLE. A STABLE function may return something
 * else in the next statement (now(), current_setting(), to_char() of a
 * timestamptz under another TimeZone, a function reading a table the stream
 * cannot tie to the query); a VOLATILE one in the next call.
 */
static bool
check_function(Oid funcid, void *context)
{
	Analysis   *an = (Analysis *) context;
	char		volatility;

	if (an->reason != NULL)
		return false;
	if (pg_proc_aclcheck(funcid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
		not_cacheable(an, "permission denied for function %s",
					  quote_identifier(get_func_name(funcid)));
	volatility = func_volatile(funcid);
	if (volatility != PROVOLATILE_IMMUTABLE)
		not_cacheable(an, "%s function %s",
					  volatility == PROVOLATILE_STABLE ? "stable" : "volatile",
					  quote_identifier(get_func_name(funcid)));
	return false;				/* keep walking: relations are still collected */
}

/* The operator's function (sort and group clauses name operators). */
static void
check_operator(Analysis *an, Oid opno)
{
	if (OidIsValid(opno))
		check_function(get_opcode(opno), an);
}

static const char *
sql_value_function_name(SQLValueFunctionOp op)
{
	switch (op)
	{
		case SVFOP_CURRENT_DATE:
			return "current_date";
		case SVFOP_CURRENT_TIME:
		case SVFOP_CURRENT_TIME_N:
			return "current_time";
		case SVFOP_CURRENT_TIMESTAMP:
		case SVFOP_CURRENT_TIMESTAMP_N:
			return "current_timestamp";
		case SVFOP_LOCALTIME:
		case SVFOP_LOCALTIME_N:
			return "localtime";
		case SVFOP_LOCALTIMESTAMP:
		case SVFOP_LOCALTIMESTAMP_N:
			return "localtimestamp";
		case SVFOP_CURRENT_ROLE:
			return "current_role";
		case SVFOP_CURRENT_USER:
			return "current_user";
		case SVFOP_USER:
			return "user";
		case SVFOP_SESSION_USER:
			return "session_user";
		case SVFOP_CURRENT_CATALOG:
			return "current_catalog";
		case SVFOP_CURRENT_SCHEMA:
			return "current_schema";
	}
	return "sql value function";
}

static const char *
xml_expr_name(XmlExprOp op)
{
	switch (op)
	{
		case IS_XMLCONCAT:
			return "xmlconcat";
		case IS_XMLELEMENT:
			return "xmlelement";
		case IS_XMLFOREST:
			return "xmlforest";
		case IS_XMLPARSE:
			return "xmlparse";
		case IS_XMLPI:
			return "xmlpi";
		case IS_XMLROOT:
			return "xmlroot";
		case IS_XMLSERIALIZE:
			return "xmlserialize";
		case IS_DOCUMENT:
			return "is document";
	}
	return "xml expression";
}

/*
 * A cast to a domain evaluates the domain's CHECK constraints, which may call
 * any function (contain_mutable_functions() does not look, the executor
 * does).
 */
static void
check_domain(Analysis *an, Oid typid)
{
	DomainConstraintRef *ref;
	ListCell   *lc;

	/*
	 * The reference must live in the context it is registered with: its
	 * reset callback, which releases the typcache's constraint list, reads
	 * it when that context goes away.
	 */
	ref = palloc(sizeof(DomainConstraintRef));
	InitDomainConstraintRef(typid, ref, CurrentMemoryContext, false);
	foreach(lc, ref->constraints)
	{
		DomainConstraintState *con = (DomainConstraintState *) lfirst(lc);

		if (con->constrainttype == DOM_CONSTRAINT_CHECK)
			analyze_walker((Node *) con->check_expr, an);
	}
}

/* ---------------------------------------------------------------------------
 * Literals and parameters
 *
 * Parse analysis converts a literal with its type's input function right
 * away, whatever that function's volatility: 'now'::timestamptz becomes a
 * constant holding the time of analysis, 'aq_t'::regclass the OID the name
 * means under the current search_path and catalog. Nothing of the function
 * call is left in the tree, so the constants are checked by type.
 */

/* The scalar type whose input function reads a value of type typid. */
static Oid
input_scalar_type(Oid typid)
{
	for (;;)
	{
		Oid			inner;

		typid = getBaseType(typid);
		if (OidIsValid(inner = get_element_type(typid)) ||
			OidIsValid(inner = get_range_subtype(typid)) ||
			OidIsValid(inner = get_multirange_range(typid)))
			typid = inner;
		else
			return typid;
	}
}

/*
 * Types whose input is STABLE only because it depends on session settings
 * (DateStyle, TimeZone, IntervalStyle, lc_monetary: part of the agent's cache
 * key) or on catalog state that changes only with DDL (enum labels), apart
 * from the date/time words below.
 */
static bool
input_depends_on_settings(Oid typid)
{
	switch (typid)
	{
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case CASHOID:
			return true;
		default:
			return type_is_enum(typid);
	}
}

static bool
is_datetime_type(Oid typid)
{
	return typid == DATEOID || typid == TIMEOID || typid == TIMETZOID ||
		typid == TIMESTAMPOID || typid == TIMESTAMPTZOID;
}

/*
 * Check a value of type typid read by the type's input function: a literal
 * (paramno 0) or parameter $paramno.
 */
static void
check_input_type(Analysis *an, Oid typid, int paramno)
{
	Oid			scalar = input_scalar_type(typid);
	Oid			infunc;
	Oid			ioparam;
	char		volatility;

	getTypeInputInfo(scalar, &infunc, &ioparam);
	volatility = func_volatile(infunc);
	if (volatility == PROVOLATILE_IMMUTABLE)
		return;
	if (volatility == PROVOLATILE_STABLE && input_depends_on_settings(scalar))
	{
		/* the date/time input words that read the clock */
		if (paramno == 0 && an->time_word != NULL && is_datetime_type(scalar))
			not_cacheable(an, "time-dependent literal %s", an->time_word);
		return;
	}
	if (paramno > 0)
		not_cacheable(an, "%s function %s for $%d",
					  volatility == PROVOLATILE_STABLE ? "stable" : "volatile",
					  quote_identifier(get_func_name(infunc)), paramno);
	else
		not_cacheable(an, "%s function %s",
					  volatility == PROVOLATILE_STABLE ? "stable" : "volatile",
					  quote_identifier(get_func_name(infunc)));
}

/*
 * Raw-tree walker: find the date/time input words that mean "the current
 * time" ('now', 'today', 'tomorrow', 'yesterday') in any string literal,
 * as a word of their own ('{now}'::timestamptz[] and '[today,)'::daterange
 * read the clock too). A literal without a date/time type that contains one
 * ('now' as a status) only matters if the query also has a date/time
 * constant: then the query is not cached, which costs a miss, never a wrong
 * answer.
 */
static bool
find_time_word(Node *node, Analysis *an)
{
	static const char *const words[] = {"now", "today", "tomorrow", "yesterday"};

	if (node == NULL || an->time_word != NULL)
		return false;
	if (IsA(node, A_Const))
	{
		A_Const    *con = (A_Const *) node;
		const char *p;

		if (con->isnull || !IsA(&con->val, String))
			return false;
		p = strVal(&con->val);
		while (*p)
		{
			const char *start;

			while (*p && !isalpha((unsigned char) *p))
				p++;
			start = p;
			while (isalpha((unsigned char) *p))
				p++;
			for (int i = 0; i < (int) lengthof(words); i++)
			{
				if ((size_t) (p - start) == strlen(words[i]) &&
					pg_strncasecmp(start, words[i], p - start) == 0)
				{
					an->time_word = words[i];
					return false;
				}
			}
		}
		return false;
	}
	return raw_expression_tree_walker(node, find_time_word, (void *) an);
}

/* ---------------------------------------------------------------------------
 * Relations
 */

static const char *
relkind_noun(char relkind)
{
	switch (relkind)
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
			return "table";
		case RELKIND_VIEW:
			return "view";
		case RELKIND_MATVIEW:
			return "materialized view";
		case RELKIND_FOREIGN_TABLE:
			return "foreign table";
		case RELKIND_SEQUENCE:
			return "sequence";
		default:
			return "relation";
	}
}

static void
remember_relation(Analysis *an, Oid relid, Form_pg_class form)
{
	AnalyzedRel *rel;
	ListCell   *lc;

	foreach(lc, an->rels)
	{
		if (((AnalyzedRel *) lfirst(lc))->relid == relid)
			return;
	}
	rel = palloc(sizeof(AnalyzedRel));
	rel->relid = relid;
	rel->name = quote_qualified_identifier(get_namespace_name(form->relnamespace),
										   NameStr(form->relname));
	an->rels = lappend(an->rels, rel);
}

/*
 * Catalogs change without row changes in the stream (DDL writes them through
 * paths logical decoding does not report as rows), and information_schema
 * views read them. Everything initdb created has an OID below
 * FirstNormalObjectId.
 */
static bool
is_system_relation(Oid relid, Form_pg_class form)
{
	char	   *nspname;

	if (relid < FirstNormalObjectId || IsCatalogNamespace(form->relnamespace) ||
		IsToastNamespace(form->relnamespace))
		return true;
	nspname = get_namespace_name(form->relnamespace);
	return nspname != NULL && strcmp(nspname, "information_schema") == 0;
}

/*
 * Whether the stream reports every change to the relation's rows: not for
 * temporary or unlogged relations (never decoded), foreign tables (changed
 * elsewhere), sequences (not decoded as rows) or anything but a table,
 * partitioned table or materialized view. A view is fine here: the rewriter
 * has put its query in its place, which is checked on its own.
 */
static void
check_storage(Analysis *an, Form_pg_class form)
{
	const char *name = quote_identifier(NameStr(form->relname));

	if (form->relpersistence == RELPERSISTENCE_TEMP)
		not_cacheable(an, "temporary %s %s", relkind_noun(form->relkind), name);
	else if (form->relpersistence == RELPERSISTENCE_UNLOGGED)
		not_cacheable(an, "unlogged %s %s", relkind_noun(form->relkind), name);
	else
	{
		switch (form->relkind)
		{
			case RELKIND_RELATION:
			case RELKIND_PARTITIONED_TABLE:
			case RELKIND_MATVIEW:
			case RELKIND_VIEW:
				break;
			case RELKIND_FOREIGN_TABLE:
				not_cacheable(an, "foreign table %s", name);
				break;
			case RELKIND_SEQUENCE:
				not_cacheable(an, "sequence %s", name);
				break;
			default:
				not_cacheable(an, "unsupported relation %s", name);
				break;
		}
	}
}

/*
 * A relation RTE of the rewritten query: a table the query reads, or a view
 * it referenced (PostgreSQL 15 keeps the view as the "old" RTE of the
 * expanded subquery, carrying the view's permission check).
 */
static void
check_relation(Analysis *an, RangeTblEntry *rte)
{
	HeapTuple	tuple;
	Form_pg_class form;
	const char *name;

	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(rte->relid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", rte->relid);
	form = (Form_pg_class) GETSTRUCT(tuple);
	name = quote_identifier(NameStr(form->relname));
	remember_relation(an, rte->relid, form);

	if (is_system_relation(rte->relid, form))
		not_cacheable(an, "system catalog %s", name);

	/*
	 * The executor's own check, on this RTE alone so that the reason can name
	 * it: SELECT (or column) privilege, as the view owner for relations read
	 * through a view, as the caller otherwise. It does not raise.
	 */
	if (!ExecCheckRTPerms(list_make1(rte), false))
		not_cacheable(an, "permission denied for %s %s", relkind_noun(form->relkind), name);

	check_storage(an, form);

	/* policies make the result depend on the role and on the policy's own functions */
	if (form->relrowsecurity)
		not_cacheable(an, "row level security on %s", name);

	/* the sample depends on the physical layout, which changes without row changes */
	if (rte->tablesample != NULL)
		not_cacheable(an, "tablesample");

	/*
	 * Reading a parent reads its partitions or inheritance children, which
	 * the stream reports under the parent's name, but only if it reports them
	 * at all. Privileges and policies are the parent's alone, as in the
	 * executor.
	 */
	if (rte->inh && form->relhassubclass &&
		(form->relkind == RELKIND_RELATION || form->relkind == RELKIND_PARTITIONED_TABLE))
	{
		ListCell   *lc;

		foreach(lc, find_all_inheritors(rte->relid, AccessShareLock, NULL))
		{
			Oid			child = lfirst_oid(lc);
			HeapTuple	childtuple;

			if (child == rte->relid)
				continue;
			childtuple = SearchSysCache1(RELOID, ObjectIdGetDatum(child));
			if (!HeapTupleIsValid(childtuple))
				continue;		/* dropped meanwhile */
			check_storage(an, (Form_pg_class) GETSTRUCT(childtuple));
			ReleaseSysCache(childtuple);
		}
	}
	ReleaseSysCache(tuple);
}

/* ---------------------------------------------------------------------------
 * The walk over the rewritten query
 */

static bool
analyze_walker(Node *node, Analysis *an)
{
	if (node == NULL)
		return false;
	check_stack_depth();

	if (IsA(node, Query))
	{
		Query	   *query = (Query *) node;

		/*
		 * The top-level query is a SELECT (checked before the walk), so a
		 * nested statement of another kind is in a WITH clause.
		 */
		if (query->commandType != CMD_SELECT || query->utilityStmt != NULL ||
			query->hasModifyingCTE)
			not_cacheable(an, "data-modifying CTE");
		if (query->rowMarks != NIL)
			not_cacheable(an, "locking clause");

		/*
		 * What it reads first (with the subqueries there, views included),
		 * then its expressions: the first reason is then the relation a
		 * query is about ("system catalog tables" rather than a function in
		 * the information_schema view's target list).
		 */
		if (range_table_walker(query->rtable, analyze_walker, (void *) an,
							   QTW_EXAMINE_RTES_BEFORE))
			return true;
		return query_tree_walker(query, analyze_walker, (void *) an,
								 QTW_IGNORE_RANGE_TABLE | QTW_EXAMINE_SORTGROUP);
	}
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			check_relation(an, rte);
		else if (rte->rtekind == RTE_NAMEDTUPLESTORE)
			not_cacheable(an, "unsupported relation %s", quote_identifier(rte->enrname));
		return false;			/* range_table_walker walks its contents next */
	}

	/* the functions a node calls: FuncExpr, OpExpr, Aggref, WindowFunc, I/O casts ... */
	check_functions_in_node(node, check_function, (void *) an);

	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *var = (Var *) node;

				/* ctid, xmin ... change with VACUUM FULL, CLUSTER, freezing */
				if (var->varattno < 0)
					not_cacheable(an, "system column %s",
								  NameStr(SystemAttributeDefinition(var->varattno)->attname));
				return false;
			}
		case T_Const:
			{
				Const	   *con = (Const *) node;

				if (!con->constisnull)
					check_input_type(an, con->consttype, 0);
				return false;
			}
		case T_SQLValueFunction:
			/* CURRENT_DATE, CURRENT_USER ...: all STABLE */
			not_cacheable(an, "stable function %s",
						  sql_value_function_name(((SQLValueFunction *) node)->op));
			break;
		case T_NextValueExpr:
			not_cacheable(an, "volatile function nextval");
			break;
		case T_XmlExpr:
			/* depend on xmloption and xmlbinary, like the STABLE xml_in */
			not_cacheable(an, "stable function %s", xml_expr_name(((XmlExpr *) node)->op));
			break;
		case T_TableFunc:
			not_cacheable(an, "stable function xmltable");
			break;
		case T_CoerceToDomain:
			check_domain(an, ((CoerceToDomain *) node)->resulttype);
			break;
		case T_SortGroupClause:
			{
				SortGroupClause *sgc = (SortGroupClause *) node;

				check_operator(an, sgc->eqop);
				check_operator(an, sgc->sortop);
				return false;
			}
		case T_WindowClause:
			{
				WindowClause *wc = (WindowClause *) node;

				/* RANGE offsets compare with in_range functions (STABLE for timestamptz) */
				if (OidIsValid(wc->startInRangeFunc))
					check_function(wc->startInRangeFunc, an);
				if (OidIsValid(wc->endInRangeFunc))
					check_function(wc->endInRangeFunc, an);
				if (analyze_walker((Node *) wc->partitionClause, an) ||
					analyze_walker((Node *) wc->orderClause, an) ||
					analyze_walker(wc->startOffset, an))
					return true;
				return analyze_walker(wc->endOffset, an);
			}
		default:
			break;
	}
	return expression_tree_walker(node, analyze_walker, (void *) an);
}

/* ---------------------------------------------------------------------------
 * Bindings: the columns a cacheable SELECT's result is restricted to by
 * equality with known values (docs/cache-analysis.md, "Bindings").
 *
 * Invariants, each needed for the binding to be sound (a change to a row
 * whose bound column hashes to none of the values cannot change the result):
 *   - only relations of the top-level query's FROM (RTE_RELATION in its own
 *     range table) are bound; those read inside subqueries, CTEs, sublinks
 *     or views are not, and neither is a relation that occurs more than once
 *     anywhere in the query;
 *   - a conjunct binds only the relations whose rows it filters out of the
 *     result: a top-level AND conjunct of WHERE binds the relations that are
 *     on no outer join's nullable side; one of an inner join's ON binds the
 *     relations under that join, one of an outer join's ON only those of the
 *     nullable side (the preserved side's rows all appear, joined or not),
 *     in both cases not those on the nullable side of a join further down;
 *   - the conjunct is column = value or column = ANY(values), the column a
 *     plain Var of that relation (or a RelabelType of it), the value a
 *     non-NULL constant once folded as the planner folds it (so 5::int8 and
 *     abs(-1) are constants, a function of the column never is) or a $n
 *     (or a RelabelType of either), and the operator
 *     is the equality of the column type's default hash operator family with
 *     the column's own collation: then equal values hash equally, across the
 *     family's types too (the hash opfamily's contract), and a row the
 *     operator finds unequal to every value is not in the result;
 *   - constants are hashed here, with the family's extended hash function for
 *     the operator's input type and HD_BINDING_SEED; $n is left to the agent,
 *     so a parameter binds only if its type's default hash family is the
 *     column's and the hash does not depend on a collation (deterministic or
 *     none);
 *   - anything else leaves the relation bound to all of it (no element).
 */

/* One column = values conjunct that binds a relation of the range table. */
typedef struct Binding
{
	int			rtindex;
	Oid			relid;
	AttrNumber	attno;
	char	   *values;			/* comma-separated hashes and $n */
} Binding;

/* The top-level query's bindings being collected. */
typedef struct BindingState
{
	Query	   *query;
	List	   *relids;			/* every RTE_RELATION occurrence, as OIDs */
	List	   *bindings;		/* of Binding *, the first per column */
} BindingState;

/* Collect the relid of every RTE_RELATION at any level, views included. */
static bool
occurrence_walker(Node *node, BindingState *bs)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, occurrence_walker, (void *) bs,
								 QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		RangeTblEntry *rte = (RangeTblEntry *) node;

		if (rte->rtekind == RTE_RELATION)
			bs->relids = lappend_oid(bs->relids, rte->relid);
		return false;
	}
	return expression_tree_walker(node, occurrence_walker, (void *) bs);
}

static int
occurrences(BindingState *bs, Oid relid)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, bs->relids)
		n += (lfirst_oid(lc) == relid);
	return n;
}

/*
 * The range table indexes under a join tree node that are on no outer join's
 * nullable side within it: the relations whose rows a condition on the node
 * filters out.
 */
static Bitmapset *
filtered_rels(Node *jtnode)
{
	if (jtnode == NULL)
		return NULL;
	if (IsA(jtnode, RangeTblRef))
		return bms_make_singleton(((RangeTblRef *) jtnode)->rtindex);
	if (IsA(jtnode, FromExpr))
	{
		Bitmapset  *rels = NULL;
		ListCell   *lc;

		foreach(lc, ((FromExpr *) jtnode)->fromlist)
			rels = bms_join(rels, filtered_rels(lfirst(lc)));
		return rels;
	}
	if (IsA(jtnode, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) jtnode;

		switch (j->jointype)
		{
			case JOIN_INNER:
				return bms_join(filtered_rels(j->larg), filtered_rels(j->rarg));
			case JOIN_LEFT:
				return filtered_rels(j->larg);
			case JOIN_RIGHT:
				return filtered_rels(j->rarg);
			default:
				return NULL;	/* FULL: both sides are preserved */
		}
	}
	return NULL;
}

/* The relations a join's ON clause filters: see the invariants above. */
static Bitmapset *
on_clause_rels(JoinExpr *j)
{
	switch (j->jointype)
	{
		case JOIN_INNER:
			return bms_join(filtered_rels(j->larg), filtered_rels(j->rarg));
		case JOIN_LEFT:
			return filtered_rels(j->rarg);
		case JOIN_RIGHT:
			return filtered_rels(j->larg);
		default:
			return NULL;
	}
}

static Node *
strip_relabel(Node *node)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node;
}

/*
 * The value side as the planner sees it: parse analysis leaves a cast of a
 * literal (5::int8, an integer literal compared with a numeric column) and
 * other immutable functions of constants as calls, which the planner folds
 * into a constant before the executor compares anything. The query is
 * cacheable, so every function here is immutable; $n stays a Param. An error
 * here (1/0) is the one planning the query would raise.
 */
static Node *
planned_value(Node *node)
{
	return strip_relabel(eval_const_expressions(NULL, node));
}

/*
 * The column a conjunct side is, if it is a plain column of a relation the
 * conjunct filters, read nowhere else in the query.
 */
static Var *
bindable_column(BindingState *bs, Node *node, Bitmapset *rels)
{
	Var		   *var = (Var *) strip_relabel(node);
	RangeTblEntry *rte;

	if (var == NULL || !IsA(var, Var) || var->varlevelsup != 0 || var->varattno <= 0 ||
		!bms_is_member(var->varno, rels))
		return NULL;
	rte = rt_fetch(var->varno, bs->query->rtable);
	if (rte->rtekind != RTE_RELATION || occurrences(bs, rte->relid) != 1)
		return NULL;
	return var;
}

/*
 * The hash operator family whose equality opno is, for the column: the
 * default hash family of the column's type, opno its equality operator, and
 * the comparison in the column's collation. InvalidOid if not.
 */
static Oid
column_equality_family(Var *var, Oid opno, Oid inputcollid)
{
	TypeCacheEntry *typentry;

	typentry = lookup_type_cache(var->vartype,
								 TYPECACHE_HASH_OPFAMILY | TYPECACHE_HASH_EXTENDED_PROC);
	if (!OidIsValid(typentry->hash_opf) || !OidIsValid(typentry->hash_extended_proc))
		return InvalidOid;
	if (!op_in_opfamily(opno, typentry->hash_opf) ||
		get_op_opfamily_strategy(opno, typentry->hash_opf) != HTEqualStrategyNumber)
		return InvalidOid;
	if (type_is_collatable(var->vartype) && inputcollid != var->varcollid)
		return InvalidOid;
	return typentry->hash_opf;
}

/* The operator's input type on the value's side (the right one if !left). */
static Oid
operand_type(Oid opno, Oid opfamily, bool left)
{
	int			strategy;
	Oid			lefttype;
	Oid			righttype;

	get_op_opfamily_properties(opno, opfamily, false, &strategy, &lefttype, &righttype);
	return left ? lefttype : righttype;
}

/*
 * Append the hash of a non-NULL value of type typid, as the family's
 * extended hash function for that type computes it with the comparison's
 * collation (a nondeterministic collation hashes equal strings equally).
 */
static bool
append_hash(StringInfo buf, Oid opfamily, Oid typid, Oid collid, Datum value)
{
	FmgrInfo	finfo;

	if (!hd_hash_proc_in_family(opfamily, typid, &finfo, CurrentMemoryContext))
		return false;
	appendStringInfo(buf, "%s" INT64_FORMAT, buf->len > 0 ? "," : "",
					 hd_value_hash(&finfo, collid, value));
	return true;
}

/*
 * Append $n for a parameter the agent can hash alone: its type's default
 * hash family is the column's (elemtype: of its elements, for ANY($n)), and
 * the hash does not depend on the collation.
 */
static bool
append_param(StringInfo buf, Param *param, Oid opfamily, bool array, Oid collid)
{
	Oid			typid = param->paramtype;

	if (param->paramkind != PARAM_EXTERN)
		return false;
	if (array && !OidIsValid(typid = get_element_type(typid)))
		return false;
	if (lookup_type_cache(typid, TYPECACHE_HASH_OPFAMILY)->hash_opf != opfamily)
		return false;
	if (OidIsValid(collid) && !get_collation_isdeterministic(collid))
		return false;
	appendStringInfo(buf, "%s$%d", buf->len > 0 ? "," : "", param->paramid);
	return true;
}

/* Append one value: a non-NULL constant or a $n. */
static bool
append_value(StringInfo buf, Node *node, Oid opfamily, Oid typid, Oid collid)
{
	node = planned_value(node);
	if (node != NULL && IsA(node, Param))
		return append_param(buf, (Param *) node, opfamily, false, collid);
	if (node == NULL || !IsA(node, Const) || ((Const *) node)->constisnull)
		return false;
	return append_hash(buf, opfamily, typid, collid, ((Const *) node)->constvalue);
}

/* Append the elements of ANY's array: a constant, an ARRAY[...] or a $n. */
static bool
append_array(StringInfo buf, Node *node, Oid opfamily, Oid elemtype, Oid collid)
{
	node = planned_value(node);
	if (node != NULL && IsA(node, Param))
		return append_param(buf, (Param *) node, opfamily, true, collid);
	if (node != NULL && IsA(node, ArrayExpr))
	{
		ListCell   *lc;

		foreach(lc, ((ArrayExpr *) node)->elements)
		{
			if (!append_value(buf, lfirst(lc), opfamily, elemtype, collid))
				return false;
		}
		return list_length(((ArrayExpr *) node)->elements) > 0;
	}
	if (node != NULL && IsA(node, Const) && !((Const *) node)->constisnull)
	{
		Const	   *con = (Const *) node;
		Oid			arrelem = get_element_type(con->consttype);
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Datum	   *elems;
		bool	   *elemnulls;
		int			nelems;

		if (!OidIsValid(arrelem))
			return false;
		get_typlenbyvalalign(arrelem, &typlen, &typbyval, &typalign);
		deconstruct_array(DatumGetArrayTypeP(con->constvalue), arrelem, typlen, typbyval,
						  typalign, &elems, &elemnulls, &nelems);
		for (int i = 0; i < nelems; i++)
		{
			/* = NULL is never true: a NULL element is left alone, conservatively */
			if (elemnulls[i] || !append_hash(buf, opfamily, elemtype, collid, elems[i]))
				return false;
		}
		return nelems > 0;
	}
	return false;
}

static void
add_binding(BindingState *bs, Var *var, char *values)
{
	Binding    *b;
	ListCell   *lc;

	/* the first conjunct on a column is enough: each restricts the result */
	foreach(lc, bs->bindings)
	{
		b = (Binding *) lfirst(lc);
		if (b->rtindex == var->varno && b->attno == var->varattno)
			return;
	}
	b = palloc(sizeof(Binding));
	b->rtindex = var->varno;
	b->relid = rt_fetch(var->varno, bs->query->rtable)->relid;
	b->attno = var->varattno;
	b->values = values;
	bs->bindings = lappend(bs->bindings, b);
}

/* column = value or value = column */
static void
bind_opexpr(BindingState *bs, OpExpr *op, Bitmapset *rels)
{
	StringInfoData buf;

	if (list_length(op->args) != 2)
		return;
	for (int side = 0; side < 2; side++)
	{
		Var		   *var = bindable_column(bs, list_nth(op->args, side), rels);
		Oid			opfamily;

		if (var == NULL ||
			!OidIsValid(opfamily = column_equality_family(var, op->opno, op->inputcollid)))
			continue;
		initStringInfo(&buf);
		if (append_value(&buf, list_nth(op->args, 1 - side), opfamily,
						 operand_type(op->opno, opfamily, side == 1), op->inputcollid))
			add_binding(bs, var, buf.data);
		return;
	}
}

/* column = ANY(values) */
static void
bind_any(BindingState *bs, ScalarArrayOpExpr *saop, Bitmapset *rels)
{
	Var		   *var;
	Oid			opfamily;
	StringInfoData buf;

	if (!saop->useOr || list_length(saop->args) != 2 ||
		(var = bindable_column(bs, linitial(saop->args), rels)) == NULL ||
		!OidIsValid(opfamily = column_equality_family(var, saop->opno, saop->inputcollid)))
		return;
	initStringInfo(&buf);
	if (append_array(&buf, lsecond(saop->args), opfamily,
					 operand_type(saop->opno, opfamily, false), saop->inputcollid))
		add_binding(bs, var, buf.data);
}

/* Each top-level AND conjunct of a qual that filters rels. */
static void
bind_conjuncts(BindingState *bs, Node *qual, Bitmapset *rels)
{
	if (qual == NULL || bms_is_empty(rels))
		return;
	if (is_andclause(qual))
	{
		ListCell   *lc;

		foreach(lc, ((BoolExpr *) qual)->args)
			bind_conjuncts(bs, lfirst(lc), rels);
	}
	else if (IsA(qual, List))
	{
		ListCell   *lc;

		foreach(lc, (List *) qual)
			bind_conjuncts(bs, lfirst(lc), rels);
	}
	else if (IsA(qual, OpExpr))
		bind_opexpr(bs, (OpExpr *) qual, rels);
	else if (IsA(qual, ScalarArrayOpExpr))
		bind_any(bs, (ScalarArrayOpExpr *) qual, rels);
}

/* The WHERE and ON clauses of the join tree, each with the rels it filters. */
static void
bind_jointree(BindingState *bs, Node *jtnode)
{
	if (jtnode == NULL)
		return;
	if (IsA(jtnode, FromExpr))
	{
		FromExpr   *f = (FromExpr *) jtnode;
		ListCell   *lc;

		foreach(lc, f->fromlist)
			bind_jointree(bs, lfirst(lc));
		bind_conjuncts(bs, f->quals, filtered_rels(jtnode));
	}
	else if (IsA(jtnode, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) jtnode;

		bind_jointree(bs, j->larg);
		bind_jointree(bs, j->rarg);
		bind_conjuncts(bs, j->quals, on_clause_rels(j));
	}
}

static int
binding_cmp(const ListCell *a, const ListCell *b)
{
	const Binding *ba = (const Binding *) lfirst(a);
	const Binding *bb = (const Binding *) lfirst(b);

	if (ba->relid != bb->relid)
		return (ba->relid > bb->relid) - (ba->relid < bb->relid);
	return (ba->attno > bb->attno) - (ba->attno < bb->attno);
}

/*
 * The bindings of a cacheable rewritten SELECT, as "RELID:ATTNUM:VALUES"
 * texts, sorted by relation and column.
 */
static List *
find_bindings(Query *query)
{
	BindingState bs = {query, NIL, NIL};
	List	   *texts = NIL;
	ListCell   *lc;

	occurrence_walker((Node *) query, &bs);
	bind_jointree(&bs, (Node *) query->jointree);
	list_sort(bs.bindings, binding_cmp);
	foreach(lc, bs.bindings)
	{
		Binding    *b = (Binding *) lfirst(lc);

		texts = lappend(texts, psprintf("%u:%d:%s", b->relid, b->attno, b->values));
	}
	return texts;
}

/* ---------------------------------------------------------------------------
 * The statement
 */

/*
 * Analyse one raw statement as the server would for a Parse message. Runs in
 * the subtransaction: any error is the caller's to catch.
 */
static void
analyze_statement(RawStmt *rawstmt, const char *sql, Oid *types, int ntypes, Analysis *an)
{
	Query	   *query;
	List	   *rewritten;
	bool		infer = false;
	ListCell   *lc;

	/* before parse analysis, which may change the raw tree (SELECT INTO) */
	if (IsA(rawstmt->stmt, SelectStmt))
		find_time_word(rawstmt->stmt, an);

	/*
	 * Types 0 or unknown are inferred from the query, as for a Parse message;
	 * if all are given, the list is fixed, and a $n beyond it is an error.
	 */
	for (int i = 0; i < ntypes; i++)
		infer |= (!OidIsValid(types[i]) || types[i] == UNKNOWNOID);
	if (infer)
		query = parse_analyze_varparams(rawstmt, sql, &types, &ntypes, NULL);
	else
		query = parse_analyze_fixedparams(rawstmt, sql, types, ntypes, NULL);
	/* as a Describe would report them (0 where the parser left one unknown) */
	an->param_types = types;
	an->nparams = ntypes;

	if (query->commandType != CMD_SELECT || query->utilityStmt != NULL)
	{
		if (query->utilityStmt != NULL && IsA(query->utilityStmt, CreateTableAsStmt) &&
			((CreateTableAsStmt *) query->utilityStmt)->is_select_into)
			not_cacheable(an, "SELECT INTO");
		else
			not_cacheable(an, "not a SELECT");
		return;
	}

	/* a value the input function converts at Bind: same rules as literals */
	for (int i = 0; i < ntypes; i++)
	{
		if (!OidIsValid(types[i]) || types[i] == UNKNOWNOID)
			not_cacheable(an, "parameter $%d of unknown type", i + 1);
		else
			check_input_type(an, types[i], i + 1);
	}

	/* views expanded, row-level security applied, under the caller's role */
	rewritten = QueryRewrite(query);
	foreach(lc, rewritten)
	{
		Query	   *q = lfirst_node(Query, lc);

		if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
			not_cacheable(an, "not a SELECT");
		analyze_walker((Node *) q, an);
	}

	/* a result the agent may cache is also one it may drop precisely */
	if (an->reason == NULL && list_length(rewritten) == 1)
		an->bindings = find_bindings(linitial_node(Query, rewritten));
}

/*
 * Parse and analyse the text in a subtransaction that is always rolled back,
 * as PL/pgSQL runs an exception block: errors become the reason, and the
 * locks analysis took are released. The results live in workcxt, which
 * outlives the subtransaction.
 */
static void
analyze_text(const char *sql, Oid *types, int ntypes, Analysis *an, MemoryContext workcxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool parsed = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(workcxt);
	PG_TRY();
	{
		List	   *raw = raw_parser(sql, RAW_PARSE_DEFAULT);

		parsed = true;
		if (raw == NIL)
			not_cacheable(an, "empty query");
		else if (list_length(raw) > 1)
			not_cacheable(an, "multiple statements");
		else
			analyze_statement(linitial_node(RawStmt, raw), sql, types, ntypes, an);

		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(workcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		/* a cancel or statement_timeout is for the caller, not about the query */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);

		an->reason = psprintf("%s: %s", parsed ? "error" : "syntax error", edata->message);
		an->rels = NIL;
		an->bindings = NIL;
		an->nparams = 0;
	}
	PG_END_TRY();
}

static int
analyzed_rel_cmp(const ListCell *a, const ListCell *b)
{
	Oid			ra = ((AnalyzedRel *) lfirst(a))->relid;
	Oid			rb = ((AnalyzedRel *) lfirst(b))->relid;

	return (ra > rb) - (ra < rb);
}

/*
 * hyperdrive.analyze_query(query text, param_types regtype[] DEFAULT '{}')
 * RETURNS TABLE (cacheable boolean, reason text, relations oid[], relation_names text[],
 *                bindings text[], param_types regtype[])
 */
Datum
hyperdrive_analyze_query(PG_FUNCTION_ARGS)
{
	char	   *sql = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ArrayType  *types_array = PG_GETARG_ARRAYTYPE_P(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext workcxt;
	Analysis   *an;
	Datum	   *elems;
	bool	   *elemnulls;
	int			ntypes;
	Oid		   *types;
	Datum	   *relids;
	Datum	   *names;
	int			nrels;
	ListCell   *lc;
	Datum	   *bindings;
	int			nbindings;
	Datum	   *params;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	if (ARR_NDIM(types_array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("param_types must be a one-dimensional array")));

	InitMaterializedSRF(fcinfo, 0);

	workcxt = AllocSetContextCreate(CurrentMemoryContext, "hyperdrive analyze_query",
									ALLOCSET_DEFAULT_SIZES);
	an = MemoryContextAllocZero(workcxt, sizeof(Analysis));

	/* palloc'd in workcxt: parse_analyze_varparams may enlarge it */
	deconstruct_array(types_array, REGTYPEOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &elemnulls, &ntypes);
	types = MemoryContextAlloc(workcxt, sizeof(Oid) * Max(ntypes, 1));
	for (int i = 0; i < ntypes; i++)
		types[i] = elemnulls[i] ? InvalidOid : DatumGetObjectId(elems[i]);

	analyze_text(sql, types, ntypes, an, workcxt);

	list_sort(an->rels, analyzed_rel_cmp);
	nrels = list_length(an->rels);
	relids = palloc(sizeof(Datum) * Max(nrels, 1));
	names = palloc(sizeof(Datum) * Max(nrels, 1));
	foreach(lc, an->rels)
	{
		AnalyzedRel *rel = (AnalyzedRel *) lfirst(lc);

		relids[foreach_current_index(lc)] = ObjectIdGetDatum(rel->relid);
		names[foreach_current_index(lc)] = CStringGetTextDatum(rel->name);
	}

	values[0] = BoolGetDatum(an->reason == NULL);
	if (an->reason != NULL)
		values[1] = CStringGetTextDatum(an->reason);
	else
		nulls[1] = true;
	values[2] = PointerGetDatum(construct_array(relids, nrels, OIDOID, sizeof(Oid),
												true, TYPALIGN_INT));
	values[3] = PointerGetDatum(construct_array(names, nrels, TEXTOID, -1,
												false, TYPALIGN_INT));
	nbindings = list_length(an->bindings);
	bindings = palloc(sizeof(Datum) * Max(nbindings, 1));
	foreach(lc, an->bindings)
		bindings[foreach_current_index(lc)] = CStringGetTextDatum((char *) lfirst(lc));
	values[4] = PointerGetDatum(construct_array(bindings, nbindings, TEXTOID, -1,
												false, TYPALIGN_INT));
	params = palloc(sizeof(Datum) * Max(an->nparams, 1));
	for (int i = 0; i < an->nparams; i++)
		params[i] = ObjectIdGetDatum(an->param_types[i]);
	values[5] = PointerGetDatum(construct_array(params, an->nparams, REGTYPEOID, sizeof(Oid),
												true, TYPALIGN_INT));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	MemoryContextDelete(workcxt);
	return (Datum) 0;
}
