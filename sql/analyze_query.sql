-- hyperdrive.analyze_query(): whether the agent may cache a query's result,
-- and the relations whose changes invalidate it (docs/cache-analysis.md).
-- Everything created here is dropped at the end, before any stream test
-- creates its slot.

-- aq(query, param_types): the analysis, with relation_names for relations
-- (OIDs vary between runs). It also checks that relations are sorted by OID
-- and that relation_names names them, in the same order.
CREATE FUNCTION aq(query text, param_types regtype[] DEFAULT '{}',
                   OUT cacheable boolean, OUT reason text, OUT relations text[])
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO STRICT r FROM hyperdrive.analyze_query(query, param_types);
    IF r.relations IS DISTINCT FROM ARRAY(SELECT unnest(r.relations) ORDER BY 1)::oid[]
       OR r.relation_names IS DISTINCT FROM ARRAY(
           SELECT format('%I.%I', n.nspname, c.relname)
           FROM unnest(r.relations) WITH ORDINALITY AS u(relid, i)
           JOIN pg_class c ON c.oid = u.relid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           ORDER BY u.i) THEN
        RAISE EXCEPTION 'relations % do not match relation_names %',
            r.relations, r.relation_names;
    END IF;
    cacheable := r.cacheable;
    reason := r.reason;
    relations := r.relation_names;
END
$$;

CREATE TABLE aq_items (id int PRIMARY KEY, name text, price numeric, added timestamptz);
CREATE TABLE aq_orders (id int PRIMARY KEY, item_id int, qty int);
CREATE MATERIALIZED VIEW aq_mv AS SELECT id FROM aq_items;
CREATE TYPE aq_mood AS ENUM ('ok', 'meh');
CREATE SEQUENCE aq_seq;
CREATE FUNCTION aq_imm(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
-- PL/pgSQL: the planner would inline an SQL function into the domain's
-- constraint (and so, rightly, not call it at all)
CREATE FUNCTION aq_vol(int) RETURNS int LANGUAGE plpgsql VOLATILE AS 'BEGIN RETURN $1; END';
CREATE FUNCTION aq_vol_eq(int, int) RETURNS boolean LANGUAGE sql VOLATILE AS 'SELECT $1 = $2';
CREATE OPERATOR === (FUNCTION = aq_vol_eq, LEFTARG = int, RIGHTARG = int);
CREATE DOMAIN aq_dom AS int CHECK (VALUE > aq_vol(0));

-- the function itself: STRICT, STABLE, PARALLEL UNSAFE, invoker's rights and
-- settings, callable by anyone
SELECT provolatile, proparallel, proisstrict, prosecdef, proconfig,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p WHERE p.oid = 'hyperdrive.analyze_query(text, regtype[])'::regprocedure;
SELECT count(*) FROM hyperdrive.analyze_query(NULL);

-- ---------------------------------------------------------------------------
-- Statements

-- a plain SELECT of a table
SELECT * FROM aq('SELECT id, name FROM aq_items WHERE id = 1 ORDER BY name');
-- no relation at all
SELECT * FROM aq('SELECT 1 + 1');
SELECT * FROM aq('VALUES (1, ''a'')');
-- one statement, however many semicolons
SELECT * FROM aq('SELECT 1;');
SELECT * FROM aq('SELECT 1; SELECT 2');
SELECT * FROM aq('');
SELECT * FROM aq('-- nothing');
-- other statements
SELECT * FROM aq('INSERT INTO aq_orders VALUES (1, 1, 1)');
SELECT * FROM aq('WITH c AS (SELECT 1 AS id) INSERT INTO aq_orders SELECT id, 1, 1 FROM c RETURNING id');
SELECT * FROM aq('EXPLAIN SELECT * FROM aq_items');
SELECT * FROM aq('SELECT * INTO aq_copy FROM aq_items');
SELECT * FROM aq('WITH n AS (INSERT INTO aq_orders VALUES (1, 1, 1) RETURNING id) SELECT * FROM n');
SELECT * FROM aq('WITH n AS (DELETE FROM aq_orders RETURNING id) SELECT * FROM aq_items');
-- locking clauses, at any level
SELECT * FROM aq('SELECT * FROM aq_items FOR UPDATE');
SELECT * FROM aq('SELECT * FROM aq_orders WHERE item_id IN (SELECT id FROM aq_items FOR SHARE)');
-- errors are reported, not raised
SELECT * FROM aq('SELECT * FORM aq_items');
SELECT * FROM aq('SELECT ''unterminated');
SELECT * FROM aq('SELECT * FROM aq_nope');
SELECT * FROM aq('SELECT nope FROM aq_items');
-- ... and leave neither an aborted transaction nor locks behind
BEGIN;
SELECT * FROM aq('SELECT * FROM aq_items WHERE nope');
SELECT * FROM aq('SELECT * FROM aq_orders');
SELECT count(*) AS locks FROM pg_locks
WHERE pid = pg_backend_pid() AND relation IN ('aq_items'::regclass, 'aq_orders'::regclass);
COMMIT;

-- ---------------------------------------------------------------------------
-- Parameters

SELECT * FROM aq('SELECT name FROM aq_items WHERE id = $1 AND price < $2', '{int4,numeric}');
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = ANY ($1)', '{int4[]}');
-- types 0 or unknown are inferred, as for a Parse message
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = $1', '{unknown}');
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = $1 AND name = $2', '{0,text}');
-- a parameter left without a type
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = $2', '{unknown}');
SELECT * FROM aq('SELECT $1 IS NULL', '{unknown}');
-- all types given: a $n beyond them is an error
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = $1');
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = $2', '{int4}');
-- a parameter whose input function is not immutable (read at Bind)
SELECT * FROM aq('SELECT name FROM aq_items WHERE $1 = 0', '{regclass}');
-- date/time input depends on settings only (and the words below)
SELECT * FROM aq('SELECT name FROM aq_items WHERE added > $1', '{timestamptz}');

-- ---------------------------------------------------------------------------
-- Functions, operators, casts

SELECT * FROM aq('SELECT lower(name), abs(price), aq_imm(id) FROM aq_items');
SELECT * FROM aq('SELECT now()');
SELECT * FROM aq('SELECT random()');
SELECT * FROM aq('SELECT aq_vol(id) FROM aq_items');
SELECT * FROM aq('SELECT aq_imm(aq_vol(id)) FROM aq_items');
-- an operator backed by a volatile function
SELECT * FROM aq('SELECT id FROM aq_items WHERE id === 1');
-- timestamptz output depends on TimeZone: the text cast is STABLE
SELECT * FROM aq('SELECT added::text FROM aq_items');
SELECT * FROM aq('SELECT added::date FROM aq_items');
SELECT * FROM aq('SELECT id FROM aq_items WHERE added > ''2024-01-01 00:00+00''');
SELECT * FROM aq('SELECT DATE ''2024-01-01'' + 1');
-- SQL value functions
SELECT * FROM aq('SELECT CURRENT_DATE');
SELECT * FROM aq('SELECT id FROM aq_items WHERE name = CURRENT_USER');
-- literals converted at analysis: the clock words, catalog lookups
SELECT * FROM aq('SELECT id FROM aq_items WHERE added > ''now''');
SELECT * FROM aq('SELECT DATE ''Today'' + 1');
SELECT * FROM aq('SELECT id FROM aq_items WHERE added = ANY (''{epoch,tomorrow}'')');
SELECT * FROM aq('SELECT ''aq_items''::regclass');
-- an enum label's OID changes only with DDL on the type: fine
SELECT * FROM aq('SELECT ''ok''::aq_mood');
-- a domain cast runs the domain's CHECK constraints
SELECT * FROM aq('SELECT 1::aq_dom');
-- xml depends on xmloption and xmlbinary
SELECT * FROM aq('SELECT xmlelement(name item, name) FROM aq_items');
-- aggregates and window functions
SELECT * FROM aq('SELECT count(*), sum(price), string_agg(name, '','' ORDER BY name) FROM aq_items');
SELECT * FROM aq('SELECT id, row_number() OVER (ORDER BY id), sum(price) OVER w FROM aq_items WINDOW w AS (ORDER BY id ROWS 2 PRECEDING)');
-- a RANGE offset on timestamptz compares with a STABLE in_range function
SELECT * FROM aq('SELECT count(*) OVER (ORDER BY added RANGE BETWEEN ''1 day'' PRECEDING AND CURRENT ROW) FROM aq_items');
-- sequences
SELECT * FROM aq('SELECT nextval(''aq_seq'')');

-- ---------------------------------------------------------------------------
-- Query shapes: every part is checked, every relation listed

SELECT * FROM aq('SELECT id FROM aq_items UNION SELECT item_id FROM aq_orders');
SELECT * FROM aq('SELECT id FROM aq_items UNION ALL SELECT aq_vol(item_id) FROM aq_orders');
SELECT * FROM aq('WITH c AS (SELECT id FROM aq_items) SELECT o.* FROM c JOIN aq_orders o ON o.item_id = c.id');
SELECT * FROM aq('WITH c AS (SELECT id FROM aq_items WHERE added < now()) SELECT * FROM c');
SELECT * FROM aq('WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r');
SELECT * FROM aq('SELECT * FROM aq_orders WHERE item_id IN (SELECT id FROM aq_items WHERE name = lower($1))', '{text}');
SELECT * FROM aq('SELECT * FROM aq_orders WHERE EXISTS (SELECT 1 FROM pg_class WHERE oid = item_id)');
SELECT * FROM aq('SELECT i.id, (SELECT max(qty) FROM aq_orders o WHERE o.item_id = i.id) FROM aq_items i');
SELECT * FROM aq('SELECT * FROM aq_items i, LATERAL (SELECT random() AS r) s');
SELECT * FROM aq('SELECT * FROM aq_items i LEFT JOIN aq_orders o ON o.item_id = i.id');
SELECT * FROM aq('SELECT * FROM generate_series(1, 3) g, aq_mv');

-- ---------------------------------------------------------------------------
-- Relations

-- views: the view and what it reads (DDL on either changes the result)
CREATE VIEW aq_items_v AS SELECT id, name FROM aq_items WHERE price > 0;
CREATE VIEW aq_items_vv AS SELECT v.id, o.qty FROM aq_items_v v JOIN aq_orders o ON o.item_id = v.id;
CREATE VIEW aq_recent_v AS SELECT id FROM aq_items WHERE added > now();
CREATE VIEW aq_catalog_v AS SELECT relname FROM pg_class;
SELECT * FROM aq('SELECT * FROM aq_items_v');
SELECT * FROM aq('SELECT * FROM aq_items_vv');
SELECT * FROM aq('SELECT * FROM aq_recent_v');
SELECT * FROM aq('SELECT count(*) FROM aq_catalog_v');
-- a materialized view is a table the stream reports (REFRESH is DDL)
SELECT * FROM aq('SELECT * FROM aq_mv');

-- partitions: the parent as referenced (the stream names a changed leaf's
-- ancestors), or the partition when read directly
CREATE TABLE aq_parted (id int, region text) PARTITION BY LIST (region);
CREATE TABLE aq_parted_eu PARTITION OF aq_parted FOR VALUES IN ('eu');
SELECT * FROM aq('SELECT * FROM aq_parted WHERE id = 1');
SELECT * FROM aq('SELECT * FROM aq_parted_eu');
-- ... but only if the stream sees every partition
CREATE FOREIGN DATA WRAPPER aq_fdw;
CREATE SERVER aq_srv FOREIGN DATA WRAPPER aq_fdw;
CREATE FOREIGN TABLE aq_parted_us PARTITION OF aq_parted FOR VALUES IN ('us') SERVER aq_srv;
SELECT * FROM aq('SELECT * FROM aq_parted WHERE id = 1');
SELECT * FROM aq('SELECT * FROM aq_parted_eu');
-- inheritance: the same, and ONLY reads the parent alone
CREATE TABLE aq_parent (id int);
CREATE UNLOGGED TABLE aq_child () INHERITS (aq_parent);
SELECT * FROM aq('SELECT * FROM aq_parent');
SELECT * FROM aq('SELECT * FROM ONLY aq_parent');

-- what the stream never reports
CREATE TEMP TABLE aq_tmp (id int);
SELECT cacheable, reason FROM aq('SELECT * FROM aq_tmp');
CREATE UNLOGGED TABLE aq_unlogged (id int);
SELECT * FROM aq('SELECT * FROM aq_unlogged');
CREATE FOREIGN TABLE aq_foreign (id int) SERVER aq_srv;
SELECT * FROM aq('SELECT * FROM aq_foreign');
SELECT * FROM aq('SELECT * FROM aq_seq');
SELECT * FROM aq('SELECT last_value FROM aq_seq');

-- catalogs, directly or through views
SELECT * FROM aq('SELECT * FROM pg_class');
SELECT * FROM aq('SELECT * FROM pg_catalog.pg_settings');
SELECT * FROM aq('SELECT table_name FROM information_schema.tables');

-- row-level security, directly or through a view, whoever the caller is
CREATE TABLE aq_rls (id int, owner name);
ALTER TABLE aq_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY aq_rls_own ON aq_rls USING (owner = current_user);
CREATE VIEW aq_rls_v AS SELECT id FROM aq_rls;
SELECT * FROM aq('SELECT * FROM aq_rls');
SELECT * FROM aq('SELECT * FROM aq_rls_v');
SELECT * FROM aq('SELECT * FROM aq_items WHERE id IN (SELECT id FROM aq_rls)');

-- system columns and samples change without row changes
SELECT * FROM aq('SELECT xmin, id FROM aq_items');
SELECT * FROM aq('SELECT id FROM aq_items WHERE ctid = ''(0,1)''');
SELECT * FROM aq('SELECT tableoid, id FROM aq_items');
SELECT * FROM aq('SELECT * FROM aq_items TABLESAMPLE SYSTEM (10) REPEATABLE (1)');

-- ---------------------------------------------------------------------------
-- The caller's search_path and role

CREATE SCHEMA aq_s;
CREATE TABLE aq_s.aq_items (id int PRIMARY KEY, name text);
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = 1');
SET search_path = aq_s, public;
SELECT * FROM aq('SELECT name FROM aq_items WHERE id = 1');
SELECT * FROM aq('SELECT price FROM aq_items');
RESET search_path;

CREATE ROLE regress_aq_reader;
GRANT USAGE ON SCHEMA hyperdrive TO regress_aq_reader;
CREATE VIEW aq_invoker_v WITH (security_invoker) AS SELECT id FROM aq_items;
GRANT SELECT ON aq_items_v, aq_invoker_v TO regress_aq_reader;
GRANT SELECT (id, item_id) ON aq_orders TO regress_aq_reader;
REVOKE EXECUTE ON FUNCTION aq_imm(int) FROM PUBLIC;
SELECT * FROM aq('SELECT aq_imm(id) FROM aq_items');
SET ROLE regress_aq_reader;
-- the same texts as above, and the origin would refuse them
SELECT * FROM aq('SELECT id, name FROM aq_items WHERE id = 1 ORDER BY name');
SELECT * FROM aq('SELECT aq_imm(1)');
-- a view is read with its owner's privileges, unless security_invoker
SELECT * FROM aq('SELECT * FROM aq_items_v');
SELECT * FROM aq('SELECT * FROM aq_invoker_v');
SELECT * FROM aq('SELECT * FROM aq_items_vv');
-- column privileges
SELECT * FROM aq('SELECT id FROM aq_orders WHERE item_id = 1');
SELECT * FROM aq('SELECT count(*) FROM aq_orders');
SELECT * FROM aq('SELECT qty FROM aq_orders');
SELECT * FROM aq('SELECT o FROM aq_orders o');
RESET ROLE;

-- ---------------------------------------------------------------------------
DROP VIEW aq_items_vv, aq_items_v, aq_recent_v, aq_catalog_v, aq_rls_v, aq_invoker_v;
DROP MATERIALIZED VIEW aq_mv;
DROP TABLE aq_items, aq_orders, aq_parted, aq_parent, aq_child, aq_tmp, aq_unlogged, aq_rls;
DROP FOREIGN TABLE aq_foreign;
DROP SERVER aq_srv;
DROP FOREIGN DATA WRAPPER aq_fdw;
DROP SEQUENCE aq_seq;
DROP SCHEMA aq_s CASCADE;
DROP DOMAIN aq_dom;
DROP OPERATOR === (int, int);
DROP FUNCTION aq_imm(int), aq_vol(int), aq_vol_eq(int, int);
DROP TYPE aq_mood;
DROP FUNCTION aq(text, regtype[]);
REVOKE ALL ON SCHEMA hyperdrive FROM regress_aq_reader;
DROP ROLE regress_aq_reader;
