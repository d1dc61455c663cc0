/*
 * test_client_protocol.c
 *    The client-protocol driver's contract (net/client_protocol.h), checked
 *    through its table: framing (a partial message, one, two in a buffer, an
 *    invalid header, a huge declared length), classification, and the error
 *    and "ready" messages decoded back field by field; idle for sessions in
 *    and out of a transaction. No server, no loop, no socket.
 *
 * The checks are written against the table and a Fixture: what only the
 * protocol knows (how to write a message with a statement's text, a sync
 * and a terminate, a broken header; how to read its error and ready
 * messages back; sessions in each state). PostgreSQL's fixture is below; a
 * MySQL/MariaDB driver adds its own and runs run_contract() on it.
 *
 * accept() and terminate() need a loop and a socket: the TAP tests cover
 * them (t/020_pooler.pl draining, t/026_limits_timeouts.pl max_client_conn).
 * Prints TAP; run by t/018_client_protocol_unit.pl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/be.h"
#include "base/sqlstate.h"
#include "pgwire/pooler.h"
#include "tap.h"

typedef enum TxnStatus
{
	TXN_IDLE,					/* outside a transaction */
	TXN_OPEN,					/* in a transaction */
	TXN_FAILED					/* in a failed transaction */
} TxnStatus;

/* An error message read back. */
typedef struct DecodedError
{
	bool		fatal;
	char		sqlstate[6];
	char		message[256];
	char		detail[256];	/* "" when none */
} DecodedError;

typedef struct Fixture
{
	const HdClientProtocol *protocol;
	/* write one whole message into buf (room for 1024 bytes); its size */
	size_t		(*statement) (char *buf, const char *sql);	/* a simple query */
	size_t		(*prepare) (char *buf, const char *sql);	/* a prepared statement; NULL: none */
	size_t		(*sync) (char *buf);
	size_t		(*terminate) (char *buf);
	/* a header that is wrong: an unknown type (NULL: none), a length below the minimum */
	size_t		(*bad_type) (char *buf);
	size_t		(*bad_length) (char *buf);
	/* a header alone declaring a message of `size` bytes */
	size_t		(*header_of) (char *buf, size_t size);
	size_t		max_size;		/* the largest message the protocol accepts */
	/* read back: true if the bytes are exactly one such message, well-formed */
	bool		(*read_error) (const char *bytes, size_t len, DecodedError *e);
	bool		(*read_ready) (const char *bytes, size_t len, TxnStatus *status);
	/* a session in that state; a session queued for an origin connection */
	HdClientSession *(*session) (TxnStatus status);
	HdClientSession *(*queued_session) (void);
} Fixture;

/* ---------------------------------------------------------------------------
 * The contract, through the table
 */

static void
check_framing(const Fixture *f)
{
	const HdClientProtocol *p = f->protocol;
	char		buf[2048];
	char		name[160];
	size_t		one = f->statement(buf, "SELECT 1");
	size_t		two;
	HdClientFrame fr;

	for (size_t cut = 0; cut < one; cut++)
	{
		HdFrameStatus st = p->frame(buf, cut, &fr);

		if (st != HD_FRAME_NEED_MORE || (fr.size != 0 && fr.size != one))
		{
			snprintf(name, sizeof(name), "%s: frame of %zu of %zu bytes: need more", p->name,
					 cut, one);
			ok(false, name);
			return;
		}
	}
	snprintf(name, sizeof(name), "%s: frame of every partial message: need more", p->name);
	ok(true, name);
	snprintf(name, sizeof(name), "%s: a partial message past its header says its size", p->name);
	ok(p->frame(buf, one - 1, &fr) == HD_FRAME_NEED_MORE && fr.size == one, name);

	snprintf(name, sizeof(name), "%s: frame of one message: complete, its size", p->name);
	ok(p->frame(buf, one, &fr) == HD_FRAME_COMPLETE && fr.size == one, name);

	two = f->sync(buf + one);
	snprintf(name, sizeof(name), "%s: two messages in one buffer: the first, then the second",
			 p->name);
	ok(p->frame(buf, one + two, &fr) == HD_FRAME_COMPLETE && fr.size == one &&
	   p->frame(buf + one, two, &fr) == HD_FRAME_COMPLETE && fr.size == two, name);

	if (f->bad_type)
	{
		size_t		n = f->bad_type(buf);

		snprintf(name, sizeof(name), "%s: an unknown message type: invalid, with a reason",
				 p->name);
		ok(p->frame(buf, n, &fr) == HD_FRAME_INVALID && fr.reason[0] != '\0', name);
	}
	{
		size_t		n = f->bad_length(buf);

		snprintf(name, sizeof(name), "%s: a length below the minimum: invalid, with a reason",
				 p->name);
		ok(p->frame(buf, n, &fr) == HD_FRAME_INVALID && fr.reason[0] != '\0', name);
	}
	{
		size_t		n = f->header_of(buf, f->max_size);

		snprintf(name, sizeof(name), "%s: the largest declared length: need more, its size",
				 p->name);
		ok(p->frame(buf, n, &fr) == HD_FRAME_NEED_MORE && fr.size == f->max_size, name);
		n = f->header_of(buf, f->max_size + 1);
		snprintf(name, sizeof(name), "%s: a declared length past it: invalid, not a wait",
				 p->name);
		ok(p->frame(buf, n, &fr) == HD_FRAME_INVALID && fr.reason[0] != '\0', name);
		n = f->header_of(buf, (size_t) UINT32_MAX);
		snprintf(name, sizeof(name), "%s: a huge declared length: invalid", p->name);
		ok(p->frame(buf, n, &fr) == HD_FRAME_INVALID, name);
	}
}

static const char *
kind_name(HdClientMsgKind k)
{
	switch (k)
	{
		case HD_CLIENT_MSG_QUERY:
			return "query";
		case HD_CLIENT_MSG_TXN_CONTROL:
			return "transaction control";
		case HD_CLIENT_MSG_SESSION_STATE:
			return "session state";
		case HD_CLIENT_MSG_OTHER:
			return "other";
	}
	return "?";
}

static void
expect_kind(const Fixture *f, const char *what, const char *msg, size_t size,
			HdClientMsgKind want)
{
	char		name[256];
	HdClientFrame fr;
	HdClientMsgKind got;

	/* classify() takes what frame() delimited */
	if (f->protocol->frame(msg, size, &fr) != HD_FRAME_COMPLETE || fr.size != size)
	{
		snprintf(name, sizeof(name), "%s: %s frames as one message", f->protocol->name, what);
		ok(false, name);
		return;
	}
	got = f->protocol->classify(msg, size);
	snprintf(name, sizeof(name), "%s: %s -> %s", f->protocol->name, what, kind_name(want));
	ok(got == want, name);
	if (got != want)
		printf("# got %s\n", kind_name(got));
}

static void
expect_statement(const Fixture *f, const char *sql, HdClientMsgKind want)
{
	char		buf[1024];
	char		what[200];
	char		shown[160];
	size_t		n = 0;

	/* a test's name is one line of TAP */
	for (const char *c = sql; *c && n + 3 < sizeof(shown); c++)
	{
		if (*c == '\n')
			shown[n++] = '\\', shown[n++] = 'n';
		else
			shown[n++] = *c;
	}
	shown[n] = '\0';
	snprintf(what, sizeof(what), "query \"%s\"", shown);
	expect_kind(f, what, buf, f->statement(buf, sql), want);
	if (f->prepare)
	{
		snprintf(what, sizeof(what), "prepared \"%s\"", shown);
		expect_kind(f, what, buf, f->prepare(buf, sql), want);
	}
}

static void
check_classify(const Fixture *f)
{
	static const char *const txn[] = {
		"BEGIN", "begin isolation level repeatable read", "START TRANSACTION", "COMMIT",
		"ROLLBACK", "END", "SAVEPOINT a", "RELEASE SAVEPOINT a", "ROLLBACK TO SAVEPOINT a",
		"  -- a comment\n  /* and /* a nested */ one */ COMMIT", NULL
	};
	static const char *const session[] = {
		"SET search_path = app", "SET statement_timeout = 0", "RESET search_path",
		"RESET ALL", "DISCARD ALL", "LISTEN channel", "BEGIN; SET search_path = app; COMMIT",
		NULL
	};
	static const char *const query[] = {
		"SELECT 1", "select * from items where id = 1", "INSERT INTO t VALUES (1)",
		"SELECT 'begin; commit'", "SELECT begin_date FROM t", "WITH a AS (SELECT 1) SELECT * FROM a",
		NULL
	};
	char		buf[1024];

	for (int i = 0; txn[i]; i++)
		expect_statement(f, txn[i], HD_CLIENT_MSG_TXN_CONTROL);
	for (int i = 0; session[i]; i++)
		expect_statement(f, session[i], HD_CLIENT_MSG_SESSION_STATE);
	for (int i = 0; query[i]; i++)
		expect_statement(f, query[i], HD_CLIENT_MSG_QUERY);
	expect_kind(f, "sync", buf, f->sync(buf), HD_CLIENT_MSG_OTHER);
	expect_kind(f, "terminate", buf, f->terminate(buf), HD_CLIENT_MSG_OTHER);
}

static void
check_error(const Fixture *f, bool fatal, const char *sqlstate, const char *message,
			const char *detail)
{
	const HdClientProtocol *p = f->protocol;
	HdIoBuf		out = {0};
	DecodedError e;
	char		name[256];
	bool		read;

	snprintf(name, sizeof(name), "%s: encode_error (%s, %s%s)", p->name,
			 fatal ? "fatal" : "not fatal", sqlstate, detail ? ", a detail" : "");
	ok(p->encode_error(&out, fatal, sqlstate, message, detail) == 0, name);
	read = f->read_error(hd_iobuf_head(&out), hd_iobuf_live(&out), &e);
	snprintf(name, sizeof(name), "%s: ... reads back as one well-formed error", p->name);
	ok(read, name);
	snprintf(name, sizeof(name), "%s: ... its severity", p->name);
	ok(read && e.fatal == fatal, name);
	snprintf(name, sizeof(name), "%s: ... its SQLSTATE", p->name);
	ok(read && strcmp(e.sqlstate, sqlstate) == 0, name);
	snprintf(name, sizeof(name), "%s: ... its message", p->name);
	ok(read && strcmp(e.message, message) == 0, name);
	snprintf(name, sizeof(name), "%s: ... its detail", p->name);
	ok(read && strcmp(e.detail, detail ? detail : "") == 0, name);
	hd_iobuf_free(&out);
}

static void
check_ready(const Fixture *f, TxnStatus status, const char *what)
{
	const HdClientProtocol *p = f->protocol;
	HdIoBuf		out = {0};
	TxnStatus	got;
	char		name[256];

	snprintf(name, sizeof(name), "%s: encode_ready of a session %s", p->name, what);
	ok(p->encode_ready(&out, f->session(status)) == 0, name);
	snprintf(name, sizeof(name), "%s: ... reads back with that transaction status", p->name);
	ok(f->read_ready(hd_iobuf_head(&out), hd_iobuf_live(&out), &got) && got == status, name);
	hd_iobuf_free(&out);
}

static void
check_idle(const Fixture *f)
{
	const HdClientProtocol *p = f->protocol;
	char		name[256];

	snprintf(name, sizeof(name), "%s: idle: a session outside a transaction", p->name);
	ok(p->idle(f->session(TXN_IDLE)), name);
	snprintf(name, sizeof(name), "%s: not idle: a session in a transaction", p->name);
	ok(!p->idle(f->session(TXN_OPEN)), name);
	snprintf(name, sizeof(name), "%s: not idle: a session in a failed transaction", p->name);
	ok(!p->idle(f->session(TXN_FAILED)), name);
	snprintf(name, sizeof(name), "%s: not idle: a session queued for a connection", p->name);
	ok(!p->idle(f->queued_session()), name);
}

static void
run_contract(const Fixture *f)
{
	char		name[160];

	snprintf(name, sizeof(name), "%s: the table is complete", f->protocol->name);
	ok(f->protocol->name && f->protocol->accept && f->protocol->frame &&
	   f->protocol->classify && f->protocol->encode_error && f->protocol->encode_ready &&
	   f->protocol->idle && f->protocol->terminate, name);
	check_framing(f);
	check_classify(f);
	check_error(f, true, HD_SQLSTATE_TOO_MANY_CONNECTIONS,
				"sorry, too many clients already (max_client_conn = 3)", NULL);
	check_error(f, false, HD_SQLSTATE_FEATURE_NOT_SUPPORTED, "not here", "Some detail.");
	check_ready(f, TXN_IDLE, "outside a transaction");
	check_ready(f, TXN_OPEN, "in a transaction");
	check_ready(f, TXN_FAILED, "in a failed transaction");
	check_idle(f);
}

/* ---------------------------------------------------------------------------
 * PostgreSQL's fixture
 */

static size_t
pg_message(char *buf, char type, const char *body, size_t body_len)
{
	buf[0] = type;
	hd_put_u32(buf + 1, (uint32_t) (body_len + 4));
	memcpy(buf + 5, body, body_len);
	return body_len + 5;
}

static size_t
pg_statement(char *buf, const char *sql)
{
	return pg_message(buf, 'Q', sql, strlen(sql) + 1);
}

/* Parse of a named statement with no parameter types. */
static size_t
pg_prepare(char *buf, const char *sql)
{
	char		body[1024];
	size_t		n = strlen(sql) + 1;

	memcpy(body, "s1", 3);
	memcpy(body + 3, sql, n);
	body[3 + n] = body[4 + n] = 0;
	return pg_message(buf, 'P', body, 3 + n + 2);
}

static size_t
pg_sync(char *buf)
{
	return pg_message(buf, 'S', "", 0);
}

static size_t
pg_terminate(char *buf)
{
	return pg_message(buf, 'X', "", 0);
}

static size_t
pg_bad_type(char *buf)
{
	return pg_message(buf, 'z', "", 0);
}

static size_t
pg_bad_length(char *buf)
{
	buf[0] = 'Q';
	hd_put_u32(buf + 1, 3);
	return 5;
}

static size_t
pg_header_of(char *buf, size_t size)
{
	buf[0] = 'Q';
	hd_put_u32(buf + 1, size - 1 > UINT32_MAX ? UINT32_MAX : (uint32_t) (size - 1));
	return 5;
}

/* The string field at *pos of an ErrorResponse; NULL past the end. */
static const char *
pg_field(const char *bytes, size_t len, size_t *pos, char *code)
{
	const char *value;

	if (*pos >= len || bytes[*pos] == 0)
		return NULL;
	*code = bytes[(*pos)++];
	value = bytes + *pos;
	if (memchr(value, 0, len - *pos) == NULL)
		return NULL;
	*pos += strlen(value) + 1;
	return value;
}

static bool
pg_read_error(const char *bytes, size_t len, DecodedError *e)
{
	size_t		pos = 5;
	const char *severity = NULL;
	const char *verbose = NULL;
	const char *value;
	char		code;

	memset(e, 0, sizeof(*e));
	if (len < 6 || bytes[0] != 'E' || hd_get_u32(bytes + 1) != len - 1 || bytes[len - 1] != 0)
		return false;
	while ((value = pg_field(bytes, len, &pos, &code)) != NULL)
	{
		if (code == 'S')
			severity = value;
		else if (code == 'V')
			verbose = value;
		else if (code == 'C' && strlen(value) == 5)
			memcpy(e->sqlstate, value, 6);
		else if (code == 'M')
			snprintf(e->message, sizeof(e->message), "%s", value);
		else if (code == 'D')
			snprintf(e->detail, sizeof(e->detail), "%s", value);
		else
			return false;		/* a field the agent does not send */
	}
	/* the terminator is the last byte; the localized and the plain severity agree */
	if (pos != len - 1 || severity == NULL || verbose == NULL || strcmp(severity, verbose) != 0 ||
		(strcmp(severity, "FATAL") != 0 && strcmp(severity, "ERROR") != 0))
		return false;
	e->fatal = strcmp(severity, "FATAL") == 0;
	return e->sqlstate[0] != '\0' && e->message[0] != '\0';
}

static bool
pg_read_ready(const char *bytes, size_t len, TxnStatus *status)
{
	if (len != 6 || bytes[0] != 'Z' || hd_get_u32(bytes + 1) != 5)
		return false;
	switch (bytes[5])
	{
		case 'I':
			*status = TXN_IDLE;
			return true;
		case 'T':
			*status = TXN_OPEN;
			return true;
		case 'E':
			*status = TXN_FAILED;
			return true;
		default:
			return false;
	}
}

/*
 * Sessions: a client without an origin connection is outside any
 * transaction; one holding a connection (whose ReadyForQuery said 'T' or
 * 'E') is in one. They live for the whole program.
 */
static HdServer pg_servers[3];
static HdClient pg_clients[3];
static HdClient pg_queued;

static HdClientSession *
pg_session(TxnStatus status)
{
	HdClient   *client = &pg_clients[status];

	memset(client, 0, sizeof(*client));
	client->session.protocol = &hd_pg_client_protocol;
	client->state = HD_CLIENT_ACTIVE;
	if (status != TXN_IDLE)
	{
		memset(&pg_servers[status], 0, sizeof(HdServer));
		pg_servers[status].txn_status = status == TXN_OPEN ? 'T' : 'E';
		pg_servers[status].client = client;
		client->server = &pg_servers[status];
	}
	return &client->session;
}

static HdClientSession *
pg_queued_session(void)
{
	memset(&pg_queued, 0, sizeof(pg_queued));
	pg_queued.session.protocol = &hd_pg_client_protocol;
	pg_queued.state = HD_CLIENT_LOGIN;
	pg_queued.wait.waiting = true;
	return &pg_queued.session;
}

/*
 * What pg_client_protocol.c calls in the rest of the agent: accept() and
 * terminate() are not run here (no loop); idle() asks about the pool mode
 * and the connection (transaction pooling: a held connection is a
 * transaction's).
 */
HdClient *
hd_client_accept(HdAgent *agent, int fd, const char *addr)
{
	(void) agent;
	(void) fd;
	(void) addr;
	return NULL;
}

void
hd_client_fatal(HdClient *client, const char *sqlstate, const char *message, const char *detail)
{
	(void) client;
	(void) sqlstate;
	(void) message;
	(void) detail;
}

bool
hd_pool_server_at_login(const HdPool *pool)
{
	(void) pool;
	return false;
}

bool
hd_server_owes_nothing(const HdServer *server)
{
	return server->txn_status == 'I';
}

static const Fixture pg_fixture = {
	.protocol = &hd_pg_client_protocol,
	.statement = pg_statement,
	.prepare = pg_prepare,
	.sync = pg_sync,
	.terminate = pg_terminate,
	.bad_type = pg_bad_type,
	.bad_length = pg_bad_length,
	.header_of = pg_header_of,
	.max_size = (size_t) HD_MAX_CLIENT_MESSAGE + 1,
	.read_error = pg_read_error,
	.read_ready = pg_read_ready,
	.session = pg_session,
	.queued_session = pg_queued_session,
};

/* What only PostgreSQL has: the words of its framing errors, the small-message limit. */
static void
pg_specifics(void)
{
	char		buf[16];
	HdClientFrame fr;

	ok(strcmp(hd_pg_client_protocol.name, "postgresql") == 0, "postgresql: its name");
	pg_bad_type(buf);
	ok(hd_pg_client_protocol.frame(buf, 5, &fr) == HD_FRAME_INVALID &&
	   strcmp(fr.reason, "invalid frontend message type 122") == 0,
	   "postgresql: an unknown type's reason is PostgreSQL's");
	pg_bad_length(buf);
	ok(hd_pg_client_protocol.frame(buf, 5, &fr) == HD_FRAME_INVALID &&
	   strcmp(fr.reason, "invalid message length") == 0,
	   "postgresql: a bad length's reason is PostgreSQL's");
	buf[0] = 'S';
	hd_put_u32(buf + 1, HD_MAX_SMALL_MESSAGE + 1);
	ok(hd_pg_client_protocol.frame(buf, 5, &fr) == HD_FRAME_INVALID,
	   "postgresql: a Sync longer than the small-message limit: invalid");
	buf[0] = 'Q';
	hd_put_u32(buf + 1, HD_MAX_SMALL_MESSAGE + 1);
	ok(hd_pg_client_protocol.frame(buf, 5, &fr) == HD_FRAME_NEED_MORE &&
	   fr.size == HD_MAX_SMALL_MESSAGE + 2, "postgresql: a Query may be longer");
	/* a Parse whose name never ends holds no statement */
	buf[0] = 'P';
	hd_put_u32(buf + 1, 6);
	buf[5] = 'a';
	buf[6] = 'b';
	ok(hd_pg_client_protocol.classify(buf, 7) == HD_CLIENT_MSG_OTHER,
	   "postgresql: a malformed Parse -> other");
}

int
main(void)
{
	run_contract(&pg_fixture);
	pg_specifics();
	return tap_done();
}
