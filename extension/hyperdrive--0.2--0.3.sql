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

-- Whether values of a type can be hashed so (watch_column() checks it).
CREATE FUNCTION @extschema@._hashable_type(regtype)
RETURNS boolean
AS 'MODULE_PATHNAME', 'hyperdrive_hashable_type'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

-- The columns whose values a slot's records carry. The output plugin reads
-- this table while decoding, under the decoding (historic) snapshot: that is
-- what user_catalog_table allows, and why this is a table rather than a
-- START_REPLICATION option. A watch takes effect at its INSERT's commit, in
-- the stream's own commit order (transactions committed before it carry no
-- values, every one after does), with no restart of the walsender, and it
-- persists with the slot's database. Rows name relations by OID, so they are
-- not dumped (no pg_extension_config_dump): a restored database has other
-- OIDs and other slots; the agent watches again.
CREATE TABLE @extschema@.watched_column (
    slot name NOT NULL,
    relid oid NOT NULL,
    attnum int2 NOT NULL,
    PRIMARY KEY (slot, relid, attnum)
) WITH (user_catalog_table = true);
COMMENT ON TABLE @extschema@.watched_column IS
  'hyperdrive: columns whose value hashes the slot''s change records carry (docs/stream.md)';

-- The role that called a SECURITY DEFINER function: what SET ROLE chose, or
-- the session's user. (current_user is the definer inside the function; a
-- SECURITY DEFINER function cannot SET ROLE, so the setting is the caller's.)
CREATE FUNCTION @extschema@._invoking_role()
RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN current_setting('role') = 'none' THEN session_user
                ELSE current_setting('role')::name END
$$;

-- The slot must be a hyperdrive slot of this database; an error otherwise.
CREATE FUNCTION @extschema@._check_slot(slot name)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    SELECT s2.plugin, s2.database, s2.slot_type INTO s
    FROM pg_replication_slots s2 WHERE s2.slot_name = slot;
    IF NOT FOUND OR s.database IS DISTINCT FROM current_database() THEN
        RAISE EXCEPTION 'replication slot "%" does not exist in this database', slot
            USING ERRCODE = 'undefined_object';
    END IF;
    IF s.plugin IS DISTINCT FROM 'hyperdrive' THEN
        RAISE EXCEPTION 'replication slot "%" does not use the hyperdrive output plugin', slot
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Its plugin is %s.', coalesce(s.plugin::text, 'none'));
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@._check_slot(name) FROM PUBLIC;

-- Watch column attnum of rel for slot: from the next transaction the slot
-- decodes after this one's commit, each change of rel (or of a partition or
-- inheritance child of it) carries the hashes of the column's old and new
-- values. Anyone may call it for a column they may read: the stream then
-- carries hashes of that column's values, and reading the stream takes
-- REPLICATION anyway. Idempotent.
CREATE FUNCTION @extschema@.watch_column(slot name, rel regclass, attnum int2)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := @extschema@._invoking_role();
    kind "char";
    typ regtype;
BEGIN
    PERFORM @extschema@._check_slot(slot);
    SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', rel::oid
            USING ERRCODE = 'undefined_table';
    END IF;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Only the columns of plain and partitioned tables can be watched.';
    END IF;
    SELECT a.atttypid INTO typ FROM pg_attribute a
    WHERE a.attrelid = rel AND a.attnum = watch_column.attnum
      AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column % of relation "%" does not exist', attnum, rel
            USING ERRCODE = 'undefined_column';
    END IF;
    IF NOT has_column_privilege(caller, rel, attnum, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for column % of relation "%"', attnum, rel
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Role %s may not read the column, so it may not watch it.',
                                  quote_ident(caller));
    END IF;
    IF NOT @extschema@._hashable_type(typ) THEN
        RAISE EXCEPTION 'column % of relation "%" cannot be watched', attnum, rel
            USING ERRCODE = 'undefined_function',
                  DETAIL = format('Type %s has no default hash operator class with an extended hash function.', typ);
    END IF;
    -- idempotent; not ON CONFLICT DO NOTHING, which PostgreSQL refuses on a
    -- user catalog table: a concurrent caller's row is the same row
    IF EXISTS (SELECT FROM @extschema@.watched_column w
               WHERE w.slot = watch_column.slot AND w.relid = rel
                 AND w.attnum = watch_column.attnum) THEN
        RETURN;
    END IF;
    BEGIN
        INSERT INTO @extschema@.watched_column (slot, relid, attnum)
        VALUES (slot, rel, attnum);
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
END
$$;
GRANT EXECUTE ON FUNCTION @extschema@.watch_column(name, regclass, int2) TO PUBLIC;

-- Stop watching every column for slot. Takes REPLICATION (or superuser), as
-- dropping the slot does. A slot that no longer exists may be cleaned up; a
-- slot of another database or plugin is refused.
CREATE FUNCTION @extschema@.unwatch_slot(slot name)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller name := @extschema@._invoking_role();
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles r
                   WHERE r.rolname = caller AND (r.rolreplication OR r.rolsuper)) THEN
        RAISE EXCEPTION 'permission denied to stop watching the columns of slot "%"', slot
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Only roles with the REPLICATION attribute may do this.';
    END IF;
    IF EXISTS (SELECT FROM pg_replication_slots s WHERE s.slot_name = slot) THEN
        PERFORM @extschema@._check_slot(slot);
    END IF;
    DELETE FROM @extschema@.watched_column w WHERE w.slot = unwatch_slot.slot;
END
$$;
GRANT EXECUTE ON FUNCTION @extschema@.unwatch_slot(name) TO PUBLIC;
