/*
 * test_store.c
 *    Unit tests of agent/cache/store.c, as a TAP program: make agent-unit &&
 *    agent/tests/test_store [DIR] (prove runs it through
 *    t/007_store_unit.pl). Each test uses a fresh store under DIR (or
 *    a directory of its own under $TMPDIR, removed at the end).
 *
 *    test_store.c opens a store's LMDB file itself only to fake one of
 *    another format (set_format_version()).
 *
 *    agent/tests/test_store --bench [DIR] is not a test: it prints
 *    puts, gets and invalidations per second for 100k entries.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "cache/store.h"
#include "cache/value_marks.h"

#define CFG1 "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"
#define CFG2 "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2"
#define NOW 1700000000000LL		/* ms since the epoch */

static int	tests_run = 0;
static int	tests_failed = 0;
static char base_dir[4096];
static int	dir_counter = 0;

static void
ok(bool condition, const char *fmt,...)
{
	va_list		ap;

	tests_run++;
	if (!condition)
		tests_failed++;
	printf("%sok %d - ", condition ? "" : "not ", tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void
diag(const char *fmt,...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void
bail(const char *what, const char *err)
{
	printf("Bail out! %s: %s\n", what, err);
	exit(2);
}

/* A fresh directory for one store. */
static const char *
new_dir(const char *name)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/%02d-%s", base_dir, ++dir_counter, name);
	return path;
}

static HdStore *
open_or_bail(const char *dir, const HdStoreOptions *opts)
{
	HdStore    *c;
	char		err[1024];

	if (hd_store_open(dir, opts, &c, err, sizeof(err)) != HD_STORE_OK)
		bail("hd_store_open", err);
	return c;
}

static void
close_or_bail(HdStore *c)
{
	char		err[1024];

	if (hd_store_close(c, err, sizeof(err)) != 0)
		bail("hd_store_close", err);
}

/* ---- thin wrappers: a key is "q<n>", its value "v<n>" repeated ---- */

#define MAX_TEST_DEPS 16

/* "All rows" of each relation (what a change without values, or an unbound read, names). */
static const HdDep *
relation_deps(const uint64_t *rels, size_t n, HdDep out[MAX_TEST_DEPS])
{
	if (n > MAX_TEST_DEPS)
		bail("relation_deps", "too many relations");
	for (size_t i = 0; i < n; i++)
		out[i] = hd_dep_relation(rels[i]);
	return n ? out : NULL;
}

static void
make_key(char *buf, size_t len, int n)
{
	snprintf(buf, len, "role=app db=app search_path=public SELECT * FROM t WHERE id = $1 [%d]", n);
}

static HdStorePutOutcome
put_full(HdStore *c, const char *cfg, int n, size_t vlen, const uint64_t *rels, size_t nrel,
		 uint64_t token, int64_t now, int64_t max_age, int64_t swr)
{
	char		key[128];
	char	   *value = malloc(vlen + 1);
	char		err[1024];
	HdStorePutOutcome outcome;
	HdStorePut	p = {0};
	HdDep		deps[MAX_TEST_DEPS];

	make_key(key, sizeof(key), n);
	for (size_t i = 0; i < vlen; i++)
		value[i] = (char) ('a' + (n + i) % 26);
	p.config_id = cfg;
	p.key = key;
	p.keylen = strlen(key);
	p.value = value;
	p.len = vlen;
	p.deps = relation_deps(rels, nrel, deps);
	p.ndeps = nrel;
	p.token = token;
	p.now_ms = now;
	p.max_age_ms = max_age;
	p.swr_ms = swr;
	if (hd_store_put(c, &p, &outcome, err, sizeof(err)) != 0)
		bail("hd_store_put", err);
	free(value);
	return outcome;
}

static HdStorePutOutcome
put(HdStore *c, const char *cfg, int n, const uint64_t *rels, size_t nrel)
{
	return put_full(c, cfg, n, 100, rels, nrel, hd_store_token(c), NOW, 60000, 15000);
}

/* The entry's status at `now`; checks the bytes of a hit. */
static HdStoreStatus
get_at(HdStore *c, const char *cfg, int n, size_t vlen, int64_t now)
{
	char		key[128];
	char		err[1024];
	HdStoreHit	hit;
	HdStoreStatus status;

	make_key(key, sizeof(key), n);
	if (hd_store_get(c, cfg, key, strlen(key), now, &hit, err, sizeof(err)) != 0)
		bail("hd_store_get", err);
	status = hit.status;
	if (status != HD_STORE_MISS)
	{
		bool		same = hit.len == vlen;

		for (size_t i = 0; same && i < vlen; i++)
			same = hit.bytes[i] == (char) ('a' + (n + i) % 26);
		if (!same)
			ok(false, "entry %d has the bytes it was stored with", n);
	}
	hd_store_hit_release(&hit);
	return status;
}

static bool
present(HdStore *c, const char *cfg, int n)
{
	return get_at(c, cfg, n, 100, NOW) == HD_STORE_FRESH;
}

static uint64_t
applied_lsn(HdStore *c, const char *cfg)
{
	uint64_t	lsn;
	char		err[1024];

	if (hd_store_applied_pos(c, cfg, &lsn, err, sizeof(err)) != 0)
		bail("hd_store_applied_pos", err);
	return lsn;
}

static uint64_t
invalidate(HdStore *c, const char *cfg, const uint64_t *rels, size_t n, uint64_t lsn)
{
	uint64_t	removed;
	char		err[1024];
	HdDep		deps[MAX_TEST_DEPS];

	if (hd_store_invalidate(c, cfg, relation_deps(rels, n, deps), n, lsn, &removed, err,
							sizeof(err)) != 0)
		bail("hd_store_invalidate", err);
	return removed;
}

static HdStoreStats
stats(HdStore *c)
{
	HdStoreStats s;

	hd_store_stats(c, &s);
	return s;
}

static HdStoreOptions
default_options(void)
{
	HdStoreOptions o;

	hd_store_options_init(&o);
	o.map_size = 64 << 20;
	return o;
}

/* ------------------------------------------------------------------------ */

static void
test_open(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("open");
	HdStore    *c = open_or_bail(dir, &o);
	HdStore    *second;
	struct stat st;
	char		err[1024];
	int			rc;

	ok(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "the directory is created 0700");
	rc = hd_store_open(dir, &o, &second, err, sizeof(err));
	ok(rc == HD_STORE_FAILED && second == NULL && strstr(err, "in use"),
	   "a second open of the same directory is refused: %s", err);
	ok(hd_store_wipe(dir, err, sizeof(err)) != 0 && strstr(err, "in use"),
	   "wiping an open store is refused");
	ok(stats(c).entries == 0, "a new store is empty");
	close_or_bail(c);
}

static void
test_put_get(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c = open_or_bail(new_dir("put-get"), &o);
	uint64_t	rels[] = {16384, 16390, 16384};
	char		key[128], err[1024];
	HdStoreHit	hit;
	HdStorePut	p = {0};
	HdStorePutOutcome outcome;

	ok(put(c, CFG1, 1, rels, 3) == HD_STORE_STORED, "put stores");
	make_key(key, sizeof(key), 1);
	ok(hd_store_get(c, CFG1, key, strlen(key), NOW + 5, &hit, err, sizeof(err)) == 0 &&
	   hit.status == HD_STORE_FRESH && hit.len == 100 && hit.created_ms == NOW &&
	   hit.expires_ms == NOW + 60000 && hit.stale_until_ms == NOW + 75000,
	   "get finds it fresh, with its times");
	ok(hit.bytes && hit.bytes[0] == 'b' && hit.bytes[99] == (char) ('a' + 100 % 26),
	   "with the bytes stored");
	hd_store_hit_release(&hit);
	ok(hit.bytes == NULL && hit.len == 0, "release frees the copy");
	ok(get_at(c, CFG1, 2, 100, NOW) == HD_STORE_MISS, "another key misses");
	ok(get_at(c, CFG2, 1, 100, NOW) == HD_STORE_MISS, "the same key of another config misses");

	/* replacing */
	ok(put_full(c, CFG1, 1, 300, rels, 1, hd_store_token(c), NOW, 60000, 0) == HD_STORE_STORED &&
	   get_at(c, CFG1, 1, 300, NOW) == HD_STORE_FRESH && stats(c).entries == 1,
	   "a second put replaces the entry");

	/* an empty value */
	p.config_id = CFG1;
	p.key = "empty";
	p.keylen = 5;
	p.now_ms = NOW;
	p.max_age_ms = 1000;
	ok(hd_store_put(c, &p, &outcome, err, sizeof(err)) == 0 && outcome == HD_STORE_STORED &&
	   hd_store_get(c, CFG1, "empty", 5, NOW, &hit, err, sizeof(err)) == 0 &&
	   hit.status == HD_STORE_FRESH && hit.len == 0 && hit.bytes != NULL,
	   "an empty response is stored and found");
	hd_store_hit_release(&hit);

	/* bad input is an error with a message, never a crash */
	p.config_id = "";
	ok(hd_store_put(c, &p, &outcome, err, sizeof(err)) == -1 && strstr(err, "config id"),
	   "an empty config id is refused: %s", err);
	p.config_id = CFG1 "x";
	ok(hd_store_put(c, &p, &outcome, err, sizeof(err)) == -1, "a 33-byte config id is refused");
	p.config_id = CFG1;
	p.deps = (const HdDep[]) {hd_dep_relation(5), hd_dep_relation(0)};
	p.ndeps = 2;
	ok(hd_store_put(c, &p, &outcome, err, sizeof(err)) == -1 && strstr(err, "relation 0"),
	   "relation 0 is refused: %s", err);
	ok(strcmp(hd_store_outcome_name(HD_STORE_SKIP_OVERSIZED), "oversized") == 0 &&
	   strcmp(hd_store_outcome_name(HD_STORE_SKIP_FULL), "full") == 0,
	   "outcome names");
	close_or_bail(c);
}

static void
test_ttl(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c = open_or_bail(new_dir("ttl"), &o);

	put_full(c, CFG1, 1, 100, NULL, 0, hd_store_token(c), NOW, 1000, 500);
	ok(get_at(c, CFG1, 1, 100, NOW + 999) == HD_STORE_FRESH, "fresh before max_age");
	ok(get_at(c, CFG1, 1, 100, NOW + 1000) == HD_STORE_STALE, "stale at max_age");
	ok(get_at(c, CFG1, 1, 100, NOW + 1499) == HD_STORE_STALE,
	   "stale until max_age + stale_while_revalidate");
	ok(get_at(c, CFG1, 1, 100, NOW + 1500) == HD_STORE_MISS && stats(c).expired == 1,
	   "a miss after that (counted as expired)");
	put_full(c, CFG1, 2, 100, NULL, 0, hd_store_token(c), NOW, 0, 0);
	ok(get_at(c, CFG1, 2, 100, NOW) == HD_STORE_MISS, "max_age 0 and no swr: never served");
	ok(stats(c).hits_fresh == 1 && stats(c).hits_stale == 2 && stats(c).misses == 2,
	   "hit and miss counters");
	close_or_bail(c);
}

static void
test_collision(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c;
	int			other = -1;

	o.test_hash_bytes = 1;		/* 256 possible hashes */
	c = open_or_bail(new_dir("collision"), &o);
	put(c, CFG1, 0, NULL, 0);
	for (int n = 1; n < 5000 && other < 0; n++)
	{
		uint64_t	before = stats(c).collisions;

		if (get_at(c, CFG1, n, 100, NOW) == HD_STORE_MISS && stats(c).collisions > before)
			other = n;
	}
	ok(other > 0, "found a key whose truncated hash collides with key 0 (key %d)", other);
	ok(present(c, CFG1, 0), "key 0 is still found with its own value");
	put(c, CFG1, other, NULL, 0);
	ok(present(c, CFG1, other) && !present(c, CFG1, 0) && stats(c).entries == 1,
	   "storing the colliding key replaces key 0, which then misses");
	close_or_bail(c);
}

static void
test_invalidate(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c = open_or_bail(new_dir("invalidate"), &o);
	uint64_t	r10[] = {10}, r10_20[] = {20, 10}, r20[] = {20}, r30[] = {30};
	uint64_t	inv20[] = {20}, inv10[] = {10}, none[] = {99};

	put(c, CFG1, 1, r10, 1);
	put(c, CFG1, 2, r10_20, 2);
	put(c, CFG1, 3, r20, 1);
	put(c, CFG1, 4, r30, 1);
	put(c, CFG1, 5, NULL, 0);
	put(c, CFG2, 1, r10, 1);
	put(c, CFG2, 2, r20, 1);

	ok(invalidate(c, CFG1, inv20, 1, 100) == 2, "invalidating relation 20 removes 2 entries");
	ok(!present(c, CFG1, 2) && !present(c, CFG1, 3), "the entries reading it are gone");
	ok(present(c, CFG1, 1) && present(c, CFG1, 4) && present(c, CFG1, 5),
	   "the unrelated entries stay");
	ok(present(c, CFG2, 2), "another config's entry on relation 20 stays");
	ok(applied_lsn(c, CFG1) == 100 && applied_lsn(c, CFG2) == 0,
	   "the LSN is recorded for that config only");

	ok(invalidate(c, CFG1, inv20, 1, 100) == 0 && applied_lsn(c, CFG1) == 100 &&
	   present(c, CFG1, 1), "applying the same record again is harmless");
	ok(invalidate(c, CFG1, inv10, 1, 90) == 1 && applied_lsn(c, CFG1) == 100,
	   "an older record still invalidates, and the LSN does not move back");
	ok(!present(c, CFG1, 1) && present(c, CFG2, 1), "relation 10 of config 1 only");
	ok(invalidate(c, CFG1, NULL, 0, 150) == 0 && applied_lsn(c, CFG1) == 150 &&
	   present(c, CFG1, 4), "a heartbeat moves the LSN only");
	ok(invalidate(c, CFG1, none, 1, 160) == 0 && stats(c).entries == 4,
	   "a relation nothing read removes nothing");

	/* invalidate all: one config */
	{
		uint64_t	removed;
		char		err[1024];

		int			rc = hd_store_invalidate_all(c, CFG1, 200, &removed, err, sizeof(err));

		ok(rc == 0 && removed == 2 && !present(c, CFG1, 4) && !present(c, CFG1, 5),
		   "invalidate-all removes every entry of the config (%llu)",
		   (unsigned long long) removed);
		ok(present(c, CFG2, 1) && present(c, CFG2, 2) && stats(c).entries == 2,
		   "and leaves the other config's");
		ok(applied_lsn(c, CFG1) == 200, "invalidate-all records the LSN");
		ok(stats(c).invalidated == 5, "invalidation counter");
	}
	close_or_bail(c);
}

static void
test_race_guard(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c = open_or_bail(new_dir("race"), &o);
	uint64_t	r40[] = {40}, r41[] = {41}, r40_41[] = {41, 40};
	uint64_t	before = hd_store_token(c);
	uint64_t	removed;
	char		err[1024];

	invalidate(c, CFG1, r40, 1, 10);
	ok(put_full(c, CFG1, 1, 100, r40_41, 2, before, NOW, 60000, 0) == HD_STORE_SKIP_RACED,
	   "a result read before its relation was invalidated is not stored");
	ok(put_full(c, CFG1, 2, 100, r41, 1, before, NOW, 60000, 0) == HD_STORE_STORED,
	   "one on another relation is");
	ok(put_full(c, CFG2, 3, 100, r40, 1, before, NOW, 60000, 0) == HD_STORE_STORED,
	   "and one of another config");
	ok(put_full(c, CFG1, 4, 100, r40, 1, hd_store_token(c), NOW, 60000, 0) == HD_STORE_STORED,
	   "a result read after the invalidation is stored");
	before = hd_store_token(c);
	hd_store_invalidate_all(c, CFG1, 20, &removed, err, sizeof(err));
	ok(put_full(c, CFG1, 5, 100, NULL, 0, before, NOW, 60000, 0) == HD_STORE_SKIP_RACED,
	   "invalidate-all refuses results read before it");
	before = hd_store_token(c);
	hd_store_purge(c, NULL, &removed, err, sizeof(err));
	ok(put_full(c, CFG2, 6, 100, NULL, 0, before, NOW, 60000, 0) == HD_STORE_SKIP_RACED,
	   "so does a purge");
	ok(stats(c).skipped_raced == 3, "raced counter");
	close_or_bail(c);
}

static void
test_purge_and_slot(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("slot");
	HdStore    *c = open_or_bail(dir, &o);
	uint64_t	r1[] = {1};
	uint64_t	removed;
	bool		reset;
	char		err[1024], ident[HD_STORE_IDENTITY_MAX + 1];

	ok(hd_store_bind_slot(c, CFG1, "7301/16384/hyperdrive_app", &reset, err, sizeof(err)) == 0 &&
	   reset, "binding a config the first time resets it");
	put(c, CFG1, 1, r1, 1);
	put(c, CFG2, 1, r1, 1);
	invalidate(c, CFG1, NULL, 0, 500);
	ok(hd_store_bind_slot(c, CFG1, "7301/16384/hyperdrive_app", &reset, err, sizeof(err)) == 0 &&
	   !reset && present(c, CFG1, 1) && applied_lsn(c, CFG1) == 500,
	   "binding the same slot again keeps entries and LSN");
	ok(hd_store_slot_identity(c, CFG1, ident, sizeof(ident), err, sizeof(err)) == 0 &&
	   strcmp(ident, "7301/16384/hyperdrive_app") == 0, "the identity is stored");
	ok(hd_store_slot_identity(c, CFG2, ident, sizeof(ident), err, sizeof(err)) == 0 &&
	   ident[0] == '\0', "an unbound config has none");
	close_or_bail(c);

	c = open_or_bail(dir, &o);
	ok(present(c, CFG1, 1) && present(c, CFG2, 1) && stats(c).entries == 2 &&
	   applied_lsn(c, CFG1) == 500, "reopened: entries and LSN survive (warm restart)");
	ok(hd_store_slot_identity(c, CFG1, ident, sizeof(ident), err, sizeof(err)) == 0 &&
	   strcmp(ident, "7301/16384/hyperdrive_app") == 0, "reopened: so does the identity");
	ok(hd_store_bind_slot(c, CFG1, "7301/16384/hyperdrive_app2", &reset, err, sizeof(err)) == 0 &&
	   reset && !present(c, CFG1, 1) && applied_lsn(c, CFG1) == 0 && present(c, CFG2, 1),
	   "another slot: the config's entries go and its LSN restarts at 0");

	put(c, CFG1, 2, r1, 1);
	ok(hd_store_purge(c, CFG2, &removed, err, sizeof(err)) == 0 && removed == 1 &&
	   !present(c, CFG2, 1) && present(c, CFG1, 2), "purging a config removes only its entries");
	put(c, CFG2, 3, r1, 1);
	ok(hd_store_purge(c, NULL, &removed, err, sizeof(err)) == 0 && removed == 2 &&
	   stats(c).entries == 0 && stats(c).bytes == 0, "purging everything empties the cache");
	ok(applied_lsn(c, CFG1) == 0 &&
	   hd_store_slot_identity(c, CFG1, ident, sizeof(ident), err, sizeof(err)) == 0 &&
	   ident[0] != '\0', "a purge keeps LSNs and identities");
	put(c, CFG1, 4, r1, 1);
	ok(hd_store_bind_slot(c, CFG1, "", &reset, err, sizeof(err)) == 0 && reset &&
	   !present(c, CFG1, 4), "binding \"\" forgets a config");
	close_or_bail(c);
}

/*
 * A failed invalidation fences its config only, until that config is
 * purged. The failure is real: a file size limit (RLIMIT_FSIZE, with
 * SIGXFSZ ignored as the agent does) below the data file's pages makes
 * LMDB's writes fail with EFBIG, as a full disk fails them with ENOSPC.
 */
static void
test_fence(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c = open_or_bail(new_dir("fence"), &o);
	uint64_t	r1[] = {1};
	HdDep		d1[] = {hd_dep_relation(1)};
	uint64_t	removed = 0;
	struct rlimit saved, low;
	char		key[128], err[1024], err2[1024];
	HdStoreHit	hit;
	int			rc;

	put(c, CFG1, 1, r1, 1);
	put(c, CFG2, 1, r1, 1);
	if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || getrlimit(RLIMIT_FSIZE, &saved) != 0)
		bail("fence", "cannot set up a file size limit");
	low = saved;
	low.rlim_cur = 8192;		/* LMDB's two meta pages: every other page write fails */
	if (setrlimit(RLIMIT_FSIZE, &low) != 0)
		bail("fence", "cannot lower the file size limit");
	rc = hd_store_invalidate(c, CFG1, d1, 1, 10, &removed, err, sizeof(err));
	if (setrlimit(RLIMIT_FSIZE, &saved) != 0)
		bail("fence", "cannot restore the file size limit");
	ok(rc != 0, "an invalidation that cannot be written fails: %s", err);
	make_key(key, sizeof(key), 1);
	ok(hd_store_fenced(c, CFG1) &&
	   hd_store_get(c, CFG1, key, strlen(key), NOW, &hit, err2, sizeof(err2)) != 0 &&
	   strstr(err2, "fenced") != NULL, "its config is fenced: lookups fail (%s)", err2);
	hd_store_hit_release(&hit);
	ok(!hd_store_fenced(c, CFG2) && present(c, CFG2, 1), "another config's entries stay in use");
	{
		HdStorePut	p = {0};
		HdStorePutOutcome outcome;

		p.config_id = CFG1;
		p.key = key;
		p.keylen = strlen(key);
		p.value = "v";
		p.len = 1;
		p.deps = d1;
		p.ndeps = 1;
		p.token = hd_store_token(c);
		p.now_ms = NOW;
		p.max_age_ms = 60000;
		ok(hd_store_put(c, &p, &outcome, err2, sizeof(err2)) != 0 && strstr(err2, "fenced"),
		   "and puts of the fenced config fail");
	}
	ok(hd_store_purge(c, CFG2, &removed, err, sizeof(err)) == 0 && hd_store_fenced(c, CFG1),
	   "purging another config does not lift the fence");
	ok(hd_store_purge(c, CFG1, &removed, err, sizeof(err)) == 0 && removed == 1 &&
	   !hd_store_fenced(c, CFG1), "purging the config lifts its fence: %s",
	   removed == 1 ? "its entry removed" : err);
	ok(get_at(c, CFG1, 1, 100, NOW) == HD_STORE_MISS && put(c, CFG1, 2, r1, 1) == HD_STORE_STORED &&
	   present(c, CFG1, 2), "then it is used again");
	close_or_bail(c);
}

static void
test_eviction(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c;
	uint64_t	max_seen = 0;
	bool		kept = true;

	o.max_bytes = 64 * 1024;
	c = open_or_bail(new_dir("lru"), &o);
	for (int n = 0; n < 500; n++)
	{
		uint64_t	rel = 1000 + n % 7;

		put_full(c, CFG1, n, 1000, &rel, 1, hd_store_token(c), NOW, 60000, 0);
		if (stats(c).bytes > max_seen)
			max_seen = stats(c).bytes;
		/* keep entry 0 recently used */
		if (get_at(c, CFG1, 0, 1000, NOW) != HD_STORE_FRESH)
			kept = false;
	}
	ok(max_seen <= o.max_bytes, "the total never exceeds max_bytes (%llu <= %llu)",
	   (unsigned long long) max_seen, (unsigned long long) o.max_bytes);
	ok(stats(c).evictions >= 400 && stats(c).entries < 64 && stats(c).entries > 40,
	   "least recently used entries were evicted (%llu evictions, %llu left)",
	   (unsigned long long) stats(c).evictions, (unsigned long long) stats(c).entries);
	ok(kept, "an entry used all along survives");
	ok(get_at(c, CFG1, 1, 1000, NOW) == HD_STORE_MISS && get_at(c, CFG1, 250, 1000, NOW) ==
	   HD_STORE_MISS && get_at(c, CFG1, 499, 1000, NOW) == HD_STORE_FRESH,
	   "old unused entries are gone, the newest is there");
	{
		uint64_t	rel = 1000;

		ok(invalidate(c, CFG1, &rel, 1, 1) > 0 && get_at(c, CFG1, 0, 1000, NOW) ==
		   HD_STORE_MISS, "evicted entries left no index rows behind (invalidation works)");
	}
	close_or_bail(c);

	o = default_options();
	o.max_entries = 10;
	c = open_or_bail(new_dir("max-entries"), &o);
	for (int n = 0; n < 30; n++)
		put(c, CFG1, n, NULL, 0);
	ok(stats(c).entries == 10 && !present(c, CFG1, 19) && present(c, CFG1, 20) &&
	   present(c, CFG1, 29), "max_entries keeps the 10 newest");
	close_or_bail(c);
}

static void
test_limits(void)
{
	HdStoreOptions o = default_options();
	HdStore    *c;
	int			stored = 0, full = 0;
	bool		quiet = true;
	char		err[1024];
	uint64_t	removed;

	o.max_entry_bytes = 1000;
	c = open_or_bail(new_dir("oversized"), &o);
	ok(put_full(c, CFG1, 1, 2000, NULL, 0, hd_store_token(c), NOW, 1000, 0) ==
	   HD_STORE_SKIP_OVERSIZED && stats(c).entries == 0 && stats(c).skipped_oversized == 1,
	   "an entry over max_entry_bytes is refused as oversized");
	ok(put_full(c, CFG1, 2, 500, NULL, 0, hd_store_token(c), NOW, 1000, 0) == HD_STORE_STORED,
	   "a smaller one is stored");
	close_or_bail(c);

	/* a tiny map, with limits that would never evict: LMDB fills up first */
	o = default_options();
	o.map_size = 256 * 1024;
	o.max_bytes = 1ull << 40;
	o.max_entry_bytes = 1ull << 30;
	c = open_or_bail(new_dir("map-full"), &o);
	for (int n = 0; n < 400; n++)
	{
		uint64_t	rels[] = {1, 2, (uint64_t) (3 + n)};
		HdStorePutOutcome r = put_full(c, CFG1, n, 3000, rels, 3, hd_store_token(c), NOW,
									   60000, 0);

		stored += r == HD_STORE_STORED;
		full += r == HD_STORE_SKIP_FULL;
		quiet = quiet && (r == HD_STORE_STORED || r == HD_STORE_SKIP_FULL);
	}
	ok(quiet && stored == 400, "with a 256 kB map 400 puts of 3 kB are all stored "
	   "(%d stored, %d skipped, %llu map-full evictions)", stored, full,
	   (unsigned long long) stats(c).map_full);
	ok(stats(c).map_full > 0 && stats(c).evictions > 0, "MDB_MAP_FULL was met by evicting");
	ok(get_at(c, CFG1, 399, 3000, NOW) == HD_STORE_FRESH, "the last entry is there");
	ok(put_full(c, CFG1, 1000, 1 << 20, NULL, 0, hd_store_token(c), NOW, 60000, 0) ==
	   HD_STORE_SKIP_FULL, "an entry larger than the map is skipped as full, not an error");
	ok(hd_store_invalidate_all(c, CFG1, 5, &removed, err, sizeof(err)) == 0 &&
	   applied_lsn(c, CFG1) == 5, "invalidation still works on the full map");
	ok(put_full(c, CFG1, 7, 3000, NULL, 0, hd_store_token(c), NOW, 60000, 0) == HD_STORE_STORED,
	   "and so do puts");
	close_or_bail(c);
}

/* A child that writes, tells the parent, and waits to be killed. */
static void
test_kill_idle(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("kill-idle");
	int			fds[2];
	char		byte;
	pid_t		pid;
	HdStore    *c;

	if (pipe(fds) != 0)
		bail("pipe", strerror(errno));
	fflush(stdout);
	if ((pid = fork()) == 0)
	{
		uint64_t	r[] = {7};

		c = open_or_bail(dir, &o);
		for (int n = 0; n < 50; n++)
			put(c, CFG1, n, r, n % 2);	/* the odd ones read relation 7 */
		invalidate(c, CFG1, r, 1, 77);
		if (write(fds[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fds[1]);
	ok(read(fds[0], &byte, 1) == 1, "the child committed its writes");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	c = open_or_bail(dir, &o);
	ok(stats(c).entries == 25 && present(c, CFG1, 0) && present(c, CFG1, 48) &&
	   !present(c, CFG1, 1) && applied_lsn(c, CFG1) == 77,
	   "after kill -9 the committed entries, invalidation and LSN are there");
	close_or_bail(c);

	/* and one that just _exit()s without closing */
	dir = new_dir("exit-unclosed");
	fflush(stdout);
	if ((pid = fork()) == 0)
	{
		c = open_or_bail(dir, &o);
		put(c, CFG1, 1, NULL, 0);
		invalidate(c, CFG1, NULL, 0, 9);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	c = open_or_bail(dir, &o);
	ok(present(c, CFG1, 1) && applied_lsn(c, CFG1) == 9,
	   "after _exit without closing the committed data is there");
	close_or_bail(c);
}

/*
 * Killed while writing: iteration i stores entry i (reading relation
 * 1000 + i) and applies a record that invalidates relation 1000 + i - 1 at
 * LSN i. Whenever it dies, LSN L means entry L is there and entries < L are
 * not: the invalidations and the LSN moved together.
 */
static void
test_kill_busy(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("kill-busy");
	int			fds[2];
	char		byte;
	pid_t		pid;
	HdStore    *c;
	uint64_t	lsn;
	bool		gone = true;

	if (pipe(fds) != 0)
		bail("pipe", strerror(errno));
	fflush(stdout);
	if ((pid = fork()) == 0)
	{
		c = open_or_bail(dir, &o);
		for (uint64_t i = 1;; i++)
		{
			uint64_t	mine = 1000 + i, previous = 1000 + i - 1;

			put(c, CFG1, (int) i, &mine, 1);
			invalidate(c, CFG1, &previous, 1, i);
			if (i == 200 && write(fds[1], "x", 1) != 1)
				_exit(1);
		}
	}
	close(fds[1]);
	ok(read(fds[0], &byte, 1) == 1, "the child is writing");
	usleep(20000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	c = open_or_bail(dir, &o);	/* with the full check */
	lsn = applied_lsn(c, CFG1);
	for (uint64_t i = 1; i < lsn; i += (lsn > 400 ? lsn / 200 : 1))
		gone = gone && !present(c, CFG1, (int) i);
	ok(lsn >= 200 && present(c, CFG1, (int) lsn) && gone && !present(c, CFG1, (int) lsn - 1) &&
	   stats(c).entries <= 2, "killed mid-write at LSN %llu: the store is whole, and entries "
	   "and LSN agree (%llu entries)", (unsigned long long) lsn,
	   (unsigned long long) stats(c).entries);
	close_or_bail(c);
}

static void
write_at(const char *path, off_t offset, size_t len, int byte)
{
	char	   *buf = malloc(len);
	int			fd = open(path, O_WRONLY);

	memset(buf, byte, len);
	if (fd < 0 || pwrite(fd, buf, len, offset) != (ssize_t) len)
		bail("overwriting", path);
	close(fd);
	free(buf);
}

/* A store with some entries, closed; returns the data file's size. */
static off_t
populated(const char *dir, const HdStoreOptions *o, char *data, size_t datalen)
{
	HdStore    *c = open_or_bail(dir, o);
	struct stat st;

	for (int n = 0; n < 300; n++)
	{
		uint64_t	rel = (uint64_t) (n % 13 + 1);

		put_full(c, CFG1, n, 700, &rel, 1, hd_store_token(c), NOW, 60000, 0);
	}
	close_or_bail(c);
	snprintf(data, datalen, "%s/data.mdb", dir);
	if (stat(data, &st) != 0)
		bail("stat", data);
	return st.st_size;
}

static void
expect_damaged(const char *dir, const HdStoreOptions *o, const char *what)
{
	HdStore    *c;
	char		err[1024];
	int			rc = hd_store_open(dir, o, &c, err, sizeof(err));

	ok(rc == HD_STORE_DAMAGED && c == NULL, "%s: reported damaged: %s", what, err);
	if (rc == HD_STORE_OK)
		close_or_bail(c);
	ok(hd_store_wipe(dir, err, sizeof(err)) == 0 &&
	   hd_store_open(dir, o, &c, err, sizeof(err)) == HD_STORE_OK && stats(c).entries == 0,
	   "%s: after a wipe it opens empty", what);
	if (c)
		close_or_bail(c);
}

static void
test_corruption(void)
{
	HdStoreOptions o = default_options();
	char		data[4300], path[4300];
	const char *dir;
	off_t		size;
	FILE	   *f;

	dir = new_dir("truncated");
	size = populated(dir, &o, data, sizeof(data));
	if (size < 64 * 1024 || truncate(data, 32 * 1024) != 0)
		bail("truncate", data);
	expect_damaged(dir, &o, "a truncated data.mdb");

	dir = new_dir("bad-meta");
	populated(dir, &o, data, sizeof(data));
	write_at(data, 0, 8192, 0x5a);
	expect_damaged(dir, &o, "overwritten meta pages");

	dir = new_dir("bad-pages");
	size = populated(dir, &o, data, sizeof(data));
	write_at(data, 8192, (size_t) size - 8192, 0xa5);
	expect_damaged(dir, &o, "overwritten data pages");

	dir = new_dir("bad-entry");
	size = populated(dir, &o, data, sizeof(data));
	write_at(data, 16 * 4096, 4096, 0x00);
	expect_damaged(dir, &o, "a zeroed page in the middle");

	dir = new_dir("incompatible");
	populated(dir, &o, data, sizeof(data));
	o.test_hash_bytes = 8;
	expect_damaged(dir, &o, "a store of another format");
	o.test_hash_bytes = 0;

	dir = new_dir("reboot");
	populated(dir, &o, data, sizeof(data));
	snprintf(path, sizeof(path), "%s/unsynced", dir);
	if ((f = fopen(path, "w")) == NULL)
		bail("fopen", path);
	fputs("00000000-0000-0000-0000-000000000000\n", f);
	fclose(f);
	expect_damaged(dir, &o, "unsynced writes from before a system restart");

	dir = new_dir("not-lmdb");
	if (mkdir(dir, 0700) != 0 || (snprintf(data, sizeof(data), "%s/data.mdb", dir),
								  (f = fopen(data, "w")) == NULL))
		bail("creating", dir);
	fputs("this is not an LMDB file, just some text that happens to be here\n", f);
	fclose(f);
	expect_damaged(dir, &o, "a file that is not LMDB");
}

static void
test_sync(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("sync");
	HdStore    *c = open_or_bail(dir, &o);
	char		err[1024], path[4300];
	struct stat st;

	snprintf(path, sizeof(path), "%s/unsynced", dir);
	ok(stat(path, &st) == 0, "an open store without sync_commits is marked unsynced");
	put(c, CFG1, 1, NULL, 0);
	ok(hd_store_sync(c, err, sizeof(err)) == 0, "sync");
	close_or_bail(c);
	ok(stat(path, &st) != 0 && errno == ENOENT, "a clean close removes the marker");

	o.sync_commits = true;
	c = open_or_bail(dir, &o);
	ok(present(c, CFG1, 1) && stat(path, &st) != 0,
	   "with sync_commits there is no marker, and the data is there");
	put(c, CFG1, 2, NULL, 0);
	close_or_bail(c);
}

/* Poll the sync started last until it is no longer RUNNING. */
static HdStoreSyncState
sync_wait(HdStore *c, char *err, size_t errlen)
{
	HdStoreSyncState st;

	while ((st = hd_store_sync_poll(c, err, errlen)) == HD_STORE_SYNC_RUNNING)
		usleep(1000);
	return st;
}

static void
test_sync_thread(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("sync-thread");
	HdStore    *c = open_or_bail(dir, &o);
	char		err[1024], path[4300];
	struct stat st;
	HdPos		pos = 0;

	ok(hd_store_sync_poll(c, err, sizeof(err)) == HD_STORE_SYNC_IDLE, "no sync started: IDLE");
	put(c, CFG1, 1, NULL, 0);
	ok(hd_store_invalidate(c, CFG1, NULL, 0, 10, NULL, err, sizeof(err)) == 0, "position 10 applied");
	ok(hd_store_sync_start(c, err, sizeof(err)) == 0, "a sync starts in its thread");
	ok(hd_store_sync_start(c, err, sizeof(err)) == -1 && strstr(err, "already running") != NULL,
	   "a second start before the first was reported fails: %s", err);
	put(c, CFG1, 2, NULL, 0);
	ok(hd_store_invalidate(c, CFG1, NULL, 0, 20, NULL, err, sizeof(err)) == 0 && present(c, CFG1, 2),
	   "the store is written and read while it runs");
	ok(sync_wait(c, err, sizeof(err)) == HD_STORE_SYNC_DONE, "it is reported DONE");
	ok(hd_store_sync_poll(c, err, sizeof(err)) == HD_STORE_SYNC_IDLE, "once: then IDLE");
	ok(hd_store_applied_pos(c, CFG1, &pos, err, sizeof(err)) == 0 && pos == 20, "the position is 20");

	ok(hd_store_sync_start(c, err, sizeof(err)) == 0 && hd_store_sync(c, err, sizeof(err)) == 0,
	   "hd_store_sync() while a sync thread runs waits for it, then syncs");
	ok(hd_store_sync_poll(c, err, sizeof(err)) == HD_STORE_SYNC_IDLE, "whose result is then not reported");

	ok(hd_store_sync_start(c, err, sizeof(err)) == 0, "a sync starts");
	close_or_bail(c);			/* waits for it */
	snprintf(path, sizeof(path), "%s/unsynced", dir);
	ok(stat(path, &st) != 0 && errno == ENOENT, "closing while it runs is a clean close");
	c = open_or_bail(dir, &o);
	ok(present(c, CFG1, 1) && present(c, CFG1, 2), "and everything is there after a reopen");
	close_or_bail(c);
}

/* A put of entry n with the given deps (values included). */
static HdStorePutOutcome
put_deps(HdStore *c, const char *cfg, int n, const HdDep *deps, size_t ndeps, uint64_t token)
{
	char		key[128];
	char		value[100];
	char		err[1024];
	HdStorePutOutcome outcome;
	HdStorePut	p = {0};

	make_key(key, sizeof(key), n);
	for (size_t i = 0; i < sizeof(value); i++)
		value[i] = (char) ('a' + (n + i) % 26);
	p.config_id = cfg;
	p.key = key;
	p.keylen = strlen(key);
	p.value = value;
	p.len = sizeof(value);
	p.deps = deps;
	p.ndeps = ndeps;
	p.token = token;
	p.now_ms = NOW;
	p.max_age_ms = 60000;
	if (hd_store_put(c, &p, &outcome, err, sizeof(err)) != 0)
		bail("hd_store_put", err);
	return outcome;
}

static uint64_t
invalidate_deps(HdStore *c, const char *cfg, const HdDep *deps, size_t ndeps, HdPos pos)
{
	uint64_t	removed;
	char		err[1024];

	if (hd_store_invalidate(c, cfg, deps, ndeps, pos, &removed, err, sizeof(err)) != 0)
		bail("hd_store_invalidate", err);
	return removed;
}

/* A dep on rows of relation's column whose values hash to values[0..n). */
static HdDep
value_dep(uint64_t relation, uint32_t column, const uint64_t *values, uint32_t n)
{
	HdDep		d = {relation, column, n, values};

	return d;
}

/*
 * Deps with values: no producer sends them yet, but an entry whose deps on
 * a relation all carry values falls only to a change that overlaps them
 * (hd_dep_overlaps()), also after a reopen (they are on disk).
 */
static void
test_values(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("values");
	HdStore    *c = open_or_bail(dir, &o);
	/* 64-bit relation ids: no OID fits them */
	const uint64_t R = 0x100000000ULL + 50,
				R2 = 0x100000000ULL + 51;
	uint64_t	h12[] = {11, 12},
				h3[] = {13},
				h1[] = {11},
				h9[] = {19},
				h4[] = {14},
				h5[] = {15},
				h2[] = {12},
				h57[] = {17, 15},
				h8[] = {18};
	HdDep		a[] = {value_dep(R, 2, h12, 2)},
				b[] = {value_dep(R, 2, h3, 1)},
				all[] = {hd_dep_relation(R)},
				other_col[] = {value_dep(R, 3, h1, 1)},
				two_cols[] = {value_dep(R, 2, h1, 1), value_dep(R, 3, h9, 1)},
				f[] = {value_dep(R2, 2, h1, 1)},
				merged[] = {value_dep(R, 2, h4, 1), value_dep(R, 2, h5, 1)},
				bad[] = {value_dep(R, 2, NULL, 1)};
	char		err[1024];
	uint64_t	before = hd_store_token(c);

	put_deps(c, CFG1, 1, a, 1, hd_store_token(c));
	put_deps(c, CFG1, 2, b, 1, hd_store_token(c));
	put_deps(c, CFG1, 3, all, 1, hd_store_token(c));
	put_deps(c, CFG1, 4, other_col, 1, hd_store_token(c));
	put_deps(c, CFG1, 5, two_cols, 2, hd_store_token(c));
	put_deps(c, CFG1, 6, f, 1, hd_store_token(c));
	ok(put_deps(c, CFG1, 7, merged, 2, hd_store_token(c)) == HD_STORE_STORED &&
	   stats(c).entries == 7, "entries with value deps are stored");
	close_or_bail(c);
	c = open_or_bail(dir, &o);	/* with the full check: value deps are read back */
	ok(stats(c).entries == 7, "and they pass the check at open");

	{
		HdDep		change[] = {value_dep(R, 2, h2, 1)};

		ok(invalidate_deps(c, CFG1, change, 1, 10) == 4,
		   "a change of one value removes 4 entries");
	}
	ok(!present(c, CFG1, 1), "the entry with that value goes");
	ok(!present(c, CFG1, 3), "so does the one on all rows of the relation");
	ok(!present(c, CFG1, 4), "and the one with values of another column");
	ok(!present(c, CFG1, 5), "and the one with values of two columns (all rows)");
	ok(present(c, CFG1, 2) && present(c, CFG1, 7),
	   "entries with other values of the column stay");
	ok(present(c, CFG1, 6), "an entry with the same value of another relation stays");
	{
		HdDep		change[] = {value_dep(R, 2, h57, 2)};

		ok(invalidate_deps(c, CFG1, change, 1, 11) == 1 && !present(c, CFG1, 7) &&
		   present(c, CFG1, 2), "two deps of one column are both kept (merged)");
	}
	{
		HdDep		change[] = {value_dep(R2, 2, h8, 1)};

		ok(invalidate_deps(c, CFG1, change, 1, 12) == 0 && present(c, CFG1, 6),
		   "a value nothing read removes nothing");
	}
	ok(invalidate_deps(c, CFG1, all, 1, 13) == 1 && !present(c, CFG1, 2),
	   "a change of all rows removes the entries with values");
	ok(invalidate_deps(c, CFG1, f, 1, 14) == 1 && stats(c).entries == 0 &&
	   applied_lsn(c, CFG1) == 14, "and the last value goes with its own change");

	/* (test_value_marks: the race guard of changes with values) */
	ok(put_deps(c, CFG1, 8, b, 1, before) == HD_STORE_SKIP_RACED,
	   "a put read before a change of every row of its relation is refused");
	ok(hd_store_put(c, &(HdStorePut) {.config_id = CFG1, .key = "k", .keylen = 1,
				.deps = bad, .ndeps = 1, .now_ms = NOW}, &(HdStorePutOutcome) {0},
				err, sizeof(err)) == -1 && strstr(err, "no array"),
	   "values without their array are refused: %s", err);

	/* the value index: columns on either side of the change's, other configs */
	{
		uint64_t	h21[] = {21},
					h22[] = {22},
					h23[] = {23};
		HdDep		high[] = {value_dep(R, 5, h21, 1)},
					same[] = {value_dep(R, 2, h22, 1)},
					low[] = {value_dep(R, 1, h23, 1)},
					change[] = {value_dep(R, 2, h23, 1)};

		put_deps(c, CFG1, 9, high, 1, hd_store_token(c));
		put_deps(c, CFG1, 10, same, 1, hd_store_token(c));
		put_deps(c, CFG1, 11, low, 1, hd_store_token(c));
		put_deps(c, CFG2, 12, same, 1, hd_store_token(c));
		put_deps(c, CFG2, 13, high, 1, hd_store_token(c));
		ok(invalidate_deps(c, CFG1, change, 1, 15) == 2 && !present(c, CFG1, 9) &&
		   !present(c, CFG1, 11), "a change of column 2 removes the entries bound to columns 1 and 5");
		ok(present(c, CFG1, 10), "not the one bound to another value of column 2");
		ok(present(c, CFG2, 12) && present(c, CFG2, 13), "nor another config's");
		ok(invalidate_deps(c, CFG2, same, 1, 16) == 2 && stats(c).entries == 1,
		   "in that config, a change of its value removes both of its entries");
	}
	close_or_bail(c);
	c = open_or_bail(dir, &o);	/* the full check counts the value index's rows */
	ok(stats(c).entries == 1 && present(c, CFG1, 10),
	   "after all that, the indexes agree with the entries at open");
	close_or_bail(c);
}

/*
 * The put race guard of changes with values: a put read before such a
 * change is refused only when the change may touch what it read (the same
 * value of the same column, or values of another column, or every row);
 * marks are pruned below the oldest put in flight; a change with more values
 * than the marks may hold marks its whole relation.
 */
static void
test_value_marks(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("value_marks");
	HdStore    *c = open_or_bail(dir, &o);
	const uint64_t R = 60,
				R2 = 61;
	uint64_t	h12[] = {12},
				h13[] = {13},
				h14[] = {14};
	HdDep		v12[] = {value_dep(R, 2, h12, 1)},
				v13[] = {value_dep(R, 2, h13, 1)},
				v14[] = {value_dep(R, 2, h14, 1)},
				col3[] = {value_dep(R, 3, h12, 1)},
				all[] = {hd_dep_relation(R)},
				other[] = {value_dep(R2, 2, h12, 1)};
	uint64_t	t0 = hd_store_token(c);
	uint64_t	t1;
	uint64_t   *many = malloc((HD_MARKS_MAX + 1) * sizeof(uint64_t));

	if (many == NULL)
		bail("malloc", "out of memory");
	invalidate_deps(c, CFG1, v12, 1, 20);	/* rows whose column 2 was (or is) 12 */
	ok(put_deps(c, CFG1, 1, v13, 1, t0) == HD_STORE_STORED,
	   "a put read before a change of value 12 but bound to value 13 is stored");
	ok(put_deps(c, CFG1, 2, v12, 1, t0) == HD_STORE_SKIP_RACED,
	   "one bound to value 12 is refused");
	ok(put_deps(c, CFG1, 3, col3, 1, t0) == HD_STORE_SKIP_RACED,
	   "one bound to values of another column of the relation is refused");
	ok(put_deps(c, CFG1, 4, all, 1, t0) == HD_STORE_SKIP_RACED,
	   "one that read every row of the relation is refused");
	ok(put_deps(c, CFG1, 5, other, 1, t0) == HD_STORE_STORED,
	   "one bound to value 12 of another relation is stored");
	ok(put_deps(c, CFG2, 6, v12, 1, t0) == HD_STORE_STORED,
	   "another config's put on the same value is stored (its own changes only)");
	t1 = hd_store_token(c);
	ok(put_deps(c, CFG1, 7, v12, 1, t1) == HD_STORE_STORED,
	   "a put read after the change is stored");

	invalidate_deps(c, CFG1, all, 1, 21);
	ok(put_deps(c, CFG1, 8, v14, 1, t1) == HD_STORE_SKIP_RACED,
	   "a change of every row refuses a put bound to any value");

	hd_store_forget_marks(c, t1);
	ok(put_deps(c, CFG1, 9, v12, 1, t0) == HD_STORE_SKIP_RACED,
	   "marks above the oldest token stay (and the relation's mark too)");
	hd_store_forget_marks(c, hd_store_token(c));
	close_or_bail(c);

	/* a fresh store: a change with more values than the marks hold */
	dir = new_dir("value_marks_cap");
	c = open_or_bail(dir, &o);
	t0 = hd_store_token(c);
	invalidate_deps(c, CFG1, v12, 1, 30);
	hd_store_forget_marks(c, hd_store_token(c));
	ok(put_deps(c, CFG1, 10, v12, 1, t0) == HD_STORE_STORED,
	   "forgotten marks refuse nothing (no put that old is in flight, the caller said)");
	t0 = hd_store_token(c);
	for (uint32_t i = 0; i <= HD_MARKS_MAX; i++)
		many[i] = 100000 + i;
	{
		HdDep		huge[] = {value_dep(R, 2, many, HD_MARKS_MAX + 1)};

		invalidate_deps(c, CFG1, huge, 1, 31);
	}
	ok(put_deps(c, CFG1, 11, v13, 1, t0) == HD_STORE_SKIP_RACED,
	   "more values than HD_MARKS_MAX: the whole relation is marked, any value is refused");
	free(many);
	close_or_bail(c);
}

/*
 * Set the format record's version, as an older or newer agent would have
 * written it, and add a record the current format cannot parse (it must
 * not be read).
 */
static void
set_format_version(const char *dir, const HdStoreOptions *o, uint32_t version)
{
	MDB_env    *env;
	MDB_txn    *txn;
	MDB_dbi		meta,
				entries;
	MDB_val		k = {6, "format"};
	MDB_val		v;
	unsigned char record[32];
	unsigned char junk_key[32] = {0};
	MDB_val		jk = {sizeof(junk_key), junk_key};
	MDB_val		jv = {10, "v1 record!"};

	if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 8) != 0 ||
		mdb_env_set_mapsize(env, o->map_size) != 0 || mdb_env_open(env, dir, 0, 0600) != 0 ||
		mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
		mdb_dbi_open(txn, "meta", 0, &meta) != 0 ||
		mdb_dbi_open(txn, "entries", 0, &entries) != 0 ||
		mdb_get(txn, meta, &k, &v) != 0 || v.mv_size > sizeof(record))
		bail("set_format_version", dir);
	memcpy(record, v.mv_data, v.mv_size);
	memcpy(record + 8, &version, 4);	/* after the 8-byte magic */
	v.mv_data = record;
	if (mdb_put(txn, meta, &k, &v, 0) != 0 || mdb_put(txn, entries, &jk, &jv, 0) != 0 ||
		mdb_txn_commit(txn) != 0)
		bail("set_format_version", "writing");
	mdb_env_close(env);
}

/*
 * A store of an older format is emptied at open, and says so; one of a
 * newer format is damaged.
 */
static void
test_format(void)
{
	HdStoreOptions o = default_options();
	const char *dir = new_dir("format");
	HdStore    *c = open_or_bail(dir, &o);
	uint64_t	r1[] = {1};
	bool		reset;
	char		err[1024], ident[HD_STORE_IDENTITY_MAX + 1];
	const char *notice;

	ok(hd_store_open_notice(c) == NULL, "a new store has nothing to say at open");
	hd_store_bind_slot(c, CFG1, "slot", &reset, err, sizeof(err));
	put(c, CFG1, 1, r1, 1);
	invalidate(c, CFG1, NULL, 0, 42);
	close_or_bail(c);
	set_format_version(dir, &o, 1);

	c = open_or_bail(dir, &o);
	notice = hd_store_open_notice(c);
	ok(notice && strstr(notice, "format 1 found, this agent writes format 3: purged") != NULL,
	   "a format 1 store opens, and the open says it was purged: %s", notice ? notice : "");
	ok(stats(c).entries == 0 && !present(c, CFG1, 1), "it is empty");
	ok(applied_lsn(c, CFG1) == 0 &&
	   hd_store_slot_identity(c, CFG1, ident, sizeof(ident), err, sizeof(err)) == 0 &&
	   ident[0] == '\0', "positions and identities went too (as after a wipe)");
	ok(put(c, CFG1, 2, r1, 1) == HD_STORE_STORED && present(c, CFG1, 2), "and it is used");
	close_or_bail(c);
	c = open_or_bail(dir, &o);
	ok(hd_store_open_notice(c) == NULL && present(c, CFG1, 2),
	   "reopened: format 3 now, nothing to say, the entry is there");
	close_or_bail(c);

	set_format_version(dir, &o, 3);
	expect_damaged(dir, &o, "a store of a newer format");
}

/* ------------------------------------------------------------------------
 * --bench
 */

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A lookup as the agent would do it: the length of a hit, 0 on a miss. */
static size_t
bench_get(HdStore *c, const char *cfg, int n)
{
	char		key[128], err[1024];
	HdStoreHit	hit;
	size_t		len;

	make_key(key, sizeof(key), n);
	if (hd_store_get(c, cfg, key, strlen(key), NOW, &hit, err, sizeof(err)) != 0)
		bail("hd_store_get", err);
	len = hit.status == HD_STORE_MISS ? 0 : hit.len;
	hd_store_hit_release(&hit);
	return len;
}

static void
bench_one(const char *label, bool sync_commits, int n, size_t vlen)
{
	HdStoreOptions o = default_options();
	HdStore    *c;
	double		t0, t_put, t_get, t_hot, t_miss, t_inv1, t_inv100;
	int			ninv = n < 1000 ? n / 2 : 1000;
	char		err[1024];

	o.map_size = (size_t) 2 << 30;
	o.sync_commits = sync_commits;
	c = open_or_bail(new_dir(label), &o);
	/* each entry reads one of 1000 shared relations and one of its own */
	t0 = seconds();
	for (int i = 0; i < n; i++)
	{
		uint64_t	rels[] = {(uint64_t) (16384 + i % 1000), (uint64_t) (100000 + i)};

		put_full(c, CFG1, i, vlen, rels, 2, hd_store_token(c), NOW, 60000, 15000);
	}
	t_put = seconds() - t0;
	t0 = seconds();
	for (int i = 0; i < n; i++)
		if (bench_get(c, CFG1, rand() % n) != vlen)
			bail("bench", "a get missed");
	t_get = seconds() - t0;
	t0 = seconds();
	for (int i = 0; i < n; i++)
		if (bench_get(c, CFG1, rand() % (n / 50 + 1)) != vlen)
			bail("bench", "a get missed");
	t_hot = seconds() - t0;
	t0 = seconds();
	for (int i = 0; i < n; i++)
		bench_get(c, CFG2, i);
	t_miss = seconds() - t0;
	t0 = seconds();
	for (int i = 0; i < ninv; i++)
	{
		uint64_t	rel = (uint64_t) (100000 + i * (n / ninv));

		invalidate(c, CFG1, &rel, 1, (uint64_t) i + 1);
	}
	t_inv1 = seconds() - t0;
	t0 = seconds();
	for (int i = 0; i < ninv; i++)
	{
		uint64_t	rel = (uint64_t) (16384 + i);

		invalidate(c, CFG1, &rel, 1, (uint64_t) (ninv + i + 1));
	}
	t_inv100 = seconds() - t0;
	if (hd_store_sync(c, err, sizeof(err)) != 0)
		bail("sync", err);
	printf("%s: %d entries of %zu B (+ ~110 B key)\n"
		   "  puts                          %9.0f /s\n"
		   "  hits, uniform over all        %9.0f /s\n"
		   "  hits, hot 2%% of the keys      %9.0f /s\n"
		   "  misses                        %9.0f /s\n"
		   "  invalidations, 1 entry each   %9.0f /s\n"
		   "  invalidations, ~%d each       %9.0f /s\n",
		   label, n, vlen, n / t_put, n / t_get, n / t_hot, n / t_miss, ninv / t_inv1,
		   n < 1000 ? 1 : n / 1000, ninv / t_inv100);
	close_or_bail(c);
}

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void) st;
	(void) flag;
	(void) ftw;
	return remove(path);
}

int
main(int argc, char **argv)
{
	bool		bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
	const char *given = argc > 1 + bench ? argv[1 + bench] : NULL;
	bool		own_dir = given == NULL;

	if (given)
	{
		snprintf(base_dir, sizeof(base_dir), "%s", given);
		if (mkdir(base_dir, 0700) != 0 && errno != EEXIST)
			bail("mkdir", base_dir);
	}
	else
	{
		const char *tmp = getenv("TMPDIR");

		snprintf(base_dir, sizeof(base_dir), "%s/hd_store_test.XXXXXX", tmp ? tmp : "/tmp");
		if (mkdtemp(base_dir) == NULL)
			bail("mkdtemp", base_dir);
	}
	if (bench)
	{
		bench_one("default (MDB_NOSYNC)", false, 100000, 1000);
		bench_one("default (MDB_NOSYNC)", false, 100000, 100);
		bench_one("sync_commits", true, 5000, 1000);
	}
	else
	{
		test_open();
		test_put_get();
		test_ttl();
		test_collision();
		test_invalidate();
		test_race_guard();
		test_purge_and_slot();
		test_fence();
		test_eviction();
		test_limits();
		test_kill_idle();
		test_kill_busy();
		test_corruption();
		test_sync();
		test_sync_thread();
		test_values();
		test_value_marks();
		test_format();
		printf("1..%d\n", tests_run);
		if (tests_failed)
			diag("%d of %d failed", tests_failed, tests_run);
	}
	if (own_dir)
		nftw(base_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	return tests_failed ? 1 : 0;
}
