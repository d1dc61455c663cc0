/*
 * ext_batch.h
 *    Recognising one cacheable statement of the extended query protocol at
 *    the head of a client's input: the messages up to and including a Sync.
 *
 * The cache (cache.c) can answer an extended-protocol statement only as a
 * whole batch: everything the client sends up to its Sync, so that the
 * agent sends exactly the replies the origin would have sent and then
 * ReadyForQuery. The shapes drivers send for one statement are accepted:
 *
 *     [Parse] [Describe S] Bind [Describe P] Execute Sync
 *
 * (node-postgres and libpq/pgbench: Parse, Bind, Describe P, Execute, Sync,
 * or without the Parse for a named statement; Postgres.js: Bind, Execute,
 * Sync, or Parse, Describe S, Bind, Execute, Sync.) With the unnamed portal,
 * Execute without a row limit, the Describe S and the Bind naming the
 * statement the Parse names (if any). Anything else is refused with a short
 * reason (two statements before one Sync, a Flush, a Close, a named portal,
 * a row limit ...): the caller forwards such a batch as it is.
 *
 * Contract: pure parsing, no allocation. Pointers in HdExtBatch point into
 * the caller's buffer and live as long as it is unchanged. A batch that is
 * well-formed so far but not complete in the buffer is HD_BATCH_MORE unless
 * it is already longer than max_len (then HD_BATCH_NO: "too large"); a
 * client must send Sync or Flush before PostgreSQL answers anything, so
 * waiting for the rest of a short batch delays nothing. Messages are
 * checked only as far as the cache needs; a malformed message is refused
 * (the origin then reports it in its own terms).
 */
#ifndef HD_EXT_BATCH_H
#define HD_EXT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum HdBatchResult
{
	HD_BATCH_OK,				/* a cacheable shape, complete */
	HD_BATCH_MORE,				/* so far so good: wait for more bytes */
	HD_BATCH_NO					/* not a cacheable shape (why says which) */
} HdBatchResult;

typedef struct HdExtBatch
{
	size_t		len;			/* bytes of the batch, its Sync included */
	bool		has_parse;
	bool		describe_stmt;	/* Describe S before the Bind */
	bool		describe_portal;	/* Describe P after the Bind */
	const char *parse_name;		/* the Parse's statement name ("" unnamed), or NULL */
	const char *query;			/* the Parse's text, or NULL without a Parse */
	const char *types;			/* the Parse's Int16 count and Int32 OIDs */
	size_t		types_len;
	const char *stmt_name;		/* the statement the Bind names */
	const char *bind_tail;		/* the Bind after its names: formats, values, result formats */
	size_t		bind_tail_len;
	uint16_t	nparams;		/* parameter values in the Bind */
	char		shape[8];		/* one letter per message: "PSBDE" at most, NUL-terminated */
} HdExtBatch;

/*
 * Look at the messages at buf[0..avail). has_execute tells (also for
 * HD_BATCH_NO) whether an Execute was seen, i.e. whether the batch runs a
 * statement at all; why is set for HD_BATCH_NO.
 */
extern HdBatchResult hd_ext_batch_parse(const char *buf, size_t avail, size_t max_len,
										HdExtBatch *batch, bool *has_execute,
										const char **why);

#endif							/* HD_EXT_BATCH_H */
