/*
 * test_my_lookup.c
 *    Unit tests of the pure parts of agent/mywire/my_lookup.c, as a TAP
 *    program (make agent-unit && agent/tests/test_my_lookup; prove runs it
 *    through t/037_my_lookup_unit.pl): the query that reads a user's rows
 *    (the name as a hexadecimal literal, whatever its bytes), the rule that
 *    decides from the rows (one login everywhere, or refused), and the log
 *    line for a config's user without the grant. No server: what the
 *    queries return on a real MariaDB is t/104_mysql_lookup.pl's part.
 *
 * The hash vector is MariaDB 10.11.19's own: SELECT PASSWORD('x') on a
 * throwaway server gave *B69027D44F6E5EDC07F1AEAD1477967B16F28227.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mywire/my_int.h"
#include "mywire/my_lookup.h"
#include "tap.h"

/* my_client.c's; the pure parts never call it (the test links my_lookup.c without the wing). */
const HdConfig *
hd_my_config_by_id(HdMyAgent *my, const char *id)
{
	(void) my;
	(void) id;
	return NULL;
}

#define HASH_X "*B69027D44F6E5EDC07F1AEAD1477967B16F28227"
#define NATIVE "mysql_native_password"

static const uint8_t stage2_x[20] = {
	0xB6, 0x90, 0x27, 0xD4, 0x4F, 0x6E, 0x5E, 0xDC, 0x07, 0xF1,
	0xAE, 0xAD, 0x14, 0x77, 0x96, 0x7B, 0x16, 0xF2, 0x82, 0x27
};

static bool
zeroed(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t		a = strlen(s);
	size_t		b = strlen(tail);

	return a >= b && strcmp(s + a - b, tail) == 0;
}

static void
test_query(void)
{
	char		buf[1024];
	char		user[200];
	int			n;

	n = hd_my_lookup_query(HD_MY_LOOKUP_GLOBAL_PRIV, "app", buf, sizeof(buf));
	ok(n == (int) strlen(buf) && n > 0, "global_priv: the length returned is the query's");
	ok(strncmp(buf, "SELECT JSON_VALUE(Priv, '$.plugin'), JSON_VALUE(Priv, '$.authentication_string'),", 81) == 0,
	   "global_priv: plugin and hash from Priv first");
	ok(strstr(buf, "FROM mysql.global_priv WHERE User = X'617070'") != NULL && ends_with(buf, "X'617070'"),
	   "global_priv: the user as a hex literal, nothing after");
	ok(strstr(buf, "'$.auth_or'") != NULL && strstr(buf, "'$.is_role'") != NULL &&
	   strstr(buf, "'$.account_locked'") != NULL && strstr(buf, "'$.password_last_changed') = 0") != NULL,
	   "global_priv: several methods, role, lock and expiry asked for");

	n = hd_my_lookup_query(HD_MY_LOOKUP_MARIADB_USER, "app", buf, sizeof(buf));
	ok(n > 0 && strcmp(buf, "SELECT plugin, authentication_string, NULL, password_expired, is_role, NULL "
					   "FROM mysql.user WHERE User = X'617070'") == 0,
	   "MariaDB's mysql.user view: its columns, no lock column there");
	n = hd_my_lookup_query(HD_MY_LOOKUP_MYSQL_USER, "app", buf, sizeof(buf));
	ok(n > 0 && strcmp(buf, "SELECT plugin, authentication_string, account_locked, password_expired, "
					   "NULL, NULL FROM mysql.user WHERE User = X'617070'") == 0,
	   "MySQL's mysql.user: its columns, no roles or alternatives there");

	/* what would break out of a quoted string goes in as bytes */
	n = hd_my_lookup_query(HD_MY_LOOKUP_MYSQL_USER, "a' OR '1'='1", buf, sizeof(buf));
	ok(n > 0 && ends_with(buf, "X'6127204F52202731273D2731'") && strstr(buf, "OR '1'") == NULL,
	   "a quote in the name is hex digits, not a quote");
	n = hd_my_lookup_query(HD_MY_LOOKUP_MYSQL_USER, "b\\'\"; --", buf, sizeof(buf));
	ok(n > 0 && ends_with(buf, "X'625C27223B202D2D'"),
	   "backslash, double quote, semicolon, comment: hex (no NO_BACKSLASH_ESCAPES dependence)");
	n = hd_my_lookup_query(HD_MY_LOOKUP_GLOBAL_PRIV, "\xc3\xa9t\xc3\xa9", buf, sizeof(buf));
	ok(n > 0 && ends_with(buf, "X'C3A974C3A9'"), "UTF-8 bytes as they are (no character set involved)");
	n = hd_my_lookup_query(HD_MY_LOOKUP_GLOBAL_PRIV, "\xff\x01", buf, sizeof(buf));
	ok(n > 0 && ends_with(buf, "X'FF01'"), "bytes that are no UTF-8, and control bytes");

	ok(hd_my_lookup_query(HD_MY_LOOKUP_GLOBAL_PRIV, "", buf, sizeof(buf)) == -1,
	   "an empty name (the anonymous account) is not looked up");
	memset(user, 'u', sizeof(user));
	user[HD_MY_LOOKUP_USER_MAX] = '\0';
	n = hd_my_lookup_query(HD_MY_LOOKUP_GLOBAL_PRIV, user, buf, sizeof(buf));
	ok(n > 0 && (size_t) n == strlen(buf), "the longest name");
	user[HD_MY_LOOKUP_USER_MAX] = 'u';
	user[HD_MY_LOOKUP_USER_MAX + 1] = '\0';
	ok(hd_my_lookup_query(HD_MY_LOOKUP_GLOBAL_PRIV, user, buf, sizeof(buf)) == -1,
	   "one byte longer: refused");

	n = hd_my_lookup_query(HD_MY_LOOKUP_MYSQL_USER, "app", buf, sizeof(buf));
	ok(hd_my_lookup_query(HD_MY_LOOKUP_MYSQL_USER, "app", buf, (size_t) n + 1) == n,
	   "a buffer of exactly the query and its NUL is enough");
	ok(hd_my_lookup_query(HD_MY_LOOKUP_MYSQL_USER, "app", buf, (size_t) n) == -1,
	   "one byte less is not");
	ok(hd_my_lookup_query((HdMyLookupTable) 7, "app", buf, sizeof(buf)) == -1, "an unknown table");
}

static HdMyLookupRow
row(const char *plugin, const char *auth)
{
	HdMyLookupRow r = {plugin, auth, NULL, NULL, NULL, NULL};

	return r;
}

static void
test_decide(void)
{
	HdMyLookupRow rows[4] = {{0}};
	uint8_t		stage2[20];
	char		msg[600];
	HdMyLookupStatus st;

	st = hd_my_lookup_decide("app", rows, 0, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_NOT_FOUND && zeroed(stage2, 20) && strstr(msg, "\"app\"") != NULL,
	   "no rows: not found, the message names the user");

	rows[0] = row(NATIVE, HASH_X);
	memset(stage2, 0xaa, sizeof(stage2));
	st = hd_my_lookup_decide("app", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_FOUND && memcmp(stage2, stage2_x, 20) == 0 && msg[0] == '\0',
	   "one native row: found, stage2 is PASSWORD('x')'s bytes");
	rows[0] = row(NATIVE, "*b69027d44f6e5edc07f1aead1477967b16f28227");
	st = hd_my_lookup_decide("app", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_FOUND && memcmp(stage2, stage2_x, 20) == 0, "a lowercase hash too");

	rows[0] = row(NATIVE, HASH_X);
	rows[1] = row(NATIVE, HASH_X);
	rows[2] = row(NATIVE, HASH_X);
	st = hd_my_lookup_decide("app", rows, 3, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_FOUND && memcmp(stage2, stage2_x, 20) == 0,
	   "several hosts, the same login: found");
	rows[2] = row(NATIVE, "*0000000000000000000000000000000000000000");
	memset(stage2, 0xaa, sizeof(stage2));
	st = hd_my_lookup_decide("app", rows, 3, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && zeroed(stage2, 20) && strstr(msg, "several hosts") != NULL,
	   "a host with another password: refused, saying why, no hash given");
	rows[2] = row("ed25519", HASH_X);
	st = hd_my_lookup_decide("app", rows, 3, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED, "a host with another plugin: refused");
	rows[2] = row(NATIVE, HASH_X);
	rows[2].locked = "1";
	st = hd_my_lookup_decide("app", rows, 3, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "several hosts") != NULL,
	   "a host locked, the others not: refused");
	rows[2].locked = "0";
	st = hd_my_lookup_decide("app", rows, 3, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_FOUND, "\"0\" and NULL are the same unlocked state");
	rows[2].locked = "N";
	st = hd_my_lookup_decide("app", rows, 3, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_FOUND, "and so is mysql.user's \"N\"");

	rows[0] = row(NULL, NULL);
	rows[0].role = "1";
	rows[1] = row(NATIVE, HASH_X);
	st = hd_my_lookup_decide("r", rows, 2, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_FOUND, "a role's row of the same name is no login: the other row decides");
	st = hd_my_lookup_decide("r", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_NOT_FOUND, "a role alone: not found (no login of that name)");
	rows[0].role = "Y";
	st = hd_my_lookup_decide("r", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_NOT_FOUND, "and MariaDB's view says \"Y\"");

	rows[0] = row("ed25519", "Gv2JI8Env2fd5YGonZ082tX3UAW+yJYldOlj4R1bfK4");
	st = hd_my_lookup_decide("e", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "ed25519") != NULL &&
	   strstr(msg, "cannot be checked by a proxy") != NULL,
	   "ed25519: refused, the message says a proxy cannot check it");
	rows[0] = row("caching_sha2_password", "$A$005$abc");
	st = hd_my_lookup_decide("c", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "caching_sha2_password") != NULL &&
	   strstr(msg, "cannot be checked by a proxy") != NULL, "caching_sha2_password: the same");
	rows[0] = row("unix_socket", "");
	st = hd_my_lookup_decide("s", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED, "unix_socket with no string: refused, not \"no password\"");
	rows[0] = row(NULL, NULL);
	st = hd_my_lookup_decide("root", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "no recorded plugin") != NULL,
	   "no plugin recorded (MariaDB's root): refused rather than guessed");
	rows[0] = row("", "");
	st = hd_my_lookup_decide("root", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED, "an empty plugin (mysql.user's view of it): refused too");

	rows[0] = row(NATIVE, "");
	memset(stage2, 0xaa, sizeof(stage2));
	st = hd_my_lookup_decide("np", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_NO_PASSWORD && zeroed(stage2, 20), "native with an empty string: no password");
	rows[0] = row(NATIVE, NULL);
	st = hd_my_lookup_decide("np", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_NO_PASSWORD, "and with NULL");
	rows[0] = row(NATIVE, "invalid");
	st = hd_my_lookup_decide("x", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "not a password hash") != NULL,
	   "native with \"invalid\" (a disabled password): refused");
	rows[0] = row(NATIVE, "*B69027D44F6E5EDC07F1AEAD1477967B16F2822");
	st = hd_my_lookup_decide("x", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED, "a hash one digit short: refused");
	rows[0] = row("mysql_old_password", "6f8c114b58f2ce9e");
	st = hd_my_lookup_decide("x", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED, "mysql_old_password: refused");

	rows[0] = row(NATIVE, HASH_X);
	rows[0].locked = "1";
	st = hd_my_lookup_decide("lk", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "locked") != NULL && zeroed(stage2, 20),
	   "locked (JSON true): refused");
	rows[0].locked = "Y";
	st = hd_my_lookup_decide("lk", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED, "locked (MySQL's \"Y\"): refused");
	rows[0].locked = NULL;
	rows[0].expired = "1";
	st = hd_my_lookup_decide("ex", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "expired") != NULL, "an expired password: refused");
	rows[0].expired = "0";
	rows[0].several = "1";
	st = hd_my_lookup_decide("m", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_REFUSED && strstr(msg, "several authentication methods") != NULL,
	   "VIA unix_socket OR mysql_native_password: refused, saying why");
	rows[0].several = "0";
	st = hd_my_lookup_decide("m", rows, 1, stage2, msg, sizeof(msg));
	ok(st == HD_MY_LOOKUP_FOUND, "JSON_EXISTS 0: one method");

	rows[0] = row(NATIVE, HASH_X);
	st = hd_my_lookup_decide("app", rows, 1, stage2, msg, 8);
	ok(st == HD_MY_LOOKUP_FOUND, "a short message buffer changes nothing");
	rows[0] = row("ed25519", "z");
	st = hd_my_lookup_decide("app", rows, 1, stage2, msg, 8);
	ok(st == HD_MY_LOOKUP_REFUSED && strlen(msg) == 7, "and the message is cut to it");
}

static void
test_grant_message(void)
{
	char		msg[700];

	hd_my_lookup_grant_message(true, "app", "SELECT command denied (error 1142)", msg, sizeof(msg));
	ok(strstr(msg, "GRANT SELECT ON mysql.global_priv TO 'app'@") != NULL &&
	   strstr(msg, "error 1142") != NULL, "MariaDB: the GRANT on mysql.global_priv, and the error");
	hd_my_lookup_grant_message(false, "app", "denied", msg, sizeof(msg));
	ok(strstr(msg, "GRANT SELECT ON mysql.user TO 'app'@") != NULL, "MySQL: the GRANT on mysql.user");
}

int
main(void)
{
	test_query();
	test_decide();
	test_grant_message();
	return tap_done();
}
