/*
 * test_session.c
 *    Unit tests of session.c: which statements the pooler tracks, which pin
 *    a client, and the SQL that carries settings between connections.
 *    Prints TAP; run by t/006_session_unit.pl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgwire/session.h"
#include "tap.h"

static HdQueryEffect
effect_of(const char *sql, int extended, const char **reason)
{
	HdClassification c;
	HdQueryEffect effect;

	hd_classify(sql, strlen(sql), extended, &c);
	effect = c.effect;
	if (reason)
		*reason = c.pin_reason;
	hd_classification_free(&c);
	return effect;
}

static void
expect_effect(const char *sql, HdQueryEffect want)
{
	char		name[256];

	snprintf(name, sizeof(name), "%s -> %s", sql,
			 want == HD_EFFECT_NONE ? "none" : want == HD_EFFECT_PIN ? "pin" : "tracked");
	ok(effect_of(sql, 0, NULL) == want, name);
}

static void
test_classification(void)
{
	/* ordinary statements: nothing session-level */
	expect_effect("SELECT 1", HD_EFFECT_NONE);
	expect_effect("UPDATE t SET a = 1 WHERE b = 2", HD_EFFECT_NONE);
	expect_effect("insert into t values (1)", HD_EFFECT_NONE);
	expect_effect("SET LOCAL search_path = x", HD_EFFECT_NONE);
	expect_effect("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", HD_EFFECT_NONE);
	expect_effect("SELECT pg_advisory_xact_lock(1)", HD_EFFECT_NONE);
	expect_effect("SELECT set_config('a.b', 'c', true)", HD_EFFECT_NONE);
	expect_effect("CREATE TABLE t2 (a int)", HD_EFFECT_NONE);
	expect_effect("DECLARE c CURSOR FOR SELECT 1", HD_EFFECT_NONE);
	expect_effect("SELECT 'set search_path = x'", HD_EFFECT_NONE);
	expect_effect("UNLISTEN *", HD_EFFECT_NONE);
	expect_effect("SELEC broken syntax", HD_EFFECT_NONE);

	/* tracked settings */
	expect_effect("SET search_path = s2, public", HD_EFFECT_TRACKED);
	expect_effect("set statement_timeout to '5s'", HD_EFFECT_TRACKED);
	expect_effect("SET SESSION TimeZone = 'UTC'", HD_EFFECT_TRACKED);
	expect_effect("RESET search_path", HD_EFFECT_TRACKED);
	expect_effect("SET application_name TO DEFAULT", HD_EFFECT_TRACKED);
	expect_effect("RESET ALL", HD_EFFECT_TRACKED);
	expect_effect("DISCARD ALL", HD_EFFECT_TRACKED);
	expect_effect("/* c */ SET search_path = x", HD_EFFECT_TRACKED);

	/* pinning */
	expect_effect("SET geqo = off", HD_EFFECT_PIN);
	expect_effect("SET myapp.tenant = '42'", HD_EFFECT_PIN);
	expect_effect("SET ROLE other", HD_EFFECT_PIN);
	expect_effect("SET SESSION AUTHORIZATION other", HD_EFFECT_PIN);
	expect_effect("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", HD_EFFECT_PIN);
	expect_effect("LISTEN channel", HD_EFFECT_PIN);
	expect_effect("SELECT pg_advisory_lock(1)", HD_EFFECT_PIN);
	expect_effect("select x from t where pg_try_advisory_lock(t.id)", HD_EFFECT_PIN);
	expect_effect("SELECT set_config('a.b', 'c', false)", HD_EFFECT_PIN);
	expect_effect("CREATE TEMP TABLE tt (a int)", HD_EFFECT_PIN);
	expect_effect("CREATE TEMPORARY VIEW v AS SELECT 1", HD_EFFECT_PIN);
	expect_effect("CREATE TEMP SEQUENCE s", HD_EFFECT_PIN);
	expect_effect("CREATE TEMP TABLE tt AS SELECT 1", HD_EFFECT_PIN);
	expect_effect("PREPARE p AS SELECT 1", HD_EFFECT_PIN);
	expect_effect("SELECT set_config('search_path', 'evil', false) FROM t", HD_EFFECT_PIN);
	expect_effect("EXECUTE p", HD_EFFECT_PIN);
	expect_effect("DECLARE c CURSOR WITH HOLD FOR SELECT 1", HD_EFFECT_PIN);
	expect_effect("LOAD 'auto_explain'", HD_EFFECT_PIN);
	expect_effect("SELECT 1; LISTEN x", HD_EFFECT_PIN);
	expect_effect("SET search_path = x; SET geqo = off", HD_EFFECT_PIN);

	/* in a prepared statement any session-level statement pins */
	ok(effect_of("SET search_path = x", 1, NULL) == HD_EFFECT_PIN, "SET via Parse pins");
	ok(effect_of("SELECT $1::int", 1, NULL) == HD_EFFECT_NONE, "SELECT via Parse is harmless");
}

static void
test_tracking(void)
{
	HdSettingList client = {0};
	HdSettingList server = {0};
	HdClassification c;
	char	   *sql;
	bool		err;

	hd_classify("SET search_path = s2, public; SET statement_timeout = 5000",
				strlen("SET search_path = s2, public; SET statement_timeout = 5000"), 0, &c);
	ok(c.effect == HD_EFFECT_TRACKED && c.changes.count == 2, "two tracked SETs in one query");
	ok(hd_settings_apply(&client, &c, NULL) == 0 && client.count == 2, "applied to the client");
	hd_classification_free(&c);
	ok(strcmp(hd_settings_find(&client, "search_path")->sql, "SET search_path = s2, public") == 0,
	   "the statement text is kept for replay");

	sql = hd_settings_diff_sql(&server, &client, &err);
	ok(sql && !err && strstr(sql, "SET search_path = s2, public;") &&
	   strstr(sql, "SET statement_timeout = 5000;"), "a fresh server gets both");
	free(sql);
	hd_settings_copy(&server, &client);
	sql = hd_settings_diff_sql(&server, &client, &err);
	ok(sql == NULL && !err, "a server already in that state gets nothing");

	hd_classify("RESET search_path", strlen("RESET search_path"), 0, &c);
	hd_settings_apply(&client, &c, NULL);
	hd_classification_free(&c);
	sql = hd_settings_diff_sql(&server, &client, &err);
	ok(sql && strcmp(sql, "RESET search_path;") == 0, "a RESET is carried as RESET");
	free(sql);

	hd_classify("DISCARD ALL", strlen("DISCARD ALL"), 0, &c);
	ok(c.reset_all && c.discard_all, "DISCARD ALL resets everything, statements too");
	hd_settings_apply(&client, &c, NULL);
	hd_classification_free(&c);
	ok(client.count == 0, "DISCARD ALL clears the client's settings");

	hd_settings_clear(&client);
	hd_settings_clear(&server);
}

/* RESET goes back to the startup packet's value, as PostgreSQL's reset value is. */
static void
test_reset_to_startup(void)
{
	HdSettingList startup = {0};
	HdSettingList client = {0};
	HdClassification c;
	const HdSetting *s;

	hd_settings_from_startup(&startup, "DateStyle", "Postgres, MDY");
	hd_settings_copy(&client, &startup);
	hd_classify("SET datestyle = ISO; SET work_mem = '8MB'",
				strlen("SET datestyle = ISO; SET work_mem = '8MB'"), 0, &c);
	hd_settings_apply(&client, &c, &startup);
	hd_classification_free(&c);
	s = hd_settings_find(&client, "datestyle");
	ok(s && strcmp(s->sql, "SET datestyle = ISO") == 0 && client.count == 2, "SET replaces it");

	hd_classify("RESET datestyle", strlen("RESET datestyle"), 0, &c);
	hd_settings_apply(&client, &c, &startup);
	hd_classification_free(&c);
	s = hd_settings_find(&client, "datestyle");
	ok(s && s->value && strcmp(s->value, "Postgres, MDY") == 0,
	   "RESET datestyle restores the startup value");

	hd_classify("RESET ALL", strlen("RESET ALL"), 0, &c);
	hd_settings_apply(&client, &c, &startup);
	hd_classification_free(&c);
	ok(client.count == 1 && hd_settings_find(&client, "datestyle") &&
	   hd_settings_find(&client, "work_mem") == NULL, "RESET ALL: the startup settings only");

	{
		HdClassification merged = {0};
		HdClassification a;
		HdClassification b;

		hd_classify("SET work_mem = '1MB'", strlen("SET work_mem = '1MB'"), 0, &a);
		hd_classify("RESET ALL", strlen("RESET ALL"), 0, &b);
		ok(hd_classification_merge(&merged, &a) == 0 && hd_classification_merge(&merged, &b) == 0 &&
		   merged.reset_all && merged.changes.count == 0, "merged in order: RESET ALL after SET");
		hd_classification_free(&a);
		hd_classification_free(&b);
		hd_classification_free(&merged);
	}
	hd_settings_clear(&client);
	hd_settings_clear(&startup);
}

static void
test_deallocate(void)
{
	HdClassification c;

	hd_classify("DEALLOCATE p1", strlen("DEALLOCATE p1"), 0, &c);
	ok(c.deallocate && c.deallocate_name && strcmp(c.deallocate_name, "p1") == 0 &&
	   c.effect == HD_EFFECT_NONE, "DEALLOCATE name: the name, no pin");
	hd_classification_free(&c);
	hd_classify("deallocate prepare \"Odd\"", strlen("deallocate prepare \"Odd\""), 0, &c);
	ok(c.deallocate && c.deallocate_name && strcmp(c.deallocate_name, "Odd") == 0,
	   "DEALLOCATE PREPARE \"Odd\": the name as PostgreSQL reads it");
	hd_classification_free(&c);
	hd_classify("DEALLOCATE ALL", strlen("DEALLOCATE ALL"), 1, &c);
	ok(c.deallocate && c.deallocate_name == NULL, "DEALLOCATE ALL (also in a Parse)");
	hd_classification_free(&c);
	hd_classify("SELECT 1; DEALLOCATE p1", strlen("SELECT 1; DEALLOCATE p1"), 0, &c);
	ok(!c.deallocate && c.effect == HD_EFFECT_PIN, "DEALLOCATE among other statements pins");
	hd_classification_free(&c);
}

static void
test_startup(void)
{
	HdSettingList list = {0};
	const HdSetting *s;

	ok(hd_settings_from_startup(&list, "application_name", "it's me") == NULL,
	   "application_name accepted");
	s = hd_settings_find(&list, "application_name");
	ok(s && strcmp(s->sql, "SELECT pg_catalog.set_config('application_name', 'it''s me', false)") == 0,
	   "carried by set_config(), the value quoted as a literal");
	hd_settings_clear(&list);
	ok(hd_settings_from_startup(&list, "myapp.user", "alice") == NULL &&
	   strcmp(hd_settings_find(&list, "myapp.user")->sql,
			  "SELECT pg_catalog.set_config('myapp.user', 'alice', false)") == 0,
	   "a reserved word in a custom name needs no quoting");
	ok(hd_settings_from_startup(&list, "DateStyle", "ISO") == NULL &&
	   strcmp(hd_settings_find(&list, "datestyle")->sql,
			  "SELECT pg_catalog.set_config('datestyle', 'ISO', false)") == 0,
	   "names are folded to lower case");
	hd_settings_clear(&list);
	{
		HdSettingList have = {0};
		HdSettingList want = {0};
		bool		err;
		char	   *sql;

		hd_settings_from_startup(&have, "myapp.user", "alice");
		sql = hd_settings_diff_sql(&have, &want, &err);
		ok(sql && strcmp(sql, "RESET myapp.\"user\";") == 0, "RESET quotes the name too");
		free(sql);
		hd_settings_clear(&have);
	}
	hd_settings_clear(&list);
	ok(hd_settings_from_startup(&list, "options", "-c geqo=off --work-mem=7MB") == NULL &&
	   hd_settings_find(&list, "geqo") && hd_settings_find(&list, "work_mem") &&
	   strcmp(hd_settings_find(&list, "work_mem")->value, "7MB") == 0,
	   "-c name=value and --name=value");
	ok(hd_settings_from_startup(&list, "options", "-c search_path=a\\ b") == NULL &&
	   strcmp(hd_settings_find(&list, "search_path")->value, "a b") == 0,
	   "backslash escapes a space");
	ok(hd_settings_from_startup(&list, "options", "-X") != NULL, "other switches refused");
	ok(hd_settings_from_startup(&list, "bad name; drop", "x") != NULL,
	   "a name that is not an identifier is refused");
	ok(hd_settings_from_startup(&list, "myapp.tenant", "42") == NULL, "custom x.y names accepted");
	hd_settings_clear(&list);
}

/* The session-state reports of hyperdrive.session_state(): what differs. */
static void
test_state_reports(void)
{
	const char *base = "@user=5:10/10;@temp=1:0;search_path=6:public;";
	HdSettingList changed = {0};
	char	   *fallback = hd_state_query(false);
	char	   *with = hd_state_query(true);

	ok(hd_state_changed_names(base, base, &changed) == 0 && changed.count == 0,
	   "the same report: nothing changed");
	ok(hd_state_changed_names(base, "@user=5:10/10;@temp=1:0;search_path=12:evil, public;",
							  &changed) == 0 && changed.count == 1 &&
	   hd_settings_find(&changed, "search_path"), "another value: that setting");
	hd_settings_clear(&changed);
	ok(hd_state_changed_names(base, "@user=5:10/10;@temp=1:0;search_path=6:public;app.tenant=2:42;",
							  &changed) == 0 && changed.count == 1 &&
	   hd_settings_find(&changed, "app.tenant"), "a setting more: that one");
	hd_settings_clear(&changed);
	ok(hd_state_changed_names(base, "@user=5:16/10;@temp=1:0;", &changed) == 0 &&
	   changed.count == 2 && hd_settings_find(&changed, "@user") &&
	   hd_settings_find(&changed, "search_path"), "another role, a setting less: both");
	hd_settings_clear(&changed);
	ok(hd_state_changed_names(base, "@user=5:10/10;@temp=1:0;search_path=1:a;b;", &changed) < 0,
	   "a value longer than its length says: malformed");
	ok(hd_state_changed_names(base, "@user=9:10/10;", &changed) < 0, "a truncated report: malformed");
	hd_settings_clear(&changed);
	ok(hd_state_changed_names("x=3:a;b;", "x=3:a;b;", &changed) == 0 && changed.count == 0,
	   "a value with the separator in it reads back whole");
	ok(with && strstr(with, "hyperdrive.session_state()") && fallback &&
	   strstr(fallback, "current_setting('search_path')") && strstr(fallback, "@temp"),
	   "the queries: the extension's function, or a plain one");
	free(with);
	free(fallback);
}

/* Pin reasons and the result cache: safe only where listed so; default not safe. */
static void
test_pin_classes(void)
{
	const char *reason;
	static const char *const safe[] = {
		"LISTEN ch", "SELECT pg_advisory_lock(1)", "PREPARE p AS SELECT 1",
		"DECLARE c CURSOR WITH HOLD FOR SELECT 1", NULL
	};
	static const char *const unsafe[] = {
		"CREATE TEMP TABLE t (a int)", "CREATE TEMP VIEW v AS SELECT 1",
		"CREATE TEMP SEQUENCE s", "SET ROLE nobody", "SET SESSION AUTHORIZATION nobody",
		"SELECT set_config('search_path', 'x', false)", "LOAD 'x'",
		"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET app.tenant = 1", NULL
	};

	char		name[256];

	for (int i = 0; safe[i]; i++)
	{
		bool		pinned = effect_of(safe[i], 0, &reason) == HD_EFFECT_PIN;

		snprintf(name, sizeof(name), "cache-safe pin: %s (%s)", safe[i], reason ? reason : "?");
		ok(pinned && hd_pin_class(reason).cache_safe, name);
	}
	for (int i = 0; unsafe[i]; i++)
	{
		bool		pinned = effect_of(unsafe[i], 0, &reason) == HD_EFFECT_PIN;

		snprintf(name, sizeof(name), "not cache-safe: %s (%s, %s)", unsafe[i],
				 reason ? reason : "?", hd_pin_class(reason).kind);
		ok(pinned && !hd_pin_class(reason).cache_safe, name);
	}
	ok(effect_of("CREATE TEMP TABLE t (a int)", 0, &reason) == HD_EFFECT_PIN &&
	   strcmp(hd_pin_class(reason).kind, "temporary object") == 0,
	   "a temporary table counts as a temporary object");
	ok(effect_of("SET ROLE nobody", 0, &reason) == HD_EFFECT_PIN &&
	   strcmp(hd_pin_class(reason).kind, "setting") == 0, "SET ROLE counts as a setting");
	ok(!hd_pin_class("session state changed on the origin (search_path)").cache_safe &&
	   strcmp(hd_pin_class("session state changed on the origin (temp)").kind,
			  "session state") == 0, "a state check's difference: not safe, \"session state\"");
	ok(!hd_pin_class("out of memory").cache_safe && !hd_pin_class("something new").cache_safe &&
	   !hd_pin_class(NULL).cache_safe && !hd_pin_class("SET inside a transaction block").cache_safe,
	   "anything else is not safe (the default)");
	ok(hd_state_entry_cache_neutral("@listen") && hd_state_entry_cache_neutral("@advisory") &&
	   !hd_state_entry_cache_neutral("@temp") && !hd_state_entry_cache_neutral("@user") &&
	   !hd_state_entry_cache_neutral("search_path"),
	   "report entries no cacheable SELECT reads: @listen, @advisory only");
}

static bool
leaves_idle(const char *sql)
{
	/* as a Query carries it: with its NUL */
	return hd_query_leaves_no_transaction(sql, strlen(sql) + 1);
}

/* Which Query texts the session-state check may follow at once (client.c). */
static void
test_leaves_no_transaction(void)
{
	ok(leaves_idle("SELECT abalance FROM pgbench_accounts WHERE aid = 1;"),
	   "one SELECT with its ';': leaves the connection idle");
	ok(leaves_idle("  select 1") && leaves_idle("select*from t") && leaves_idle("select(1)"),
	   "case, blanks before, '*' or '(' right after the word");
	ok(leaves_idle("INSERT INTO t VALUES (1) RETURNING id;  \n") &&
	   leaves_idle("update t set a = 1") && leaves_idle("DELETE FROM t") &&
	   leaves_idle("WITH x AS (SELECT 1) SELECT * FROM x") && leaves_idle("VALUES (1)") &&
	   leaves_idle("TABLE t"), "INSERT, UPDATE, DELETE, WITH, VALUES, TABLE");
	ok(!leaves_idle("BEGIN") && !leaves_idle("START TRANSACTION") && !leaves_idle("COMMIT"),
	   "transaction control: no");
	ok(!leaves_idle("SELECT 1; BEGIN") && !leaves_idle("SELECT 1;BEGIN;"),
	   "a second statement (it could open a block): no");
	ok(!leaves_idle("COPY t FROM STDIN") && !leaves_idle("copy t to stdout"),
	   "COPY (the connection waits for data, or sends it): no");
	ok(!leaves_idle("SELECT 'a;b'"), "a ';' inside a literal: not certain, no");
	ok(!leaves_idle("/* c */ SELECT 1") && !leaves_idle("-- c\nSELECT 1") &&
	   !leaves_idle("select--c\n1"), "comments: not certain, no");
	ok(!leaves_idle("selectx 1") && !leaves_idle("(SELECT 1)") && !leaves_idle("") &&
	   !leaves_idle("SET a = 1") && !leaves_idle("CALL p()") && !leaves_idle("DO $$ BEGIN END $$"),
	   "other words, a parenthesis first, nothing, SET, CALL, DO: no");
	ok(hd_query_leaves_no_transaction("SELECT 1; BEGIN", 9), "only len bytes are read");
}

int
main(void)
{
	test_classification();
	test_tracking();
	test_reset_to_startup();
	test_deallocate();
	test_startup();
	test_state_reports();
	test_leaves_no_transaction();
	test_pin_classes();
	return tap_done();
}
