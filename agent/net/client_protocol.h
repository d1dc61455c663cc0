/*
 * client_protocol.h
 *    The client-protocol driver: what the agent's generic code asks of the
 *    wire protocol its clients speak, as one table of operations. A
 *    listener's clients speak one protocol; agent.c picks it per listener.
 *    PostgreSQL's is hd_pg_client_protocol (pgwire/pg_client_protocol.c); a
 *    MySQL/MariaDB driver, where the server speaks first, fills in the same
 *    table.
 *
 * Why in net/: the table is the other half of a listener (listener.h hands
 * over a socket, the protocol makes a session of it), it needs nothing but
 * base/ (a byte buffer), and net/ sits below every wing that handles
 * clients: pgwire/ implements it, ops/ and agent.c call it, and none of them
 * may include another protocol's wing. net/ includes only base/ and config/,
 * and this header keeps to that (scripts/check-wings).
 *
 * Contract:
 *   - HdClientSession is what every protocol's session starts with (embedded,
 *     as HdPool is in HdPgPool): its protocol. The driver gets its own
 *     session from it (hd_container_of); generic code never looks further.
 *   - accept(agent, fd, peer, local): a connection came in on a listener of
 *     this protocol; fd is the driver's from then on (prepared: non-blocking,
 *     close-on-exec), peer is its address for logs, local says it came in on
 *     the Unix-domain socket. The driver makes a session, counts it in the
 *     agent's clients and does what its protocol does first: PostgreSQL
 *     waits for the startup packet (or an SSLRequest); a protocol whose
 *     server speaks first writes its greeting here. Returns the session, or
 *     NULL when there is none (out of memory: fd closed, logged).
 *   - frame(bytes, len, out): where the message at the head of a session's
 *     input ends, once it is past its start-up (PostgreSQL: after the
 *     startup packet). HD_FRAME_COMPLETE: out->size bytes are one message.
 *     HD_FRAME_NEED_MORE: not all here; out->size is the whole message's size
 *     once its header is in (0 before), so that a caller may stream a large
 *     one. HD_FRAME_INVALID: the stream cannot be read on (an unknown type,
 *     a length out of bounds); out->reason is the message for the client's
 *     error and the log, and the session must end. It reads only the header,
 *     never past len, and never fails on any bytes.
 *   - classify(msg, size): what a whole message, as frame() delimited it,
 *     asks for. HD_CLIENT_MSG_SESSION_STATE: it changes what the session
 *     carries past its transaction (the agent must carry it, or pin the
 *     session to its origin connection); HD_CLIENT_MSG_TXN_CONTROL: it
 *     begins or ends a transaction or savepoint; HD_CLIENT_MSG_QUERY: any
 *     other statement; HD_CLIENT_MSG_OTHER: the message holds no statement
 *     text (protocol steps: sync, terminate, ...). A text holding both
 *     kinds is session state first, then transaction control.
 *   - encode_error(out, fatal, sqlstate, message, detail): appends the
 *     protocol's error message (detail may be NULL); fatal says the session
 *     ends after it (PostgreSQL: severity FATAL, else ERROR). 0, or -1 when
 *     memory ran out (out then as it was).
 *   - encode_ready(out, session): appends what tells the client the agent
 *     is ready for its next request, with the session's transaction status
 *     (PostgreSQL: ReadyForQuery). 0 or -1 as encode_error.
 *   - idle(session): the session is between transactions: no transaction
 *     of its is open on an origin connection, it is not queued for one, and
 *     nothing it sent is on its way to or from an origin connection it
 *     holds. An idle session may be closed (draining, client_idle_timeout)
 *     without losing work the origin did for it; a busy one is let finish.
 *   - terminate(session, sqlstate, message): ends the session with a fatal
 *     error (encode_error) it is sent first, logged with sqlstate; the
 *     session is freed later by its driver, never under the caller.
 *   - No state but the session's own; the tables are const.
 */
#ifndef HD_CLIENT_PROTOCOL_H
#define HD_CLIENT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include "base/iobuf.h"

typedef struct HdClientProtocol HdClientProtocol;

typedef struct HdClientSession
{
	const HdClientProtocol *protocol;
} HdClientSession;

typedef enum HdFrameStatus
{
	HD_FRAME_COMPLETE,
	HD_FRAME_NEED_MORE,
	HD_FRAME_INVALID
} HdFrameStatus;

typedef struct HdClientFrame
{
	size_t		size;			/* the message's bytes, header included; 0: header not in */
	char		reason[64];		/* HD_FRAME_INVALID: why */
} HdClientFrame;

typedef enum HdClientMsgKind
{
	HD_CLIENT_MSG_QUERY,
	HD_CLIENT_MSG_TXN_CONTROL,
	HD_CLIENT_MSG_SESSION_STATE,
	HD_CLIENT_MSG_OTHER
} HdClientMsgKind;

struct HdClientProtocol
{
	const char *name;			/* "postgresql" */
	HdClientSession *(*accept) (void *agent, int fd, const char *peer, bool local);
	HdFrameStatus (*frame) (const char *bytes, size_t len, HdClientFrame *out);
	HdClientMsgKind (*classify) (const char *msg, size_t size);
	int			(*encode_error) (HdIoBuf *out, bool fatal, const char *sqlstate,
								 const char *message, const char *detail);
	int			(*encode_ready) (HdIoBuf *out, const HdClientSession *session);
	bool		(*idle) (const HdClientSession *session);
	void		(*terminate) (HdClientSession *session, const char *sqlstate,
							  const char *message);
};

#endif							/* HD_CLIENT_PROTOCOL_H */
