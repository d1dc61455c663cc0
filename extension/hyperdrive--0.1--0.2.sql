/* extension/hyperdrive--0.1--0.2.sql: ALTER EXTENSION hyperdrive UPDATE TO '0.2' */
\echo Use "ALTER EXTENSION hyperdrive UPDATE TO '0.2'" to load this file. \quit

-- Session state for the agent's pooling (extension/session_state.c).
CREATE FUNCTION @extschema@.session_state()
RETURNS text
AS 'MODULE_PATHNAME', 'hyperdrive_session_state'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
GRANT EXECUTE ON FUNCTION @extschema@.session_state() TO PUBLIC;
