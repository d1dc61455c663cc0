/*
 * prepare.h
 *    Prepared statements across origin connections: what a client's Parse,
 *    Bind, Describe and Close mean on whichever origin connection it holds
 *    now, and what the origin's replies say about them. The data structures
 *    are stmt.h's; client.c hands the messages here, server.c the replies.
 *
 * Named statements: each client name maps to a pool registry entry, which an
 * origin connection prepares as hd_<id> the first time a client needs it
 * there (a Parse the agent injects, its reply dropped). A client's Parse of
 * a text a connection already has is answered by the agent; its Close only
 * forgets the name (other clients may use the statement).
 *
 * The unnamed statement: an origin connection holds one client's unnamed
 * statement at a time. A Bind or Describe of "" on a connection that holds
 * another client's (or none of this client's) is preceded by the client's
 * own Parse again; a client without one gets the origin's 26000 (a Close of
 * "" goes first, so the connection holds none). Never another client's.
 *
 * Shapes: the agent remembers the result and parameter types a Describe S
 * showed for a statement (stmt.h hd_shape_build). When it prepares that
 * statement again on another connection, or a client's Parse of a known
 * text reaches a connection that lacks it, it asks that connection for the
 * shape and holds the client's next messages until it has compared: a
 * schema change in between must not hand rows of a new shape to a client
 * that described the old one. The client then gets what PostgreSQL gives a
 * prepared statement whose result type changed, 0A000 "cached plan must not
 * change result type" (routine RevalidateCachedQuery, which drivers such as
 * Postgres.js answer by preparing again), and the origin aborts the
 * statement's transaction as it would have: the agent makes it refuse an
 * invalid message in the statement's place. A client's own fresh Parse
 * gets a new registry entry instead.
 *
 * Schema changes: DDL seen through the agent (command tags, and again when
 * its transaction ends), DDL records of the change stream (cache.c) and the
 * origin's own 0A000 retire every registry entry of the config (stmt.h), so
 * that a later Parse of the same text means the new schema.
 *
 * DEALLOCATE name / ALL (the whole statement, by simple Query or Parse of
 * "") acts on the client's own names: DEALLOCATE of a name of the client
 * runs as DEALLOCATE hd_<id> on the origin (so the reply, and the errors of
 * an aborted transaction, are the origin's), ALL and DISCARD ALL forget all
 * its names. The origin connection forgets what a DEALLOCATE dropped when
 * its CommandComplete arrives.
 *
 * Contract: these functions append to server->out and queue what the
 * server owes (server->expect). They close nothing, except that out of
 * memory they end the client with FATAL 53200 (hd_client_fatal), which may
 * close its server too: callers look at the states afterwards, as after
 * any close (frees wait for the loop, agent.c).
 * HD_FWD_WAIT means the message was not taken: the client stops reading
 * until hd_client_verify_done(), then hands the same message again.
 */
#ifndef HD_PREPARE_H
#define HD_PREPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "pgwire/stmt.h"

typedef struct HdAgent HdAgent;
typedef struct HdClient HdClient;
typedef struct HdServer HdServer;
typedef struct HdPool HdPool;

typedef enum HdForward
{
	HD_FWD_DONE,				/* sent (or answered), and what is owed queued */
	HD_FWD_WAIT,				/* not taken: the client waits for a shape check */
	HD_FWD_NOMEM,
	HD_FWD_MALFORMED
} HdForward;

/* Why the agent refuses a client's message (hd_prepare_refuse). */
typedef enum HdRefusal
{
	HD_REFUSE_CHANGED,			/* 0A000: the statement's result type changed */
	HD_REFUSE_TOO_LARGE			/* 54000: a named Parse larger than the agent keeps */
} HdRefusal;

/*
 * Fail the client's message in the origin's place: the origin aborts the
 * transaction and skips to Sync as PostgreSQL does after an error, and the
 * client gets the agent's error.
 */
extern HdForward hd_prepare_refuse(HdServer *server, HdRefusal why);

/* Queue a reply the server owes; while an error voids the batch, only Sync counts. */
extern int	hd_prepare_expect(HdServer *server, HdExpectKind kind, HdExpectAction action,
							  uint32_t stmt_id, uint32_t gen);

/* A client's Parse, Bind, Describe or Close ('P', 'B', 'D', 'C'), body and length. */
extern HdForward hd_prepare_forward(HdClient *client, HdServer *server, char type,
									const char *body, uint32_t len);
/*
 * The start of a message too large to hold (client.c streams the rest): of
 * a Bind, avail of its len body bytes (HD_FWD_WAIT: its names are not all
 * here yet); of a Parse of "" (a named one is refused by the caller).
 */
extern HdForward hd_prepare_bind_start(HdClient *client, HdServer *server, const char *body,
									   size_t avail, uint32_t len);
extern HdForward hd_prepare_parse_start(HdClient *client, HdServer *server, const char *body,
										size_t avail);
/* A Parse whose text is one DEALLOCATE (name, or NULL for ALL): rewritten. */
extern HdForward hd_prepare_parse_deallocate(HdClient *client, HdServer *server,
											 const char *body, uint32_t len,
											 const char *name);
/* A simple Query that is one DEALLOCATE (name, or NULL for ALL). */
extern HdForward hd_prepare_query_deallocate(HdClient *client, HdServer *server,
											 const char *msg, uint32_t len, const char *name);
/* An Execute: queue what it owes (a rewritten DEALLOCATE's statement with it). */
extern int	hd_prepare_execute(HdClient *client, HdServer *server);
/* A simple Query went to the server: it dropped the unnamed statement. */
extern void hd_prepare_query_sent(HdClient *client, HdServer *server);
/* A Parse of "" the cache answered or sent for the client (no server of its own). */
extern int	hd_prepare_note_unnamed(HdClient *client, const char *query, const char *types,
									size_t types_len);
/* DISCARD ALL by the client: its names are gone (the server's at the tag). */
extern void hd_prepare_forget_all(HdClient *client);
/* The agent sent the server something that replaces its unnamed statement. */
extern void hd_prepare_server_unnamed_lost(HdServer *server);

/*
 * Replies. hd_prepare_reply() sees each reply matched to head (the entry
 * it answers) before server.c acts on it, and says whether the client may
 * see it: Describe replies are remembered as shapes or compared, the error
 * of HD_REPLY_REFUSE becomes the agent's, 0A000 of the origin changes the
 * statement. hd_prepare_skipped() is called for each entry an error voids
 * (failed: the entry whose message failed, else one the origin skipped).
 */
extern bool hd_prepare_reply(HdServer *server, const HdExpect *head, char type,
							 const char *msg, size_t total);
extern void hd_prepare_skipped(HdServer *server, const HdExpect *entry, bool failed);
/* A CommandComplete's tag (DEALLOCATE, DISCARD ALL, DDL), and ReadyForQuery. */
extern void hd_prepare_note_tag(HdServer *server, const HdExpect *head, const char *tag);
extern void hd_prepare_note_ready(HdServer *server, char status);

/*
 * A Describe S of the client's statement name ("": the unnamed one)
 * answered by the cache (a fill's replies, or stored ones): its description
 * is kept or compared as when the origin answers one (fresh: the batch had
 * the client's own Parse of it). hd_prepare_note_replies() finds it among
 * reply messages.
 */
extern void hd_prepare_note_described(HdClient *client, const char *name, bool fresh,
									  const char *params, size_t params_len, const char *row,
									  size_t row_len);
extern void hd_prepare_note_replies(HdClient *client, const char *name, bool fresh,
									const char *replies, size_t len);
/* A statement's description changed: its uses fail with 0A000 from now on. */
extern void hd_prepare_changed(HdServer *server, HdStatement *stmt, const char *why);
/* The 0A000 ErrorResponse PostgreSQL gives for it. */
extern int	hd_prepare_send_changed_error(HdIoBuf *out);

/* The schema of a config's origin changed: retire its pools' statements. */
extern void hd_prepare_schema_changed(HdAgent *agent, const char *config_id);

/* What besides the text decides what a statement means: the client's search_path. */
extern const char *hd_prepare_context(const HdClient *client);

#endif							/* HD_PREPARE_H */
