-- Partitioned tables: a change is decoded against the leaf partition; the
-- record names every ancestor of the leaf, nearest first, up to the root.
-- part_root (list on region)
--   part_eu (itself partitioned, list on region)
--     part_fr, part_de
--   part_us
--   part_other (default partition)
-- (no column needs a TOAST table: a dropped TOAST table's name holds an OID)
CREATE TABLE part_root (id int, region char(2), v int, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE part_eu PARTITION OF part_root FOR VALUES IN ('fr', 'de', 'it', 'es')
    PARTITION BY LIST (region);
CREATE TABLE part_fr PARTITION OF part_eu FOR VALUES IN ('fr');
CREATE TABLE part_de PARTITION OF part_eu FOR VALUES IN ('de');
CREATE TABLE part_us PARTITION OF part_root FOR VALUES IN ('us');
CREATE TABLE part_other PARTITION OF part_root DEFAULT;
-- a partition in another schema, with a name that needs quoting
CREATE SCHEMA part_sch;
CREATE TABLE part_sch."Part West" PARTITION OF part_root FOR VALUES IN ('uw');
-- tables to be attached later: a plain one, and a partitioned one
CREATE TABLE part_it (id int, region char(2), v int, PRIMARY KEY (id, region));
CREATE TABLE part_asia (id int, region char(2), v int, PRIMARY KEY (id, region))
    PARTITION BY LIST (region);
CREATE TABLE part_jp PARTITION OF part_asia FOR VALUES IN ('jp');

SELECT 'init' FROM pg_create_logical_replication_slot('partition_slot', 'hyperdrive');

-- INSERT through the root is routed to a leaf two levels down
INSERT INTO part_root VALUES (1, 'fr', 0);
-- INSERT straight into a leaf names the same ancestors
INSERT INTO part_fr VALUES (2, 'fr', 0);
-- INSERT through the mid-level parent
INSERT INTO part_eu VALUES (3, 'de', 0);
-- one statement routed to several leaves, including the default partition:
-- one record, one entry per leaf, in first-touched order
INSERT INTO part_root VALUES (4, 'us', 0), (5, 'jp', 0), (6, 'de', 0), (12, 'uw', 0);
SELECT * FROM hd_changes('partition_slot');

-- UPDATE within a leaf, through the root
UPDATE part_root SET v = v + 1 WHERE id = 4;
-- UPDATE moving a row across partitions: a delete on the old leaf and an
-- insert on the new one, each with its own ancestors
UPDATE part_root SET region = 'de' WHERE id = 1;
-- moving a row from a leaf of the sub-partitioned table to the default one
UPDATE part_root SET region = 'xx' WHERE id = 2;
-- DELETE through the root, from the default partition
DELETE FROM part_root WHERE id = 5;
SELECT * FROM hd_changes('partition_slot');

-- CREATE TABLE ... PARTITION OF: the new partition and its ancestors, as ddl
CREATE TABLE part_es PARTITION OF part_eu FOR VALUES IN ('es');
INSERT INTO part_root VALUES (7, 'es', 0);
SELECT * FROM hd_changes('partition_slot');

-- ATTACH PARTITION names the parent, its ancestors, and the new partition
INSERT INTO part_it VALUES (8, 'it', 0);
ALTER TABLE part_eu ATTACH PARTITION part_it FOR VALUES IN ('it');
SELECT * FROM hd_changes('partition_slot');
-- from now on a change to the attached table names its new ancestors
INSERT INTO part_it VALUES (9, 'it', 0);
SELECT * FROM hd_changes('partition_slot');

-- ATTACH of a partitioned table, to a parent that has a default partition:
-- the whole tree of the root, with the new sub-tree
ALTER TABLE part_root ATTACH PARTITION part_asia FOR VALUES IN ('jp', 'kr');
SELECT * FROM hd_changes('partition_slot');
-- a leaf of the attached sub-tree now has two ancestors
INSERT INTO part_root VALUES (11, 'jp', 0);
SELECT * FROM hd_changes('partition_slot');

-- DETACH PARTITION names the partition and its old parent (and the old
-- parent's ancestors): the old parent no longer returns its rows. A change
-- made before the DETACH, decoded after it, still names the ancestors the
-- partition had then.
UPDATE part_it SET v = v + 1 WHERE id = 9;
ALTER TABLE part_eu DETACH PARTITION part_it;
SELECT * FROM hd_changes('partition_slot');
-- the detached table has no ancestors any more
UPDATE part_it SET v = v + 1 WHERE id = 9;
SELECT * FROM hd_changes('partition_slot');

-- ATTACH and DETACH in one transaction, with row changes around them
BEGIN;
ALTER TABLE part_eu ATTACH PARTITION part_it FOR VALUES IN ('it');
INSERT INTO part_root VALUES (10, 'it', 0);
ALTER TABLE part_eu DETACH PARTITION part_it;
COMMIT;
SELECT * FROM hd_changes('partition_slot');

-- DETACH PARTITION ... CONCURRENTLY runs in two transactions: the old parent
-- is named all the same
ALTER TABLE part_eu ATTACH PARTITION part_it FOR VALUES IN ('it');
SELECT * FROM hd_changes('partition_slot');
ALTER TABLE part_eu DETACH PARTITION part_it CONCURRENTLY;
SELECT * FROM hd_changes('partition_slot');

-- DROP TABLE of a partition names its old parent and the parent's ancestors
DROP TABLE part_de;
SELECT * FROM hd_changes('partition_slot');

-- DROP TABLE of a partitioned table that is itself a partition: it, its
-- partitions and its old parent. The change made before the DROP still names
-- the ancestors its table had then.
INSERT INTO part_fr VALUES (13, 'fr', 0);
DROP TABLE part_eu;
SELECT * FROM hd_changes('partition_slot');

-- DROP TABLE of a partition whose name needs quoting
DROP TABLE part_sch."Part West";
SELECT * FROM hd_changes('partition_slot');

SELECT pg_drop_replication_slot('partition_slot');
DROP TABLE part_root, part_it;
DROP SCHEMA part_sch;
