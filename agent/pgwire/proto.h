/*
 * proto.h
 *    Building and reading PostgreSQL protocol (version 3.0) messages.
 *
 * Contract: builders append one complete message to an HdIoBuf and return
 * 0, or -1 when memory ran out (the buffer is then left as it was). Readers
 * work on a complete message body already in memory and never read past it.
 * The agent forwards client and origin messages as they are; these helpers
 * are for the messages the agent writes itself (authentication, errors,
 * ReadyForQuery) and the few it must look into.
 */
#ifndef HD_PROTO_H
#define HD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/iobuf.h"

/* Codes of the special "startup" packets (no type byte). */
#define HD_PROTOCOL_3_0			0x00030000u
#define HD_CANCEL_REQUEST_CODE	80877102u
#define HD_SSL_REQUEST_CODE		80877103u
#define HD_GSSENC_REQUEST_CODE	80877104u

/* PostgreSQL refuses startup packets longer than this (MAX_STARTUP_PACKET_LENGTH). */
#define HD_MAX_STARTUP_PACKET	10000

/* Authentication request codes (AuthenticationXXX). */
#define HD_AUTHREQ_OK		0
#define HD_AUTHREQ_CLEARTEXT	3
#define HD_AUTHREQ_MD5		5
#define HD_AUTHREQ_SASL		10
#define HD_AUTHREQ_SASL_CONTINUE 11
#define HD_AUTHREQ_SASL_FINAL	12

/* A message being built in place at the end of an HdIoBuf. */
typedef struct HdMsg
{
	HdIoBuf    *out;
	size_t		rollback;		/* live length before the message (relative) */
	size_t		start;			/* offset of the length field (relative) */
	bool		failed;
} HdMsg;

extern void hd_msg_begin(HdMsg *msg, HdIoBuf *out, char type);
extern void hd_msg_put_byte(HdMsg *msg, char byte);
extern void hd_msg_put_u16(HdMsg *msg, uint16_t value);
extern void hd_msg_put_u32(HdMsg *msg, uint32_t value);
extern void hd_msg_put_bytes(HdMsg *msg, const void *bytes, size_t n);
extern void hd_msg_put_str(HdMsg *msg, const char *str);	/* with its NUL */
extern int	hd_msg_end(HdMsg *msg);

/* ErrorResponse (or NoticeResponse with type 'N'); detail and hint may be NULL. */
extern int	hd_send_error(HdIoBuf *out, const char *severity, const char *sqlstate,
						  const char *message, const char *detail, const char *hint);
extern int	hd_send_auth(HdIoBuf *out, uint32_t code, const void *data, size_t n);
extern int	hd_send_parameter_status(HdIoBuf *out, const char *name, const char *value);
extern int	hd_send_backend_key(HdIoBuf *out, uint32_t pid, uint32_t key);
extern int	hd_send_ready(HdIoBuf *out, char status);
/*
 * Parse of query as statement name; types as a Parse carries them (the
 * count, then the OIDs), or NULL for none.
 */
extern int	hd_send_parse(HdIoBuf *out, const char *name, const char *query, const char *types,
						  size_t types_len);
/* Describe or Close ('D', 'C') of a statement or portal ('S', 'P'). */
extern int	hd_send_describe_close(HdIoBuf *out, char type, char kind, const char *name);
/* Execute of the unnamed portal (every row), then Sync: the end of the agent's own batches. */
extern int	hd_send_execute_sync(HdIoBuf *out);

/* A parsed startup packet: protocol code and the name/value pairs. */
#define HD_MAX_STARTUP_PARAMS 64
typedef struct HdStartup
{
	uint32_t	code;
	int			nparams;
	const char *names[HD_MAX_STARTUP_PARAMS];
	const char *values[HD_MAX_STARTUP_PARAMS];
	/* for CancelRequest */
	uint32_t	cancel_pid;
	uint32_t	cancel_key;
} HdStartup;

/*
 * Parse a startup-type packet body (after its length word) in place; the
 * strings point into body. Returns NULL on success or a message saying what
 * is wrong (for an 08P01 error).
 */
extern const char *hd_parse_startup(const char *body, size_t len, HdStartup *out);
extern const char *hd_startup_param(const HdStartup *startup, const char *name);

/* Column col of a DataRow body as a malloc'd string; NULL for SQL NULL, malformed, no memory. */
extern char *hd_data_row_value(const char *body, size_t len, int col);

/* Find field `code` ('C' SQLSTATE, 'M' message, ...) in an ErrorResponse body, or NULL. */
extern const char *hd_error_field(const char *body, size_t len, char code);

#endif							/* HD_PROTO_H */
