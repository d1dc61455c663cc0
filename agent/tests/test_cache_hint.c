/*
 * test_cache_hint.c
 *    Unit tests of cache_hint.c: where a hint is read, what it says, and
 *    that what only looks like one (in a string, in the middle) is not.
 *    Prints TAP; run by t/009_cache_hint_unit.pl.
 */
#include <stdio.h>
#include <string.h>

#include "cache/cache_hint.h"

static int	test_number = 0;
static int	failures = 0;

static void
expect(const char *sql, HdHintKind kind, int64_t max_age_s)
{
	HdHint		h;
	int			good;
	char		name[256];
	size_t		n = 0;

	/* the name on one line: TAP */
	for (const char *p = sql; *p && n + 3 < sizeof(name); p++)
	{
		if (*p == '\n')
		{
			name[n++] = '\\';
			name[n++] = 'n';
		}
		else
			name[n++] = *p;
	}
	name[n] = '\0';
	hd_cache_hint_parse(sql, strlen(sql), &h);
	good = h.kind == kind && (kind != HD_HINT_MAX_AGE || h.max_age_s == max_age_s);
	test_number++;
	if (!good)
		failures++;
	printf("%sok %d - %s -> %s%s\n", good ? "" : "not ", test_number, name,
		   kind == HD_HINT_NONE ? "none" : kind == HD_HINT_NO_CACHE ? "no-cache" :
		   kind == HD_HINT_MAX_AGE ? "max-age" : "invalid",
		   good ? "" : " (got another)");
}

int
main(void)
{
	/* no hint */
	expect("SELECT 1", HD_HINT_NONE, 0);
	expect("/* a comment */ SELECT 1", HD_HINT_NONE, 0);
	expect("SELECT 1 /* hyperdrive is great */", HD_HINT_NONE, 0);
	expect("-- hyperdrive\nSELECT 1", HD_HINT_NONE, 0);

	/* before the statement */
	expect("/* hyperdrive: no-cache */ SELECT 1", HD_HINT_NO_CACHE, 0);
	expect("/*hyperdrive:no-cache*/SELECT 1", HD_HINT_NO_CACHE, 0);
	expect("-- hyperdrive: max-age=5\nSELECT 1", HD_HINT_MAX_AGE, 5);
	expect("  -- other\n  /* HYPERDRIVE: MAX-AGE=60 */ SELECT 1", HD_HINT_MAX_AGE, 60);
	expect("/* outer /* nested */ still */ /* hyperdrive: max-age=7 */ SELECT 1",
		   HD_HINT_MAX_AGE, 7);

	/* at the end */
	expect("SELECT 1 /* hyperdrive: max-age=300 */", HD_HINT_MAX_AGE, 300);
	expect("SELECT 1 /* hyperdrive: no-cache */ ;\n", HD_HINT_NO_CACHE, 0);
	expect("SELECT '/*' /* hyperdrive: max-age=9 */", HD_HINT_MAX_AGE, 9);

	/* two directives, two hints: when in doubt, less caching */
	expect("/* hyperdrive: max-age=5, no-cache */ SELECT 1", HD_HINT_NO_CACHE, 0);
	expect("/* hyperdrive: max-age=50 */ SELECT 1 /* hyperdrive: max-age=5 */", HD_HINT_MAX_AGE, 5);
	expect("/* hyperdrive: max-age=0 */ SELECT 1", HD_HINT_NO_CACHE, 0);

	/* not hints: inside a string, in the middle, in a line comment at the end */
	expect("SELECT '/* hyperdrive: no-cache */'", HD_HINT_NONE, 0);
	expect("SELECT 1 /* hyperdrive: no-cache */ + 1", HD_HINT_NONE, 0);
	expect("SELECT '-- hyperdrive: max-age=5'", HD_HINT_NONE, 0);
	expect("SELECT $$ /* hyperdrive: max-age=99 */$$", HD_HINT_NONE, 0);

	/* malformed: invalid (the caller does not cache) */
	expect("/* hyperdrive: max-age=abc */ SELECT 1", HD_HINT_INVALID, 0);
	expect("/* hyperdrive: max-age= */ SELECT 1", HD_HINT_INVALID, 0);
	expect("/* hyperdrive: cache-forever */ SELECT 1", HD_HINT_INVALID, 0);
	expect("/* hyperdrive: */ SELECT 1", HD_HINT_INVALID, 0);
	expect("/* hyperdrive: max-age=99999999999 */ SELECT 1", HD_HINT_INVALID, 0);
	expect("/* hyperdrive: no-cache SELECT 1", HD_HINT_NONE, 0);	/* unterminated: the origin says */

	printf("1..%d\n", test_number);
	return failures ? 1 : 0;
}
