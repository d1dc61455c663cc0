/*
 * test_my_sql.c
 *    Unit tests of mywire/my_sql.c: what a MySQL statement's text does to
 *    the session (carried SETs, USE, diagnostics reads, pins), through
 *    comments, quotes and multi-statement texts. Prints TAP; run by
 *    t/036_my_sql_unit.pl.
 */
#include <stdio.h>
#include <string.h>

#include "mywire/my_sql.h"
#include "tap.h"

static HdMySqlClass c;

static HdMySqlKind
kind(const char *sql)
{
	hd_my_sql_classify(sql, strlen(sql), &c);
	return c.kind;
}

static void
is_kind(const char *sql, HdMySqlKind want, const char *name)
{
	char		label[256];

	snprintf(label, sizeof(label), "%s: %s", name, sql);
	ok(kind(sql) == want, label);
}

int
main(void)
{
	/* plain statements */
	is_kind("SELECT 1", HD_MY_SQL_PLAIN, "a SELECT");
	is_kind("  select * from t where a = 'x;y' -- SET @x\n", HD_MY_SQL_PLAIN, "quotes and a comment");
	is_kind("INSERT INTO t VALUES ('@x', \"@y\", `@z`)", HD_MY_SQL_PLAIN, "@ inside quotes and names");
	is_kind("SELECT @@version, @@session.sql_mode", HD_MY_SQL_PLAIN, "system variables read");
	is_kind("/* SET @x = 1 */ SELECT 2", HD_MY_SQL_PLAIN, "a comment hides nothing of use");
	is_kind("", HD_MY_SQL_PLAIN, "empty text");
	is_kind("SET GLOBAL max_connections = 10", HD_MY_SQL_PLAIN, "SET GLOBAL: the server's");
	is_kind("SET STATEMENT max_statement_time=1 FOR SELECT 1", HD_MY_SQL_PLAIN, "SET STATEMENT ... FOR");
	is_kind("BEGIN", HD_MY_SQL_PLAIN, "BEGIN");
	ok(c.txn_control, "BEGIN is transaction control");
	kind("start   transaction read only");
	ok(c.txn_control, "START TRANSACTION is transaction control");
	kind("SELECT 1");
	ok(!c.txn_control, "a SELECT is not");

	/* carried SETs */
	is_kind("SET sql_mode = 'ANSI'", HD_MY_SQL_CARRY, "a literal SET");
	ok(c.nsets == 1 && strcmp(c.sets[0].name, "sql_mode") == 0 &&
	   strcmp(c.sets[0].value, "'ANSI'") == 0, "its name and value as written");
	is_kind("set session time_zone='+05:00', @@local.sort_buffer_size = 262144, "
			"@@SESSION.Foreign_Key_Checks=OFF", HD_MY_SQL_CARRY, "three forms of session variable");
	ok(c.nsets == 3 && strcmp(c.sets[1].name, "sort_buffer_size") == 0 &&
	   strcmp(c.sets[2].name, "foreign_key_checks") == 0 && strcmp(c.sets[2].value, "OFF") == 0,
	   "names lower-cased, values kept");
	is_kind("SET wait_timeout = -1", HD_MY_SQL_CARRY, "a signed number");
	ok(strcmp(c.sets[0].value, "-1") == 0, "with its sign");
	is_kind("SET sql_mode = DEFAULT", HD_MY_SQL_CARRY, "DEFAULT");
	is_kind("SET autocommit = 0", HD_MY_SQL_CARRY, "autocommit alone");
	ok(c.nsets == 0, "is not among the carried SETs (the status flags carry it)");
	is_kind("SET autocommit=1, sql_mode='' ", HD_MY_SQL_CARRY, "autocommit with another");
	ok(c.nsets == 1 && strcmp(c.sets[0].name, "sql_mode") == 0, "only the other is carried");
	is_kind("SET sql_mode := 'ANSI'", HD_MY_SQL_CARRY, ":= as =");

	/* pins */
	is_kind("SET @x = 1", HD_MY_SQL_PIN, "a user variable set");
	is_kind("SELECT @x", HD_MY_SQL_PIN, "a user variable read");
	is_kind("SELECT 1 INTO @x", HD_MY_SQL_PIN, "SELECT INTO a user variable");
	is_kind("SELECT @`quoted name`", HD_MY_SQL_PIN, "a quoted user variable");
	is_kind("SET sql_mode = CONCAT(@@sql_mode, ',ANSI')", HD_MY_SQL_PIN, "a SET with an expression");
	is_kind("SET time_zone = @tz", HD_MY_SQL_PIN, "a SET from a user variable");
	is_kind("SET NAMES utf8mb4", HD_MY_SQL_PIN, "SET NAMES");
	is_kind("SET CHARACTER SET latin1", HD_MY_SQL_PIN, "SET CHARACTER SET");
	is_kind("SET character_set_results = NULL", HD_MY_SQL_PIN, "a character-set variable");
	is_kind("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", HD_MY_SQL_PIN, "SET TRANSACTION");
	is_kind("SET SESSION TRANSACTION READ ONLY", HD_MY_SQL_PIN, "SET SESSION TRANSACTION");
	is_kind("SET sql_log_bin = 0", HD_MY_SQL_PIN, "sql_log_bin");
	is_kind("SET session_track_state_change = OFF", HD_MY_SQL_PIN, "the agent's own tracker");
	is_kind("SET last_insert_id = 5", HD_MY_SQL_PIN, "last_insert_id");
	is_kind("SET ROLE admin", HD_MY_SQL_PIN, "SET ROLE");
	is_kind("SET GLOBAL a = 1, @@session.b = 2", HD_MY_SQL_PLAIN, "SET GLOBAL first: the server's");
	is_kind("SET @@global.a = 1, b = 2", HD_MY_SQL_PLAIN, "@@global first");
	is_kind("SET b = 2, @@global.a = 1", HD_MY_SQL_PIN, "global and session together");
	is_kind("LOCK TABLES t READ", HD_MY_SQL_PIN, "LOCK TABLES");
	is_kind("unlock tables", HD_MY_SQL_PIN, "UNLOCK TABLES");
	is_kind("SELECT GET_LOCK('a', 0)", HD_MY_SQL_PIN, "GET_LOCK()");
	is_kind("CREATE TEMPORARY TABLE tt (a int)", HD_MY_SQL_PIN, "a temporary table");
	is_kind("PREPARE s FROM 'SELECT 1'", HD_MY_SQL_PIN, "SQL PREPARE");
	is_kind("EXECUTE s", HD_MY_SQL_PIN, "SQL EXECUTE");
	is_kind("HANDLER t OPEN", HD_MY_SQL_PIN, "HANDLER");
	is_kind("XA START 'x'", HD_MY_SQL_PIN, "XA");
	is_kind("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 1", HD_MY_SQL_PIN, "SQL_CALC_FOUND_ROWS");
	is_kind("/*!40101 SET @saved = @@sql_mode */", HD_MY_SQL_PIN, "code in an executable comment");
	is_kind("/*M!100100 SELECT @v */", HD_MY_SQL_PIN, "MariaDB's executable comment");
	ok(c.why != NULL && strstr(c.why, "user variable") != NULL, "with a reason");

	/* diagnostics */
	is_kind("SELECT LAST_INSERT_ID()", HD_MY_SQL_DIAGNOSTICS, "LAST_INSERT_ID()");
	is_kind("select found_rows()", HD_MY_SQL_DIAGNOSTICS, "FOUND_ROWS()");
	is_kind("SELECT ROW_COUNT()", HD_MY_SQL_DIAGNOSTICS, "ROW_COUNT()");
	is_kind("SHOW WARNINGS", HD_MY_SQL_DIAGNOSTICS, "SHOW WARNINGS");
	is_kind("SHOW COUNT(*) ERRORS", HD_MY_SQL_DIAGNOSTICS, "SHOW COUNT(*) ERRORS");
	is_kind("SELECT @@warning_count", HD_MY_SQL_DIAGNOSTICS, "@@warning_count");
	is_kind("SELECT @@identity", HD_MY_SQL_DIAGNOSTICS, "@@identity");
	is_kind("GET DIAGNOSTICS @n = NUMBER", HD_MY_SQL_PIN, "GET DIAGNOSTICS into a user variable pins");
	is_kind("INSERT INTO t VALUES (LAST_INSERT_ID())", HD_MY_SQL_DIAGNOSTICS, "inside an INSERT");
	is_kind("SELECT 'LAST_INSERT_ID()'", HD_MY_SQL_PLAIN, "but not in a string");

	/* USE */
	is_kind("USE shop", HD_MY_SQL_USE, "USE");
	ok(strcmp(c.database, "shop") == 0, "its database");
	is_kind("use `my db`;", HD_MY_SQL_USE, "USE with a quoted name and a semicolon");
	ok(strcmp(c.database, "my db") == 0, "the name unquoted");
	is_kind("USE a b", HD_MY_SQL_PIN, "a USE the agent cannot read pins");

	/* multi-statement texts */
	is_kind("SELECT 1; SELECT 2", HD_MY_SQL_PLAIN, "two plain statements");
	ok(c.multi, "are a multi-statement text");
	is_kind("SELECT 1; SET @x = 1", HD_MY_SQL_PIN, "a pin in the second statement");
	is_kind("SET sql_mode = ''; SELECT 1", HD_MY_SQL_PIN, "a SET among others pins");
	is_kind("SELECT 1; USE shop", HD_MY_SQL_PIN, "a USE among others pins");
	is_kind("INSERT INTO t VALUES (1); SELECT LAST_INSERT_ID()", HD_MY_SQL_DIAGNOSTICS,
			"a diagnostics read in the second");
	is_kind("SELECT 1;", HD_MY_SQL_PLAIN, "a trailing semicolon");
	ok(!c.multi, "is one statement");
	is_kind("SELECT 'a;b'; ", HD_MY_SQL_PLAIN, "a semicolon in a string");
	ok(!c.multi, "is one statement too");

	/* KILL and LOAD DATA LOCAL */
	kind("KILL QUERY 42");
	ok(c.kill && c.kill_query && c.kill_id == 42, "KILL QUERY id");
	kind("kill 7;");
	ok(c.kill && !c.kill_query && c.kill_id == 7, "KILL id (the connection)");
	kind("KILL HARD CONNECTION 9");
	ok(c.kill && !c.kill_query && c.kill_id == 9, "KILL HARD CONNECTION id");
	is_kind("KILL USER app", HD_MY_SQL_PIN, "a KILL the agent cannot read pins");
	ok(!c.kill, "and is not taken for one");
	is_kind("KILL 1; SELECT 1", HD_MY_SQL_PIN, "a KILL in a multi-statement text pins");
	kind("LOAD DATA LOCAL INFILE 'f' INTO TABLE t");
	ok(c.load_local, "LOAD DATA LOCAL");
	kind("load xml local infile 'f' into table t");
	ok(c.load_local, "LOAD XML LOCAL");
	kind("LOAD DATA INFILE 'f' INTO TABLE t");
	ok(!c.load_local, "LOAD DATA (the server's file) is not");

	/* never past the length: a text cut inside a quote or a comment */
	{
		const char *cut = "SELECT 'abc";

		hd_my_sql_classify(cut, strlen(cut), &c);
		ok(c.kind == HD_MY_SQL_PLAIN, "an unterminated quote");
		hd_my_sql_classify("SELECT /* open", 14, &c);
		ok(c.kind == HD_MY_SQL_PLAIN, "an unterminated comment");
		hd_my_sql_classify("SET @x = 1", 5, &c);	/* "SET @" */
		ok(c.kind == HD_MY_SQL_PIN, "a length that cuts the text is honoured");
	}
	return tap_done();
}
