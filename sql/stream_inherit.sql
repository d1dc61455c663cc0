-- Classic inheritance: a change is decoded against the child that stores the
-- row; the record names every ancestor, nearest first (breadth first).
-- inh_grand
--   inh_parent
--     inh_child
--     inh_multi (also a child of inh_other)
-- inh_other
-- inh_loose, with its own child inh_loose_kid (attached later with INHERIT)
-- Primary keys are not inherited: each table declares its own.
CREATE TABLE inh_grand (id int PRIMARY KEY, v int);
CREATE TABLE inh_parent (PRIMARY KEY (id)) INHERITS (inh_grand);
CREATE TABLE inh_child (c int, PRIMARY KEY (id)) INHERITS (inh_parent);
CREATE TABLE inh_other (id int PRIMARY KEY, v int);
CREATE TABLE inh_multi (PRIMARY KEY (id)) INHERITS (inh_parent, inh_other);
CREATE TABLE inh_loose (id int PRIMARY KEY, v int);
CREATE TABLE inh_loose_kid (PRIMARY KEY (id)) INHERITS (inh_loose);
-- a child without a key of its own
CREATE TABLE inh_nokey () INHERITS (inh_grand);

SELECT 'init' FROM pg_create_logical_replication_slot('inherit_slot', 'hyperdrive');

-- a row of the root itself: no ancestors
INSERT INTO inh_grand VALUES (1, 0);
-- a grandchild names its parent, then its grandparent
INSERT INTO inh_child VALUES (2, 0, 0);
-- multiple inheritance: both parents (in declaration order), then the grandparent
INSERT INTO inh_multi VALUES (3, 0);
-- a child without a key: all rows, still with its ancestor
INSERT INTO inh_nokey VALUES (4, 0);
SELECT * FROM hd_changes('inherit_slot');

-- an UPDATE through the root changes rows in several tables of the tree: one
-- entry per table that stores a changed row, each with its ancestors
UPDATE inh_grand SET v = v + 1 WHERE id IN (1, 2, 3);
-- a DELETE through a parent is reported against the child
DELETE FROM inh_parent WHERE id = 2;
-- an UPDATE through the second parent of a multiply-inherited child
UPDATE inh_other SET v = v + 1 WHERE id = 3;
SELECT * FROM hd_changes('inherit_slot');

-- ALTER TABLE ... INHERIT: the child (with its own child) and the new parent's
-- family, as ddl
INSERT INTO inh_loose_kid VALUES (5, 0);
ALTER TABLE inh_loose INHERIT inh_other;
SELECT * FROM hd_changes('inherit_slot');
-- from now on the grandchild names its new ancestors
UPDATE inh_loose_kid SET v = v + 1 WHERE id = 5;
SELECT * FROM hd_changes('inherit_slot');

-- ALTER TABLE ... NO INHERIT names the old parent: it no longer returns the
-- child's rows
ALTER TABLE inh_loose NO INHERIT inh_other;
SELECT * FROM hd_changes('inherit_slot');
UPDATE inh_loose_kid SET v = v + 1 WHERE id = 5;
SELECT * FROM hd_changes('inherit_slot');

-- NO INHERIT of one of two parents: the old parent is named, and afterwards
-- the child names only its remaining ancestors
ALTER TABLE inh_multi NO INHERIT inh_other;
SELECT * FROM hd_changes('inherit_slot');
UPDATE inh_multi SET v = v + 1 WHERE id = 3;
SELECT * FROM hd_changes('inherit_slot');
ALTER TABLE inh_multi INHERIT inh_other;
SELECT * FROM hd_changes('inherit_slot');

-- INHERIT and a row change in one transaction
BEGIN;
ALTER TABLE inh_loose INHERIT inh_grand;
INSERT INTO inh_loose VALUES (6, 0);
COMMIT;
SELECT * FROM hd_changes('inherit_slot');

-- DROP TABLE of a child names its parent
DROP TABLE inh_nokey;
SELECT * FROM hd_changes('inherit_slot');

-- DROP TABLE parent CASCADE drops its children too: every dropped table, and
-- every ancestor that survives (inh_grand, and inh_other, the other parent of
-- inh_multi) is named
DROP TABLE inh_parent CASCADE;
SELECT * FROM hd_changes('inherit_slot');
-- the surviving tables are unaffected
INSERT INTO inh_other VALUES (7, 0);
SELECT * FROM hd_changes('inherit_slot');

SELECT pg_drop_replication_slot('inherit_slot');
DROP TABLE inh_grand, inh_other, inh_loose CASCADE;
