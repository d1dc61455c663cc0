/*
 * cache_hint.h
 *    Per-statement cache control written in the statement's text, as an SQL
 *    comment (docs/cache.md, "Hints"), e.g.
 *
 *        -- hyperdrive: no-cache
 *        SELECT ...
 *
 *    or the same in a block comment before the statement, or a block
 *    comment as the last thing in the text (after it only blanks and
 *    semicolons): SELECT ... followed by "hyperdrive: max-age=300" between
 *    slash-star and star-slash.
 *
 * The comment's content starts with "hyperdrive:" followed by directives
 * separated by blanks or commas: "no-cache" (never served from or stored
 * in the cache) and "max-age=<seconds>" (the entry's freshness instead of
 * the config's max_age; 0 stores nothing). Other comments are never read,
 * so a string literal cannot hold a hint. A hint the parser does not
 * understand is HD_HINT_INVALID: the caller then does not cache (when in
 * doubt, do not).
 *
 * Contract: pure, no allocation; the text need not be NUL-terminated.
 */
#ifndef HD_CACHE_HINT_H
#define HD_CACHE_HINT_H

#include <stddef.h>
#include <stdint.h>

typedef enum HdHintKind
{
	HD_HINT_NONE,				/* no hint: the config's settings */
	HD_HINT_NO_CACHE,
	HD_HINT_MAX_AGE,			/* max_age_s holds the seconds */
	HD_HINT_INVALID
} HdHintKind;

typedef struct HdHint
{
	HdHintKind	kind;
	int64_t		max_age_s;
} HdHint;

#define HD_HINT_MAX_AGE_LIMIT (366 * 24 * 3600)	/* a year, at most */

extern void hd_cache_hint_parse(const char *sql, size_t len, HdHint *hint);

#endif							/* HD_CACHE_HINT_H */
