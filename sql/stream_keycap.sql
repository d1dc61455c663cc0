-- The key cap bounds each relation's key list; past it, "all rows".
CREATE TABLE cap_t (id int PRIMARY KEY, v int);
CREATE TABLE cap_other (id int PRIMARY KEY);
INSERT INTO cap_t SELECT g, 0 FROM generate_series(1, 10) g;

SELECT 'init' FROM pg_create_logical_replication_slot('cap_slot', 'hyperdrive');

-- exactly at the cap: keys listed
UPDATE cap_t SET v = 1 WHERE id <= 3;
SELECT * FROM hd_changes('cap_slot', 'key-cap', '3');
-- one over the cap: all rows
UPDATE cap_t SET v = 2 WHERE id <= 4;
SELECT * FROM hd_changes('cap_slot', 'key-cap', '3');
-- the cap counts distinct keys: the same row changed many times is one key
BEGIN;
UPDATE cap_t SET v = v + 1 WHERE id = 1;
UPDATE cap_t SET v = v + 1 WHERE id = 1;
UPDATE cap_t SET v = v + 1 WHERE id = 1;
UPDATE cap_t SET v = v + 1 WHERE id = 2;
COMMIT;
SELECT * FROM hd_changes('cap_slot', 'key-cap', '2');
-- the cap is per relation: another relation in the same transaction keeps its keys
BEGIN;
UPDATE cap_t SET v = 3;
INSERT INTO cap_other VALUES (1);
COMMIT;
SELECT * FROM hd_changes('cap_slot', 'key-cap', '3');
-- key-cap 0: never list keys
INSERT INTO cap_other VALUES (2);
SELECT * FROM hd_changes('cap_slot', 'key-cap', '0');

-- a large transaction (spilled to disk by the server while decoding) is one
-- record; its relation folds to all rows at the default cap of 100
SET logical_decoding_work_mem = '64kB';
BEGIN;
INSERT INTO cap_t SELECT g, 0 FROM generate_series(11, 100000) g;
UPDATE cap_t SET v = v + 1;
DELETE FROM cap_t WHERE id > 50000;
INSERT INTO cap_other VALUES (3);
COMMIT;
SELECT * FROM hd_changes('cap_slot');
-- 100 distinct keys fit the default cap; the 101st does not
UPDATE cap_t SET v = 5 WHERE id <= 100;
SELECT count(*) AS records, sum(array_length(regexp_split_to_array(line, '\) \('), 1)) AS keys
FROM hd_changes('cap_slot') AS line WHERE line LIKE 'relation%';
UPDATE cap_t SET v = 6 WHERE id <= 101;
SELECT * FROM hd_changes('cap_slot');
RESET logical_decoding_work_mem;

SELECT pg_drop_replication_slot('cap_slot');
