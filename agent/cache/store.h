/*
 * store.h
 *    The cache's storage layer: cached responses in LMDB, indexed by what
 *    they depend on (HdDep, cache/dep.h), invalidated by the changes a
 *    change source reports. No networking, no knowledge of the wire
 *    protocol or of the origin: keys and values are opaque bytes, relation
 *    ids opaque 64-bit ids, positions opaque HdPos.
 *
 * On disk, in one directory (mode 0700, created if missing):
 *     data.mdb, lock.mdb   the LMDB environment
 *     cache.lock           flock()ed by the process that has the store open
 *     unsynced             while open without sync_commits: the boot id of
 *                          the session whose writes may not be on disk yet
 * LMDB databases (format 3):
 *     entries      SHA-256(config id, key) -> record: times, config id,
 *                  the deps (relation id; column and value hashes, if
 *                  any), the full key, the response bytes
 *     by_relation  (config id, relation id) -> hashes of the entries with
 *                  a dep on it (dupsort); relation 0 lists every entry of
 *                  the config
 *     by_value     (config id, relation id, column, value hash) -> hashes of
 *                  the entries bound to that value (dupsort); column 0,
 *                  hash 0: those that read every row of the relation
 *     lru          access stamp -> entry hash (oldest first)
 *     access       entry hash -> its access stamp
 *     invalidated  (config id, relation id) -> sequence number of the last
 *                  invalidation (the put race guard, below)
 *     meta         "format" (magic, version, byte order, hash bytes),
 *                  "state" (totals, sequence numbers), "config:<id>"
 *                  (applied position, slot identity)
 *
 * Contract:
 *   - Never a stale answer. A lookup compares the full key and config id it
 *     finds under the hash, so even a hash collision cannot return another
 *     key's value. An invalidation removes every entry with a dep that
 *     overlaps one of the change's deps (hd_dep_overlaps(): same relation,
 *     and "all rows" on either side, another column, or a shared value
 *     hash) and records the change's position in the same write
 *     transaction: after any crash the entries and the applied position
 *     agree. A put carries a token read before the query went to the
 *     origin (hd_store_token()); an invalidation applied since then that
 *     may touch what it read (as hd_dep_overlaps() decides, and a change
 *     with values on another column than the put's as touching it) means
 *     the result may predate the change, and it is not stored
 *     (HD_STORE_SKIP_RACED). Changes of every row are marked per relation
 *     in LMDB; changes with values in memory (value_marks.h: a mark refuses
 *     only puts in flight; hd_store_forget_marks() prunes them; beyond
 *     HD_MARKS_MAX, a change with values marks its whole relation). If an
 *     invalidation of a config fails (I/O error, disk full), that config is
 *     fenced: its lookups and puts fail until hd_store_purge() of that
 *     config (or of all) succeeds, which removes the entries that may be
 *     stale. A config's entries are only ever invalidated by its own
 *     changes, so the other configs stay in use. (Should the config not be
 *     remembered, for lack of memory, every config is fenced until
 *     hd_store_purge(store, NULL); a purge of one config then fails and says
 *     so.)
 *   - Deps are kept as given, up to what hd_dep_overlaps() cannot tell
 *     apart: per relation, an entry keeps "all rows", or one column with
 *     its distinct value hashes (deps with values on two columns of one
 *     relation overlap every change of it: they are kept as "all rows").
 *     A change with values finds what it removes through by_value: the
 *     entries under its values of its column, and every entry of the
 *     relation under another column (or column 0, every row); the cost
 *     grows with what it removes, not with the relation's entries.
 *   - A full store never fails a put: least recently used entries are
 *     evicted to stay within max_bytes/max_entries, LMDB's MDB_MAP_FULL is
 *     answered by evicting and retrying, and if even that fails the entry is
 *     not stored (HD_STORE_SKIP_FULL). Only an I/O-level failure is an error.
 *   - LRU is approximate: a hit records its access in memory; accesses are
 *     written at the next write transaction (every put and invalidation
 *     starts with them), at hd_store_sync(), or once lru_batch distinct
 *     entries were hit. A hit itself never writes.
 *   - Durability. With sync_commits (slow: an fdatasync per put), every
 *     committed transaction survives a power loss. Without it (the default,
 *     MDB_NOSYNC), a commit reaches the OS page cache only: it survives the
 *     process being killed (kill -9), but a power loss can lose the last
 *     transactions, entries and applied positions alike. That is safe only
 *     if the change source can still replay the lost changes, so the caller
 *     must confirm to the source only a position that was applied before a
 *     successful hd_store_sync() (call it on a timer), or before the start of
 *     an hd_store_sync_start() that hd_store_sync_poll() reported DONE. And since unsynced
 *     LMDB pages can be written out of order, a store that was not closed
 *     before the system restarted may be torn: open reports it
 *     HD_STORE_DAMAGED.
 *   - Open checks the store before using it (opts.verify): a corrupt,
 *     truncated or incompatible file, or one left torn by a system crash, is
 *     HD_STORE_DAMAGED with what is wrong; hd_store_wipe() then lets the
 *     next open start empty. The check reads every entry in a child process
 *     (fork), so that a file corrupt enough to crash LMDB crashes only the
 *     child: call hd_store_open() before starting any thread.
 *   - Format versions. A store written by an older version of this file
 *     (format 1: 32-bit relation OIDs, no values; 2: no by_value) is never read as the
 *     current one: open empties it (entries, indexes, positions and slot
 *     identities: as after a wipe) and says so in hd_store_open_notice().
 *     A store of a newer format is HD_STORE_DAMAGED.
 *   - Times are wall-clock milliseconds since the Unix epoch (entries outlive
 *     the process, so monotonic clocks will not do).
 *   - Config ids are 1 to HD_STORE_CONFIG_ID_MAX bytes (the agent's are 32
 *     hex digits). Relation ids are opaque 64-bit ids compared for equality
 *     (0 is not a relation); a change names the changed relations and, per
 *     docs/stream.md, their ancestors: the caller expands them. Positions
 *     (HdPos) are opaque: the store only keeps the greatest one applied.
 *   - Functions return 0, or -1 with what was being done and why in err
 *     (LMDB's message included). Single-threaded: one HdStore per process
 *     and directory (a second opener gets an error), used by one thread (the
 *     flush hd_store_sync_start() hands to a thread of its own touches only
 *     the data file's descriptor). No global state.
 */
#ifndef HD_CACHE_STORE_H
#define HD_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/dep.h"

#define HD_STORE_CONFIG_ID_MAX 32
#define HD_STORE_IDENTITY_MAX 256	/* bytes of a slot identity */

typedef struct HdStore HdStore;

typedef struct HdStoreOptions
{
	size_t		map_size;		/* LMDB map: the most the file can grow to */
	uint64_t	max_bytes;		/* entries' records (key + value + header);
								 * 0: map_size / 3: pages, indexes and freed
								 * pages took ~2.5x the records' bytes (1 kB
								 * values) */
	uint64_t	max_entries;	/* 0: no limit */
	uint64_t	max_entry_bytes;	/* one record; 0: max_bytes / 8 */
	bool		sync_commits;	/* fdatasync every commit (else MDB_NOSYNC) */
	bool		verify;			/* check the whole store at open */
	unsigned	lru_batch;		/* distinct hits buffered before a write */
	unsigned	test_hash_bytes;	/* tests only: keep this many hash bytes */
} HdStoreOptions;

/* Defaults: 1 GiB map, the limits derived as above, verify, lru_batch 4096. */
extern void hd_store_options_init(HdStoreOptions *opts);

/* hd_store_open()'s results. */
#define HD_STORE_OK 0
#define HD_STORE_FAILED (-1)	/* cannot open (permissions, I/O, in use) */
#define HD_STORE_DAMAGED (-2)	/* corrupt/incompatible/torn: wipe, open again */

extern int	hd_store_open(const char *dir, const HdStoreOptions *opts, HdStore **out,
						  char *err, size_t errlen);

/*
 * What the open did that the caller should log, or NULL: today, emptying a
 * store of an older format ("cache store: format 1 found, this agent writes
 * format 2: purged (nothing is misread)").
 */
extern const char *hd_store_open_notice(const HdStore *store);

/*
 * Sync and close. Returns -1 if the final sync failed (the store then counts
 * as unsynced: after a system restart it is reported damaged). Frees the
 * store either way.
 */
extern int	hd_store_close(HdStore *store, char *err, size_t errlen);

/* Delete a closed store's files, so that the next open starts empty. */
extern int	hd_store_wipe(const char *dir, char *err, size_t errlen);

typedef enum HdStoreStatus
{
	HD_STORE_MISS,
	HD_STORE_FRESH,				/* now < expires */
	HD_STORE_STALE				/* expires <= now < stale_until: serve, revalidate */
} HdStoreStatus;

typedef struct HdStoreHit
{
	HdStoreStatus status;
	unsigned char *bytes;		/* malloc'd copy; the caller may take it (set NULL) */
	size_t		len;
	int64_t		created_ms;
	int64_t		expires_ms;
	int64_t		stale_until_ms;
} HdStoreHit;

/*
 * Look a key up. A hit's bytes are a copy, valid until hd_store_hit_release():
 * holding an LMDB reader while a slow client drains would keep LMDB from
 * reusing pages, and the map could fill. Expired entries (past stale_until)
 * are misses; they stay until replaced or evicted.
 */
extern int	hd_store_get(HdStore *store, const char *config_id, const void *key,
						 size_t keylen, int64_t now_ms, HdStoreHit *hit,
						 char *err, size_t errlen);
extern void hd_store_hit_release(HdStoreHit *hit);

/* The race-guard token: read it before sending the query (see the contract). */
extern uint64_t hd_store_token(const HdStore *store);

typedef struct HdStorePut
{
	const char *config_id;
	const void *key;			/* the full key, serialized by the caller */
	size_t		keylen;
	const void *value;			/* the exact response bytes */
	size_t		len;
	const HdDep *deps;			/* what it read (any order, repeats allowed;
								 * relation 0 is refused); copied */
	size_t		ndeps;
	uint64_t	token;			/* hd_store_token() before the query was sent */
	int64_t		now_ms;
	int64_t		max_age_ms;		/* fresh until now + max_age */
	int64_t		swr_ms;			/* then stale (still served) for this long */
} HdStorePut;

typedef enum HdStorePutOutcome
{
	HD_STORE_STORED,
	HD_STORE_SKIP_OVERSIZED,	/* record larger than max_entry_bytes */
	HD_STORE_SKIP_RACED,		/* one of its relations was invalidated meanwhile */
	HD_STORE_SKIP_FULL			/* no room even after evicting */
} HdStorePutOutcome;

/* "stored", "oversized", "raced", "full". */
extern const char *hd_store_outcome_name(HdStorePutOutcome outcome);

/* Store (replacing the key's entry); *outcome says whether it was stored. */
extern int	hd_store_put(HdStore *store, const HdStorePut *put, HdStorePutOutcome *outcome,
						 char *err, size_t errlen);

/*
 * Apply one change of a config, in one write transaction: remove every
 * entry with a dep that overlaps one of deps (hd_dep_overlaps()), and
 * record pos (the change's position) as applied; the applied position
 * never moves back. Applying a change twice is harmless. With ndeps = 0 it
 * only records the position (heartbeats). *removed (may be NULL) counts the
 * entries removed.
 */
extern int	hd_store_invalidate(HdStore *store, const char *config_id, const HdDep *deps,
								size_t ndeps, HdPos pos, uint64_t *removed, char *err,
								size_t errlen);
/* The same for a change that says "invalidate all": every entry of the config. */
extern int	hd_store_invalidate_all(HdStore *store, const char *config_id, HdPos pos,
									uint64_t *removed, char *err, size_t errlen);

/*
 * Remove a config's entries (NULL: every config's); positions stay. Lifts
 * that config's fence (NULL: every fence). -1 if the whole store stays
 * fenced.
 */
extern int	hd_store_purge(HdStore *store, const char *config_id, uint64_t *removed,
						   char *err, size_t errlen);
/* Whether the config's lookups and puts fail until it is purged (see the contract). */
extern bool hd_store_fenced(const HdStore *store, const char *config_id);

/* The last applied position of a config; HD_POS_NONE if none. */
extern int	hd_store_applied_pos(HdStore *store, const char *config_id, HdPos *pos,
								 char *err, size_t errlen);

/*
 * Tie a config's entries to the change source (a replication slot) they
 * were invalidated from. identity is the caller's description of it (e.g.
 * the origin's system identifier, database and slot name). If it differs
 * from the stored one (or none is stored), then in one transaction the
 * config's entries go, its applied position becomes HD_POS_NONE and the
 * identity is stored: *reset = true. Call it
 * before streaming, at every start. identity "" forgets the config (for a
 * deleted config).
 */
extern int	hd_store_bind_slot(HdStore *store, const char *config_id, const char *identity,
							   bool *reset, char *err, size_t errlen);
/* The stored identity ("" if none), NUL-terminated in buf. */
extern int	hd_store_slot_identity(HdStore *store, const char *config_id, char *buf,
								   size_t buflen, char *err, size_t errlen);

/*
 * Write the buffered LRU accesses and flush everything committed so far to
 * disk (fdatasync). A position read with hd_store_applied_pos() before a
 * successful call is durable and may be confirmed to the source. Blocks for
 * the flush: call it on a timer (about once a second).
 */
extern int	hd_store_sync(HdStore *store, char *err, size_t errlen);

/*
 * hd_store_sync() off the caller's thread, so that a slow disk does not stall
 * the caller's loop: hd_store_sync_start() writes the buffered LRU accesses
 * (as hd_store_sync() does) and starts a thread that flushes everything
 * committed so far (an fdatasync of the data file, what mdb_env_sync does
 * for this store; the thread touches nothing else of the store, and the
 * caller may go on reading and writing meanwhile).
 * hd_store_sync_poll() says how it went: RUNNING, DONE (a position read with
 * hd_store_applied_pos() before the start is now durable, as after a
 * successful hd_store_sync()), FAILED (err says why; nothing is known to be
 * durable), or IDLE (none was started since the last DONE or FAILED). DONE
 * and FAILED are reported once. A start while one runs fails (-1, err);
 * so does one whose thread cannot be created (then call hd_store_sync()).
 * hd_store_sync() and hd_store_close() wait for a running one first (its
 * result is then not reported). The thread exists only while a sync runs:
 * hd_store_open()'s check forks, so no store may be open with one running
 * when another is opened.
 */
typedef enum HdStoreSyncState
{
	HD_STORE_SYNC_IDLE,
	HD_STORE_SYNC_RUNNING,
	HD_STORE_SYNC_DONE,
	HD_STORE_SYNC_FAILED
} HdStoreSyncState;

extern int	hd_store_sync_start(HdStore *store, char *err, size_t errlen);
extern HdStoreSyncState hd_store_sync_poll(HdStore *store, char *err, size_t errlen);

typedef struct HdStoreStats
{
	uint64_t	entries;		/* now (persisted) */
	uint64_t	bytes;			/* now: sum of the entries' record sizes */
	uint64_t	hits_fresh;		/* counters since open */
	uint64_t	hits_stale;
	uint64_t	misses;			/* including the two below */
	uint64_t	expired;		/* found, but past stale_until */
	uint64_t	collisions;		/* found under the hash, another key */
	uint64_t	stored;
	uint64_t	skipped_oversized;
	uint64_t	skipped_raced;
	uint64_t	skipped_full;
	uint64_t	evictions;		/* LRU, for room */
	uint64_t	invalidated;	/* removed by invalidation or purge */
	uint64_t	map_full;		/* MDB_MAP_FULL/MDB_TXN_FULL answered by evicting */
	uint64_t	lru_flush_failures;	/* buffered accesses dropped */
	uint64_t	value_marks;	/* now: the put guard's marks of values (value_marks.h) */
} HdStoreStats;

extern void hd_store_stats(const HdStore *store, HdStoreStats *out);

/*
 * The put guard's marks of changes with values (value_marks.h) below
 * oldest_token can refuse no put any more: the oldest token of a put still
 * to come (the caller's fills in flight), or hd_store_token() when none is.
 */
extern void hd_store_forget_marks(HdStore *store, uint64_t oldest_token);

/* A config's entries now, and the sum of their record sizes (a read transaction). */
extern int	hd_store_config_usage(HdStore *store, const char *config_id, uint64_t *entries,
								  uint64_t *bytes);

#endif							/* HD_CACHE_STORE_H */
