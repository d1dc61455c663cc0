-- hyperdrive.session_state(): what of a session's state a pooler must know of
-- before another client gets the connection (extension/session_state.c). The
-- OIDs vary between runs: entries are shown with them replaced.
SELECT current_user AS superuser \gset
CREATE ROLE regress_hd_state LOGIN;
CREATE ROLE regress_hd_other;
GRANT regress_hd_other TO regress_hd_state;
GRANT USAGE ON SCHEMA hyperdrive TO regress_hd_state;
\c - regress_hd_state
CREATE FUNCTION pg_temp.st() RETURNS text LANGUAGE sql
  AS $$ SELECT regexp_replace(regexp_replace(hyperdrive.session_state(),
        '@user=\d+:(\d+)/(\d+);', '@user=<outer>/<session>;'),
        '@temp=\d+:[1-9]\d*;', '@temp=<schema>;') $$;

-- a fresh session (the function's temporary schema is the only trace)
SELECT pg_temp.st();
SELECT hyperdrive.session_state() ~ '^@user=\d+:(\d+)/\1;' AS same_user;

-- SET, set_config(..., false), and in a function, show up; SET LOCAL only
-- until its transaction ends
SET search_path = public, pg_catalog;
SELECT set_config('app.tenant', '42', false);
DO $$BEGIN PERFORM set_config('work_mem', '7MB', false); END$$;
BEGIN;
SET LOCAL statement_timeout = '5s';
SELECT pg_temp.st();
COMMIT;
SELECT pg_temp.st();

-- transaction-scoped settings never show
BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;
SELECT pg_temp.st() !~ 'transaction_' AS no_transaction_settings;
COMMIT;

-- the role set by EXECUTE in a DO block
DO $$BEGIN EXECUTE 'SET ROLE regress_hd_other'; END$$;
SELECT hyperdrive.session_state() ~ '^@user=\d+:(\d+)/\1;' AS same_user;
RESET ROLE;

-- a session advisory lock, and its release
SELECT pg_advisory_lock(42) IS NOT NULL AS locked;
SELECT pg_temp.st() ~ '@advisory=1:1;' AS advisory;
SELECT pg_advisory_unlock(42);
SELECT pg_temp.st() ~ '@advisory=1:0;' AS no_advisory;
BEGIN;
SELECT pg_advisory_xact_lock(43) IS NOT NULL AS xact_locked;
COMMIT;
SELECT pg_temp.st() ~ '@advisory=1:0;' AS xact_lock_gone;

-- RESET ALL takes the settings away again
RESET ALL;
SELECT pg_temp.st();

\c - :superuser
DROP OWNED BY regress_hd_state;
DROP ROLE regress_hd_state;
DROP ROLE regress_hd_other;
