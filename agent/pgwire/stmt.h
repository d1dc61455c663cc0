/*
 * stmt.h
 *    The data structures of prepared statements under transaction pooling
 *    (the protocol that uses them is prepare.h's), and the queue of replies
 *    a server owes its client.
 *
 * A client's named statements must survive moving between origin
 * connections (Postgres.js, pgbench -M prepared and JDBC rely on them). Each
 * pool keeps a registry of the statements its clients prepared, keyed by
 * query text and parameter types; a statement is prepared on an origin
 * connection under the name "hd_<n>" the first time a client needs it
 * there, and reused by every client that prepares the same text. Client
 * names map to registry entries per client.
 *
 * So the agent rewrites the statement names in Parse, Bind, Describe and
 * Close, injects a Parse where a server lacks a statement (and the client's
 * unnamed statement where a server holds another's), and answers some
 * messages itself (ParseComplete for a statement the server already has,
 * CloseComplete for a Close, which only forgets the client's name). To put
 * every reply in its place, each server keeps a FIFO of what it owes
 * (HdExpect), in the order the messages were sent; a server reply is matched
 * to the head. An ErrorResponse in the extended protocol voids everything
 * up to the next Sync, as PostgreSQL does. The queue being empty is also
 * how the pooler knows a server owes nothing and may be released.
 *
 * The queue holds the agent's own work on the connection too: its settings
 * query and session-state check (server.c, state_check.c) and the result
 * cache's analyses, fills and read-your-writes positions (cache_fill.c),
 * each message queued as what it owes with an action saying whose reply it
 * is. Every reply is matched to the head by one rule, hd_expect_match():
 * server.c applies it and hands the reply to the entry's owner.
 */
#ifndef HD_STMT_H
#define HD_STMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/iobuf.h"

typedef enum HdExpectKind
{
	HD_EXPECT_PARSE,			/* ParseComplete '1' */
	HD_EXPECT_BIND,				/* BindComplete '2' */
	HD_EXPECT_DESCRIBE_STMT,	/* ParameterDescription 't', then 'T' or 'n' */
	HD_EXPECT_DESCRIBE_PORTAL,	/* RowDescription 'T' or NoData 'n' */
	HD_EXPECT_EXECUTE,			/* rows, then 'C', 'I', 's' (or COPY) */
	HD_EXPECT_CLOSE,			/* CloseComplete '3' */
	HD_EXPECT_SYNC,				/* ReadyForQuery 'Z' */
	HD_EXPECT_QUERY,			/* simple Query or FunctionCall: ends with 'Z' */
	HD_EXPECT_STATE				/* the agent's session-state check (state_check.c) */
} HdExpectKind;

typedef enum HdExpectAction
{
	HD_REPLY_FORWARD,			/* pass the server's reply on */
	HD_REPLY_SWALLOW,			/* the agent's own injected message: drop its reply */
	HD_REPLY_SYNTHESIZE,		/* the server gets nothing: the agent answers */
	/* a Describe S the agent sent to check a statement's result shape (prepare.h) */
	HD_REPLY_VERIFY_REPARSE,	/* after re-preparing it for a client's later use */
	HD_REPLY_VERIFY_FRESH,		/* after the client's own Parse of a known text */
	HD_REPLY_REFUSE,			/* a message the origin refuses: the client gets the
								 * agent's error (prepare.h HdRefusal in stmt_id) */
	/* the result cache's own work (cache_fill.c gets these replies, none else) */
	HD_REPLY_CACHE_ANALYSIS,	/* hyperdrive.analyze_query(): its row or its error */
	HD_REPLY_CACHE_RYW,			/* the WAL position after a write: its row */
	HD_REPLY_FILL_BEGIN,		/* a fill's BEGIN, snapshot and session state */
	HD_REPLY_FILL_OWN_PARSE,	/* the fill's Parse the client's batch lacks: dropped */
	HD_REPLY_FILL_CHECK_SHAPE,	/* a Describe S of the client's earlier statement
								 * (stmt_id), compared with what it was shown */
	HD_REPLY_FILL_DESCRIBE,		/* the client's own Describe S: noted, kept, forwarded */
	HD_REPLY_FILL_STATEMENT,	/* the client's statement: kept and forwarded */
	HD_REPLY_FILL_PARAM_HASHES,	/* the hashes of its parameters (cache_params.h):
								 * the row read, nothing forwarded */
	HD_REPLY_FILL_END			/* COMMIT (a ROLLBACK after an error): the fill ends */
} HdExpectAction;

typedef struct HdExpect
{
	uint8_t		kind;			/* HdExpectKind */
	uint8_t		action;			/* HdExpectAction */
	uint32_t	stmt_id;		/* registry entry of a Parse, Bind or Describe S (0: unnamed) */
	uint32_t	gen;			/* for the unnamed statement: the client's generation */
} HdExpect;

typedef struct HdExpectQueue
{
	HdExpect   *items;
	size_t		head;
	size_t		count;
	size_t		cap;
	bool		error_until_sync;	/* an error voided the rest of the batch */
} HdExpectQueue;

extern int	hd_expect_push(HdExpectQueue *q, HdExpectKind kind, HdExpectAction action,
						   uint32_t stmt_id, uint32_t gen);
extern HdExpect *hd_expect_head(HdExpectQueue *q);
extern void hd_expect_pop(HdExpectQueue *q);
extern void hd_expect_clear(HdExpectQueue *q);
extern void hd_expect_free(HdExpectQueue *q);

/* Whether the entry is the result cache's own work (cache_fill.c's replies). */
static inline bool
hd_expect_is_cache(const HdExpect *e)
{
	return e->action >= HD_REPLY_CACHE_ANALYSIS;
}

/* What one reply does to the entry at the head of the queue. */
typedef enum HdReplyMatch
{
	HD_MATCH_ASYNC,				/* NoticeResponse, ParameterStatus, NotificationResponse:
								 * of no entry (they come while the head runs) */
	HD_MATCH_UNOWED,			/* nothing is owed */
	HD_MATCH_PART,				/* part of the head's replies: the head stays */
	HD_MATCH_ENDS,				/* the head's last reply: pop it */
	HD_MATCH_VOIDS				/* an ErrorResponse of an extended-protocol message:
								 * the head and the rest up to the next Sync are
								 * void (hd_expect_pop_void) */
} HdReplyMatch;

/*
 * The one rule that matches a server's reply (its type byte) to head (NULL:
 * nothing owed). An error in a simple Query (or the agent's state check)
 * goes on to its ReadyForQuery; in the extended protocol it ends the
 * message that failed and PostgreSQL skips everything up to the Sync.
 */
extern HdReplyMatch hd_expect_match(const HdExpect *head, char type);

/*
 * After HD_MATCH_VOIDS: pop the next void entry into *entry, the failed
 * one first, and false at the Sync (which stays owed). With no Sync queued
 * the rest of the batch is void too (error_until_sync).
 */
extern bool hd_expect_pop_void(HdExpectQueue *q, HdExpect *entry);

/*
 * One statement in a pool's registry. The same text can mean different
 * things under different search_paths, so the parse context (the client's
 * search_path setting) is part of the identity.
 *
 * Schema changes: the text means what the schema said when the entry was
 * made. After DDL the entry is retired (no longer found by its text, so a
 * later Parse makes a new entry and means the new schema); the clients that
 * hold it keep it. Its shape is the result and parameter types a Describe
 * showed; once an origin shows another shape for it, it is changed: every
 * use fails with 0A000, as PostgreSQL fails a prepared statement whose
 * result type changed.
 */
typedef struct HdStatement
{
	uint32_t	id;				/* server-side name: hd_<id> */
	uint32_t	hash;
	char	   *query;
	char	   *types;			/* the Parse message's Int16 count + Int32 OIDs */
	size_t		types_len;
	char	   *context;		/* "" or the SET that established the search_path */
	bool		verified;		/* an origin accepted its Parse once */
	bool		changed;		/* its shape changed: uses fail with 0A000 */
	char	   *shape;			/* hd_shape_build()'s bytes; NULL: not described yet */
	size_t		shape_len;
	struct HdStatement *next;	/* hash chain */
} HdStatement;

typedef struct HdStatementRegistry
{
	HdStatement **buckets;
	size_t		nbuckets;
	size_t		count;
	HdStatement **by_id;		/* id -> statement (id 0 unused) */
	size_t		by_id_cap;
} HdStatementRegistry;

extern HdStatement *hd_registry_intern(HdStatementRegistry *reg, const char *query,
									   const char *types, size_t types_len,
									   const char *context);
extern HdStatement *hd_registry_find(const HdStatementRegistry *reg, const char *query,
									 const char *types, size_t types_len,
									 const char *context);
extern HdStatement *hd_registry_get(HdStatementRegistry *reg, uint32_t id);
/* Every statement no longer found by its text (DDL); its holders keep it. */
extern void hd_registry_retire_all(HdStatementRegistry *reg);
extern void hd_registry_free(HdStatementRegistry *reg);

/*
 * A statement's shape from the two replies of a Describe S: the
 * ParameterDescription's body, and the RowDescription's (or NULL for
 * NoData). Kept: the parameter types, and per column its name, type,
 * typlen and typmod (what PostgreSQL compares to decide that a plan's
 * result type changed; not the column's table and number). Returns a
 * malloc'd string of *len bytes, or NULL (malformed, out of memory).
 */
extern char *hd_shape_build(const char *params, size_t params_len, const char *row,
							size_t row_len, size_t *len);

/*
 * A client's unnamed statement, as far as the agent knows it: the last
 * Parse of "" it sent (a simple Query or Close of "" ends it). A server
 * holds one client's unnamed statement at a time (HdServer.unnamed_client,
 * unnamed_gen), so the agent re-parses it before a later Bind or Describe
 * on a server that holds another (prepare.h).
 */
typedef enum HdUnnamedState
{
	HD_UNNAMED_NONE,			/* none: the origin would say 26000 */
	HD_UNNAMED_KNOWN,			/* query and types below */
	HD_UNNAMED_UNKNOWN			/* a Parse skipped after an error: the agent cannot tell */
} HdUnnamedState;

typedef struct HdUnnamed
{
	uint8_t		state;			/* HdUnnamedState */
	bool		changed;		/* its shape changed (as HdStatement.changed) */
	uint32_t	gen;			/* bumped by each Parse */
	uint32_t	dealloc_id;		/* a DEALLOCATE of this registry entry (prepare.c) */
	char	   *query;
	char	   *types;
	size_t		types_len;
	char	   *shape;			/* as HdStatement.shape */
	size_t		shape_len;
} HdUnnamed;

extern void hd_unnamed_clear(HdUnnamed *u);

/* A client's statement names. */
typedef struct HdClientStmt
{
	char	   *name;
	uint32_t	stmt_id;
	struct HdClientStmt *next;
} HdClientStmt;

typedef struct HdClientStmts
{
	HdClientStmt **buckets;
	size_t		nbuckets;
	size_t		count;
} HdClientStmts;

extern uint32_t hd_client_stmt_find(const HdClientStmts *map, const char *name);
extern int	hd_client_stmt_set(HdClientStmts *map, const char *name, uint32_t stmt_id);
extern void hd_client_stmt_remove(HdClientStmts *map, const char *name);
/* Every name of the map for statement old_id now means new_id. */
extern void hd_client_stmt_rename_id(HdClientStmts *map, uint32_t old_id, uint32_t new_id);
extern void hd_client_stmts_free(HdClientStmts *map);

/* Which registry statements a server has prepared (a bitmap by id). */
typedef struct HdServerStmts
{
	uint8_t    *bits;
	size_t		nbytes;
} HdServerStmts;

extern bool hd_server_stmt_has(const HdServerStmts *set, uint32_t id);
extern int	hd_server_stmt_add(HdServerStmts *set, uint32_t id);
extern void hd_server_stmt_remove(HdServerStmts *set, uint32_t id);
extern void hd_server_stmts_clear(HdServerStmts *set);
extern void hd_server_stmts_free(HdServerStmts *set);

#endif							/* HD_STMT_H */
