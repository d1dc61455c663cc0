-- A slot belongs to one database and sees only that database's transactions.
\set regress_db :DBNAME
CREATE TABLE db_t (id int PRIMARY KEY);
SELECT 'init' FROM pg_create_logical_replication_slot('db_here_slot', 'hyperdrive');

CREATE DATABASE regress_hd_other;
\c regress_hd_other
CREATE EXTENSION hyperdrive;
CREATE TABLE db_t (id int PRIMARY KEY);
SELECT 'init' FROM pg_create_logical_replication_slot('db_other_slot', 'hyperdrive');
INSERT INTO db_t VALUES (2);
SELECT data FROM pg_logical_slot_get_changes('db_other_slot', NULL, NULL, 'include-xids', '0',
    'include-lsn', '0', 'include-timestamp', '0', 'include-oids', '0');
-- a slot of another database cannot be read here
SELECT data FROM pg_logical_slot_get_changes('db_here_slot', NULL, NULL);

\c :regress_db
INSERT INTO db_t VALUES (1);
-- only this database's insert
SELECT * FROM hd_changes('db_here_slot');
SELECT pg_drop_replication_slot('db_here_slot');

\c regress_hd_other
-- nothing from the other database's insert
SELECT data FROM pg_logical_slot_get_changes('db_other_slot', NULL, NULL);
SELECT pg_drop_replication_slot('db_other_slot');
\c :regress_db
DROP DATABASE regress_hd_other;
