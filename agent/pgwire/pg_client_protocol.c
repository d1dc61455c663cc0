/*
 * pg_client_protocol.c
 *    PostgreSQL's client-protocol driver (net/client_protocol.h): the
 *    table agent.c drives every client listener with, over client.c's
 *    sessions (HdClient embeds the HdClientSession).
 *
 *   accept        hd_client_accept(): a session waiting for its startup
 *                 packet (or an SSLRequest); PostgreSQL's client speaks first
 *   frame         a message after the startup packet: type byte, length
 *                 word, checked as PostgreSQL checks them (client.c reads
 *                 every message through it)
 *   classify      a Query's or a Parse's text: session state as hd_classify()
 *                 (session.h) finds it, else transaction control by the
 *                 first word of each statement, else a query; every other
 *                 message is OTHER
 *   encode_error  ErrorResponse, severity FATAL or ERROR
 *   encode_ready  ReadyForQuery: 'I' without an origin connection, else the
 *                 status of the last ReadyForQuery of the one it holds
 *   idle          between transactions (session_idle() for session pooling)
 *   terminate     hd_client_fatal()
 */
#include "pgwire/pooler.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/be.h"
#include "pgwire/proto.h"
#include "pgwire/session.h"

static HdClient *
client_of(const HdClientSession *session)
{
	return hd_container_of((HdClientSession *) session, HdClient, session);
}

static HdClientSession *
pg_accept(void *agent, int fd, const char *peer, bool local)
{
	HdClient   *client = hd_client_accept(agent, fd, peer);

	if (client == NULL)
		return NULL;
	/* the Unix-domain socket is answered 'N' to an SSLRequest (tls_negotiate.c) */
	client->local_socket = local;
	return &client->session;
}

/* Whether a frontend message type is one a client may send after login. */
static bool
known_frontend_type(char type)
{
	switch (type)
	{
		case 'Q':				/* Query */
		case 'P':				/* Parse */
		case 'B':				/* Bind */
		case 'E':				/* Execute */
		case 'D':				/* Describe */
		case 'C':				/* Close */
		case 'H':				/* Flush */
		case 'S':				/* Sync */
		case 'F':				/* FunctionCall */
		case 'd':				/* CopyData */
		case 'c':				/* CopyDone */
		case 'f':				/* CopyFail */
		case 'X':				/* Terminate */
			return true;
		default:
			return false;
	}
}

/* The message types PostgreSQL reads with its large limit (the others: 10000 bytes). */
static bool
large_message_type(char type)
{
	return type == 'Q' || type == 'P' || type == 'B' || type == 'F' || type == 'd' ||
		type == 'c' || type == 'f';
}

/*
 * The header checked the way PostgreSQL checks it, before anything acts on
 * the message: a type it does not know, or a length out of its bounds, and
 * the stream cannot be read on (the reasons are PostgreSQL's words).
 */
static HdFrameStatus
pg_frame(const char *bytes, size_t len, HdClientFrame *out)
{
	char		type;
	uint32_t	mlen;

	out->size = 0;
	out->reason[0] = '\0';
	if (len < 5)
		return HD_FRAME_NEED_MORE;
	type = bytes[0];
	mlen = hd_get_u32(bytes + 1);
	if (!known_frontend_type(type))
	{
		snprintf(out->reason, sizeof(out->reason), "invalid frontend message type %d",
				 (unsigned char) type);
		return HD_FRAME_INVALID;
	}
	if (mlen < 4 || mlen > HD_MAX_CLIENT_MESSAGE ||
		(!large_message_type(type) && mlen > HD_MAX_SMALL_MESSAGE))
	{
		snprintf(out->reason, sizeof(out->reason), "invalid message length");
		return HD_FRAME_INVALID;
	}
	out->size = (size_t) mlen + 1;
	return len >= out->size ? HD_FRAME_COMPLETE : HD_FRAME_NEED_MORE;
}

/* Past blanks and comments (-- to the end of the line, nested slash-star). */
static size_t
skip_blanks(const char *text, size_t len, size_t i)
{
	for (;;)
	{
		while (i < len && isspace((unsigned char) text[i]))
			i++;
		if (i + 1 < len && text[i] == '-' && text[i + 1] == '-')
		{
			while (i < len && text[i] != '\n')
				i++;
		}
		else if (i + 1 < len && text[i] == '/' && text[i + 1] == '*')
		{
			int			depth = 0;

			do
			{
				if (i + 1 < len && text[i] == '/' && text[i + 1] == '*')
					depth++, i += 2;
				else if (i + 1 < len && text[i] == '*' && text[i + 1] == '/')
					depth--, i += 2;
				else
					i++;
			} while (i < len && depth > 0);
		}
		else
			return i;
	}
}

/* Whether the word at i is word (any case), not the start of a longer one. */
static bool
word_is(const char *text, size_t len, size_t i, const char *word)
{
	size_t		n = strlen(word);

	return len - i >= n && strncasecmp(text + i, word, n) == 0 &&
		(len - i == n || !(isalnum((unsigned char) text[i + n]) || text[i + n] == '_'));
}

/* The end of the statement starting at i: its ';' (quoted ones skipped), or len. */
static size_t
statement_end(const char *text, size_t len, size_t i)
{
	char		quote = 0;

	for (; i < len; i++)
	{
		if (quote && text[i] == quote)
			quote = 0;
		else if (!quote && (text[i] == '\'' || text[i] == '"'))
			quote = text[i];
		else if (!quote && text[i] == ';')
			return i;
	}
	return len;
}

/*
 * Whether a statement of the text begins or ends a transaction or a
 * savepoint, by its first word: BEGIN, START TRANSACTION, COMMIT, END,
 * ROLLBACK, ABORT, SAVEPOINT, RELEASE, PREPARE TRANSACTION (COMMIT/ROLLBACK
 * PREPARED start as COMMIT/ROLLBACK). The agent needs no parse for this.
 */
static bool
transaction_control(const char *text, size_t len)
{
	static const char *const words[] = {
		"begin", "start", "commit", "end", "rollback", "abort", "savepoint", "release", NULL
	};

	for (size_t i = 0; i < len; i = statement_end(text, len, i) + 1)
	{
		i = skip_blanks(text, len, i);
		for (int w = 0; words[w]; w++)
			if (word_is(text, len, i, words[w]))
				return true;
		if (word_is(text, len, i, "prepare") &&
			word_is(text, len, skip_blanks(text, len, i + 7), "transaction"))
			return true;
	}
	return false;
}

static HdClientMsgKind
pg_classify(const char *msg, size_t size)
{
	const char *body = msg + 5;
	size_t		body_len = size >= 5 ? size - 5 : 0;
	const char *text = NULL;
	size_t		text_len;
	size_t		pos = 0;
	HdClassification c;
	bool		session_state;

	if (size < 5)
		return HD_CLIENT_MSG_OTHER;
	if (msg[0] == 'Q')
		text = body;
	else if (msg[0] == 'P' && hd_take_string(body, body_len, &pos))
		text = hd_take_string(body, body_len, &pos);
	if (text == NULL)
		return HD_CLIENT_MSG_OTHER;
	text_len = strnlen(text, body_len - (size_t) (text - body));
	/* (a Parse's text is classified as a prepared statement's: a SET in it pins) */
	hd_classify(text, text_len, msg[0] == 'P', &c);
	session_state = c.effect != HD_EFFECT_NONE || c.deallocate;
	hd_classification_free(&c);
	if (session_state)
		return HD_CLIENT_MSG_SESSION_STATE;
	if (transaction_control(text, text_len))
		return HD_CLIENT_MSG_TXN_CONTROL;
	return HD_CLIENT_MSG_QUERY;
}

static int
pg_encode_error(HdIoBuf *out, bool fatal, const char *sqlstate, const char *message,
				const char *detail)
{
	return hd_send_error(out, fatal ? "FATAL" : "ERROR", sqlstate, message, detail, NULL);
}

/*
 * A client without an origin connection is never in a transaction
 * (transaction pooling gives it one for each); one that holds its
 * connection is in the state that connection last reported.
 */
static int
pg_encode_ready(HdIoBuf *out, const HdClientSession *session)
{
	const HdClient *client = client_of(session);

	return hd_send_ready(out, client->server ? client->server->txn_status : 'I');
}

/*
 * A session pooling client holds its server from login to the end, idle or
 * not: with nothing going on (no transaction, nothing owed or pending) it
 * is as idle as a transaction pooling client between transactions, for
 * client_idle_timeout and draining. (Not a replication pass-through.)
 */
static bool
session_idle(const HdClient *client)
{
	return client->state == HD_CLIENT_ACTIVE && !client->replication[0] &&
		hd_pool_server_at_login(client->pool) && hd_server_owes_nothing(client->server) &&
		client->server->cancels == 0 && !client->awaiting_setup &&
		hd_batch_wait(&client->batch) != HD_BWAIT_CACHE &&
		hd_iobuf_live(&client->in) == 0 && hd_iobuf_live(&client->server->out) == 0;
}

/*
 * Between transactions: not queued for a server, and holding none (a
 * transaction pooling client's server is its transaction's) or an idle one
 * it keeps for its session.
 */
static bool
pg_idle(const HdClientSession *session)
{
	const HdClient *client = client_of(session);

	return !client->wait.waiting && (client->server == NULL || session_idle(client));
}

static void
pg_terminate(HdClientSession *session, const char *sqlstate, const char *message)
{
	hd_client_fatal(client_of(session), sqlstate, message, NULL);
}

const HdClientProtocol hd_pg_client_protocol = {
	.name = "postgresql",
	.accept = pg_accept,
	.frame = pg_frame,
	.classify = pg_classify,
	.encode_error = pg_encode_error,
	.encode_ready = pg_encode_ready,
	.idle = pg_idle,
	.terminate = pg_terminate,
};
