-- Keys come from the replica identity; without a usable one, "all rows".
CREATE TABLE ident_pk (id int PRIMARY KEY, v text);
CREATE TABLE ident_nokey (a int, b text);
CREATE TABLE ident_nothing (id int PRIMARY KEY, v text);
ALTER TABLE ident_nothing REPLICA IDENTITY NOTHING;
CREATE TABLE ident_full_pk (id int PRIMARY KEY, v text);
ALTER TABLE ident_full_pk REPLICA IDENTITY FULL;
CREATE TABLE ident_full_nokey (a int, b text);
ALTER TABLE ident_full_nokey REPLICA IDENTITY FULL;
CREATE TABLE ident_index (id int PRIMARY KEY, code text NOT NULL, v text);
CREATE UNIQUE INDEX ident_index_code ON ident_index (code);
ALTER TABLE ident_index REPLICA IDENTITY USING INDEX ident_index_code;
-- a key column stored out of line (TOAST)
CREATE TABLE ident_toast (id text PRIMARY KEY, v text);
ALTER TABLE ident_toast ALTER COLUMN id SET STORAGE EXTERNAL;
CREATE TABLE ident_types (d date, ts timestamptz, f float8, b bytea, PRIMARY KEY (d, ts, f, b));

SELECT 'init' FROM pg_create_logical_replication_slot('ident_slot', 'hyperdrive');

-- DEFAULT with a primary key: keys for every change kind
INSERT INTO ident_pk VALUES (1, 'a');
UPDATE ident_pk SET v = 'b' WHERE id = 1;
DELETE FROM ident_pk WHERE id = 1;
SELECT * FROM hd_changes('ident_slot');

-- no primary key: no key to give, all rows
INSERT INTO ident_nokey VALUES (1, 'a');
UPDATE ident_nokey SET b = 'b';
DELETE FROM ident_nokey;
SELECT * FROM hd_changes('ident_slot');

-- REPLICA IDENTITY NOTHING: a DELETE logs no old row, so no key is trusted
INSERT INTO ident_nothing VALUES (1, 'a');
DELETE FROM ident_nothing;
SELECT * FROM hd_changes('ident_slot');

-- FULL with a primary key: the primary key columns of the full old row
INSERT INTO ident_full_pk VALUES (1, 'a'), (2, 'b');
UPDATE ident_full_pk SET v = 'c' WHERE id = 1;
UPDATE ident_full_pk SET id = 3 WHERE id = 2;
DELETE FROM ident_full_pk WHERE id = 3;
SELECT * FROM hd_changes('ident_slot');

-- FULL without a key: all rows
INSERT INTO ident_full_nokey VALUES (1, 'a');
DELETE FROM ident_full_nokey;
SELECT * FROM hd_changes('ident_slot');

-- USING INDEX: the index's columns, not the primary key
INSERT INTO ident_index VALUES (1, 'x1', 'a');
UPDATE ident_index SET v = 'b' WHERE id = 1;
UPDATE ident_index SET code = 'x2' WHERE id = 1;
DELETE FROM ident_index WHERE id = 1;
SELECT * FROM hd_changes('ident_slot');

-- a key longer than 1024 bytes is not carried
INSERT INTO ident_toast VALUES (repeat('k', 2500), 'small');
SELECT * FROM hd_changes('ident_slot');
-- an UPDATE that leaves an out-of-line key untouched: the server logs that key
-- inline as the old key (it never makes us fetch it), and it is too long
UPDATE ident_toast SET v = 'changed';
SELECT * FROM hd_changes('ident_slot');
-- an inline key in the same table is listed
INSERT INTO ident_toast VALUES ('short', 'x');
SELECT * FROM hd_changes('ident_slot');

-- key values are each type's text output
INSERT INTO ident_types VALUES ('2024-02-29', '2024-02-29 12:00:00+00', 0.1, '\x00ff');
-- under fixed settings (ISO dates, UTC, hex bytea), whatever the reading session's
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
SET bytea_output = 'escape';
SELECT * FROM hd_changes('ident_slot');
-- the reading session's own settings are untouched
SHOW DateStyle;
SHOW TimeZone;
RESET TimeZone;
RESET DateStyle;
RESET bytea_output;

SELECT pg_drop_replication_slot('ident_slot');
