/*
 * store.c
 *    The cache's storage layer on LMDB (see store.h).
 *
 * Every change is one write transaction (an Op) that also rewrites the
 * "state" record (totals and sequence numbers), so the totals, the indexes
 * and the applied positions always agree with the entries, whatever
 * crashes. One process owns the store (cache.lock), so the last committed
 * state is mirrored in memory and read without a transaction.
 *
 * Records are written in host byte order: the store never leaves the machine,
 * and the format record's byte-order mark refuses a foreign one. LMDB keys
 * that must sort (relation ids, access stamps) are big-endian.
 *
 * An entry's deps are kept normalized (normalize_deps): sorted by relation,
 * one per relation, either "all rows" or one column with sorted, distinct
 * value hashes. On disk each is 16 bytes (relation, column, nvalues) and
 * then its values, 8 bytes each, unaligned: they are read with memcpy.
 */
#include "cache/store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/be.h"
#include "cache/value_marks.h"

#define HASH_LEN 32
#define CFG_LEN HD_STORE_CONFIG_ID_MAX
#define RELKEY_LEN (CFG_LEN + 8)
#define VALKEY_LEN (CFG_LEN + 8 + 4 + 8)	/* by_value: config, relation, column, hash */
#define CONFIG_KEY_PREFIX "config:"
#define CONFIG_KEY_LEN (sizeof(CONFIG_KEY_PREFIX) - 1 + CFG_LEN)
#define CONFIG_STATE_FIXED 16	/* applied position, all_seq; then the identity */
#define ALL_ENTRIES 0			/* by_relation "relation" listing a config's entries */
#define RECORD_VERSION 2
#define DEP_FIXED 16			/* a dep on disk: relation, column, nvalues */
#define FORMAT_MAGIC "hdcache"
/*
 * Bump it whenever the layout changes: an older store is emptied at open,
 * never misread (check_format). 1: 32-bit relation OIDs; 2: 64-bit
 * relation ids, deps with values; 3: the by_value index.
 */
#define FORMAT_VERSION 3
#define FORMAT_OLD 1			/* check_format(): an older version, to purge */
#define BYTE_ORDER_MARK 0x01020304u
#define REMOVE_BATCH 256		/* entries removed per by_relation lookup */
#define PUT_ATTEMPTS 3			/* a put that finds the map full evicts twice */
#define DATA_FILE "data.mdb"
#define LMDB_LOCK_FILE "lock.mdb"
#define OWNER_LOCK_FILE "cache.lock"
#define UNSYNCED_FILE "unsynced"
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_MAX 64
#define MAX_DBS 8
#define MIN_MAP_SIZE (64 * 1024)

/* The head of an entries record; deps, key and value follow. */
typedef struct RecordHeader
{
	uint32_t	version;
	uint32_t	ndeps;			/* sorted by relation, one per relation */
	uint32_t	keylen;
	uint32_t	deps_len;		/* bytes of the deps */
	uint64_t	value_len;
	int64_t		created_ms;
	int64_t		expires_ms;
	int64_t		stale_until_ms;
	unsigned char config[CFG_LEN];
} RecordHeader;

_Static_assert(sizeof(RecordHeader) == 80, "RecordHeader has no padding");

typedef struct Record
{
	RecordHeader h;
	const unsigned char *deps;
	const unsigned char *key;
	const unsigned char *value;
} Record;

typedef struct FormatRecord
{
	char		magic[8];
	uint32_t	version;
	uint32_t	byte_order;
	uint32_t	hash_bytes;		/* 32, unless a test truncated hashes */
	uint32_t	reserved;
} FormatRecord;

/* meta "state": what every write transaction commits along. */
typedef struct StoreState
{
	uint64_t	entries;
	uint64_t	bytes;
	uint64_t	seq;			/* bumped by every invalidation or purge */
	uint64_t	purge_seq;		/* seq of the last purge of everything */
} StoreState;

/* meta "config:<id>". */
typedef struct ConfigState
{
	HdPos		applied_pos;
	uint64_t	all_seq;		/* seq of the last removal of all its entries */
	size_t		identity_len;
	char		identity[HD_STORE_IDENTITY_MAX];
} ConfigState;

/* A hit not yet written to the lru database; stamp 0: free slot. */
typedef struct Touch
{
	unsigned char hash[HASH_LEN];
	uint64_t	stamp;
} Touch;

typedef struct Hasher
{
	EVP_MD_CTX *ctx;
	EVP_MD	   *md;
	unsigned	keep;			/* hash bytes kept; the rest are zeroed */
} Hasher;

struct HdStore
{
	MDB_env    *env;
	MDB_dbi		entries;
	MDB_dbi		by_relation;
	MDB_dbi		by_value;
	MDB_dbi		lru;
	MDB_dbi		access;
	MDB_dbi		invalidated;
	MDB_dbi		meta;
	MDB_txn    *reader;			/* reset between lookups, renewed for each */
	HdStoreOptions opts;
	char	   *dir;
	int			lock_fd;
	Hasher		hasher;
	StoreState	state;			/* as last committed */
	uint64_t	next_stamp;
	Touch	   *touches;		/* open addressing, touch_cap slots */
	size_t		touch_cap;
	size_t	   *touch_used;		/* the occupied slots, ntouches of them */
	size_t		ntouches;
	HdStoreStats stats;
	HdMarks		marks;			/* the put guard of changes with values (value_marks.h) */
	/* configs whose invalidation failed (the fence, in the contract) */
	struct Fence *fenced;
	size_t		nfenced;
	bool		fenced_all;		/* which one could not be remembered: every config */
	char		fence_all_reason[512];
	char		notice[256];	/* hd_store_open_notice(); "" if none */
	/* the flush hd_store_sync_start() runs in a thread of its own */
	pthread_t	sync_thread;
	bool		sync_running;	/* started, not joined yet */
	atomic_bool sync_done;		/* set by the thread as it ends */
	int			sync_fd;		/* the data file's descriptor */
	int			sync_rc;		/* its fdatasync()'s errno (0: done), once sync_done */
};

/* A fenced config, and why. */
typedef struct Fence
{
	unsigned char cfg[CFG_LEN];
	char		why[512];
} Fence;

/* One write transaction in progress. */
typedef struct Op
{
	HdStore    *c;
	MDB_txn    *txn;
	StoreState	st;				/* committed along with the transaction */
	const char *what;			/* the step that failed */
	uint64_t	evicted;		/* entries removed for room */
	uint64_t	removed;		/* entries removed by invalidation or purge */
	bool		flushed_touches;
} Op;

static int	flush_touches_now(HdStore *c);

/* ------------------------------------------------------------------------
 * Small helpers.
 */

static MDB_val
val(const void *data, size_t size)
{
	MDB_val		v = {size, (void *) data};

	return v;
}

/* MAP_FULL and TXN_FULL both mean "no room for this transaction". */
static bool
no_room(int rc)
{
	return rc == MDB_MAP_FULL || rc == MDB_TXN_FULL;
}

/* LMDB's own codes for a file it cannot make sense of. */
static bool
damaged_rc(int rc)
{
	return rc == MDB_INVALID || rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
		rc == MDB_VERSION_MISMATCH || rc == MDB_INCOMPATIBLE || rc == MDB_BAD_VALSIZE;
}

static int
config_bytes(const char *id, unsigned char out[CFG_LEN], char *err, size_t errlen)
{
	size_t		len = id ? strnlen(id, CFG_LEN + 1) : 0;

	if (len == 0 || len > CFG_LEN)
	{
		snprintf(err, errlen, "a config id must be 1 to %d bytes long", CFG_LEN);
		return -1;
	}
	memset(out, 0, CFG_LEN);
	memcpy(out, id, len);
	return 0;
}

/*
 * by_value's key: an entry's dep on every row of the relation is listed
 * under column 0, hash 0; one on values under each value's hash.
 */
static void
value_key(unsigned char out[VALKEY_LEN], const unsigned char *cfg, uint64_t relation,
		  uint32_t column, uint64_t hash)
{
	memcpy(out, cfg, CFG_LEN);
	hd_put_u64(out + CFG_LEN, relation);
	hd_put_u32(out + CFG_LEN + 8, column);
	hd_put_u64(out + CFG_LEN + 12, hash);
}

static void
relation_key(unsigned char out[RELKEY_LEN], const unsigned char *cfg, uint64_t relation)
{
	memcpy(out, cfg, CFG_LEN);
	hd_put_u64(out + CFG_LEN, relation);
}

static void
config_meta_key(unsigned char out[CONFIG_KEY_LEN], const unsigned char *cfg)
{
	memcpy(out, CONFIG_KEY_PREFIX, sizeof(CONFIG_KEY_PREFIX) - 1);
	memcpy(out + sizeof(CONFIG_KEY_PREFIX) - 1, cfg, CFG_LEN);
}

static char *
path_in(const char *dir, const char *name)
{
	size_t		len = strlen(dir) + strlen(name) + 2;
	char	   *path = malloc(len);

	if (path)
		snprintf(path, len, "%s/%s", dir, name);
	return path;
}

/* ------------------------------------------------------------------------
 * Hashing: SHA-256 over the config id (padded) and the key.
 */

static bool
hasher_init(Hasher *h, unsigned keep)
{
	h->ctx = EVP_MD_CTX_new();
	h->md = EVP_MD_fetch(NULL, "SHA256", NULL);	/* once, not per lookup */
	h->keep = keep ? keep : HASH_LEN;
	return h->ctx != NULL && h->md != NULL;
}

static void
hasher_free(Hasher *h)
{
	EVP_MD_CTX_free(h->ctx);
	EVP_MD_free(h->md);
	h->ctx = NULL;
	h->md = NULL;
}

static bool
hash_key(Hasher *h, const unsigned char *cfg, const void *key, size_t keylen,
		 unsigned char out[HASH_LEN])
{
	unsigned int len = 0;

	if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1 ||
		EVP_DigestUpdate(h->ctx, cfg, CFG_LEN) != 1 ||
		EVP_DigestUpdate(h->ctx, key, keylen) != 1 ||
		EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != HASH_LEN)
		return false;
	memset(out + h->keep, 0, HASH_LEN - h->keep);
	return true;
}

/* ------------------------------------------------------------------------
 * Records.
 */

/* A dep as stored; its values stay on the page (unaligned). */
typedef struct DiskDep
{
	uint64_t	relation;
	uint32_t	column;
	uint32_t	nvalues;
	const unsigned char *values;
} DiskDep;

/* The dep at p; returns the next one's address. */
static const unsigned char *
read_dep(const unsigned char *p, DiskDep *d)
{
	memcpy(&d->relation, p, 8);
	memcpy(&d->column, p + 8, 4);
	memcpy(&d->nvalues, p + 12, 4);
	d->values = p + DEP_FIXED;
	return d->values + (size_t) d->nvalues * 8;
}

/* Do the header's ndeps deps fill exactly deps_len bytes? */
static bool
deps_well_formed(const unsigned char *p, uint32_t ndeps, uint32_t deps_len)
{
	size_t		rest = deps_len;

	for (uint32_t i = 0; i < ndeps; i++)
	{
		DiskDep		d;

		if (rest < DEP_FIXED)
			return false;
		read_dep(p, &d);
		if (d.relation == 0 || d.nvalues > (rest - DEP_FIXED) / 8)
			return false;
		rest -= DEP_FIXED + (size_t) d.nvalues * 8;
		p += DEP_FIXED + (size_t) d.nvalues * 8;
	}
	return rest == 0;
}

static bool
parse_record(const MDB_val *v, Record *r)
{
	size_t		rest;

	if (v->mv_size < sizeof(RecordHeader))
		return false;
	memcpy(&r->h, v->mv_data, sizeof(RecordHeader));
	if (r->h.version != RECORD_VERSION)
		return false;
	rest = v->mv_size - sizeof(RecordHeader);
	r->deps = (const unsigned char *) v->mv_data + sizeof(RecordHeader);
	if (r->h.deps_len > rest || !deps_well_formed(r->deps, r->h.ndeps, r->h.deps_len))
		return false;
	rest -= r->h.deps_len;
	if (r->h.keylen > rest || r->h.value_len != rest - r->h.keylen)
		return false;
	r->key = r->deps + r->h.deps_len;
	r->value = r->key + r->h.keylen;
	return true;
}

/* The record's size, or 0 if it could not be represented. */
static uint64_t
record_size(size_t keylen, uint64_t deps_len, size_t len)
{
	uint64_t	fixed;

	if (keylen > UINT32_MAX || deps_len > UINT32_MAX)
		return 0;
	fixed = sizeof(RecordHeader) + deps_len + keylen;
	if ((uint64_t) len > UINT64_MAX - fixed || fixed + len > SIZE_MAX)
		return 0;
	return fixed + len;
}

/* Deps normalized (see the top of the file): what a put keeps, what a change removes. */
typedef struct DepSet
{
	HdDep	   *deps;			/* sorted by relation, one per relation */
	size_t		ndeps;
	uint64_t   *values;			/* the deps' values point into it */
	uint64_t	bytes;			/* their size on disk */
} DepSet;

static void
depset_free(DepSet *s)
{
	free(s->deps);
	free(s->values);
	memset(s, 0, sizeof(*s));
}

static int
compare_deps(const void *a, const void *b)
{
	const HdDep *x = a;
	const HdDep *y = b;

	if (x->relation != y->relation)
		return (x->relation > y->relation) - (x->relation < y->relation);
	return (x->column > y->column) - (x->column < y->column);
}

static int
compare_values(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return (x > y) - (x < y);
}

/* Relation 0 and values without their array are refused; *total counts the values. */
static int
check_deps(const HdDep *in, size_t n, size_t *total, char *err, size_t errlen)
{
	*total = 0;
	for (size_t i = 0; i < n; i++)
	{
		if (in[i].relation == 0)
		{
			snprintf(err, errlen, "relation 0 is not a relation");
			return -1;
		}
		if (in[i].nvalues > 0 && in[i].values == NULL)
		{
			snprintf(err, errlen, "a dep on relation %llu has %u values but no array",
					 (unsigned long long) in[i].relation, in[i].nvalues);
			return -1;
		}
		*total += in[i].nvalues;	/* at most n * 2^32: no overflow */
	}
	return 0;
}

/*
 * Merge the sorted deps [first, end) on one relation into a dep: "all rows"
 * if one of them says so or they name two columns (either way every change
 * of the relation overlaps), else the column with the distinct union of
 * the values, copied to values + *nvals.
 */
static HdDep
merge_relation(const HdDep *first, const HdDep *end, uint64_t *values, size_t *nvals)
{
	uint64_t   *mine = values + *nvals;
	size_t		m = 0;
	size_t		k = 0;
	HdDep		out = hd_dep_relation(first->relation);

	for (const HdDep *d = first; d < end; d++)
		if (d->nvalues == 0 || d->column != first->column)
			return out;
	for (const HdDep *d = first; d < end; d++)
	{
		memcpy(mine + m, d->values, (size_t) d->nvalues * sizeof(uint64_t));
		m += d->nvalues;
	}
	qsort(mine, m, sizeof(uint64_t), compare_values);
	for (size_t i = 0; i < m; i++)
		if (k == 0 || mine[k - 1] != mine[i])
			mine[k++] = mine[i];
	out.column = first->column;
	out.nvalues = (uint32_t) k;
	out.values = mine;
	*nvals += k;
	return out;
}

/* A normalized copy of in (empty when n is 0). */
static int
normalize_deps(const HdDep *in, size_t n, DepSet *out, char *err, size_t errlen)
{
	size_t		total;
	size_t		nvals = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (in == NULL || check_deps(in, n, &total, err, errlen) != 0)
	{
		if (in == NULL)
			snprintf(err, errlen, "%zu deps but no array", n);
		return -1;
	}
	if (n > SIZE_MAX / sizeof(HdDep) || total > SIZE_MAX / sizeof(uint64_t) ||
		(out->deps = malloc(n * sizeof(HdDep))) == NULL ||
		(total > 0 && (out->values = malloc(total * sizeof(uint64_t))) == NULL))
	{
		depset_free(out);
		snprintf(err, errlen, "out of memory for %zu deps", n);
		return -1;
	}
	memcpy(out->deps, in, n * sizeof(HdDep));
	qsort(out->deps, n, sizeof(HdDep), compare_deps);
	/* in place: the k-th merged dep, once computed, replaces the k-th dep */
	for (size_t i = 0, j; i < n; i = j)
	{
		for (j = i + 1; j < n && out->deps[j].relation == out->deps[i].relation; j++)
			;
		out->deps[out->ndeps] = merge_relation(&out->deps[i], &out->deps[j], out->values,
											   &nvals);
		out->bytes += DEP_FIXED + 8 * (uint64_t) out->deps[out->ndeps].nvalues;
		out->ndeps++;
	}
	return 0;
}

/* Write the deps as stored (DepSet.bytes of them). */
static void
write_deps(const DepSet *s, unsigned char *p)
{
	for (size_t i = 0; i < s->ndeps; i++)
	{
		const HdDep *d = &s->deps[i];

		memcpy(p, &d->relation, 8);
		memcpy(p + 8, &d->column, 4);
		memcpy(p + 12, &d->nvalues, 4);
		if (d->nvalues)
			memcpy(p + DEP_FIXED, d->values, (size_t) d->nvalues * 8);
		p += DEP_FIXED + (size_t) d->nvalues * 8;
	}
}

/* ------------------------------------------------------------------------
 * The meta database.
 */

static int
read_state(MDB_txn *txn, MDB_dbi meta, StoreState *st)
{
	MDB_val		k = val("state", 5);
	MDB_val		v;
	int			rc = mdb_get(txn, meta, &k, &v);

	if (rc != 0)
		return rc;
	if (v.mv_size != sizeof(*st))
		return MDB_CORRUPTED;
	memcpy(st, v.mv_data, sizeof(*st));
	return 0;
}

static int
read_config(MDB_txn *txn, MDB_dbi meta, const unsigned char *cfg, ConfigState *cs)
{
	unsigned char key[CONFIG_KEY_LEN];
	MDB_val		k = val(key, sizeof(key));
	MDB_val		v;
	int			rc;

	memset(cs, 0, sizeof(*cs));
	config_meta_key(key, cfg);
	rc = mdb_get(txn, meta, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size < CONFIG_STATE_FIXED ||
		v.mv_size > CONFIG_STATE_FIXED + HD_STORE_IDENTITY_MAX)
		return MDB_CORRUPTED;
	memcpy(&cs->applied_pos, v.mv_data, 8);
	memcpy(&cs->all_seq, (char *) v.mv_data + 8, 8);
	cs->identity_len = v.mv_size - CONFIG_STATE_FIXED;
	memcpy(cs->identity, (char *) v.mv_data + CONFIG_STATE_FIXED, cs->identity_len);
	return 0;
}

/* ------------------------------------------------------------------------
 * Write transactions.
 */

static int
step(Op *op, int rc, const char *what)
{
	if (rc != 0 && op->what == NULL)
		op->what = what;
	return rc;
}

static int
op_begin(Op *op, HdStore *c)
{
	memset(op, 0, sizeof(*op));
	op->c = c;
	op->st = c->state;
	return step(op, mdb_txn_begin(c->env, NULL, 0, &op->txn),
				"beginning a write transaction");
}

static void
op_abort(Op *op)
{
	if (op->txn)
		mdb_txn_abort(op->txn);
	op->txn = NULL;
}

static void
clear_touches(HdStore *c)
{
	for (size_t i = 0; i < c->ntouches; i++)
		c->touches[c->touch_used[i]].stamp = 0;
	c->ntouches = 0;
}

static int
op_commit(Op *op)
{
	HdStore    *c = op->c;
	MDB_val		k = val("state", 5);
	MDB_val		v = val(&op->st, sizeof(op->st));
	int			rc = step(op, mdb_put(op->txn, c->meta, &k, &v, 0), "writing the totals");

	if (rc != 0)
		return rc;
	rc = mdb_txn_commit(op->txn);
	op->txn = NULL;				/* freed even when the commit fails */
	if (rc != 0)
		return step(op, rc, "committing");
	c->state = op->st;
	c->stats.evictions += op->evicted;
	c->stats.invalidated += op->removed;
	if (op->flushed_touches)
		clear_touches(c);
	return 0;
}

/* Abort, and describe the failure: "ACTION: STEP: LMDB's message". */
static int
op_fail(Op *op, int rc, const char *action, char *err, size_t errlen)
{
	op_abort(op);
	snprintf(err, errlen, "%s: %s: %s", action, op->what ? op->what : "?", mdb_strerror(rc));
	return -1;
}

static int
write_config(Op *op, const unsigned char *cfg, const ConfigState *cs)
{
	unsigned char key[CONFIG_KEY_LEN];
	unsigned char buf[CONFIG_STATE_FIXED + HD_STORE_IDENTITY_MAX];
	MDB_val		k = val(key, sizeof(key));
	MDB_val		v = val(buf, CONFIG_STATE_FIXED + cs->identity_len);

	config_meta_key(key, cfg);
	memcpy(buf, &cs->applied_pos, 8);
	memcpy(buf + 8, &cs->all_seq, 8);
	memcpy(buf + CONFIG_STATE_FIXED, cs->identity, cs->identity_len);
	return step(op, mdb_put(op->txn, op->c->meta, &k, &v, 0), "writing the config's state");
}

static int
del_ignoring_missing(Op *op, MDB_dbi dbi, MDB_val *k, MDB_val *v, const char *what)
{
	int			rc = mdb_del(op->txn, dbi, k, v);

	return step(op, rc == MDB_NOTFOUND ? 0 : rc, what);
}

/*
 * Move the buffered hits' entries to the young end of the lru database.
 * Stamps are handed out one per put or hit, so an entry stamped fewer than
 * entries/4 stamps ago is among the youngest quarter: moving it would not
 * change what is evicted soon, and hot entries would be rewritten on every
 * flush.
 */
static int
flush_touches(Op *op)
{
	HdStore    *c = op->c;
	uint64_t	young = op->st.entries / 4;

	for (size_t i = 0; i < c->ntouches; i++)
	{
		Touch	   *t = &c->touches[c->touch_used[i]];
		unsigned char old_key[8], new_key[8];
		MDB_val		h = val(t->hash, HASH_LEN);
		MDB_val		v;
		int			rc = mdb_get(op->txn, c->access, &h, &v);

		if (rc == MDB_NOTFOUND)
			continue;			/* removed since the hit */
		if (rc != 0 || v.mv_size != 8)
			return step(op, rc ? rc : MDB_CORRUPTED, "reading an entry's access stamp");
		memcpy(old_key, v.mv_data, 8);
		if (hd_get_u64(old_key) + young >= t->stamp)
			continue;			/* young enough, or replaced since the hit */
		hd_put_u64(new_key, t->stamp);
		MDB_val		ok = val(old_key, 8);
		MDB_val		nk = val(new_key, 8);

		if ((rc = del_ignoring_missing(op, c->lru, &ok, NULL, "updating the LRU order")) != 0 ||
			(rc = step(op, mdb_put(op->txn, c->lru, &nk, &h, 0), "updating the LRU order")) != 0 ||
			(rc = step(op, mdb_put(op->txn, c->access, &h, &nk, 0), "updating the LRU order")) != 0)
			return rc;
	}
	op->flushed_touches = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * Removing entries.
 */

/* One index row: written (add) or removed (a missing one is no error). */
static int
index_row(Op *op, MDB_dbi index, const unsigned char *key, size_t keylen, MDB_val *h, bool add)
{
	MDB_val		k = val(key, keylen);

	if (add)
		return step(op, mdb_put(op->txn, index, &k, h, 0), "indexing an entry");
	return del_ignoring_missing(op, index, &k, h, "removing an entry's index rows");
}

/*
 * Write (add) or remove an entry's index rows (hash h), from its deps as
 * stored: by_relation (config, relation), and the config's list of every
 * entry; by_value (config, relation, column, hash) per value, or (config,
 * relation, 0, 0) for every row.
 */
static int
index_entry(Op *op, const unsigned char *cfg, const unsigned char *deps, uint32_t ndeps,
			MDB_val *h, bool add)
{
	unsigned char rk[RELKEY_LEN];
	unsigned char vk[VALKEY_LEN];
	int			rc;

	relation_key(rk, cfg, ALL_ENTRIES);
	if ((rc = index_row(op, op->c->by_relation, rk, RELKEY_LEN, h, add)) != 0)
		return rc;
	for (uint32_t i = 0; i < ndeps; i++)
	{
		DiskDep		d;

		deps = read_dep(deps, &d);
		relation_key(rk, cfg, d.relation);
		if ((rc = index_row(op, op->c->by_relation, rk, RELKEY_LEN, h, add)) != 0)
			return rc;
		for (uint32_t j = 0; j < (d.nvalues ? d.nvalues : 1); j++)
		{
			uint64_t	hash = 0;

			if (d.nvalues)
				memcpy(&hash, d.values + (size_t) j * 8, 8);
			value_key(vk, cfg, d.relation, d.nvalues ? d.column : 0, hash);
			if ((rc = index_row(op, op->c->by_value, vk, VALKEY_LEN, h, add)) != 0)
				return rc;
		}
	}
	return 0;
}

/*
 * Remove one entry and its index rows. *found says whether it existed; its
 * record size is added to *freed (may be NULL), and 1 to *counter.
 */
static int
remove_entry(Op *op, const unsigned char *hash, uint64_t *counter, bool *found,
			 uint64_t *freed)
{
	HdStore    *c = op->c;
	MDB_val		h = val(hash, HASH_LEN);
	MDB_val		v;
	Record		r;
	unsigned char cfg[CFG_LEN];
	unsigned char *deps;
	uint32_t	ndeps;
	size_t		size;
	int			rc = mdb_get(op->txn, c->entries, &h, &v);

	*found = false;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return step(op, rc, "reading an entry to remove it");
	if (!parse_record(&v, &r))
		return step(op, MDB_CORRUPTED, "reading an entry to remove it");
	size = v.mv_size;
	/* copied: LMDB's pointers die with the next update */
	ndeps = r.h.ndeps;
	memcpy(cfg, r.h.config, CFG_LEN);
	if ((deps = malloc(r.h.deps_len ? r.h.deps_len : 1)) == NULL)
		return step(op, ENOMEM, "removing an entry");
	memcpy(deps, r.deps, r.h.deps_len);
	rc = index_entry(op, cfg, deps, ndeps, &h, false);
	free(deps);
	if (rc != 0)
		return rc;
	rc = mdb_get(op->txn, c->access, &h, &v);
	if (rc == 0 && v.mv_size == 8)
	{
		unsigned char stamp[8];
		MDB_val		sk = val(stamp, 8);

		memcpy(stamp, v.mv_data, 8);
		rc = del_ignoring_missing(op, c->lru, &sk, NULL, "removing an entry from the LRU order");
		if (rc == 0)
			rc = step(op, mdb_del(op->txn, c->access, &h, NULL),
					  "removing an entry's access stamp");
	}
	else if (rc != MDB_NOTFOUND)
		return step(op, rc ? rc : MDB_CORRUPTED, "reading an entry's access stamp");
	if ((rc = step(op, mdb_del(op->txn, c->entries, &h, NULL), "removing an entry")) != 0)
		return rc;
	op->st.entries -= op->st.entries > 0;
	op->st.bytes -= size < op->st.bytes ? size : op->st.bytes;
	(*counter)++;
	if (freed)
		*freed += size;
	*found = true;
	return 0;
}

/* The least recently used entry: its stamp (lru key) and hash. */
static int
oldest(Op *op, unsigned char stamp[8], unsigned char hash[HASH_LEN])
{
	MDB_cursor *cur;
	MDB_val		k, v;
	int			rc = mdb_cursor_open(op->txn, op->c->lru, &cur);

	if (rc != 0)
		return step(op, rc, "opening the LRU order");
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0 && (k.mv_size != 8 || v.mv_size != HASH_LEN))
		rc = MDB_CORRUPTED;
	if (rc == 0)
	{
		memcpy(stamp, k.mv_data, 8);
		memcpy(hash, v.mv_data, HASH_LEN);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? rc : step(op, rc, "reading the LRU order");
}

/* Evict the oldest entry; MDB_NOTFOUND when there is none. */
static int
evict_one(Op *op, uint64_t *freed)
{
	unsigned char stamp[8], hash[HASH_LEN];
	bool		found;
	int			rc = oldest(op, stamp, hash);

	if (rc != 0)
		return rc;
	rc = remove_entry(op, hash, &op->evicted, &found, freed);
	if (rc == 0)
	{
		/* and the row itself (gone already, unless dangling): always progress */
		MDB_val		k = val(stamp, 8);

		rc = del_ignoring_missing(op, op->c->lru, &k, NULL, "dropping an LRU row");
	}
	return rc;
}

/* Evict until one more record of `size` bytes fits the limits. */
static int
evict_to_fit(Op *op, uint64_t size)
{
	const HdStoreOptions *o = &op->c->opts;

	while ((o->max_entries && op->st.entries + 1 > o->max_entries) ||
		   op->st.bytes + size > o->max_bytes)
	{
		int			rc = evict_one(op, NULL);

		if (rc != 0)
			return rc == MDB_NOTFOUND ? 0 : rc;
	}
	return 0;
}

/*
 * Remove every entry listed under key in index (by_relation or by_value,
 * dupsort), and the rows themselves, even those of entries that are gone.
 */
static int
remove_listed(Op *op, MDB_dbi index, const unsigned char *key, size_t keylen)
{
	unsigned char hashes[REMOVE_BATCH][HASH_LEN];

	for (;;)
	{
		MDB_cursor *cur;
		MDB_val		k = val(key, keylen);
		MDB_val		v;
		size_t		n = 0;
		int			rc = mdb_cursor_open(op->txn, index, &cur);

		if (rc != 0)
			return step(op, rc, "opening an index");
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		while (rc == 0 && n < REMOVE_BATCH)
		{
			if (v.mv_size == HASH_LEN)
				memcpy(hashes[n++], v.mv_data, HASH_LEN);
			rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
		}
		mdb_cursor_close(cur);
		if (rc != 0 && rc != MDB_NOTFOUND)
			return step(op, rc, "reading an index");
		if (n == 0)
			return 0;
		for (size_t i = 0; i < n; i++)
		{
			MDB_val		kk = val(key, keylen);
			MDB_val		hv = val(hashes[i], HASH_LEN);
			bool		found;

			if ((rc = remove_entry(op, hashes[i], &op->removed, &found, NULL)) != 0 ||
				(rc = del_ignoring_missing(op, index, &kk, &hv, "removing an index row")) != 0)
				return rc;
		}
	}
}

/* Remove every entry listed under (config, relation) in by_relation. */
static int
remove_dependents(Op *op, const unsigned char *cfg, uint64_t relation)
{
	unsigned char rk[RELKEY_LEN];

	relation_key(rk, cfg, relation);
	return remove_listed(op, op->c->by_relation, rk, RELKEY_LEN);
}

/*
 * The next by_value key of (config, relation) at or after column `from`
 * (hash 0) into vk: 1 found, 0 none, or an error.
 */
static int
next_column_key(Op *op, const unsigned char *cfg, uint64_t relation, uint32_t from,
				unsigned char vk[VALKEY_LEN])
{
	MDB_cursor *cur;
	MDB_val		k,
				v;
	int			rc = mdb_cursor_open(op->txn, op->c->by_value, &cur);

	if (rc != 0)
		return step(op, rc, "opening the value index");
	value_key(vk, cfg, relation, from, 0);
	k = val(vk, VALKEY_LEN);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == VALKEY_LEN && memcmp(k.mv_data, vk, CFG_LEN + 8) == 0)
	{
		memcpy(vk, k.mv_data, VALKEY_LEN);
		rc = 1;
	}
	else if (rc == 0 || rc == MDB_NOTFOUND)
		rc = 0;
	else
		rc = step(op, rc, "reading the value index");
	mdb_cursor_close(cur);
	return rc;
}

/*
 * Remove the entries of (config, change's relation) that a change with
 * values overlaps (hd_dep_overlaps()), through by_value: those listed under
 * one of its values of its column, and every one listed under another
 * column (column 0: every row; values of two columns cannot be compared).
 * With one precision column per relation (dep.h) the second part finds only
 * the entries that read the relation whole.
 */
static int
remove_overlapping(Op *op, const unsigned char *cfg, const HdDep *change)
{
	unsigned char vk[VALKEY_LEN];
	uint32_t	from = 0;
	int			rc;

	for (uint32_t i = 0; i < change->nvalues; i++)
	{
		value_key(vk, cfg, change->relation, change->column, change->values[i]);
		if ((rc = remove_listed(op, op->c->by_value, vk, VALKEY_LEN)) != 0)
			return rc;
	}
	while ((rc = next_column_key(op, cfg, change->relation, from, vk)) == 1)
	{
		uint32_t	column = hd_get_u32(vk + CFG_LEN + 8);

		if (column == change->column)
		{
			if (column == UINT32_MAX)
				return 0;
			from = column + 1;	/* its values were looked up above */
			continue;
		}
		if ((rc = remove_listed(op, op->c->by_value, vk, VALKEY_LEN)) != 0)
			return rc;
		from = column;			/* the next key of the same column, if any */
	}
	return rc;
}

/* Forget a config's per-relation invalidation sequence numbers. */
static int
clear_invalidated(Op *op, const unsigned char *cfg)
{
	MDB_cursor *cur;
	int			rc = mdb_cursor_open(op->txn, op->c->invalidated, &cur);

	if (rc != 0)
		return step(op, rc, "opening the invalidation marks");
	for (;;)
	{
		unsigned char rk[RELKEY_LEN];
		MDB_val		k = val(rk, RELKEY_LEN);
		MDB_val		v;

		relation_key(rk, cfg, 0);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc != 0 || k.mv_size != RELKEY_LEN || memcmp(k.mv_data, cfg, CFG_LEN) != 0)
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
	}
	mdb_cursor_close(cur);
	return step(op, rc == MDB_NOTFOUND || rc == 0 ? 0 : rc, "clearing invalidation marks");
}

/*
 * Remove every entry of every config (few pages: it works on a full map).
 * An invalidation or purge also refuses the puts in flight; room-making
 * need not (what they read is as fresh as before).
 */
static int
drop_all(Op *op, uint64_t *counter, bool invalidating)
{
	HdStore    *c = op->c;
	MDB_dbi		dbis[] = {c->entries, c->by_relation, c->by_value, c->lru, c->access};
	int			rc = 0;

	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]) && rc == 0; i++)
		rc = step(op, mdb_drop(op->txn, dbis[i], 0), "emptying the cache");
	if (rc != 0)
		return rc;
	*counter += op->st.entries;
	op->st.entries = 0;
	op->st.bytes = 0;
	if (invalidating)
		op->st.purge_seq = ++op->st.seq;
	op->flushed_touches = true; /* their entries are gone */
	return 0;
}

/*
 * Make room after MDB_MAP_FULL: evict the oldest entries (an eighth of the
 * bytes, then half, and at least twice `need`), or if even that finds no
 * room, everything.
 */
static int
make_room(HdStore *c, uint64_t need, int attempt, char *err, size_t errlen)
{
	uint64_t	target = c->state.bytes >> (attempt == 0 ? 3 : 1);
	uint64_t	freed = 0;
	Op			op;
	int			rc = op_begin(&op, c);

	if (target < need * 2)
		target = need * 2;
	while (rc == 0 && freed < target)
		rc = evict_one(&op, &freed);
	if (rc == 0 || rc == MDB_NOTFOUND)
		rc = op_commit(&op);
	if (rc == 0)
		return 0;
	op_abort(&op);
	if (!no_room(rc))
		return op_fail(&op, rc, "evicting entries to make room", err, errlen);
	if ((rc = op_begin(&op, c)) == 0 && (rc = drop_all(&op, &op.evicted, false)) == 0)
		rc = op_commit(&op);
	if (rc == 0 || no_room(rc))
	{
		op_abort(&op);
		return 0;				/* still no room: the caller skips */
	}
	return op_fail(&op, rc, "emptying the cache to make room", err, errlen);
}

/* ------------------------------------------------------------------------
 * Hits and the LRU buffer.
 */

static size_t
touch_slot(const HdStore *c, const unsigned char *hash)
{
	uint64_t	h;
	size_t		mask = c->touch_cap - 1;
	size_t		i;

	memcpy(&h, hash, sizeof(h));
	i = (size_t) (h ^ (h >> 31)) & mask;
	while (c->touches[i].stamp != 0 && memcmp(c->touches[i].hash, hash, HASH_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

static void
touch(HdStore *c, const unsigned char *hash)
{
	size_t		i = touch_slot(c, hash);
	Touch	   *t = &c->touches[i];

	if (t->stamp == 0)
	{
		memcpy(t->hash, hash, HASH_LEN);
		c->touch_used[c->ntouches++] = i;
	}
	t->stamp = c->next_stamp++;
	if (c->ntouches >= c->opts.lru_batch)
		flush_touches_now(c);
}

/* In a transaction of their own; on failure they are dropped (LRU is a hint). */
static int
flush_touches_now(HdStore *c)
{
	Op			op;
	int			rc;

	if (c->ntouches == 0)
		return 0;
	if ((rc = op_begin(&op, c)) == 0 && (rc = flush_touches(&op)) == 0)
		rc = op_commit(&op);
	if (rc != 0)
	{
		op_abort(&op);
		c->stats.lru_flush_failures++;
		clear_touches(c);
	}
	return rc;
}

static HdStoreStatus
status_at(const RecordHeader *h, int64_t now_ms)
{
	if (now_ms < h->expires_ms)
		return HD_STORE_FRESH;
	if (now_ms < h->stale_until_ms)
		return HD_STORE_STALE;
	return HD_STORE_MISS;
}

/* The config's fence, or NULL; with fenced_all, a fence of every config. */
static const char *
fence_reason(const HdStore *c, const unsigned char *cfg)
{
	if (c->fenced_all)
		return c->fence_all_reason;
	for (size_t i = 0; i < c->nfenced; i++)
		if (memcmp(c->fenced[i].cfg, cfg, CFG_LEN) == 0)
			return c->fenced[i].why;
	return NULL;
}

static bool
is_fenced(const HdStore *c, const unsigned char *cfg)
{
	return fence_reason(c, cfg) != NULL;
}

static int
fenced_error(HdStore *c, const unsigned char *cfg, char *err, size_t errlen)
{
	snprintf(err, errlen, "the cache of this config is fenced until it is purged: %s",
			 fence_reason(c, cfg));
	return -1;
}

bool
hd_store_fenced(const HdStore *c, const char *config_id)
{
	unsigned char cfg[CFG_LEN];
	char		err[64];

	return config_bytes(config_id, cfg, err, sizeof(err)) == 0 && is_fenced(c, cfg);
}

/* Read the entry into hit; hit->status stays MISS if it is not this key's. */
static int
read_hit(HdStore *c, const unsigned char *cfg, const unsigned char *hash, const void *key,
		 size_t keylen, int64_t now_ms, HdStoreHit *hit, char *err, size_t errlen)
{
	MDB_val		h = val(hash, HASH_LEN);
	MDB_val		v;
	Record		r;
	HdStoreStatus status;
	int			rc = mdb_get(c->reader, c->entries, &h, &v);

	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
	{
		snprintf(err, errlen, "looking an entry up: %s", mdb_strerror(rc));
		return -1;
	}
	if (!parse_record(&v, &r))
	{
		snprintf(err, errlen, "looking an entry up: its record is malformed (%zu bytes)",
				 v.mv_size);
		return -1;
	}
	if (r.h.keylen != keylen || memcmp(r.h.config, cfg, CFG_LEN) != 0 ||
		memcmp(r.key, key, keylen) != 0)
	{
		c->stats.collisions++;
		return 0;
	}
	if ((status = status_at(&r.h, now_ms)) == HD_STORE_MISS)
	{
		c->stats.expired++;
		return 0;
	}
	if ((hit->bytes = malloc(r.h.value_len ? r.h.value_len : 1)) == NULL)
	{
		snprintf(err, errlen, "out of memory copying a %llu-byte entry",
				 (unsigned long long) r.h.value_len);
		return -1;
	}
	memcpy(hit->bytes, r.value, r.h.value_len);
	hit->len = r.h.value_len;
	hit->created_ms = r.h.created_ms;
	hit->expires_ms = r.h.expires_ms;
	hit->stale_until_ms = r.h.stale_until_ms;
	hit->status = status;
	return 0;
}

int
hd_store_get(HdStore *c, const char *config_id, const void *key, size_t keylen,
			 int64_t now_ms, HdStoreHit *hit, char *err, size_t errlen)
{
	unsigned char cfg[CFG_LEN], hash[HASH_LEN];
	int			rc;

	memset(hit, 0, sizeof(*hit));
	hit->status = HD_STORE_MISS;
	if (config_bytes(config_id, cfg, err, errlen) != 0)
		return -1;
	if (is_fenced(c, cfg))
		return fenced_error(c, cfg, err, errlen);
	if (!hash_key(&c->hasher, cfg, key, keylen, hash))
	{
		snprintf(err, errlen, "computing the key's SHA-256 failed");
		return -1;
	}
	if ((rc = mdb_txn_renew(c->reader)) != 0)
	{
		snprintf(err, errlen, "starting a read transaction: %s", mdb_strerror(rc));
		return -1;
	}
	rc = read_hit(c, cfg, hash, key, keylen, now_ms, hit, err, errlen);
	mdb_txn_reset(c->reader);
	if (rc != 0)
		return -1;
	if (hit->status == HD_STORE_MISS)
	{
		c->stats.misses++;
		return 0;
	}
	if (hit->status == HD_STORE_FRESH)
		c->stats.hits_fresh++;
	else
		c->stats.hits_stale++;
	touch(c, hash);
	return 0;
}

void
hd_store_hit_release(HdStoreHit *hit)
{
	free(hit->bytes);
	hit->bytes = NULL;
	hit->len = 0;
	hit->status = HD_STORE_MISS;
}

/* ------------------------------------------------------------------------
 * Puts.
 */

uint64_t
hd_store_token(const HdStore *c)
{
	return c->state.seq;
}

const char *
hd_store_outcome_name(HdStorePutOutcome outcome)
{
	switch (outcome)
	{
		case HD_STORE_STORED:
			return "stored";
		case HD_STORE_SKIP_OVERSIZED:
			return "oversized";
		case HD_STORE_SKIP_RACED:
			return "raced";
		case HD_STORE_SKIP_FULL:
			return "full";
	}
	return "unknown";
}

/*
 * Was what the put read (or the config, or all) invalidated since its token?
 * Changes of every row are marked per relation in LMDB; changes with values
 * in memory (value_marks.h).
 */
static int
raced(Op *op, const unsigned char *cfg, const DepSet *deps, uint64_t token, bool *out)
{
	ConfigState cs;
	uint64_t	config = hd_marks_config(cfg, CFG_LEN);
	int			rc;

	*out = op->st.purge_seq > token;
	if (*out)
		return 0;
	if ((rc = read_config(op->txn, op->c->meta, cfg, &cs)) != 0)
		return step(op, rc, "reading the config's state");
	*out = cs.all_seq > token;
	for (size_t i = 0; i < deps->ndeps && !*out; i++)
	{
		unsigned char rk[RELKEY_LEN];
		MDB_val		k = val(rk, RELKEY_LEN);
		MDB_val		v;

		/* a change of the relation's values that may touch what the put read */
		if (hd_marks_raced(&op->c->marks, config, &deps->deps[i], token))
		{
			*out = true;
			break;
		}
		relation_key(rk, cfg, deps->deps[i].relation);
		rc = mdb_get(op->txn, op->c->invalidated, &k, &v);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0 || v.mv_size != 8)
			return step(op, rc ? rc : MDB_CORRUPTED, "reading invalidation marks");
		*out = hd_get_u64(v.mv_data) > token;
	}
	return 0;
}

static int
write_entry(Op *op, const HdStorePut *p, const unsigned char *cfg, const DepSet *deps,
			const unsigned char *hash, uint64_t size)
{
	HdStore    *c = op->c;
	RecordHeader hdr = {0};
	unsigned char stamp[8];
	MDB_val		h = val(hash, HASH_LEN);
	MDB_val		v = val(NULL, (size_t) size);
	MDB_val		sk = val(stamp, 8);
	unsigned char *out;
	int			rc;

	hdr.version = RECORD_VERSION;
	hdr.ndeps = (uint32_t) deps->ndeps;
	hdr.deps_len = (uint32_t) deps->bytes;
	hdr.keylen = (uint32_t) p->keylen;
	hdr.value_len = p->len;
	hdr.created_ms = p->now_ms;
	hdr.expires_ms = p->now_ms + p->max_age_ms;
	hdr.stale_until_ms = hdr.expires_ms + p->swr_ms;
	memcpy(hdr.config, cfg, CFG_LEN);
	/* MDB_RESERVE: the bytes are copied once, straight into the page */
	if ((rc = step(op, mdb_put(op->txn, c->entries, &h, &v, MDB_RESERVE), "writing the entry")) != 0)
		return rc;
	out = v.mv_data;
	memcpy(out, &hdr, sizeof(hdr));
	write_deps(deps, out + sizeof(hdr));
	memcpy(out + sizeof(hdr) + deps->bytes, p->key, p->keylen);
	if (p->len)
		memcpy(out + sizeof(hdr) + deps->bytes + p->keylen, p->value, p->len);
	/* indexed from a copy: the reserved page is not ours after the next put */
	{
		unsigned char *copy = malloc(deps->bytes ? deps->bytes : 1);

		if (copy == NULL)
			return step(op, ENOMEM, "indexing the entry");
		write_deps(deps, copy);
		rc = index_entry(op, cfg, copy, (uint32_t) deps->ndeps, &h, true);
		free(copy);
		if (rc != 0)
			return rc;
	}
	hd_put_u64(stamp, c->next_stamp++);
	if ((rc = step(op, mdb_put(op->txn, c->lru, &sk, &h, 0), "adding the entry to the LRU order")) != 0 ||
		(rc = step(op, mdb_put(op->txn, c->access, &h, &sk, 0), "adding the entry to the LRU order")) != 0)
		return rc;
	op->st.entries++;
	op->st.bytes += size;
	return 0;
}

static int
put_once(Op *op, HdStore *c, const HdStorePut *p, const unsigned char *cfg,
		 const DepSet *deps, const unsigned char *hash, uint64_t size,
		 HdStorePutOutcome *outcome)
{
	bool		is_raced;
	bool		found;
	uint64_t	replaced = 0;
	int			rc;

	if ((rc = op_begin(op, c)) != 0 ||
		(rc = raced(op, cfg, deps, p->token, &is_raced)) != 0)
		return rc;
	if (is_raced)
	{
		op_abort(op);
		*outcome = HD_STORE_SKIP_RACED;
		return 0;
	}
	if ((rc = flush_touches(op)) != 0 ||
		(rc = remove_entry(op, hash, &replaced, &found, NULL)) != 0 ||
		(rc = evict_to_fit(op, size)) != 0 ||
		(rc = write_entry(op, p, cfg, deps, hash, size)) != 0 ||
		(rc = op_commit(op)) != 0)
		return rc;
	*outcome = HD_STORE_STORED;
	return 0;
}

static int
check_put(const HdStorePut *p, unsigned char *cfg, char *err, size_t errlen)
{
	if (config_bytes(p->config_id, cfg, err, errlen) != 0)
		return -1;
	if (p->key == NULL || p->keylen == 0 || (p->len > 0 && p->value == NULL))
	{
		snprintf(err, errlen, "a cache entry needs a key (and a value unless it is empty)");
		return -1;
	}
	if (p->max_age_ms < 0 || p->swr_ms < 0 || p->max_age_ms > INT64_MAX / 4 ||
		p->swr_ms > INT64_MAX / 4 || p->now_ms > INT64_MAX / 2 || p->now_ms < 0)
	{
		snprintf(err, errlen, "max_age, stale_while_revalidate and now must be non-negative "
				 "milliseconds");
		return -1;
	}
	return 0;
}

static int
store(HdStore *c, const HdStorePut *p, const unsigned char *cfg, const DepSet *deps,
	  const unsigned char *hash, uint64_t size, HdStorePutOutcome *outcome,
	  char *err, size_t errlen)
{
	char		action[128];

	snprintf(action, sizeof(action), "storing a %llu-byte entry of config %s",
			 (unsigned long long) size, p->config_id);
	for (int attempt = 0; attempt < PUT_ATTEMPTS; attempt++)
	{
		Op			op;
		int			rc = put_once(&op, c, p, cfg, deps, hash, size, outcome);

		if (rc == 0)
		{
			if (*outcome == HD_STORE_STORED)
				c->stats.stored++;
			else
				c->stats.skipped_raced++;
			return 0;
		}
		if (!no_room(rc))
			return op_fail(&op, rc, action, err, errlen);
		op_abort(&op);
		c->stats.map_full++;
		if (attempt + 1 < PUT_ATTEMPTS && make_room(c, size, attempt, err, errlen) != 0)
			return -1;
	}
	*outcome = HD_STORE_SKIP_FULL;
	c->stats.skipped_full++;
	return 0;
}

int
hd_store_put(HdStore *c, const HdStorePut *p, HdStorePutOutcome *outcome, char *err,
			 size_t errlen)
{
	unsigned char cfg[CFG_LEN], hash[HASH_LEN];
	DepSet		deps;
	uint64_t	size;
	int			rc;

	*outcome = HD_STORE_SKIP_FULL;
	if (check_put(p, cfg, err, errlen) != 0)
		return -1;
	if (is_fenced(c, cfg))
		return fenced_error(c, cfg, err, errlen);
	if (normalize_deps(p->deps, p->ndeps, &deps, err, errlen) != 0)
		return -1;
	size = record_size(p->keylen, deps.bytes, p->len);
	if (size == 0 || size > c->opts.max_entry_bytes)
	{
		depset_free(&deps);
		*outcome = HD_STORE_SKIP_OVERSIZED;
		c->stats.skipped_oversized++;
		return 0;
	}
	if (!hash_key(&c->hasher, cfg, p->key, p->keylen, hash))
	{
		depset_free(&deps);
		snprintf(err, errlen, "computing the key's SHA-256 failed");
		return -1;
	}
	rc = store(c, p, cfg, &deps, hash, size, outcome, err, errlen);
	depset_free(&deps);
	return rc;
}

/* ------------------------------------------------------------------------
 * Invalidation.
 */

/*
 * One transaction: remove the entries that a change of deps reaches (or all
 * of the config's entries), mark the relations invalidated, move the
 * applied position.
 */
static int
apply_invalidation(Op *op, HdStore *c, const unsigned char *cfg, const DepSet *deps,
				   bool all, HdPos pos, bool with_touches, bool value_marks)
{
	uint64_t	seq = c->state.seq + 1;
	unsigned char seqbuf[8];
	ConfigState cs;
	int			rc;

	hd_put_u64(seqbuf, seq);
	if ((rc = op_begin(op, c)) != 0 || (with_touches && (rc = flush_touches(op)) != 0))
		return rc;
	for (size_t i = 0; i < deps->ndeps; i++)
	{
		const HdDep *d = &deps->deps[i];
		unsigned char rk[RELKEY_LEN];
		MDB_val		k = val(rk, RELKEY_LEN);
		MDB_val		v = val(seqbuf, 8);

		relation_key(rk, cfg, d->relation);
		rc = d->nvalues == 0 ? remove_dependents(op, cfg, d->relation) :
			remove_overlapping(op, cfg, d);
		if (rc != 0)
			return rc;
		/*
		 * The race guard: a change with values is marked in memory once
		 * committed (invalidate()); without values, or when there was no room
		 * for its marks, the whole relation is: puts in flight on it are
		 * refused, whatever their values.
		 */
		if ((d->nvalues == 0 || !value_marks) &&
			(rc = step(op, mdb_put(op->txn, c->invalidated, &k, &v, 0),
					   "marking a relation invalidated")) != 0)
			return rc;
	}
	if (all && (rc = remove_dependents(op, cfg, ALL_ENTRIES)) != 0)
		return rc;
	if ((rc = step(op, read_config(op->txn, c->meta, cfg, &cs), "reading the config's state")) != 0)
		return rc;
	if (all)
		cs.all_seq = seq;
	if (pos > cs.applied_pos)
		cs.applied_pos = pos;
	op->st.seq = seq;
	if ((rc = write_config(op, cfg, &cs)) != 0)
		return rc;
	return op_commit(op);
}

/* The last resort on a full map: drop every entry, and still move the position. */
static int
apply_by_dropping_all(Op *op, HdStore *c, const unsigned char *cfg, HdPos pos)
{
	ConfigState cs;
	int			rc;

	if ((rc = op_begin(op, c)) != 0 || (rc = drop_all(op, &op->removed, true)) != 0 ||
		(rc = step(op, read_config(op->txn, c->meta, cfg, &cs), "reading the config's state")) != 0)
		return rc;
	if (pos > cs.applied_pos)
		cs.applied_pos = pos;
	if ((rc = write_config(op, cfg, &cs)) != 0)
		return rc;
	return op_commit(op);
}

/*
 * An invalidation of config cfg failed: its entries may be stale, so its
 * lookups and puts fail until it is purged. Other configs' entries are
 * invalidated by their own records and are not touched by this one's, so
 * they stay usable. If the config cannot be remembered (out of memory),
 * every config is fenced, until hd_store_purge(cache, NULL).
 */
static void
fence(HdStore *c, const unsigned char *cfg, const char *why)
{
	Fence	   *grown;

	if (c->fenced_all || is_fenced(c, cfg))
		return;					/* the first reason stays */
	grown = realloc(c->fenced, (c->nfenced + 1) * sizeof(Fence));
	if (grown == NULL)
	{
		c->fenced_all = true;
		snprintf(c->fence_all_reason, sizeof(c->fence_all_reason), "%s", why);
		return;
	}
	c->fenced = grown;
	memcpy(c->fenced[c->nfenced].cfg, cfg, CFG_LEN);
	snprintf(c->fenced[c->nfenced].why, sizeof(c->fenced[c->nfenced].why), "%s", why);
	c->nfenced++;
}

/* Purged: the config's entries are gone, and with them the reason for its fence. */
static void
unfence(HdStore *c, const unsigned char *cfg)
{
	for (size_t i = 0; i < c->nfenced; i++)
		if (memcmp(c->fenced[i].cfg, cfg, CFG_LEN) == 0)
		{
			c->fenced[i] = c->fenced[--c->nfenced];
			return;
		}
}

/* Room for the in-memory marks of a change's values (value_marks.h). */
static bool
reserve_value_marks(HdStore *c, const DepSet *deps)
{
	size_t		ndeps = 0;
	size_t		nvalues = 0;

	for (size_t i = 0; i < deps->ndeps; i++)
		if (deps->deps[i].nvalues > 0)
		{
			ndeps++;
			nvalues += deps->deps[i].nvalues;
		}
	return ndeps > 0 && hd_marks_reserve(&c->marks, ndeps, nvalues);
}

/* The change committed at c->state.seq: its values' marks. */
static void
note_value_marks(HdStore *c, const unsigned char *cfg, const DepSet *deps)
{
	uint64_t	config = hd_marks_config(cfg, CFG_LEN);

	for (size_t i = 0; i < deps->ndeps; i++)
		if (deps->deps[i].nvalues > 0)
			hd_marks_note(&c->marks, config, &deps->deps[i], c->state.seq);
}

void
hd_store_forget_marks(HdStore *c, uint64_t oldest_token)
{
	hd_marks_prune(&c->marks, oldest_token);
}

static int
invalidate(HdStore *c, const char *config_id, const HdDep *changed, size_t n, bool all,
		   HdPos pos, uint64_t *removed, char *err, size_t errlen)
{
	unsigned char cfg[CFG_LEN];
	DepSet		deps;
	char		action[160];
	Op			op;
	bool		marks;
	int			rc;

	if (removed)
		*removed = 0;
	if (config_bytes(config_id, cfg, err, errlen) != 0 ||
		normalize_deps(changed, n, &deps, err, errlen) != 0)
		return -1;
	/* the position is the change source's: printed, not interpreted */
	snprintf(action, sizeof(action), "invalidating %s of config %s at position %llu",
			 all ? "all entries" : "relations", config_id, (unsigned long long) pos);
	marks = reserve_value_marks(c, &deps);
	rc = apply_invalidation(&op, c, cfg, &deps, all, pos, true, marks);
	if (no_room(rc))
	{
		op_abort(&op);
		c->stats.map_full++;
		if (make_room(c, 0, 1, err, errlen) == 0)
			rc = apply_invalidation(&op, c, cfg, &deps, all, pos, false, marks);
		if (no_room(rc))
		{
			op_abort(&op);
			rc = apply_by_dropping_all(&op, c, cfg, pos);
		}
	}
	if (rc == 0 && marks)
		note_value_marks(c, cfg, &deps);
	depset_free(&deps);
	if (rc != 0)
	{
		op_fail(&op, rc, action, err, errlen);
		fence(c, cfg, err);
		return -1;
	}
	if (removed)
		*removed = op.removed;
	return 0;
}

int
hd_store_invalidate(HdStore *c, const char *config_id, const HdDep *deps, size_t ndeps,
					HdPos pos, uint64_t *removed, char *err, size_t errlen)
{
	return invalidate(c, config_id, deps, ndeps, false, pos, removed, err, errlen);
}

int
hd_store_invalidate_all(HdStore *c, const char *config_id, HdPos pos, uint64_t *removed,
						char *err, size_t errlen)
{
	return invalidate(c, config_id, NULL, 0, true, pos, removed, err, errlen);
}

int
hd_store_purge(HdStore *c, const char *config_id, uint64_t *removed, char *err,
			   size_t errlen)
{
	Op			op;
	int			rc;

	if (config_id != NULL)
	{
		unsigned char cfg[CFG_LEN];

		if (config_bytes(config_id, cfg, err, errlen) != 0 ||
			invalidate(c, config_id, NULL, 0, true, 0, removed, err, errlen) != 0)
			return -1;
		unfence(c, cfg);
		if (c->fenced_all)
		{
			snprintf(err, errlen, "the entries of config %s were removed, but the whole cache "
					 "stays fenced (which config's invalidation failed is not known: %s); "
					 "purge every config to lift it", config_id, c->fence_all_reason);
			return -1;
		}
		return 0;
	}
	if (removed)
		*removed = 0;
	if ((rc = op_begin(&op, c)) == 0 && (rc = drop_all(&op, &op.removed, true)) == 0)
		rc = op_commit(&op);
	if (rc != 0)
		return op_fail(&op, rc, "purging the cache", err, errlen);
	if (removed)
		*removed = op.removed;
	c->nfenced = 0;
	c->fenced_all = false;
	return 0;
}

/* ------------------------------------------------------------------------
 * Per-config state: applied position, slot identity.
 */

static int
read_config_now(HdStore *c, const char *config_id, ConfigState *cs, char *err, size_t errlen)
{
	unsigned char cfg[CFG_LEN];
	int			rc;

	if (config_bytes(config_id, cfg, err, errlen) != 0)
		return -1;
	if ((rc = mdb_txn_renew(c->reader)) == 0)
	{
		rc = read_config(c->reader, c->meta, cfg, cs);
		mdb_txn_reset(c->reader);
	}
	if (rc != 0)
	{
		snprintf(err, errlen, "reading the state of config %s: %s", config_id, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

int
hd_store_applied_pos(HdStore *c, const char *config_id, HdPos *pos, char *err,
					 size_t errlen)
{
	ConfigState cs;

	*pos = HD_POS_NONE;
	if (read_config_now(c, config_id, &cs, err, errlen) != 0)
		return -1;
	*pos = cs.applied_pos;
	return 0;
}

int
hd_store_slot_identity(HdStore *c, const char *config_id, char *buf, size_t buflen,
					   char *err, size_t errlen)
{
	ConfigState cs;

	if (buflen > 0)
		buf[0] = '\0';
	if (read_config_now(c, config_id, &cs, err, errlen) != 0)
		return -1;
	if (cs.identity_len >= buflen)
	{
		snprintf(err, errlen, "the slot identity of config %s (%zu bytes) does not fit",
				 config_id, cs.identity_len);
		return -1;
	}
	memcpy(buf, cs.identity, cs.identity_len);
	buf[cs.identity_len] = '\0';
	return 0;
}

/* Store a new identity: the entries, position and invalidation marks go. */
static int
rebind(Op *op, HdStore *c, const unsigned char *cfg, const char *identity, size_t len)
{
	ConfigState cs = {0};
	int			rc;

	if ((rc = op_begin(op, c)) != 0 || (rc = remove_dependents(op, cfg, ALL_ENTRIES)) != 0 ||
		(rc = clear_invalidated(op, cfg)) != 0)
		return rc;
	/* all_seq stays ahead of any token read before: puts in flight are refused */
	cs.all_seq = ++op->st.seq;
	cs.identity_len = len;
	memcpy(cs.identity, identity, len);
	if ((rc = write_config(op, cfg, &cs)) != 0)
		return rc;
	return op_commit(op);
}

int
hd_store_bind_slot(HdStore *c, const char *config_id, const char *identity, bool *reset,
				   char *err, size_t errlen)
{
	unsigned char cfg[CFG_LEN];
	size_t		len = identity ? strlen(identity) : 0;
	ConfigState cs;
	char		action[128];
	Op			op;
	int			rc;

	*reset = false;
	if (config_bytes(config_id, cfg, err, errlen) != 0)
		return -1;
	if (len > HD_STORE_IDENTITY_MAX)
	{
		snprintf(err, errlen, "a slot identity is at most %d bytes", HD_STORE_IDENTITY_MAX);
		return -1;
	}
	if (read_config_now(c, config_id, &cs, err, errlen) != 0)
		return -1;
	/* "" always forgets: entries of an unbound config must go too */
	if (len > 0 && cs.identity_len == len && memcmp(cs.identity, identity, len) == 0)
		return 0;
	snprintf(action, sizeof(action), "binding config %s to a slot", config_id);
	rc = rebind(&op, c, cfg, identity ? identity : "", len);
	if (no_room(rc))
	{
		op_abort(&op);
		c->stats.map_full++;
		if (hd_store_purge(c, NULL, NULL, err, errlen) != 0)
			return -1;
		rc = rebind(&op, c, cfg, identity ? identity : "", len);
	}
	if (rc != 0)
		return op_fail(&op, rc, action, err, errlen);
	*reset = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * Sync and stats.
 */

/*
 * The sync thread: the flush, and nothing else of the store. What
 * mdb_env_sync(env, 1) does without MDB_WRITEMAP (never set here): an
 * fdatasync of the data file, whose descriptor the caller took; called
 * directly so that the thread reads nothing of LMDB's while the loop's
 * transactions go on.
 */
static void *
sync_main(void *arg)
{
	HdStore    *c = arg;

	c->sync_rc = fdatasync(c->sync_fd) == 0 ? 0 : errno;
	atomic_store(&c->sync_done, true);
	return NULL;
}

/* Wait for the sync thread, if one runs; its result is left out. */
static void
sync_join(HdStore *c)
{
	if (!c->sync_running)
		return;
	pthread_join(c->sync_thread, NULL);
	c->sync_running = false;
}

int
hd_store_sync_start(HdStore *c, char *err, size_t errlen)
{
	int			rc;

	if (c->sync_running)
	{
		snprintf(err, errlen, "a flush of the cache in %s to disk is already running", c->dir);
		return -1;
	}
	flush_touches_now(c);
	if ((rc = mdb_env_get_fd(c->env, &c->sync_fd)) != 0)
	{
		snprintf(err, errlen, "flushing the cache in %s to disk: %s", c->dir, mdb_strerror(rc));
		return -1;
	}
	atomic_store(&c->sync_done, false);
	if ((rc = pthread_create(&c->sync_thread, NULL, sync_main, c)) != 0)
	{
		snprintf(err, errlen, "cannot start a thread to flush the cache in %s to disk: %s",
				 c->dir, strerror(rc));
		return -1;
	}
	c->sync_running = true;
	return 0;
}

HdStoreSyncState
hd_store_sync_poll(HdStore *c, char *err, size_t errlen)
{
	if (!c->sync_running)
		return HD_STORE_SYNC_IDLE;
	if (!atomic_load(&c->sync_done))
		return HD_STORE_SYNC_RUNNING;
	sync_join(c);
	if (c->sync_rc != 0)
	{
		snprintf(err, errlen, "flushing the cache in %s to disk: %s", c->dir,
				 strerror(c->sync_rc));
		return HD_STORE_SYNC_FAILED;
	}
	return HD_STORE_SYNC_DONE;
}

int
hd_store_sync(HdStore *c, char *err, size_t errlen)
{
	int			rc;

	sync_join(c);
	flush_touches_now(c);
	if ((rc = mdb_env_sync(c->env, 1)) != 0)
	{
		snprintf(err, errlen, "flushing the cache in %s to disk: %s", c->dir, mdb_strerror(rc));
		return -1;
	}
	return 0;
}

void
hd_store_stats(const HdStore *c, HdStoreStats *out)
{
	*out = c->stats;
	out->entries = c->state.entries;
	out->bytes = c->state.bytes;
	out->value_marks = c->marks.nvalues;
}

/* ------------------------------------------------------------------------
 * The directory: owner lock, the "unsynced" marker.
 */

static int
fsync_dir(const char *dir)
{
	int			fd = open(dir, O_RDONLY | O_DIRECTORY);
	int			rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

static int
prepare_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
	{
		snprintf(err, errlen, "creating the cache directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
	{
		snprintf(err, errlen, "the cache directory %s is not a directory", dir);
		return -1;
	}
	return 0;
}

/* flock() the owner lock file: one process per store. Returns the fd or -1. */
static int
take_owner_lock(const char *dir, char *err, size_t errlen)
{
	char	   *path = path_in(dir, OWNER_LOCK_FILE);
	int			fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;

	if (fd < 0)
		snprintf(err, errlen, "opening %s: %s", path ? path : dir, strerror(path ? errno : ENOMEM));
	else if (flock(fd, LOCK_EX | LOCK_NB) != 0)
	{
		snprintf(err, errlen, "the cache in %s is in use by another process (%s)", dir,
				 errno == EWOULDBLOCK ? "its cache.lock is locked" : strerror(errno));
		close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

static int
read_boot_id(char out[BOOT_ID_MAX])
{
	FILE	   *f = fopen(BOOT_ID_PATH, "r");
	bool		ok = f && fgets(out, BOOT_ID_MAX, f) != NULL;

	if (f)
		fclose(f);
	if (!ok)
		return -1;
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

/*
 * The marker says a session may have left writes only in the page cache. In
 * the same boot they are there (the process died, not the system); after a
 * reboot they may be lost in any order, and the store may be torn.
 */
static int
check_unsynced(const char *dir, char *err, size_t errlen)
{
	char	   *path = path_in(dir, UNSYNCED_FILE);
	char		was[BOOT_ID_MAX] = "", now[BOOT_ID_MAX];
	FILE	   *f = path ? fopen(path, "r") : NULL;
	int			saved = errno;

	free(path);
	if (f == NULL && saved == ENOENT)
		return HD_STORE_OK;
	if (f == NULL)
	{
		snprintf(err, errlen, "reading %s/%s: %s", dir, UNSYNCED_FILE, strerror(saved));
		return HD_STORE_FAILED;
	}
	if (fgets(was, sizeof(was), f) == NULL)
		was[0] = '\0';
	fclose(f);
	was[strcspn(was, "\n")] = '\0';
	if (read_boot_id(now) == 0 && was[0] != '\0' && strcmp(was, now) == 0)
		return HD_STORE_OK;
	snprintf(err, errlen, "the cache in %s was not closed before the system restarted, "
			 "and unsynced writes may have reached the disk out of order: wipe it", dir);
	return HD_STORE_DAMAGED;
}

static int
mark_unsynced(const char *dir, char *err, size_t errlen)
{
	char	   *path = path_in(dir, UNSYNCED_FILE);
	char		boot[BOOT_ID_MAX];
	int			fd = -1;
	bool		ok;

	if (read_boot_id(boot) != 0)
		snprintf(boot, sizeof(boot), "unknown");
	ok = path && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0 &&
		write(fd, boot, strlen(boot)) == (ssize_t) strlen(boot) && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	ok = ok && fsync_dir(dir) == 0;
	if (!ok)
		snprintf(err, errlen, "writing %s/%s: %s", dir, UNSYNCED_FILE, strerror(errno));
	free(path);
	return ok ? 0 : -1;
}

static int
clear_unsynced(const char *dir, char *err, size_t errlen)
{
	char	   *path = path_in(dir, UNSYNCED_FILE);
	bool		ok = path && (unlink(path) == 0 || errno == ENOENT) && fsync_dir(dir) == 0;

	if (!ok)
		snprintf(err, errlen, "removing %s/%s: %s", dir, UNSYNCED_FILE, strerror(errno));
	free(path);
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Opening: the environment, the format, the full check.
 */

static int
lmdb_open_error(int rc, const char *dir, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s the cache in %s: %s%s", what, dir, mdb_strerror(rc),
			 damaged_rc(rc) ? " (the file is damaged: wipe it)" : "");
	return damaged_rc(rc) ? HD_STORE_DAMAGED : HD_STORE_FAILED;
}

static int
create_env(const char *dir, const HdStoreOptions *o, unsigned flags, MDB_env **out,
		   char *err, size_t errlen)
{
	MDB_env    *env;
	int			rc = mdb_env_create(&env);

	*out = NULL;
	if (rc != 0)
		return lmdb_open_error(rc, dir, "creating an environment for", err, errlen);
	if ((rc = mdb_env_set_maxdbs(env, MAX_DBS)) != 0 ||
		(rc = mdb_env_set_mapsize(env, o->map_size)) != 0 ||
		(rc = mdb_env_open(env, dir, flags, 0600)) != 0)
	{
		mdb_env_close(env);
		return lmdb_open_error(rc, dir, "opening", err, errlen);
	}
	*out = env;
	return HD_STORE_OK;
}

/* LMDB maps the file and trusts it: a truncated one would fault (SIGBUS). */
static int
check_file_size(MDB_env *env, const char *dir, char *err, size_t errlen)
{
	MDB_envinfo info;
	MDB_stat	st;
	struct stat fst;
	char	   *path = path_in(dir, DATA_FILE);
	int			rc = path ? stat(path, &fst) : -1;

	free(path);
	if (rc != 0 || mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0)
	{
		snprintf(err, errlen, "reading the size of the cache in %s failed", dir);
		return HD_STORE_FAILED;
	}
	if ((uint64_t) fst.st_size < ((uint64_t) info.me_last_pgno + 1) * st.ms_psize)
	{
		snprintf(err, errlen, "the cache's %s/%s is truncated: %lld bytes, its pages need %llu "
				 "(the file is damaged: wipe it)", dir, DATA_FILE, (long long) fst.st_size,
				 ((unsigned long long) info.me_last_pgno + 1) * st.ms_psize);
		return HD_STORE_DAMAGED;
	}
	return HD_STORE_OK;
}

/*
 * HD_STORE_OK, FORMAT_OLD (a store of an older format, *version: to be
 * emptied, not read), or an error.
 */
static int
check_format(MDB_txn *txn, MDB_dbi meta, const HdStoreOptions *o, const char *dir,
			 unsigned *version, char *err, size_t errlen)
{
	MDB_val		k = val("format", 6);
	MDB_val		v;
	FormatRecord f;
	unsigned	want_hash = o->test_hash_bytes ? o->test_hash_bytes : HASH_LEN;
	int			rc = mdb_get(txn, meta, &k, &v);

	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_open_error(rc, dir, "reading the format of", err, errlen);
	if (rc == MDB_NOTFOUND || v.mv_size != sizeof(f))
	{
		snprintf(err, errlen, "the cache in %s has no valid format record: not a hyperdrive "
				 "cache, or damaged: wipe it", dir);
		return HD_STORE_DAMAGED;
	}
	memcpy(&f, v.mv_data, sizeof(f));
	if (memcmp(f.magic, FORMAT_MAGIC, sizeof(f.magic)) != 0 || f.byte_order != BYTE_ORDER_MARK)
	{
		snprintf(err, errlen, "the cache in %s was not written by hyperdrive on this kind of "
				 "machine: wipe it", dir);
		return HD_STORE_DAMAGED;
	}
	*version = f.version;
	if (f.version >= 1 && f.version < FORMAT_VERSION)
		return FORMAT_OLD;
	if (f.version != FORMAT_VERSION || f.hash_bytes != want_hash)
	{
		snprintf(err, errlen, "the cache in %s has format version %u (hash %u bytes); this "
				 "build uses version %d (hash %u bytes): wipe it", dir, f.version,
				 f.hash_bytes, FORMAT_VERSION, want_hash);
		return HD_STORE_DAMAGED;
	}
	return HD_STORE_OK;
}

typedef struct Dbis
{
	MDB_dbi		entries,
				by_relation,
				by_value,
				lru,
				access,
				invalidated,
				meta;
} Dbis;

static int
open_dbis(MDB_txn *txn, unsigned create, Dbis *d)
{
	int			rc;

	if ((rc = mdb_dbi_open(txn, "entries", create, &d->entries)) != 0 ||
		(rc = mdb_dbi_open(txn, "by_relation", create | MDB_DUPSORT | MDB_DUPFIXED,
						   &d->by_relation)) != 0 ||
		(rc = mdb_dbi_open(txn, "by_value", create | MDB_DUPSORT | MDB_DUPFIXED,
						   &d->by_value)) != 0 ||
		(rc = mdb_dbi_open(txn, "lru", create, &d->lru)) != 0 ||
		(rc = mdb_dbi_open(txn, "access", create, &d->access)) != 0 ||
		(rc = mdb_dbi_open(txn, "invalidated", create, &d->invalidated)) != 0)
		return rc;
	return mdb_dbi_open(txn, "meta", create, &d->meta);
}

/* Is this an environment with no databases at all (a new file)? */
static int
is_blank(MDB_txn *txn, bool *blank)
{
	MDB_dbi		main_db;
	MDB_stat	st;
	int			rc = mdb_dbi_open(txn, NULL, 0, &main_db);

	if (rc == 0)
		rc = mdb_stat(txn, main_db, &st);
	*blank = rc == 0 && st.ms_entries == 0;
	return rc;
}

static int
init_format(MDB_txn *txn, const HdStoreOptions *o, Dbis *d)
{
	FormatRecord f = {0};
	StoreState	st = {0};
	MDB_val		fk = val("format", 6), fv = val(&f, sizeof(f));
	MDB_val		sk = val("state", 5), sv = val(&st, sizeof(st));
	int			rc;

	memcpy(f.magic, FORMAT_MAGIC, sizeof(f.magic));
	f.version = FORMAT_VERSION;
	f.byte_order = BYTE_ORDER_MARK;
	f.hash_bytes = o->test_hash_bytes ? o->test_hash_bytes : HASH_LEN;
	if ((rc = open_dbis(txn, MDB_CREATE, d)) != 0 ||
		(rc = mdb_put(txn, d->meta, &fk, &fv, 0)) != 0)
		return rc;
	return mdb_put(txn, d->meta, &sk, &sv, 0);
}

/*
 * Delete every database of a store of an older format, whatever its layout:
 * the names are read from LMDB's main database first, as deleting changes it.
 */
static int
drop_every_db(MDB_txn *txn)
{
	char		names[MAX_DBS][64];
	size_t		n = 0;
	MDB_dbi		main_db;
	MDB_cursor *cur;
	MDB_val		k, v;
	int			rc;

	if ((rc = mdb_dbi_open(txn, NULL, 0, &main_db)) != 0 ||
		(rc = mdb_cursor_open(txn, main_db, &cur)) != 0)
		return rc;
	for (MDB_cursor_op next = MDB_FIRST;
		 (rc = mdb_cursor_get(cur, &k, &v, next)) == 0; next = MDB_NEXT)
	{
		if (n == MAX_DBS || k.mv_size >= sizeof(names[0]))
		{
			rc = MDB_INCOMPATIBLE;	/* not one of ours */
			break;
		}
		memcpy(names[n], k.mv_data, k.mv_size);
		names[n++][k.mv_size] = '\0';
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND)
		return rc;
	for (size_t i = 0; i < n; i++)
	{
		MDB_dbi		dbi;

		if ((rc = mdb_dbi_open(txn, names[i], 0, &dbi)) != 0 ||
			(rc = mdb_drop(txn, dbi, 1)) != 0)
			return rc;
	}
	return 0;
}

/*
 * In txn: check the format; an older one is emptied (writable) or left
 * unread (*old: the version found). Opens meta.
 */
static int
check_or_purge(MDB_txn *txn, bool writable, const HdStoreOptions *o, const char *dir, Dbis *d,
			   unsigned *old, char *err, size_t errlen)
{
	int			rc = mdb_dbi_open(txn, "meta", 0, &d->meta);

	if (rc != 0)
	{
		if (rc != MDB_NOTFOUND)
			return lmdb_open_error(rc, dir, "opening the databases of", err, errlen);
		snprintf(err, errlen, "the cache in %s lacks some of its databases: not a hyperdrive "
				 "cache, or damaged: wipe it", dir);
		return HD_STORE_DAMAGED;
	}
	if ((rc = check_format(txn, d->meta, o, dir, old, err, errlen)) != FORMAT_OLD)
	{
		*old = 0;
		return rc;
	}
	if (writable && ((rc = drop_every_db(txn)) != 0 || (rc = init_format(txn, o, d)) != 0))
		return lmdb_open_error(rc, dir, "emptying (older format)", err, errlen);
	return HD_STORE_OK;
}

/*
 * In txn: open the databases (creating them in a blank environment), check
 * the format (emptying an older one: *old is then its version, else 0),
 * read the state.
 */
static int
load_store(MDB_txn *txn, bool writable, const HdStoreOptions *o, const char *dir, Dbis *d,
		   StoreState *st, bool *blank, unsigned *old, char *err, size_t errlen)
{
	int			rc = is_blank(txn, blank);

	memset(st, 0, sizeof(*st));
	*old = 0;
	if (rc != 0)
		return lmdb_open_error(rc, dir, "reading", err, errlen);
	if (*blank && !writable)
		return HD_STORE_OK;		/* nothing to check */
	if (*blank && (rc = init_format(txn, o, d)) != 0)
		return lmdb_open_error(rc, dir, "initializing", err, errlen);
	if ((rc = check_or_purge(txn, writable, o, dir, d, old, err, errlen)) != HD_STORE_OK ||
		(*old && !writable))
		return rc;				/* an older store is not read */
	if ((rc = open_dbis(txn, 0, d)) != 0)
	{
		if (rc != MDB_NOTFOUND)
			return lmdb_open_error(rc, dir, "opening the databases of", err, errlen);
		snprintf(err, errlen, "the cache in %s lacks some of its databases: not a hyperdrive "
				 "cache, or damaged: wipe it", dir);
		return HD_STORE_DAMAGED;
	}
	if ((rc = read_state(txn, d->meta, st)) != 0)
	{
		snprintf(err, errlen, "reading the totals of the cache in %s: %s (damaged: wipe it)",
				 dir, rc == MDB_NOTFOUND ? "missing" : mdb_strerror(rc));
		return rc == MDB_NOTFOUND || damaged_rc(rc) ? HD_STORE_DAMAGED : HD_STORE_FAILED;
	}
	return HD_STORE_OK;
}

typedef struct ScanTotals
{
	uint64_t	entries;
	uint64_t	bytes;
	uint64_t	index_rows;		/* by_relation's, as the entries say */
	uint64_t	value_rows;		/* by_value's */
} ScanTotals;

/* Read every entry record: well formed, under the hash of its own key. */
static int
scan_entries(MDB_txn *txn, MDB_dbi entries, Hasher *h, ScanTotals *t, char *err,
			 size_t errlen)
{
	MDB_cursor *cur;
	MDB_val		k, v;
	int			rc = mdb_cursor_open(txn, entries, &cur);

	if (rc != 0)
	{
		snprintf(err, errlen, "reading entries: %s", mdb_strerror(rc));
		return rc;
	}
	for (MDB_cursor_op next = MDB_FIRST;
		 (rc = mdb_cursor_get(cur, &k, &v, next)) == 0; next = MDB_NEXT)
	{
		unsigned char hash[HASH_LEN];
		Record		r;

		if (k.mv_size != HASH_LEN || !parse_record(&v, &r) ||
			!hash_key(h, r.h.config, r.key, r.h.keylen, hash) ||
			memcmp(hash, k.mv_data, HASH_LEN) != 0)
		{
			snprintf(err, errlen, "entry %llu is malformed or not under its key's hash",
					 (unsigned long long) t->entries + 1);
			rc = MDB_CORRUPTED;
			break;
		}
		t->entries++;
		t->bytes += v.mv_size;
		t->index_rows += (uint64_t) r.h.ndeps + 1;
		{
			const unsigned char *p = r.deps;

			for (uint32_t i = 0; i < r.h.ndeps; i++)
			{
				DiskDep		d;

				p = read_dep(p, &d);
				t->value_rows += d.nvalues ? d.nvalues : 1;
			}
		}
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != MDB_CORRUPTED)
		snprintf(err, errlen, "reading entries: %s", mdb_strerror(rc));
	return rc;
}

static int
count_rows(MDB_txn *txn, MDB_dbi dbi, uint64_t *n)
{
	MDB_stat	st;
	int			rc = mdb_stat(txn, dbi, &st);

	*n = st.ms_entries;
	return rc;
}

/* The full check (run in a child): every entry, and the totals and indexes agree. */
static int
scan_store(const char *dir, const HdStoreOptions *o, char *err, size_t errlen)
{
	MDB_env    *env;
	MDB_txn    *txn = NULL;
	Hasher		h = {0};
	Dbis		d;
	StoreState	st;
	ScanTotals	t = {0};
	uint64_t	rows = 0, value_rows = 0, lru = 0, access = 0;
	bool		blank;
	unsigned	old;
	int			rc = create_env(dir, o, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, &env, err, errlen);

	if (rc != HD_STORE_OK)
		return rc;
	if ((rc = check_file_size(env, dir, err, errlen)) != HD_STORE_OK)
		goto done;
	if ((rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0)
	{
		rc = lmdb_open_error(rc, dir, "reading", err, errlen);
		goto done;
	}
	/* an older format is not read: the open empties it */
	if ((rc = load_store(txn, false, o, dir, &d, &st, &blank, &old, err, errlen)) != HD_STORE_OK ||
		blank || old)
		goto done;
	if (!hasher_init(&h, o->test_hash_bytes))
	{
		snprintf(err, errlen, "cannot compute SHA-256 (OpenSSL)");
		rc = HD_STORE_FAILED;
		goto done;
	}
	if ((rc = count_rows(txn, d.by_relation, &rows)) == 0 &&
		(rc = count_rows(txn, d.by_value, &value_rows)) == 0 &&
		(rc = count_rows(txn, d.lru, &lru)) == 0 &&
		(rc = count_rows(txn, d.access, &access)) == 0)
	{
		char		why[256] = "";

		rc = scan_entries(txn, d.entries, &h, &t, why, sizeof(why));
		if (rc == 0 && (t.entries != st.entries || t.bytes != st.bytes ||
						t.index_rows != rows || t.value_rows != value_rows ||
						lru != t.entries || access != t.entries))
		{
			snprintf(why, sizeof(why), "its totals and indexes disagree with its entries "
					 "(%llu entries, state says %llu)", (unsigned long long) t.entries,
					 (unsigned long long) st.entries);
			rc = MDB_CORRUPTED;
		}
		if (rc != 0)
			snprintf(err, errlen, "checking the cache in %s: %s (damaged: wipe it)", dir, why);
		rc = rc == 0 ? HD_STORE_OK : damaged_rc(rc) ? HD_STORE_DAMAGED : HD_STORE_FAILED;
	}
	else
		rc = lmdb_open_error(rc, dir, "counting rows of", err, errlen);
done:
	hasher_free(&h);
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* Child exit codes of the check; anything else (a crash) means damaged. */
#define CHECK_OK 0
#define CHECK_FAILED 3
#define CHECK_DAMAGED 4

/*
 * Check the store in a child process: LMDB follows the file's page numbers
 * without bounds checks, and a corrupt file must crash the check, not the
 * agent. The child's message comes back through a pipe.
 */
static int
verify_store(const char *dir, const HdStoreOptions *o, char *err, size_t errlen)
{
	char	   *data = path_in(dir, DATA_FILE);
	struct stat st;
	int			fds[2];
	int			status;
	ssize_t		got = 0, n;
	pid_t		pid;
	/* no file, or an empty one (a crash while creating it): LMDB starts afresh */
	bool		exists = data && stat(data, &st) == 0 && st.st_size > 0;

	free(data);
	if (!exists)
		return HD_STORE_OK;
	if (pipe(fds) != 0 || (pid = fork()) < 0)
	{
		snprintf(err, errlen, "starting the check of the cache in %s: %s", dir, strerror(errno));
		return HD_STORE_FAILED;
	}
	if (pid == 0)
	{
		char		msg[1024] = "";
		int			rc;

		/* LMDB's assertion messages, should it fail one, come back too */
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		rc = scan_store(dir, o, msg, sizeof(msg));
		if (write(fds[1], msg, strlen(msg)) < 0)
			rc = HD_STORE_FAILED;
		_exit(rc == HD_STORE_OK ? CHECK_OK : rc == HD_STORE_DAMAGED ? CHECK_DAMAGED : CHECK_FAILED);
	}
	close(fds[1]);
	while (errlen > 1 && (size_t) got < errlen - 1 &&
		   ((n = read(fds[0], err + got, errlen - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
		got += n > 0 ? n : 0;
	if (errlen > 0)
		err[got] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHECK_OK)
		return HD_STORE_OK;
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHECK_FAILED)
		return HD_STORE_FAILED;
	if (!(WIFEXITED(status) && WEXITSTATUS(status) == CHECK_DAMAGED))
	{
		char		said[256];

		snprintf(said, sizeof(said), "%s", errlen > 0 ? err : "");
		said[strcspn(said, "\n")] = '\0';
		snprintf(err, errlen, "checking the cache in %s crashed (%s %d%s%s): its file is "
				 "damaged: wipe it", dir, WIFSIGNALED(status) ? "signal" : "exit status",
				 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
				 said[0] ? ": " : "", said);
	}
	return HD_STORE_DAMAGED;
}

static void
finish_options(HdStoreOptions *o)
{
	if (o->map_size < MIN_MAP_SIZE)
		o->map_size = MIN_MAP_SIZE;
	if (o->max_bytes == 0)
		o->max_bytes = o->map_size / 3;
	if (o->max_entry_bytes == 0)
		o->max_entry_bytes = o->max_bytes / 8;
	if (o->max_entry_bytes > o->max_bytes)
		o->max_entry_bytes = o->max_bytes;
	if (o->lru_batch == 0)
		o->lru_batch = 1;
	if (o->lru_batch > (1u << 20))
		o->lru_batch = 1u << 20;
	if (o->test_hash_bytes > HASH_LEN)
		o->test_hash_bytes = HASH_LEN;
}

void
hd_store_options_init(HdStoreOptions *o)
{
	memset(o, 0, sizeof(*o));
	o->map_size = (size_t) 1 << 30;
	o->verify = true;
	o->lru_batch = 4096;
}

/* The next access stamp: one past the youngest in the lru database. */
static int
load_stamp(MDB_txn *txn, MDB_dbi lru, uint64_t *next)
{
	MDB_cursor *cur;
	MDB_val		k, v;
	int			rc = mdb_cursor_open(txn, lru, &cur);

	*next = 1;
	if (rc != 0)
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8)
		*next = hd_get_u64(k.mv_data) + 1;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
alloc_touches(HdStore *c)
{
	size_t		cap = 2;

	while (cap < 2 * (size_t) c->opts.lru_batch)
		cap <<= 1;
	c->touch_cap = cap;
	c->touches = calloc(cap, sizeof(Touch));
	c->touch_used = calloc(c->opts.lru_batch + 1, sizeof(size_t));
	return c->touches && c->touch_used ? 0 : -1;
}

/* Open the environment, load or create the store. */
static int
open_store(HdStore *c, char *err, size_t errlen)
{
	unsigned	flags = MDB_NOTLS | MDB_NORDAHEAD | (c->opts.sync_commits ? 0 : MDB_NOSYNC);
	MDB_txn    *txn;
	Dbis		d;
	bool		blank;
	unsigned	old;
	int			dead;
	int			rc = create_env(c->dir, &c->opts, flags, &c->env, err, errlen);

	if (rc != HD_STORE_OK || (rc = check_file_size(c->env, c->dir, err, errlen)) != HD_STORE_OK)
		return rc;
	mdb_reader_check(c->env, &dead);	/* readers of a killed process */
	if ((rc = mdb_txn_begin(c->env, NULL, 0, &txn)) != 0)
		return lmdb_open_error(rc, c->dir, "writing to", err, errlen);
	rc = load_store(txn, true, &c->opts, c->dir, &d, &c->state, &blank, &old, err, errlen);
	if (rc == HD_STORE_OK && (rc = load_stamp(txn, d.lru, &c->next_stamp)) != 0)
		rc = lmdb_open_error(rc, c->dir, "loading", err, errlen);
	if (rc != HD_STORE_OK)
	{
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return lmdb_open_error(rc, c->dir, "initializing", err, errlen);
	if (old)
		snprintf(c->notice, sizeof(c->notice), "cache store in %s: format %u found, this "
				 "agent writes format %d: purged (nothing is misread)", c->dir, old,
				 FORMAT_VERSION);
	c->entries = d.entries;
	c->by_relation = d.by_relation;
	c->by_value = d.by_value;
	c->lru = d.lru;
	c->access = d.access;
	c->invalidated = d.invalidated;
	c->meta = d.meta;
	if ((rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &c->reader)) != 0)
		return lmdb_open_error(rc, c->dir, "reading", err, errlen);
	mdb_txn_reset(c->reader);
	return HD_STORE_OK;
}

static void
destroy(HdStore *c)
{
	sync_join(c);
	if (c->reader)
		mdb_txn_abort(c->reader);
	if (c->env)
		mdb_env_close(c->env);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	hasher_free(&c->hasher);
	hd_marks_free(&c->marks);
	free(c->fenced);
	free(c->touches);
	free(c->touch_used);
	free(c->dir);
	free(c);
}

/* Until the environment is open: directory, lock, marker, the full check. */
static int
before_env(HdStore *c, char *err, size_t errlen)
{
	int			rc;

	if (prepare_dir(c->dir, err, errlen) != 0 ||
		(c->lock_fd = take_owner_lock(c->dir, err, errlen)) < 0)
		return HD_STORE_FAILED;
	if ((rc = check_unsynced(c->dir, err, errlen)) != HD_STORE_OK)
		return rc;
	if (c->opts.verify && (rc = verify_store(c->dir, &c->opts, err, errlen)) != HD_STORE_OK)
		return rc;
	/* durable before the first unsynced write */
	if (!c->opts.sync_commits && mark_unsynced(c->dir, err, errlen) != 0)
		return HD_STORE_FAILED;
	return HD_STORE_OK;
}

int
hd_store_open(const char *dir, const HdStoreOptions *opts, HdStore **out, char *err,
			  size_t errlen)
{
	HdStore    *c = calloc(1, sizeof(HdStore));
	int			rc;

	*out = NULL;
	if (c == NULL || (c->dir = strdup(dir)) == NULL)
	{
		free(c);
		snprintf(err, errlen, "out of memory opening the cache");
		return HD_STORE_FAILED;
	}
	c->lock_fd = -1;
	if (opts)
		c->opts = *opts;
	else
		hd_store_options_init(&c->opts);
	finish_options(&c->opts);
	if (!hasher_init(&c->hasher, c->opts.test_hash_bytes) || alloc_touches(c) != 0)
	{
		destroy(c);
		snprintf(err, errlen, "out of memory (or no SHA-256 in OpenSSL) opening the cache");
		return HD_STORE_FAILED;
	}
	if ((rc = before_env(c, err, errlen)) != HD_STORE_OK ||
		(rc = open_store(c, err, errlen)) != HD_STORE_OK)
	{
		destroy(c);
		return rc;
	}
	/* a crashed unsynced session's writes, now synced: the marker can go */
	if (c->opts.sync_commits &&
		(hd_store_sync(c, err, errlen) != 0 || clear_unsynced(c->dir, err, errlen) != 0))
	{
		destroy(c);
		return HD_STORE_FAILED;
	}
	*out = c;
	return HD_STORE_OK;
}

const char *
hd_store_open_notice(const HdStore *c)
{
	return c->notice[0] ? c->notice : NULL;
}

int
hd_store_close(HdStore *c, char *err, size_t errlen)
{
	int			rc;

	if (c == NULL)
		return 0;
	rc = hd_store_sync(c, err, errlen);
	mdb_txn_abort(c->reader);
	c->reader = NULL;
	mdb_env_close(c->env);
	c->env = NULL;
	/* the marker goes only once everything is on disk */
	if (rc == 0 && !c->opts.sync_commits)
		rc = clear_unsynced(c->dir, err, errlen);
	destroy(c);
	return rc;
}

int
hd_store_wipe(const char *dir, char *err, size_t errlen)
{
	static const char *const files[] = {DATA_FILE, LMDB_LOCK_FILE, UNSYNCED_FILE};
	struct stat st;
	int			fd;
	int			rc = 0;

	if (stat(dir, &st) != 0 && errno == ENOENT)
		return 0;				/* nothing to wipe */
	if ((fd = take_owner_lock(dir, err, errlen)) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && rc == 0; i++)
	{
		char	   *path = path_in(dir, files[i]);

		if (path == NULL || (unlink(path) != 0 && errno != ENOENT))
		{
			snprintf(err, errlen, "wiping the cache: removing %s/%s: %s", dir, files[i],
					 path ? strerror(errno) : "out of memory");
			rc = -1;
		}
		free(path);
	}
	if (rc == 0 && fsync_dir(dir) != 0)
	{
		snprintf(err, errlen, "wiping the cache: syncing %s: %s", dir, strerror(errno));
		rc = -1;
	}
	close(fd);
	return rc;
}

int
hd_store_config_usage(HdStore *c, const char *config_id, uint64_t *entries, uint64_t *bytes)
{
	unsigned char cfg[CFG_LEN];
	unsigned char rk[RELKEY_LEN];
	char		err[256];
	MDB_cursor *cur;
	MDB_val		k;
	MDB_val		v;
	int			rc;

	*entries = *bytes = 0;
	if (config_bytes(config_id, cfg, err, sizeof(err)) != 0)
		return -1;
	relation_key(rk, cfg, ALL_ENTRIES);
	if (mdb_txn_renew(c->reader) != 0)
		return -1;
	if (mdb_cursor_open(c->reader, c->by_relation, &cur) != 0)
	{
		mdb_txn_reset(c->reader);
		return -1;
	}
	k = val(rk, RELKEY_LEN);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	while (rc == 0)
	{
		MDB_val		ev;
		MDB_val		hk = v;

		(*entries)++;
		if (mdb_get(c->reader, c->entries, &hk, &ev) == 0)
			*bytes += ev.mv_size;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
	}
	mdb_cursor_close(cur);
	mdb_txn_reset(c->reader);
	return 0;
}
