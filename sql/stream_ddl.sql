-- Schema changes: the event triggers' messages folded into the transaction's record.
CREATE ROLE regress_ddl_owner;
CREATE SCHEMA ddl_moved;
CREATE TABLE ddl_t (id int PRIMARY KEY, a int, b int);
CREATE TABLE ddl_parent (id int PRIMARY KEY, v int);
CREATE TABLE ddl_child1 () INHERITS (ddl_parent);
CREATE TABLE ddl_child2 () INHERITS (ddl_parent);
CREATE TABLE ddl_grandchild () INHERITS (ddl_child1);
CREATE TABLE ddl_rls (id int PRIMARY KEY, owner name);
CREATE TABLE ddl_base (id int PRIMARY KEY, v int);
CREATE TABLE ddl_other (id int PRIMARY KEY);
CREATE TABLE ddl_rule_t (id int PRIMARY KEY);
CREATE TABLE ddl_drop_t (id int PRIMARY KEY);
INSERT INTO ddl_base VALUES (1, 10), (2, 20);

SELECT 'init' FROM pg_create_logical_replication_slot('ddl_slot', 'hyperdrive');

-- ALTER TABLE: each form names the table, kind ddl, all rows
ALTER TABLE ddl_t ADD COLUMN c date;
ALTER TABLE ddl_t DROP COLUMN b;
SELECT * FROM hd_changes('ddl_slot');
-- a column type change rewrites the table: still one ddl entry, no row changes
ALTER TABLE ddl_t ALTER COLUMN a TYPE bigint;
SELECT * FROM hd_changes('ddl_slot');
-- RENAME and SET SCHEMA name the table under its new name
ALTER TABLE ddl_t RENAME TO ddl_t2;
ALTER TABLE ddl_t2 SET SCHEMA ddl_moved;
ALTER TABLE ddl_moved.ddl_t2 OWNER TO regress_ddl_owner;
SELECT * FROM hd_changes('ddl_slot');

-- ALTER TABLE on an inheritance parent names every descendant too
ALTER TABLE ddl_parent ADD COLUMN w int;
SELECT * FROM hd_changes('ddl_slot');
-- on a child: the child, its descendants and their ancestors
ALTER TABLE ddl_child1 ADD COLUMN x int;
SELECT * FROM hd_changes('ddl_slot');

-- row level security
ALTER TABLE ddl_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE ddl_rls DISABLE ROW LEVEL SECURITY;
SELECT * FROM hd_changes('ddl_slot');
-- policies name their table
CREATE POLICY ddl_pol ON ddl_rls USING (owner = current_user);
ALTER POLICY ddl_pol ON ddl_rls USING (true);
DROP POLICY ddl_pol ON ddl_rls;
SELECT * FROM hd_changes('ddl_slot');

-- views
CREATE VIEW ddl_v AS SELECT id FROM ddl_base;
-- (adding a column is also reported as an internal ALTER of the view)
CREATE OR REPLACE VIEW ddl_v AS SELECT id, v FROM ddl_base;
DROP VIEW ddl_v;
SELECT * FROM hd_changes('ddl_slot');

-- materialized views; the rows CREATE writes are decoded as inserts, and a
-- materialized view has no key, so its first reason is no-identity
CREATE MATERIALIZED VIEW ddl_mv AS SELECT id, v FROM ddl_base;
SELECT * FROM hd_changes('ddl_slot');
UPDATE ddl_base SET v = 11 WHERE id = 1;
REFRESH MATERIALIZED VIEW ddl_mv;
SELECT * FROM hd_changes('ddl_slot');
DROP MATERIALIZED VIEW ddl_mv;
SELECT * FROM hd_changes('ddl_slot');

-- functions are DDL objects only
CREATE FUNCTION ddl_f(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i + 1';
CREATE OR REPLACE FUNCTION ddl_f(i int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT i + 2';
ALTER FUNCTION ddl_f(int) VOLATILE;
DROP FUNCTION ddl_f(int);
SELECT * FROM hd_changes('ddl_slot');

-- GRANT and REVOKE do not say what they touched: invalidate all
GRANT SELECT ON ddl_base TO PUBLIC;
REVOKE SELECT ON ddl_base FROM PUBLIC;
SELECT * FROM hd_changes('ddl_slot');

-- role changes fire no event trigger: invalidate all from the invalidations
CREATE ROLE regress_ddl_r1;
CREATE ROLE regress_ddl_r2;
ALTER ROLE regress_ddl_r1 CONNECTION LIMIT 3;
GRANT regress_ddl_r1 TO regress_ddl_r2;
DROP ROLE regress_ddl_r2, regress_ddl_r1;
SELECT * FROM hd_changes('ddl_slot');

-- DDL and row changes in one transaction: one record with both
BEGIN;
INSERT INTO ddl_other VALUES (1);
ALTER TABLE ddl_base ADD COLUMN z int;
UPDATE ddl_base SET z = 1 WHERE id = 2;
INSERT INTO ddl_other VALUES (2);
COMMIT;
SELECT * FROM hd_changes('ddl_slot');

-- rolled-back DDL: no record
BEGIN;
ALTER TABLE ddl_base ADD COLUMN gone int;
CREATE VIEW ddl_gone_v AS SELECT 1 AS one;
GRANT SELECT ON ddl_base TO PUBLIC;
CREATE ROLE regress_ddl_gone;
ROLLBACK;
SELECT * FROM hd_changes('ddl_slot');

-- DDL in a rolled-back savepoint is absent; the rest of the transaction is not
BEGIN;
INSERT INTO ddl_other VALUES (3);
SAVEPOINT s1;
ALTER TABLE ddl_base ADD COLUMN gone int;
GRANT SELECT ON ddl_base TO PUBLIC;
ROLLBACK TO SAVEPOINT s1;
SAVEPOINT s2;
ALTER TABLE ddl_rls ADD COLUMN kept int;
RELEASE SAVEPOINT s2;
INSERT INTO ddl_other VALUES (4);
COMMIT;
SELECT * FROM hd_changes('ddl_slot');
-- a role change rolled back to a savepoint still says "invalidate all": role
-- changes are seen through the transaction's catalog invalidations, which
-- PostgreSQL keeps for aborted subtransactions too. Too much, never too little.
BEGIN;
INSERT INTO ddl_other VALUES (5);
SAVEPOINT s1;
CREATE ROLE regress_ddl_gone;
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT * FROM hd_changes('ddl_slot');

-- a table dropped with its schema: its parents cannot be known any more
DROP SCHEMA ddl_moved CASCADE;
SELECT * FROM hd_changes('ddl_slot');

-- temporary objects are never reported
CREATE TEMP TABLE ddl_tmp (id int PRIMARY KEY, a int);
ALTER TABLE ddl_tmp ADD COLUMN b int;
CREATE INDEX ddl_tmp_a ON ddl_tmp (a);
SELECT * FROM hd_changes('ddl_slot');
-- nor are policies, rules and triggers on a temporary table
CREATE POLICY ddl_tmp_pol ON ddl_tmp USING (true);
ALTER POLICY ddl_tmp_pol ON ddl_tmp USING (false);
DROP POLICY ddl_tmp_pol ON ddl_tmp;
CREATE RULE ddl_tmp_rule AS ON UPDATE TO ddl_tmp DO INSTEAD NOTHING;
DROP RULE ddl_tmp_rule ON ddl_tmp;
SELECT * FROM hd_changes('ddl_slot');
CREATE TRIGGER ddl_tmp_trg BEFORE UPDATE ON ddl_tmp
    FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger();
CREATE RULE ddl_tmp_rule AS ON UPDATE TO ddl_tmp DO INSTEAD NOTHING;
SELECT * FROM hd_changes('ddl_slot');
-- dropping the table drops them too
DROP TABLE ddl_tmp;
SELECT * FROM hd_changes('ddl_slot');

-- DROP TABLE names the table
DROP TABLE ddl_drop_t;
SELECT * FROM hd_changes('ddl_slot');

-- rules name their table
CREATE RULE ddl_rule AS ON DELETE TO ddl_rule_t DO INSTEAD NOTHING;
DROP RULE ddl_rule ON ddl_rule_t;
SELECT * FROM hd_changes('ddl_slot');

-- an index is a DDL object only: it changes no query's result
CREATE INDEX ddl_base_v ON ddl_base (v);
SELECT * FROM hd_changes('ddl_slot');

SELECT pg_drop_replication_slot('ddl_slot');
DROP TABLE ddl_parent, ddl_child1, ddl_child2, ddl_grandchild, ddl_rls, ddl_base,
    ddl_other, ddl_rule_t;
DROP ROLE regress_ddl_owner;
