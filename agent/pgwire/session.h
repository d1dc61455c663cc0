/*
 * session.h
 *    Session state under transaction pooling: which statements change it,
 *    which of those the agent can carry from one origin connection to the
 *    next, and which pin the client to its connection.
 *
 * Statements are classified with PostgreSQL's own grammar (libpg_query),
 * behind a cheap textual pre-check that lets the common statements
 * (SELECT/INSERT/UPDATE/DELETE without session-level function calls) through
 * without parsing.
 *
 *   tracked  SET/RESET of the settings in hd_tracked_settings (the ones the
 *            server reports, search_path, statement_timeout and the like),
 *            outside a transaction block: remembered per client and
 *            re-applied on whichever origin connection the client gets.
 *   pinning  LISTEN, session advisory locks, temporary tables/views/
 *            sequences, SQL PREPARE/EXECUTE, WITH HOLD cursors, SET of other
 *            settings (and SET ROLE, SET SESSION AUTHORIZATION), LOAD, a SET
 *            whose transaction outcome is unknown: the client keeps its
 *            origin connection until it disconnects, and that connection is
 *            closed then (its state must not reach anyone else).
 *   reset    DISCARD ALL / RESET ALL, and RESET of one setting: the client's
 *            settings go back to what its startup packet set (as
 *            PostgreSQL's reset values are the startup packet's), or to the
 *            origin's default.
 *   deallocate  a statement that is exactly one DEALLOCATE [PREPARE] name or
 *            DEALLOCATE ALL: it acts on the client's own statement names
 *            (prepare.h), not a pin.
 *
 * Contract: pure functions, no I/O. HdSettingList owns its strings.
 */
#ifndef HD_SESSION_H
#define HD_SESSION_H

#include <stdbool.h>
#include <stddef.h>

/* One session setting as the agent re-applies it. */
typedef struct HdSetting
{
	char	   *name;			/* lower case, as the parser folds it */
	char	   *value;			/* from a startup packet; NULL for a SET statement */
	char	   *sql;			/* the statement that establishes it */
} HdSetting;

typedef struct HdSettingList
{
	HdSetting  *items;
	size_t		count;
} HdSettingList;

typedef enum HdQueryEffect
{
	HD_EFFECT_NONE,				/* nothing session-level */
	HD_EFFECT_TRACKED,			/* changes (below) to apply once it succeeds */
	HD_EFFECT_PIN				/* the client must keep its connection */
} HdQueryEffect;

typedef struct HdClassification
{
	HdQueryEffect effect;
	const char *pin_reason;		/* static text, for HD_EFFECT_PIN */
	bool		reset_all;		/* RESET ALL / DISCARD ALL first */
	bool		discard_all;	/* DISCARD ALL: also every prepared statement */
	HdSettingList changes;		/* set (sql non-empty) or reset (sql "") */
	/* the whole text is one DEALLOCATE: of deallocate_name, or ALL when NULL */
	bool		deallocate;
	char	   *deallocate_name;
} HdClassification;

/*
 * Classify the statements of a simple Query (or a Parse: pass
 * in_extended = true, which pins any session-level statement, since a
 * prepared SET can run at any later time).
 */
extern void hd_classify(const char *sql, size_t len, bool in_extended, HdClassification *out);
extern void hd_classification_free(HdClassification *c);
/*
 * Whether a simple Query's text, sent on a connection idle outside a
 * transaction block, certainly leaves it idle outside one when it is done
 * (so the agent may send its own statement right behind it): one
 * SELECT/INSERT/UPDATE/DELETE/WITH/VALUES/TABLE statement, with nothing but
 * blanks after a final ';'. Anything else (a second statement, which could
 * be BEGIN; COPY, which waits for data; a comment first; a ';' inside a
 * literal) is "not certain": false.
 */
extern bool hd_query_leaves_no_transaction(const char *text, size_t len);

/*
 * What a pin reason (HdClassification.pin_reason, and the pooler's own:
 * "SET inside a transaction block", ...) means for the result cache. A
 * pinned client keeps its origin connection; the cache may still answer it
 * there (cache_request.c) when the state the pin stands for cannot change
 * what a cacheable SELECT returns: the analysis admits immutable functions
 * only (extension/analyze.c), and a LISTEN, an advisory lock, a prepared
 * statement or a WITH HOLD cursor is seen only through stable or volatile
 * functions (pg_listening_channels(), pg_lock_status(),
 * pg_prepared_statement(), pg_cursor()). Temporary objects shadow names;
 * settings the agent does not carry, SET ROLE and the like change what a
 * query means: never. A reason not in the table (the state check's own,
 * out of memory, ...) is not safe. kind is the bounded name the cache counts
 * the bypasses of unsafe ones under ("bypass:pinned:KIND").
 */
typedef struct HdPinClass
{
	bool		cache_safe;
	const char *kind;			/* "temporary object", "setting", "session state", "other" */
} HdPinClass;

extern HdPinClass hd_pin_class(const char *reason);

/*
 * Entries of a session-state report (below) that no cacheable SELECT can
 * read, as above: @listen, @advisory. A client answered from the cache on
 * its own connection may change them and still be.
 */
extern bool hd_state_entry_cache_neutral(const char *name);

/* dst then src, as one statement after the other (tracked effects only). */
extern int	hd_classification_merge(HdClassification *dst, const HdClassification *src);

extern bool hd_setting_is_tracked(const char *name);

/* The list operations the pooler needs. */
extern int	hd_settings_put(HdSettingList *list, const char *name, const char *value,
							const char *sql);
extern void hd_settings_remove(HdSettingList *list, const char *name);
extern void hd_settings_clear(HdSettingList *list);
extern int	hd_settings_copy(HdSettingList *dst, const HdSettingList *src);
extern const HdSetting *hd_settings_find(const HdSettingList *list, const char *name);

/*
 * Apply a successful statement's changes to a list of settings: a reset
 * goes back to the setting in `startup` (a client's startup packet), or
 * removes it (NULL, or not there: the origin's default). Returns -1 if
 * memory ran out.
 */
extern int	hd_settings_apply(HdSettingList *list, const HdClassification *c,
							  const HdSettingList *startup);

/*
 * The SQL that makes a connection whose settings are `have` match `want`
 * (RESETs and SETs separated by ";", names quoted as identifiers), or NULL
 * when they already match; *err set when memory ran out. Caller frees.
 */
extern char *hd_settings_diff_sql(const HdSettingList *have, const HdSettingList *want,
								  bool *err);

/*
 * Startup parameters (other than user, database, replication) as settings;
 * `options` is split as PostgreSQL does ("-c name=value", "--name=value",
 * backslash escapes). PostgreSQL applies `options` before the other
 * parameters of the packet (which win): callers pass it first. Each is
 * carried as SELECT set_config(name, value, false), which takes the value
 * as PostgreSQL takes a startup parameter's.
 * Returns NULL, or a message for a malformed options.
 */
extern const char *hd_settings_from_startup(HdSettingList *list, const char *name,
											const char *value);

/*
 * Session state on the origin, as hyperdrive.session_state() reports it
 * (extension/session_state.c) or, without the extension, the agent's own
 * query: entries "name=length:value;" for the role (@user), the temporary
 * schema (@temp), advisory locks (@advisory), LISTEN (@listen) and the
 * settings the session set. The pooler compares a connection's report after
 * a client's transaction with the one before (server.c).
 */

/* The query that reports it, with the extension's function or without; caller frees. */
extern char *hd_state_query(bool with_function);

/*
 * The names whose entries differ between two reports (present in one only,
 * or with another value), added to names (name only, sql ""). Returns -1 for
 * a malformed report or out of memory.
 */
extern int	hd_state_changed_names(const char *before, const char *after, HdSettingList *names);

#endif							/* HD_SESSION_H */
