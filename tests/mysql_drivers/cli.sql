-- The mariadb command-line client, batch mode (t/110_mysql_drivers.pl runs
-- it through the agent and directly on the origin and compares the two
-- outputs). It needs a second origin database, app2, the user may use.
SELECT DATABASE() AS db, CURRENT_USER() AS who, @@autocommit AS ac;
SET SESSION sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES';
SET @@session.time_zone = '+05:30';
SET NAMES utf8mb4 COLLATE utf8mb4_bin;
SELECT @@sql_mode, @@time_zone, @@collation_connection;
USE app2
SELECT DATABASE() AS db;
DROP TABLE IF EXISTS cli_t;
CREATE TABLE cli_t (id INT PRIMARY KEY, "name" VARCHAR(20), at DATETIME(6)) ENGINE=InnoDB;
START TRANSACTION;
INSERT INTO cli_t VALUES (1, 'one', '2024-01-01 00:00:00.5'), (2, 'two ☃', NULL);
SELECT COUNT(*) AS in_tx, @@in_transaction AS it FROM cli_t;
ROLLBACK;
BEGIN;
INSERT INTO cli_t VALUES (3, 'three 😀', CONVERT_TZ('2024-06-01 12:00:00', '+00:00', @@time_zone));
COMMIT;
SELECT * FROM cli_t ORDER BY id\G
-- the settings and the database carried over the transactions above
SELECT @@sql_mode, @@time_zone, DATABASE() AS db, @@in_transaction AS it;
-- a multi-statement: one COM_QUERY with three statements in it
DELIMITER //
INSERT INTO cli_t VALUES (4, 'four', NULL); SELECT COUNT(*) AS n FROM cli_t; SELECT "name" FROM cli_t WHERE id = 4 //
DROP PROCEDURE IF EXISTS cli_two //
CREATE PROCEDURE cli_two(k INT)
BEGIN
	SELECT k AS k1;
	SELECT "name", id * k AS p FROM cli_t ORDER BY id;
END //
DELIMITER ;
CALL cli_two(10);
-- errors go on (--force): a missing table, a duplicate key
SELECT * FROM no_such_table;
INSERT INTO cli_t VALUES (3, 'dup', NULL);
SELECT CAST('7x' AS SIGNED) AS warned;
SHOW WARNINGS;
SELECT id, "name" FROM cli_t ORDER BY id;
USE app
SELECT DATABASE() AS db;
