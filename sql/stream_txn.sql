-- Transactions: only committed work is reported, once, in commit order.
CREATE TABLE txn_a (id int PRIMARY KEY, v text);
CREATE TABLE txn_b (id int PRIMARY KEY, v text);

SELECT 'init' FROM pg_create_logical_replication_slot('txn_slot', 'hyperdrive');

-- a rolled-back transaction emits nothing
BEGIN;
INSERT INTO txn_a VALUES (1, 'never');
DELETE FROM txn_a;
ROLLBACK;
SELECT * FROM hd_changes('txn_slot');

-- a rolled-back savepoint drops its part of the record; the rest stays
BEGIN;
INSERT INTO txn_a VALUES (1, 'kept');
SAVEPOINT s1;
INSERT INTO txn_b VALUES (1, 'dropped');
UPDATE txn_a SET v = 'dropped' WHERE id = 1;
ROLLBACK TO SAVEPOINT s1;
INSERT INTO txn_a VALUES (2, 'kept');
COMMIT;
SELECT * FROM hd_changes('txn_slot');

-- a released savepoint is part of its transaction
BEGIN;
SAVEPOINT s1;
INSERT INTO txn_b VALUES (2, 'kept');
RELEASE SAVEPOINT s1;
COMMIT;
SELECT * FROM hd_changes('txn_slot');

-- nested savepoints: only the innermost is rolled back
BEGIN;
INSERT INTO txn_a VALUES (3, 'outer');
SAVEPOINT s1;
INSERT INTO txn_b VALUES (3, 'middle');
SAVEPOINT s2;
INSERT INTO txn_b VALUES (4, 'inner');
ROLLBACK TO SAVEPOINT s2;
RELEASE SAVEPOINT s1;
COMMIT;
SELECT * FROM hd_changes('txn_slot');

-- an error caught in PL/pgSQL rolls back its subtransaction
DO $$
BEGIN
    INSERT INTO txn_a VALUES (5, 'before');
    BEGIN
        INSERT INTO txn_b VALUES (5, 'in block');
        INSERT INTO txn_a VALUES (5, 'duplicate key');
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
END $$;
SELECT * FROM hd_changes('txn_slot');

-- a transaction whose every change is undone by a savepoint rollback is empty
BEGIN;
SAVEPOINT s1;
INSERT INTO txn_a VALUES (6, 'gone');
ROLLBACK TO SAVEPOINT s1;
COMMIT;
SELECT * FROM hd_changes('txn_slot');

-- (records come in commit order, not start order: specs/commit_order.spec)

-- a prepared transaction is reported when COMMIT PREPARED runs, and not at all
-- when rolled back
BEGIN;
INSERT INTO txn_a VALUES (8, 'prepared');
PREPARE TRANSACTION 'txn_test_prepared';
SELECT * FROM hd_changes('txn_slot');
COMMIT PREPARED 'txn_test_prepared';
SELECT * FROM hd_changes('txn_slot');
BEGIN;
INSERT INTO txn_a VALUES (9, 'prepared, rolled back');
PREPARE TRANSACTION 'txn_test_prepared2';
ROLLBACK PREPARED 'txn_test_prepared2';
SELECT * FROM hd_changes('txn_slot');

-- the record's xid is the transaction's own, with its epoch (xid8)
CREATE TEMP TABLE txn_xid AS SELECT pg_current_xact_id() AS xid LIMIT 0;
BEGIN;
INSERT INTO txn_xid SELECT pg_current_xact_id();
INSERT INTO txn_a VALUES (10, 'xid');
COMMIT;
SELECT split_part(split_part(data, E'\n', 1), ' ', 4) = (SELECT xid::text FROM txn_xid)
           AS xid_matches,
       split_part(split_part(data, E'\n', 1), ' ', 3) AS field
FROM pg_logical_slot_get_changes('txn_slot', NULL, NULL, 'include-lsn', '0',
                                 'include-timestamp', '0');

-- commit and end LSN: the end LSN is past the commit LSN, and the slot's
-- confirmed position reaches the end LSN once the record is consumed; the
-- row of pg_logical_slot_get_changes carries the end LSN too
INSERT INTO txn_a VALUES (11, 'lsn');
CREATE TEMP TABLE txn_lsn AS
SELECT split_part(split_part(data, E'\n', 1), ' ', 4)::pg_lsn AS commit_lsn,
       split_part(split_part(data, E'\n', 1), ' ', 6)::pg_lsn AS end_lsn,
       lsn AS row_lsn
FROM pg_logical_slot_get_changes('txn_slot', NULL, NULL, 'include-xids', '0',
                                 'include-timestamp', '0');
SELECT end_lsn > commit_lsn AS ordered, row_lsn = end_lsn AS row_at_end,
       (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'txn_slot') >= end_lsn
           AS confirmed
FROM txn_lsn;

-- the commit time is the transaction's
BEGIN;
INSERT INTO txn_a VALUES (12, 'time');
CREATE TEMP TABLE txn_time AS SELECT now() AS started;
COMMIT;
SELECT substring(split_part(data, E'\n', 1) from 'commit_time (.*)$')::timestamptz
           BETWEEN (SELECT started FROM txn_time) AND now() AS time_ok
FROM pg_logical_slot_get_changes('txn_slot', NULL, NULL, 'include-xids', '0',
                                 'include-lsn', '0', 'include-oids', '0')
WHERE data LIKE '%txn_a%';

SELECT pg_drop_replication_slot('txn_slot');
