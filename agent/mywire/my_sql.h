/*
 * my_sql.h
 *    What a MySQL statement's text does to the session, for transaction
 *    pooling: nothing the agent must know of, a setting the agent carries to
 *    the client's next origin connection, a change of database, a read of
 *    the previous statement's diagnostics, or something the agent cannot
 *    carry, which pins the client to its origin connection.
 *
 * The text is read with a small lexer (quoted strings, backquoted names,
 * the three kinds of comments; the body of an executable comment, slash-
 * star-bang up to star-slash, is read as code): the agent never needs the statement's meaning, only
 * its first words and a few words and characters anywhere in it.
 *
 * Contract:
 *   - hd_my_sql_classify(sql, len, out) never fails and never reads past len.
 *     When in doubt it says PIN, with a reason for the log and the counters.
 *   - HD_MY_SQL_CARRY: a SET of session variables, every value a literal
 *     (a number, a quoted string, a word such as ON or DEFAULT): out->sets
 *     holds each assignment as "name" and "value" text, to be replayed as
 *     SET SESSION name = value on another connection, and undone there with
 *     SET SESSION name = DEFAULT. autocommit is not among them: the status
 *     flags of every reply carry it (my_client.c).
 *   - HD_MY_SQL_USE: USE db; out->database holds the name.
 *   - HD_MY_SQL_DIAGNOSTICS: the statement reads what the previous statement
 *     left in the session (LAST_INSERT_ID(), FOUND_ROWS(), ROW_COUNT(), SHOW
 *     WARNINGS/ERRORS, GET DIAGNOSTICS, @@warning_count, @@error_count,
 *     @@identity): it must run on the connection that ran that statement.
 *   - HD_MY_SQL_PIN: user variables, LOCK TABLES, GET_LOCK(), temporary
 *     tables, SQL PREPARE/EXECUTE/DEALLOCATE, HANDLER, XA, SQL_CALC_FOUND_ROWS,
 *     SET NAMES / CHARACTER SET, SET TRANSACTION, SET ROLE, a SET whose value
 *     is an expression or names a variable the agent manages or cannot carry
 *     (sql_log_bin, session_track_*, character_set_*, collation_*,
 *     insert_id, last_insert_id, timestamp, ...), and in a multi-statement
 *     text any SET or USE (multi says the text holds several statements).
 *   - load_local: the statement is LOAD DATA LOCAL or LOAD XML LOCAL (the
 *     origin will ask the client for a file).
 *   - kill: the text is one KILL [HARD|SOFT] [QUERY|CONNECTION] id (a literal
 *     number): the agent answers it itself, ids being its own (kill_id,
 *     kill_query). A KILL it cannot read (KILL USER, an expression) pins.
 *   - HD_MY_SQL_PLAIN: anything else.
 */
#ifndef HD_MY_SQL_H
#define HD_MY_SQL_H

#include <stdbool.h>
#include <stddef.h>

#define HD_MY_SQL_MAX_SETS 16
#define HD_MY_SQL_NAME_MAX 64
#define HD_MY_SQL_VALUE_MAX 512

typedef enum HdMySqlKind
{
	HD_MY_SQL_PLAIN,
	HD_MY_SQL_CARRY,
	HD_MY_SQL_USE,
	HD_MY_SQL_DIAGNOSTICS,
	HD_MY_SQL_PIN
} HdMySqlKind;

typedef struct HdMySqlSet
{
	char		name[HD_MY_SQL_NAME_MAX];	/* lower case */
	char		value[HD_MY_SQL_VALUE_MAX]; /* as written (quotes kept) */
} HdMySqlSet;

typedef struct HdMySqlClass
{
	HdMySqlKind kind;
	const char *why;			/* PIN, DIAGNOSTICS: a static reason */
	int			nsets;
	HdMySqlSet	sets[HD_MY_SQL_MAX_SETS];
	char		database[256];	/* USE */
	bool		multi;			/* more than one statement */
	bool		txn_control;	/* BEGIN, START TRANSACTION, COMMIT, ROLLBACK, SAVEPOINT, ... */
	bool		load_local;		/* LOAD DATA LOCAL / LOAD XML LOCAL: the client sends a file */
	bool		kill;			/* KILL [QUERY | CONNECTION] id: kill_id, kill_query */
	bool		kill_query;
	unsigned long long kill_id;
} HdMySqlClass;

extern void hd_my_sql_classify(const char *sql, size_t len, HdMySqlClass *out);

#endif							/* HD_MY_SQL_H */
