/* extension/hyperdrive--0.2--0.3.sql: ALTER EXTENSION hyperdrive UPDATE TO '0.3' */
\echo Use "ALTER EXTENSION hyperdrive UPDATE TO '0.3'" to load this file. \quit

-- analyze_query() gains the OUT column bindings (extension/analyze.c,
-- docs/cache-analysis.md, "Bindings"). The OUT columns are the function's
-- result type, which CREATE OR REPLACE FUNCTION cannot change: drop it and
-- create it again, which also drops its grant, given again below. Callers
-- that select its columns by name (the agent does) are not affected.
DROP FUNCTION @extschema@.analyze_query(text, regtype[]);
CREATE FUNCTION @extschema@.analyze_query(query text, param_types regtype[] DEFAULT '{}')
RETURNS TABLE (cacheable boolean, reason text, relations oid[], relation_names text[],
               bindings text[])
AS 'MODULE_PATHNAME', 'hyperdrive_analyze_query'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION @extschema@.analyze_query(text, regtype[]) TO PUBLIC;
