/* hyperdrive--0.3.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION hyperdrive" to load this file. \quit

-- Every role may look into the schema: the agent calls analyze_query() as
-- the client's own role. Functions that must not be public revoke EXECUTE
-- from PUBLIC themselves (get_role_secret, _log_ddl_object).
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

COMMENT ON SCHEMA @extschema@ IS
  'hyperdrive: change stream (logical decoding plugin "hyperdrive") and helpers for the hyperdrive agent';

-- ---------------------------------------------------------------------------
-- Schema changes in the change stream (see extension/ddl_capture.c).
--
-- Logical decoding carries no DDL. These event triggers describe each DDL
-- object in a transactional logical message that the output plugin folds
-- into the same transaction's record.

-- Writes one message for one reported object. Only the event triggers below
-- call it; it is not for general use (a stray call would make every consumer
-- invalidate its cache).
CREATE FUNCTION @extschema@._log_ddl_object(
    event text, command_tag text, classid oid, objid oid, objsubid integer,
    object_type text, object_identity text, schema_name text, object_name text,
    address_names text[], original boolean)
RETURNS void
AS 'MODULE_PATHNAME', 'hyperdrive_log_ddl_object'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION @extschema@._log_ddl_object(text, text, oid, oid, integer, text,
    text, text, text, text[], boolean) FROM PUBLIC;

-- ddl_command_start: ALTER TABLE and DROP TABLE name the partition and
-- inheritance relatives they are about to detach or drop.
CREATE FUNCTION @extschema@._capture_ddl_start()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'hyperdrive_capture_ddl_start'
LANGUAGE C;

-- ddl_command_end: every object a DDL command created or altered. SECURITY
-- DEFINER so that DDL by any role can write the message.
CREATE FUNCTION @extschema@._capture_ddl_end()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj record;
BEGIN
    FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        PERFORM @extschema@._log_ddl_object('ddl_command_end', obj.command_tag,
            obj.classid, obj.objid, obj.objsubid, obj.object_type,
            obj.object_identity, obj.schema_name, NULL, NULL, true);
    END LOOP;
END;
$$;

-- sql_drop: every object a command dropped, directly or by cascade.
CREATE FUNCTION @extschema@._capture_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj record;
BEGIN
    FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE NOT is_temporary LOOP
        PERFORM @extschema@._log_ddl_object('sql_drop', tg_tag,
            obj.classid, obj.objid, obj.objsubid, obj.object_type,
            obj.object_identity, obj.schema_name, obj.object_name,
            obj.address_names, obj.original);
    END LOOP;
END;
$$;

CREATE EVENT TRIGGER hyperdrive_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE', 'ALTER FOREIGN TABLE', 'DROP TABLE', 'DROP FOREIGN TABLE')
    EXECUTE FUNCTION @extschema@._capture_ddl_start();
CREATE EVENT TRIGGER hyperdrive_ddl_end ON ddl_command_end
    EXECUTE FUNCTION @extschema@._capture_ddl_end();
CREATE EVENT TRIGGER hyperdrive_sql_drop ON sql_drop
    EXECUTE FUNCTION @extschema@._capture_sql_drop();

-- Fire in every session_replication_role, so that DDL replayed by a
-- replication worker or a restore in replica mode still reaches the stream.
ALTER EVENT TRIGGER hyperdrive_ddl_start ENABLE ALWAYS;
ALTER EVENT TRIGGER hyperdrive_ddl_end ENABLE ALWAYS;
ALTER EVENT TRIGGER hyperdrive_sql_drop ENABLE ALWAYS;

-- ---------------------------------------------------------------------------
-- Authentication lookup for the agent (like PgBouncer's auth_query).
--
-- Clients may log in to the agent as any origin role. The agent checks their
-- password against the role's stored secret, fetched with this function over
-- its own control connection, and then logs in to the origin as that role
-- with the keys of the client's own SCRAM exchange (it never learns the
-- password). Only roles that can log in, are not superusers and have not
-- expired are visible. EXECUTE is for the agent's role only:
--   GRANT EXECUTE ON FUNCTION hyperdrive.get_role_secret(name) TO hyperdrive_agent;
CREATE FUNCTION @extschema@.get_role_secret(role_name name)
RETURNS text
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT rolpassword FROM pg_catalog.pg_authid
    WHERE rolname = role_name
      AND rolcanlogin
      AND NOT rolsuper
      AND (rolvaliduntil IS NULL OR rolvaliduntil > pg_catalog.now())
$$;
REVOKE ALL ON FUNCTION @extschema@.get_role_secret(name) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Query analysis for the agent's cache (see extension/analyze.c and
-- docs/cache-analysis.md).
--
-- Whether the result of a query may be cached, and the relations whose
-- changes in the stream must drop it. The server's own parser, parse analysis
-- and rewriter run in the calling session: the agent calls it on an origin
-- connection logged in as the client's role, with the client's search_path.
-- No SET search_path here, and SECURITY INVOKER, for exactly that reason. It
-- runs with the caller's privileges and only analyses what the caller could
-- run anyway, so any role may call it (given USAGE on the schema).
-- bindings (0.3): the columns the result is restricted to by equality, with
-- the values' hashes (docs/cache-analysis.md, "Bindings").
CREATE FUNCTION @extschema@.analyze_query(query text, param_types regtype[] DEFAULT '{}')
RETURNS TABLE (cacheable boolean, reason text, relations oid[], relation_names text[],
               bindings text[])
AS 'MODULE_PATHNAME', 'hyperdrive_analyze_query'
LANGUAGE C STRICT STABLE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION @extschema@.analyze_query(text, regtype[]) TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Session state for the agent's pooling (see extension/session_state.c and
-- docs/agent.md, "Session state").
--
-- What of the calling session's state another client must never inherit:
-- its role, whether it has a temporary schema or an advisory lock, and every
-- setting the session itself set. The agent compares it before and after a
-- client's transaction on a pooled origin connection. It tells the caller
-- only about its own session, so any role may call it (given USAGE on the
-- schema).
CREATE FUNCTION @extschema@.session_state()
RETURNS text
AS 'MODULE_PATHNAME', 'hyperdrive_session_state'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION @extschema@.session_state() TO PUBLIC;
