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
 *   reset    DISCARD ALL / RESET ALL: the client's tracked settings are cleared.
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
	HdSettingList changes;		/* set (sql != NULL) or reset (sql == NULL) */
} HdClassification;

/*
 * Classify the statements of a simple Query (or a Parse: pass
 * in_extended = true, which pins any session-level statement, since a
 * prepared SET can run at any later time).
 */
extern void hd_classify(const char *sql, size_t len, bool in_extended, HdClassification *out);
extern void hd_classification_free(HdClassification *c);

extern bool hd_setting_is_tracked(const char *name);

/* The list operations the pooler needs. */
extern int	hd_settings_put(HdSettingList *list, const char *name, const char *value,
							const char *sql);
extern void hd_settings_remove(HdSettingList *list, const char *name);
extern void hd_settings_clear(HdSettingList *list);
extern int	hd_settings_copy(HdSettingList *dst, const HdSettingList *src);
extern const HdSetting *hd_settings_find(const HdSettingList *list, const char *name);

/*
 * Apply a successful statement's changes to a client's list. Returns -1 if
 * memory ran out.
 */
extern int	hd_settings_apply(HdSettingList *list, const HdClassification *c);

/*
 * The SQL that makes a connection whose settings are `have` match `want`
 * (RESETs and SETs separated by ";"), or NULL when they already match; *err
 * set when memory ran out. Caller frees.
 */
extern char *hd_settings_diff_sql(const HdSettingList *have, const HdSettingList *want,
								  bool *err);

/*
 * Startup parameters (other than user, database, replication) as settings;
 * `options` is split as PostgreSQL does ("-c name=value", "--name=value",
 * backslash escapes). Returns NULL, or a message for a malformed options.
 */
extern const char *hd_settings_from_startup(HdSettingList *list, const char *name,
											const char *value);

#endif							/* HD_SESSION_H */
