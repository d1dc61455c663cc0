/*
 * my_proto.h
 *    The MySQL/MariaDB client/server protocol's bytes: packets, length-
 *    encoded integers and strings, the handshake both ways, OK/ERR/EOF, and
 *    the reply tracker that says where a command's reply ends and what the
 *    session's status is after it. Pure: no sockets, no state but the
 *    caller's, no allocation except into the caller's HdIoBuf.
 *
 * A packet is a 3-byte little-endian payload length, a 1-byte sequence id
 * and the payload. A payload of 0xffffff bytes is continued by the next
 * packet (a command or a row of 16 MB and more spans several); a command is
 * the packets up to the first shorter one. Each command starts at sequence
 * id 0, and each reply packet takes the next id.
 *
 * Contract:
 *   - Readers never read past the length they are given and never fail on
 *     any bytes: a truncated or malformed field is reported (false, -1, or
 *     HD_MY_REPLY_INVALID with a reason), never read beyond.
 *   - Writers append to an HdIoBuf and return 0, or -1 when memory ran out
 *     (the buffer then holds a partial packet the caller must discard:
 *     callers truncate back to the length they noted, hd_my_packet_begin()).
 *   - hd_my_reply_*: the tracker is fed every packet of one reply, in
 *     order, and says after each whether the reply is complete, what the
 *     final status flags are (for transaction pooling: SERVER_STATUS_IN_TRANS
 *     and SERVER_STATUS_AUTOCOMMIT), whether the server now expects the
 *     client to send a local file (LOAD DATA LOCAL), and the affected rows,
 *     insert id and warnings of the last OK. It knows the reply shapes of
 *     COM_QUERY / COM_STMT_EXECUTE (OK, ERR, LOCAL INFILE, one or more result
 *     sets, text or binary), COM_STMT_PREPARE, COM_FIELD_LIST, commands
 *     answered with a single OK/ERR, and COM_STATISTICS (one string).
 */
#ifndef HD_MY_PROTO_H
#define HD_MY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/iobuf.h"

#define HD_MY_HEADER 4
#define HD_MY_MAX_PAYLOAD 0xffffff
#define HD_MY_NONCE_BYTES 20

/* Capability flags (the ones the agent looks at or sets). */
#define HD_MY_CLIENT_LONG_PASSWORD 0x00000001u
#define HD_MY_CLIENT_FOUND_ROWS 0x00000002u
#define HD_MY_CLIENT_LONG_FLAG 0x00000004u
#define HD_MY_CLIENT_CONNECT_WITH_DB 0x00000008u
#define HD_MY_CLIENT_NO_SCHEMA 0x00000010u
#define HD_MY_CLIENT_COMPRESS 0x00000020u
#define HD_MY_CLIENT_ODBC 0x00000040u
#define HD_MY_CLIENT_LOCAL_FILES 0x00000080u
#define HD_MY_CLIENT_IGNORE_SPACE 0x00000100u
#define HD_MY_CLIENT_PROTOCOL_41 0x00000200u
#define HD_MY_CLIENT_INTERACTIVE 0x00000400u
#define HD_MY_CLIENT_SSL 0x00000800u
#define HD_MY_CLIENT_IGNORE_SIGPIPE 0x00001000u
#define HD_MY_CLIENT_TRANSACTIONS 0x00002000u
#define HD_MY_CLIENT_RESERVED 0x00004000u
#define HD_MY_CLIENT_SECURE_CONNECTION 0x00008000u
#define HD_MY_CLIENT_MULTI_STATEMENTS 0x00010000u
#define HD_MY_CLIENT_MULTI_RESULTS 0x00020000u
#define HD_MY_CLIENT_PS_MULTI_RESULTS 0x00040000u
#define HD_MY_CLIENT_PLUGIN_AUTH 0x00080000u
#define HD_MY_CLIENT_CONNECT_ATTRS 0x00100000u
#define HD_MY_CLIENT_PLUGIN_AUTH_LENENC 0x00200000u
#define HD_MY_CLIENT_CAN_HANDLE_EXPIRED 0x00400000u
#define HD_MY_CLIENT_SESSION_TRACK 0x00800000u
#define HD_MY_CLIENT_DEPRECATE_EOF 0x01000000u
#define HD_MY_CLIENT_OPTIONAL_RESULTSET_METADATA 0x02000000u
#define HD_MY_CLIENT_QUERY_ATTRIBUTES 0x08000000u
#define HD_MY_CLIENT_SSL_VERIFY_SERVER_CERT 0x40000000u
#define HD_MY_CLIENT_REMEMBER_OPTIONS 0x80000000u

/*
 * MariaDB's extended capabilities: a server that clears CLIENT_LONG_PASSWORD
 * (its "CLIENT_MYSQL") in its greeting sends them in the greeting's last
 * four reserved bytes, and a client that clears it answers in the handshake
 * response's last four reserved bytes. Extended metadata adds each column's
 * data type name (json, ...) to column definitions.
 */
#define HD_MY_MARIADB_PROGRESS 0x00000001u
#define HD_MY_MARIADB_COM_MULTI 0x00000002u
#define HD_MY_MARIADB_STMT_BULK 0x00000004u
#define HD_MY_MARIADB_EXTENDED_METADATA 0x00000008u
#define HD_MY_MARIADB_CACHE_METADATA 0x00000010u

/* Server status flags. */
#define HD_MY_STATUS_IN_TRANS 0x0001
#define HD_MY_STATUS_AUTOCOMMIT 0x0002
#define HD_MY_STATUS_MORE_RESULTS 0x0008
#define HD_MY_STATUS_CURSOR_EXISTS 0x0040
#define HD_MY_STATUS_LAST_ROW_SENT 0x0080
#define HD_MY_STATUS_IN_TRANS_READONLY 0x2000
#define HD_MY_STATUS_SESSION_STATE_CHANGED 0x4000

/* Commands. */
#define HD_MY_COM_QUIT 0x01
#define HD_MY_COM_INIT_DB 0x02
#define HD_MY_COM_QUERY 0x03
#define HD_MY_COM_FIELD_LIST 0x04
#define HD_MY_COM_STATISTICS 0x09
#define HD_MY_COM_PROCESS_KILL 0x0c
#define HD_MY_COM_DEBUG 0x0d
#define HD_MY_COM_PING 0x0e
#define HD_MY_COM_CHANGE_USER 0x11
#define HD_MY_COM_STMT_PREPARE 0x16
#define HD_MY_COM_STMT_EXECUTE 0x17
#define HD_MY_COM_STMT_SEND_LONG_DATA 0x18
#define HD_MY_COM_STMT_CLOSE 0x19
#define HD_MY_COM_STMT_RESET 0x1a
#define HD_MY_COM_SET_OPTION 0x1b
#define HD_MY_COM_STMT_FETCH 0x1c
#define HD_MY_COM_RESET_CONNECTION 0x1f

/* Little-endian integers (the protocol's byte order). */
static inline uint32_t
hd_my_get_u24(const void *p)
{
	const unsigned char *u = p;

	return (uint32_t) u[0] | ((uint32_t) u[1] << 8) | ((uint32_t) u[2] << 16);
}

static inline uint32_t
hd_my_get_u32(const void *p)
{
	const unsigned char *u = p;

	return (uint32_t) u[0] | ((uint32_t) u[1] << 8) | ((uint32_t) u[2] << 16) | ((uint32_t) u[3] << 24);
}

static inline uint16_t
hd_my_get_u16(const void *p)
{
	const unsigned char *u = p;

	return (uint16_t) (u[0] | (u[1] << 8));
}

static inline void
hd_my_put_u32(void *p, uint32_t v)
{
	unsigned char *u = p;

	u[0] = v & 0xff;
	u[1] = (v >> 8) & 0xff;
	u[2] = (v >> 16) & 0xff;
	u[3] = (v >> 24) & 0xff;
}

/* A reader over one payload: pos moves, ok turns false at the first short read. */
typedef struct HdMyReader
{
	const unsigned char *p;
	size_t		len;
	size_t		pos;
	bool		ok;
} HdMyReader;

extern void hd_my_reader_init(HdMyReader *r, const void *payload, size_t len);
extern uint64_t hd_my_read_int(HdMyReader *r, size_t bytes);
/* A length-encoded integer; *is_null for 0xfb (a NULL in a text row). */
extern uint64_t hd_my_read_lenenc(HdMyReader *r, bool *is_null);
/* n bytes: a pointer into the payload (NULL when short). */
extern const unsigned char *hd_my_read_bytes(HdMyReader *r, size_t n);
/* A NUL-terminated string; NULL when no NUL is left. *n its length. */
extern const char *hd_my_read_cstr(HdMyReader *r, size_t *n);
/* A length-encoded string; NULL when short. */
extern const unsigned char *hd_my_read_lenenc_str(HdMyReader *r, size_t *n);

/*
 * Where the packet at bytes[0..len) ends: 1 a whole packet is there (*payload
 * and *payload_len and *seq set), 0 not yet.
 */
extern int	hd_my_packet_peek(const void *bytes, size_t len, const unsigned char **payload,
							  size_t *payload_len, uint8_t *seq);
/*
 * A whole command at the head of bytes (all its packets: a payload of
 * exactly HD_MY_MAX_PAYLOAD continues): 1 and *total (bytes, headers
 * included) and *payload_total, 0 not all here.
 */
extern int	hd_my_command_peek(const void *bytes, size_t len, size_t *total, size_t *payload_total);

/* Writers. begin: appends a header to fill in; end: sets its length (splitting is the caller's for > 16 MB). */
extern int	hd_my_packet_begin(HdIoBuf *out, size_t *mark);
extern void hd_my_packet_end(HdIoBuf *out, size_t mark, uint8_t seq);
extern int	hd_my_put_lenenc(HdIoBuf *out, uint64_t v);
extern int	hd_my_put_lenenc_str(HdIoBuf *out, const void *s, size_t n);
/* A whole packet with this payload (split into 16 MB pieces as the protocol says). */
extern int	hd_my_put_packet(HdIoBuf *out, uint8_t seq, const void *payload, size_t n);

/* ERR: code, SQLSTATE (5 chars), message. */
extern int	hd_my_put_err(HdIoBuf *out, uint8_t seq, uint16_t code, const char *sqlstate,
						  const char *message);
/* OK (header 0x00): what the agent answers itself (COM_PING, a local COM_STMT_RESET, ...). */
extern int	hd_my_put_ok(HdIoBuf *out, uint8_t seq, uint32_t caps, uint16_t status,
						 uint16_t warnings);

/* The server's greeting (Protocol::HandshakeV10), both to write and to read. */
typedef struct HdMyGreeting
{
	char		version[128];
	uint32_t	thread_id;
	uint8_t		nonce[HD_MY_NONCE_BYTES];
	uint32_t	caps;
	uint32_t	ext_caps;		/* MariaDB's, when caps lacks CLIENT_LONG_PASSWORD */
	uint8_t		collation;
	uint16_t	status;
	char		plugin[64];
} HdMyGreeting;

extern int	hd_my_put_greeting(HdIoBuf *out, const HdMyGreeting *g);
/* false with a reason: not a v10 greeting, or truncated. An ERR packet is reported as such. */
extern bool hd_my_parse_greeting(const void *payload, size_t len, HdMyGreeting *g,
								 char *why, size_t whylen);

/* The client's handshake response (Protocol::HandshakeResponse41), or its SSLRequest (ssl_only). */
typedef struct HdMyLogin
{
	uint32_t	caps;
	uint32_t	ext_caps;		/* MariaDB's, when caps lacks CLIENT_LONG_PASSWORD */
	uint32_t	max_packet;
	uint8_t		collation;
	bool		ssl_only;		/* an SSLRequest: just the first 32 bytes */
	char		user[128];
	uint8_t		auth[256];
	size_t		auth_len;
	bool		has_database;
	char		database[256];
	bool		has_plugin;
	char		plugin[64];
	const unsigned char *attrs; /* CONNECT_ATTRS, into the payload; NULL: none */
	size_t		attrs_len;
} HdMyLogin;

/* false with a reason: truncated, a field too long, or not PROTOCOL_41. */
extern bool hd_my_parse_login(const void *payload, size_t len, HdMyLogin *login,
							  char *why, size_t whylen);
/*
 * COM_CHANGE_USER's payload after the command byte, read with the session's
 * negotiated caps: user, the answer (1-byte length), database, then
 * optionally the character set (login->collation, unchanged if absent), the
 * plugin and the attributes. false with a reason when malformed.
 */
extern bool hd_my_parse_change_user(const void *payload, size_t len, uint32_t caps,
									HdMyLogin *login, char *why, size_t whylen);
/* The agent's own handshake response to an origin (caps already negotiated). */
extern int	hd_my_put_login(HdIoBuf *out, uint8_t seq, const HdMyLogin *login);

/* An OK packet's fields (header 0x00, or 0xfe ending a result set with DEPRECATE_EOF). */
typedef struct HdMyOk
{
	uint64_t	affected;
	uint64_t	insert_id;
	uint16_t	status;
	uint16_t	warnings;
} HdMyOk;

extern bool hd_my_parse_ok(const void *payload, size_t len, HdMyOk *ok);
/* An ERR packet's code, SQLSTATE ("HY000" when none) and message (into msg). */
extern bool hd_my_parse_err(const void *payload, size_t len, uint16_t *code, char sqlstate[6],
							char *msg, size_t msglen);
/* An EOF packet: header 0xfe and a payload shorter than 9 bytes. */
static inline bool
hd_my_is_eof(const unsigned char *payload, size_t len)
{
	return len > 0 && len < 9 && payload[0] == 0xfe;
}

/* The reply tracker. */
typedef enum HdMyReplyKind
{
	HD_MY_REPLY_QUERY,			/* COM_QUERY, COM_STMT_EXECUTE: OK / ERR / LOCAL INFILE / result sets */
	HD_MY_REPLY_PREPARE,		/* COM_STMT_PREPARE */
	HD_MY_REPLY_FIELD_LIST,		/* COM_FIELD_LIST: column definitions, EOF (or ERR) */
	HD_MY_REPLY_OK,				/* one OK, ERR or EOF (COM_PING, COM_INIT_DB, COM_STMT_RESET, COM_SET_OPTION) */
	HD_MY_REPLY_STRING,			/* COM_STATISTICS: one packet */
	HD_MY_REPLY_FETCH			/* COM_STMT_FETCH: binary rows until EOF (OK with DEPRECATE_EOF) or ERR */
} HdMyReplyKind;

typedef enum HdMyReplyStep
{
	HD_MY_REPLY_MORE,			/* more packets of this reply follow */
	HD_MY_REPLY_DONE,			/* the reply is complete */
	HD_MY_REPLY_LOCAL_INFILE,	/* the server asks for a local file: the client sends next */
	HD_MY_REPLY_INVALID			/* not a reply of this kind: the connection cannot go on */
} HdMyReplyStep;

typedef struct HdMyReply
{
	HdMyReplyKind kind;
	bool		deprecate_eof;	/* CLIENT_DEPRECATE_EOF was negotiated */
	bool		binary;			/* rows are binary (COM_STMT_EXECUTE) */
	int			state;			/* my_proto.c's */
	bool		continued;		/* the last packet had the maximum length */
	uint64_t	left;			/* column definitions (or prepare's params, then columns) to go */
	uint64_t	prep_columns;	/* COM_STMT_PREPARE: the columns after the parameters */
	/* filled in as the reply goes: */
	bool		packet_is_ok;	/* the packet just fed was an OK packet (ok holds it) */
	bool		error;			/* the (last) reply was ERR */
	uint16_t	status;			/* the last status flags seen */
	bool		has_status;
	HdMyOk		ok;				/* the last OK */
	uint32_t	stmt_id;		/* COM_STMT_PREPARE: the statement's id */
	uint16_t	params;			/* COM_STMT_PREPARE: number of parameters */
	uint16_t	columns;		/* COM_STMT_PREPARE: number of columns */
	unsigned	result_sets;
	char		why[64];		/* HD_MY_REPLY_INVALID */
} HdMyReply;

extern void hd_my_reply_start(HdMyReply *r, HdMyReplyKind kind, bool deprecate_eof, bool binary);
/* Each packet's payload in turn (the pieces of a continued payload too). */
extern HdMyReplyStep hd_my_reply_feed(HdMyReply *r, const unsigned char *payload, size_t len);

/*
 * An OK packet from an origin connection that negotiated SESSION_TRACK and
 * has session_track_state_change on, as a client that negotiated
 * client_caps gets it: the state-change entries taken out (the client did
 * not ask for them), and without SESSION_TRACK no session state at all;
 * the info stays length-encoded, as MariaDB writes it for every client
 * (net_store_data(); MySQL's documentation calls it a string to the end of
 * the packet for such a client, which the length byte would then start).
 * *state_changed: the origin said the statement changed the session.
 * Appends a whole packet with seq; 0, or -1 (malformed: nothing appended
 * but what must be truncated, or out of memory).
 */
extern int	hd_my_put_client_ok(HdIoBuf *out, uint8_t seq, const unsigned char *payload, size_t len,
								uint32_t client_caps, bool *state_changed);

/* The name of a command byte, for logs ("COM_QUERY", or "command 0x.."). */
extern const char *hd_my_command_name(uint8_t command, char *buf, size_t len);

#endif							/* HD_MY_PROTO_H */
