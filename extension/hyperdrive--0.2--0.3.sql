/* extension/hyperdrive--0.2--0.3.sql: ALTER EXTENSION hyperdrive UPDATE TO '0.3' */
\echo Use "ALTER EXTENSION hyperdrive UPDATE TO '0.3'" to load this file. \quit

-- analyze_query() gains the OUT columns bindings (extension/analyze.c,
-- docs/cache-analysis.md, "Bindings") and param_types (the type of every
-- parameter as parse analysis resolved it: the agent hashes a client's
-- parameter values as those types, with hash_value() below). The OUT
-- columns are the function's result type, which CREATE OR REPLACE FUNCTION cannot change: drop it and
-- create it again, which also drops its grant, given again below. Callers
-- that select its columns by name (the agent does) are not affected.
DROP FUNCTION @extschema@.analyze_query(text, regtype[]);
CREATE FUNCTION @extschema@.analyze_query(query text, param_types regtype[] DEFAULT '{}')
RETURNS TABLE (cacheable boolean, reason text, relations oid[], relation_names text[],
               bindings text[], param_types regtype[])
AS 'MODULE_PATHNAME', 'hyperdrive_analyze_query'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION @extschema@.analyze_query(text, regtype[]) TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Stream version 2: the values of watched columns (docs/stream.md, "Watched
-- columns").

-- The hash of a value as analyze_query()'s bindings and the stream's watched
-- columns give it: the extended hash function of the type's default hash
-- operator class, the argument's collation (the database's default when it
-- has none), seed HD_BINDING_SEED (extension/value_hash.c). The agent sends a
-- client's parameter here, as the client's own Bind bytes and format, to
-- compare it with the stream's values. An error for a type without one.
CREATE FUNCTION @extschema@.hash_value(anyelement)
RETURNS int8
AS 'MODULE_PATHNAME', 'hyperdrive_hash_value'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
GRANT EXECUTE ON FUNCTION @extschema@.hash_value(anyelement) TO PUBLIC;

-- The same for each element of an array (= ANY($1)), NULL elements left out.
CREATE FUNCTION @extschema@.hash_values(anyarray)
RETURNS int8[]
AS 'MODULE_PATHNAME', 'hyperdrive_hash_values'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;
GRANT EXECUTE ON FUNCTION @extschema@.hash_values(anyarray) TO PUBLIC;
