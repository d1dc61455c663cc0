-- TRUNCATE: every truncated table is named, with all rows (truncate).
CREATE TABLE trunc_a (id int PRIMARY KEY);
CREATE TABLE trunc_b (id int PRIMARY KEY);
-- a chain of foreign keys: trunc_fk3 -> trunc_fk2 -> trunc_fk1
CREATE TABLE trunc_fk1 (id int PRIMARY KEY);
CREATE TABLE trunc_fk2 (id int PRIMARY KEY, fk1 int REFERENCES trunc_fk1);
CREATE TABLE trunc_fk3 (id int PRIMARY KEY, fk2 int REFERENCES trunc_fk2);
-- a partitioned table referencing trunc_fk1 (each partition holds the key)
CREATE TABLE trunc_fkp (id int, fk1 int REFERENCES trunc_fk1, PRIMARY KEY (id))
    PARTITION BY RANGE (id);
CREATE TABLE trunc_fkp1 PARTITION OF trunc_fkp FOR VALUES FROM (0) TO (100);
-- a partitioned table with a sub-partitioned partition
CREATE TABLE trunc_p (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE trunc_p1 PARTITION OF trunc_p FOR VALUES FROM (0) TO (100);
CREATE TABLE trunc_p2 PARTITION OF trunc_p FOR VALUES FROM (100) TO (200)
    PARTITION BY RANGE (id);
CREATE TABLE trunc_p2a PARTITION OF trunc_p2 FOR VALUES FROM (100) TO (150);
-- inheritance
CREATE TABLE trunc_inh (id int PRIMARY KEY);
CREATE TABLE trunc_inh_kid (PRIMARY KEY (id)) INHERITS (trunc_inh);
-- an identity column
CREATE TABLE trunc_ident (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int);
INSERT INTO trunc_ident (v) VALUES (1), (2);

SELECT 'init' FROM pg_create_logical_replication_slot('truncate_slot', 'hyperdrive');

-- plain TRUNCATE
TRUNCATE trunc_a;
-- several tables in one statement: one record, in the order given
TRUNCATE trunc_b, trunc_a;
SELECT * FROM hd_changes('truncate_slot');

-- row changes and a TRUNCATE of the same table in one transaction
BEGIN;
INSERT INTO trunc_a VALUES (1);
TRUNCATE trunc_a;
INSERT INTO trunc_a VALUES (2);
INSERT INTO trunc_b VALUES (3);
COMMIT;
SELECT * FROM hd_changes('truncate_slot');

-- TRUNCATE ... CASCADE names every table it truncated through foreign keys,
-- including each partition of a referencing partitioned table
TRUNCATE trunc_fk1 CASCADE;
SELECT * FROM hd_changes('truncate_slot');

-- TRUNCATE of a partitioned table: the table and each partition (at every
-- level), each partition with its ancestors
TRUNCATE trunc_p;
SELECT * FROM hd_changes('truncate_slot');
-- TRUNCATE of one partition names its ancestors
TRUNCATE trunc_p2a;
TRUNCATE trunc_p1;
SELECT * FROM hd_changes('truncate_slot');

-- TRUNCATE of an inheritance parent truncates its children too; ONLY does not
TRUNCATE trunc_inh;
TRUNCATE ONLY trunc_inh;
TRUNCATE trunc_inh_kid;
SELECT * FROM hd_changes('truncate_slot');

-- a rolled-back TRUNCATE produces no record
BEGIN;
TRUNCATE trunc_a, trunc_b;
ROLLBACK;
SELECT * FROM hd_changes('truncate_slot');

-- a TRUNCATE in a rolled-back savepoint is not reported; the rest of the
-- transaction is
BEGIN;
INSERT INTO trunc_a VALUES (10);
SAVEPOINT s1;
TRUNCATE trunc_b;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO trunc_b VALUES (11);
COMMIT;
SELECT * FROM hd_changes('truncate_slot');
-- a TRUNCATE in a released savepoint is reported
BEGIN;
SAVEPOINT s1;
TRUNCATE trunc_b;
RELEASE SAVEPOINT s1;
COMMIT;
SELECT * FROM hd_changes('truncate_slot');

-- TRUNCATE ... RESTART IDENTITY: the sequence reset is not reported, the
-- truncate is; the next row gets key 1 again
TRUNCATE trunc_ident RESTART IDENTITY;
INSERT INTO trunc_ident (v) VALUES (3);
SELECT * FROM hd_changes('truncate_slot');

-- a temporary table's TRUNCATE never reaches the stream
CREATE TEMP TABLE trunc_temp (id int);
TRUNCATE trunc_temp;
SELECT * FROM hd_changes('truncate_slot');

SELECT pg_drop_replication_slot('truncate_slot');
