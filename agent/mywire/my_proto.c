/*
 * my_proto.c
 *    The MySQL protocol's bytes (my_proto.h has the contract).
 */
#include "mywire/my_proto.h"

#include <stdio.h>
#include <string.h>

void
hd_my_reader_init(HdMyReader *r, const void *payload, size_t len)
{
	r->p = payload;
	r->len = len;
	r->pos = 0;
	r->ok = true;
}

static bool
has(HdMyReader *r, size_t n)
{
	if (!r->ok || r->len - r->pos < n)
	{
		r->ok = false;
		return false;
	}
	return true;
}

uint64_t
hd_my_read_int(HdMyReader *r, size_t bytes)
{
	uint64_t	v = 0;

	if (bytes > 8 || !has(r, bytes))
		return 0;
	for (size_t i = 0; i < bytes; i++)
		v |= (uint64_t) r->p[r->pos + i] << (8 * i);
	r->pos += bytes;
	return v;
}

uint64_t
hd_my_read_lenenc(HdMyReader *r, bool *is_null)
{
	unsigned char first;

	if (is_null)
		*is_null = false;
	if (!has(r, 1))
		return 0;
	first = r->p[r->pos++];
	if (first < 0xfb)
		return first;
	if (first == 0xfb)
	{
		if (is_null)
			*is_null = true;
		return 0;
	}
	if (first == 0xfc)
		return hd_my_read_int(r, 2);
	if (first == 0xfd)
		return hd_my_read_int(r, 3);
	if (first == 0xfe)
		return hd_my_read_int(r, 8);
	r->ok = false;				/* 0xff is not a length */
	return 0;
}

const unsigned char *
hd_my_read_bytes(HdMyReader *r, size_t n)
{
	const unsigned char *at;

	if (!has(r, n))
		return NULL;
	at = r->p + r->pos;
	r->pos += n;
	return at;
}

const char *
hd_my_read_cstr(HdMyReader *r, size_t *n)
{
	const unsigned char *start = r->p + r->pos;
	const unsigned char *nul;

	if (!r->ok || r->pos >= r->len || (nul = memchr(start, 0, r->len - r->pos)) == NULL)
	{
		r->ok = false;
		return NULL;
	}
	if (n)
		*n = (size_t) (nul - start);
	r->pos += (size_t) (nul - start) + 1;
	return (const char *) start;
}

const unsigned char *
hd_my_read_lenenc_str(HdMyReader *r, size_t *n)
{
	bool		is_null;
	uint64_t	len = hd_my_read_lenenc(r, &is_null);

	if (!r->ok || is_null || len > r->len - r->pos)
	{
		r->ok = false;
		return NULL;
	}
	*n = (size_t) len;
	return hd_my_read_bytes(r, (size_t) len);
}

int
hd_my_packet_peek(const void *bytes, size_t len, const unsigned char **payload,
				  size_t *payload_len, uint8_t *seq)
{
	const unsigned char *b = bytes;
	size_t		n;

	if (len < HD_MY_HEADER)
		return 0;
	n = hd_my_get_u24(b);
	if (len - HD_MY_HEADER < n)
		return 0;
	*payload = b + HD_MY_HEADER;
	*payload_len = n;
	*seq = b[3];
	return 1;
}

int
hd_my_command_peek(const void *bytes, size_t len, size_t *total, size_t *payload_total)
{
	const unsigned char *b = bytes;
	size_t		at = 0;
	size_t		sum = 0;

	for (;;)
	{
		size_t		n;

		if (len - at < HD_MY_HEADER)
			return 0;
		n = hd_my_get_u24(b + at);
		if (len - at - HD_MY_HEADER < n)
			return 0;
		at += HD_MY_HEADER + n;
		sum += n;
		if (n < HD_MY_MAX_PAYLOAD)
			break;
	}
	*total = at;
	*payload_total = sum;
	return 1;
}

int
hd_my_packet_begin(HdIoBuf *out, size_t *mark)
{
	static const char zero[HD_MY_HEADER];

	*mark = out->len;
	return hd_iobuf_append(out, zero, HD_MY_HEADER);
}

void
hd_my_packet_end(HdIoBuf *out, size_t mark, uint8_t seq)
{
	size_t		n = out->len - mark - HD_MY_HEADER;
	unsigned char *h = (unsigned char *) out->data + mark;

	h[0] = n & 0xff;
	h[1] = (n >> 8) & 0xff;
	h[2] = (n >> 16) & 0xff;
	h[3] = seq;
}

int
hd_my_put_lenenc(HdIoBuf *out, uint64_t v)
{
	unsigned char b[9];
	size_t		n;

	if (v < 0xfb)
	{
		b[0] = (unsigned char) v;
		n = 1;
	}
	else if (v <= 0xffff)
	{
		b[0] = 0xfc;
		n = 3;
	}
	else if (v <= 0xffffff)
	{
		b[0] = 0xfd;
		n = 4;
	}
	else
	{
		b[0] = 0xfe;
		n = 9;
	}
	for (size_t i = 1; i < n; i++)
		b[i] = (v >> (8 * (i - 1))) & 0xff;
	return hd_iobuf_append(out, b, n);
}

int
hd_my_put_lenenc_str(HdIoBuf *out, const void *s, size_t n)
{
	if (hd_my_put_lenenc(out, n) != 0)
		return -1;
	return n ? hd_iobuf_append(out, s, n) : 0;
}

int
hd_my_put_packet(HdIoBuf *out, uint8_t seq, const void *payload, size_t n)
{
	const char *p = payload;

	for (;;)
	{
		size_t		piece = n < HD_MY_MAX_PAYLOAD ? n : HD_MY_MAX_PAYLOAD;
		unsigned char h[HD_MY_HEADER] = {piece & 0xff, (piece >> 8) & 0xff, (piece >> 16) & 0xff, seq++};

		if (hd_iobuf_append(out, h, sizeof(h)) != 0 || (piece && hd_iobuf_append(out, p, piece) != 0))
			return -1;
		p += piece;
		n -= piece;
		/* a piece of exactly the maximum is continued, by an empty one if need be */
		if (piece < HD_MY_MAX_PAYLOAD)
			return 0;
	}
}

int
hd_my_put_err(HdIoBuf *out, uint8_t seq, uint16_t code, const char *sqlstate, const char *message)
{
	size_t		mark;
	unsigned char head[3] = {0xff, code & 0xff, code >> 8};
	size_t		mlen = strlen(message);

	/* one packet: a message is cut well below 16 MB */
	if (mlen > 4000)
		mlen = 4000;
	if (hd_my_packet_begin(out, &mark) != 0 ||
		hd_iobuf_append(out, head, 3) != 0 ||
		hd_iobuf_append(out, "#", 1) != 0 ||
		hd_iobuf_append(out, sqlstate, 5) != 0 ||
		hd_iobuf_append(out, message, mlen) != 0)
		return -1;
	hd_my_packet_end(out, mark, seq);
	return 0;
}

int
hd_my_put_ok(HdIoBuf *out, uint8_t seq, uint32_t caps, uint16_t status, uint16_t warnings)
{
	size_t		mark;
	unsigned char body[7] = {0x00, 0, 0, status & 0xff, status >> 8, warnings & 0xff, warnings >> 8};
	size_t		n = sizeof(body);

	/* with SESSION_TRACK the info string is length-encoded: an empty one is one byte */
	if (hd_my_packet_begin(out, &mark) != 0 || hd_iobuf_append(out, body, n) != 0 ||
		((caps & HD_MY_CLIENT_SESSION_TRACK) && hd_iobuf_append(out, "", 1) != 0))
		return -1;
	hd_my_packet_end(out, mark, seq);
	return 0;
}

static void
copy_text(char *dst, size_t cap, const void *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
hd_my_put_greeting(HdIoBuf *out, const HdMyGreeting *g)
{
	size_t		mark;
	unsigned char b[32];
	size_t		plen = strlen(g->plugin);

	if (hd_my_packet_begin(out, &mark) != 0 || hd_iobuf_append(out, "\x0a", 1) != 0 ||
		hd_iobuf_append(out, g->version, strlen(g->version) + 1) != 0)
		return -1;
	hd_my_put_u32(b, g->thread_id);
	memcpy(b + 4, g->nonce, 8);
	b[12] = 0;
	b[13] = g->caps & 0xff;
	b[14] = (g->caps >> 8) & 0xff;
	b[15] = g->collation;
	b[16] = g->status & 0xff;
	b[17] = g->status >> 8;
	b[18] = (g->caps >> 16) & 0xff;
	b[19] = (g->caps >> 24) & 0xff;
	b[20] = HD_MY_NONCE_BYTES + 1;
	memset(b + 21, 0, 10);
	if (!(g->caps & HD_MY_CLIENT_LONG_PASSWORD))
		hd_my_put_u32(b + 27, g->ext_caps);	/* MariaDB's extended capabilities */
	if (hd_iobuf_append(out, b, 31) != 0 ||
		hd_iobuf_append(out, g->nonce + 8, HD_MY_NONCE_BYTES - 8) != 0 ||
		hd_iobuf_append(out, "", 1) != 0 ||
		hd_iobuf_append(out, g->plugin, plen + 1) != 0)
		return -1;
	hd_my_packet_end(out, mark, 0);
	return 0;
}

bool
hd_my_parse_greeting(const void *payload, size_t len, HdMyGreeting *g, char *why, size_t whylen)
{
	HdMyReader	r;
	const char *version;
	size_t		vlen;
	const unsigned char *part1;
	const unsigned char *part2;
	size_t		auth_len;

	memset(g, 0, sizeof(*g));
	hd_my_reader_init(&r, payload, len);
	if (len > 0 && ((const unsigned char *) payload)[0] == 0xff)
	{
		snprintf(why, whylen, "the server refused the connection");
		return false;
	}
	if (hd_my_read_int(&r, 1) != 10)
	{
		snprintf(why, whylen, "not a protocol 10 greeting");
		return false;
	}
	version = hd_my_read_cstr(&r, &vlen);
	g->thread_id = (uint32_t) hd_my_read_int(&r, 4);
	part1 = hd_my_read_bytes(&r, 8);
	hd_my_read_int(&r, 1);
	g->caps = (uint32_t) hd_my_read_int(&r, 2);
	if (!r.ok || version == NULL || part1 == NULL)
	{
		snprintf(why, whylen, "a truncated greeting");
		return false;
	}
	copy_text(g->version, sizeof(g->version), version, vlen);
	memcpy(g->nonce, part1, 8);
	if (!(g->caps & HD_MY_CLIENT_PROTOCOL_41) || !(g->caps & HD_MY_CLIENT_SECURE_CONNECTION))
	{
		snprintf(why, whylen, "the server does not speak protocol 4.1 with secure authentication");
		return false;
	}
	g->collation = (uint8_t) hd_my_read_int(&r, 1);
	g->status = (uint16_t) hd_my_read_int(&r, 2);
	g->caps |= (uint32_t) hd_my_read_int(&r, 2) << 16;
	auth_len = (size_t) hd_my_read_int(&r, 1);
	{
		const unsigned char *reserved = hd_my_read_bytes(&r, 10);

		if (reserved && !(g->caps & HD_MY_CLIENT_LONG_PASSWORD))
			g->ext_caps = hd_my_get_u32(reserved + 6);
	}
	/* the rest of the nonce: max(13, auth_len - 8) bytes, the last a NUL */
	part2 = hd_my_read_bytes(&r, auth_len > 21 ? auth_len - 8 : 13);
	if (!r.ok || part2 == NULL)
	{
		snprintf(why, whylen, "a truncated greeting");
		return false;
	}
	memcpy(g->nonce + 8, part2, 12);
	if ((g->caps & HD_MY_CLIENT_PLUGIN_AUTH) && r.pos < r.len)
	{
		/* the name ends with a NUL, or (some servers) with the packet */
		const char *rest = (const char *) r.p + r.pos;
		size_t		n = r.len - r.pos;
		const char *nul = memchr(rest, 0, n);

		copy_text(g->plugin, sizeof(g->plugin), rest, nul ? (size_t) (nul - rest) : n);
	}
	if (g->plugin[0] == '\0')
		strcpy(g->plugin, "mysql_native_password");
	return true;
}

bool
hd_my_parse_login(const void *payload, size_t len, HdMyLogin *login, char *why, size_t whylen)
{
	HdMyReader	r;
	const char *s;
	size_t		n;

	memset(login, 0, sizeof(*login));
	hd_my_reader_init(&r, payload, len);
	login->caps = (uint32_t) hd_my_read_int(&r, 4);
	login->max_packet = (uint32_t) hd_my_read_int(&r, 4);
	login->collation = (uint8_t) hd_my_read_int(&r, 1);
	{
		const unsigned char *reserved = hd_my_read_bytes(&r, 23);

		if (reserved && !(login->caps & HD_MY_CLIENT_LONG_PASSWORD))
			login->ext_caps = hd_my_get_u32(reserved + 19);
	}
	if (!r.ok)
	{
		snprintf(why, whylen, "a truncated handshake response");
		return false;
	}
	if (!(login->caps & HD_MY_CLIENT_PROTOCOL_41))
	{
		snprintf(why, whylen, "the client does not speak protocol 4.1");
		return false;
	}
	if (r.pos == len && (login->caps & HD_MY_CLIENT_SSL))
	{
		login->ssl_only = true;
		return true;
	}
	if ((s = hd_my_read_cstr(&r, &n)) == NULL || n >= sizeof(login->user))
	{
		snprintf(why, whylen, s ? "a user name too long" : "a handshake response without a user name");
		return false;
	}
	copy_text(login->user, sizeof(login->user), s, n);
	if (login->caps & HD_MY_CLIENT_PLUGIN_AUTH_LENENC)
		login->auth_len = (size_t) hd_my_read_lenenc(&r, NULL);
	else if (login->caps & HD_MY_CLIENT_SECURE_CONNECTION)
		login->auth_len = (size_t) hd_my_read_int(&r, 1);
	else
	{
		snprintf(why, whylen, "the client does not use secure authentication");
		return false;
	}
	if (!r.ok || login->auth_len > sizeof(login->auth) || r.len - r.pos < login->auth_len)
	{
		snprintf(why, whylen, "a truncated or too long authentication response");
		return false;
	}
	memcpy(login->auth, hd_my_read_bytes(&r, login->auth_len), login->auth_len);
	if ((login->caps & HD_MY_CLIENT_CONNECT_WITH_DB) && r.pos < r.len)
	{
		if ((s = hd_my_read_cstr(&r, &n)) == NULL || n >= sizeof(login->database))
		{
			snprintf(why, whylen, "a truncated or too long database name");
			return false;
		}
		copy_text(login->database, sizeof(login->database), s, n);
		login->has_database = n > 0;
	}
	if ((login->caps & HD_MY_CLIENT_PLUGIN_AUTH) && r.pos < r.len)
	{
		if ((s = hd_my_read_cstr(&r, &n)) == NULL || n >= sizeof(login->plugin))
		{
			snprintf(why, whylen, "a truncated or too long authentication plugin name");
			return false;
		}
		copy_text(login->plugin, sizeof(login->plugin), s, n);
		login->has_plugin = true;
	}
	if ((login->caps & HD_MY_CLIENT_CONNECT_ATTRS) && r.pos < r.len)
	{
		const unsigned char *attrs = hd_my_read_lenenc_str(&r, &n);

		if (attrs == NULL)
		{
			snprintf(why, whylen, "truncated connection attributes");
			return false;
		}
		login->attrs = attrs;
		login->attrs_len = n;
	}
	return true;
}

bool
hd_my_parse_change_user(const void *payload, size_t len, uint32_t caps, HdMyLogin *login,
						char *why, size_t whylen)
{
	HdMyReader	r;
	const char *s;
	size_t		n;
	uint8_t		collation = login->collation;

	memset(login, 0, sizeof(*login));
	login->caps = caps;
	login->collation = collation;
	hd_my_reader_init(&r, payload, len);
	if ((s = hd_my_read_cstr(&r, &n)) == NULL || n >= sizeof(login->user))
	{
		snprintf(why, whylen, "a malformed COM_CHANGE_USER (its user)");
		return false;
	}
	copy_text(login->user, sizeof(login->user), s, n);
	login->auth_len = (size_t) hd_my_read_int(&r, 1);
	if (!r.ok || r.len - r.pos < login->auth_len)
	{
		snprintf(why, whylen, "a malformed COM_CHANGE_USER (its authentication response)");
		return false;
	}
	memcpy(login->auth, hd_my_read_bytes(&r, login->auth_len), login->auth_len);
	if ((s = hd_my_read_cstr(&r, &n)) == NULL || n >= sizeof(login->database))
	{
		snprintf(why, whylen, "a malformed COM_CHANGE_USER (its database)");
		return false;
	}
	copy_text(login->database, sizeof(login->database), s, n);
	login->has_database = n > 0;
	if (r.len - r.pos >= 2)
		login->collation = (uint8_t) hd_my_read_int(&r, 2);
	if ((caps & HD_MY_CLIENT_PLUGIN_AUTH) && r.pos < r.len)
	{
		if ((s = hd_my_read_cstr(&r, &n)) == NULL || n >= sizeof(login->plugin))
		{
			snprintf(why, whylen, "a malformed COM_CHANGE_USER (its plugin)");
			return false;
		}
		copy_text(login->plugin, sizeof(login->plugin), s, n);
		login->has_plugin = true;
	}
	return true;
}

int
hd_my_put_login(HdIoBuf *out, uint8_t seq, const HdMyLogin *login)
{
	size_t		mark;
	unsigned char b[32];

	memset(b, 0, sizeof(b));
	hd_my_put_u32(b, login->caps);
	hd_my_put_u32(b + 4, login->max_packet);
	b[8] = login->collation;
	if (!(login->caps & HD_MY_CLIENT_LONG_PASSWORD))
		hd_my_put_u32(b + 28, login->ext_caps);	/* MariaDB's extended capabilities */
	if (hd_my_packet_begin(out, &mark) != 0 || hd_iobuf_append(out, b, 32) != 0)
		return -1;
	if (!login->ssl_only)
	{
		if (hd_iobuf_append(out, login->user, strlen(login->user) + 1) != 0)
			return -1;
		if (login->caps & HD_MY_CLIENT_PLUGIN_AUTH_LENENC)
		{
			if (hd_my_put_lenenc_str(out, login->auth, login->auth_len) != 0)
				return -1;
		}
		else
		{
			unsigned char n = (unsigned char) login->auth_len;

			if (hd_iobuf_append(out, &n, 1) != 0 ||
				(n && hd_iobuf_append(out, login->auth, n) != 0))
				return -1;
		}
		if ((login->caps & HD_MY_CLIENT_CONNECT_WITH_DB) &&
			hd_iobuf_append(out, login->database, strlen(login->database) + 1) != 0)
			return -1;
		if ((login->caps & HD_MY_CLIENT_PLUGIN_AUTH) &&
			hd_iobuf_append(out, login->plugin, strlen(login->plugin) + 1) != 0)
			return -1;
		if ((login->caps & HD_MY_CLIENT_CONNECT_ATTRS) &&
			hd_my_put_lenenc_str(out, login->attrs, login->attrs ? login->attrs_len : 0) != 0)
			return -1;
	}
	hd_my_packet_end(out, mark, seq);
	return 0;
}

bool
hd_my_parse_ok(const void *payload, size_t len, HdMyOk *ok)
{
	HdMyReader	r;
	uint64_t	head;

	hd_my_reader_init(&r, payload, len);
	head = hd_my_read_int(&r, 1);
	if (head != 0x00 && head != 0xfe)
		return false;
	ok->affected = hd_my_read_lenenc(&r, NULL);
	ok->insert_id = hd_my_read_lenenc(&r, NULL);
	ok->status = (uint16_t) hd_my_read_int(&r, 2);
	ok->warnings = (uint16_t) hd_my_read_int(&r, 2);
	return r.ok;
}

bool
hd_my_parse_err(const void *payload, size_t len, uint16_t *code, char sqlstate[6], char *msg,
				size_t msglen)
{
	HdMyReader	r;

	hd_my_reader_init(&r, payload, len);
	if (hd_my_read_int(&r, 1) != 0xff)
		return false;
	*code = (uint16_t) hd_my_read_int(&r, 2);
	if (!r.ok)
		return false;
	strcpy(sqlstate, "HY000");
	if (r.pos < len && r.p[r.pos] == '#' && len - r.pos >= 6)
	{
		memcpy(sqlstate, r.p + r.pos + 1, 5);
		sqlstate[5] = '\0';
		r.pos += 6;
	}
	copy_text(msg, msglen, r.p + r.pos, len - r.pos);
	return true;
}

/* The tracker's states. */
enum
{
	RS_START,					/* the first packet of a reply (or of the next result) */
	RS_COLUMNS,					/* column definitions to go (left) */
	RS_COLUMNS_EOF,				/* the EOF after them */
	RS_ROWS,					/* rows, until EOF/OK or ERR */
	RS_PREP_PARAMS,				/* prepare: parameter definitions (left) */
	RS_PREP_PARAMS_EOF,
	RS_PREP_COLUMNS,			/* prepare: column definitions (left) */
	RS_PREP_COLUMNS_EOF,
	RS_FIELD_LIST,				/* COM_FIELD_LIST: definitions until EOF */
	RS_DONE
};

void
hd_my_reply_start(HdMyReply *r, HdMyReplyKind kind, bool deprecate_eof, bool binary)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->deprecate_eof = deprecate_eof;
	r->binary = binary;
	r->state = kind == HD_MY_REPLY_FIELD_LIST ? RS_FIELD_LIST :
		kind == HD_MY_REPLY_FETCH ? RS_ROWS : RS_START;
}

static HdMyReplyStep
invalid(HdMyReply *r, const char *why)
{
	snprintf(r->why, sizeof(r->why), "%s", why);
	r->state = RS_DONE;
	return HD_MY_REPLY_INVALID;
}

static HdMyReplyStep
end_with_status(HdMyReply *r, uint16_t status)
{
	r->status = status;
	r->has_status = true;
	if (status & HD_MY_STATUS_MORE_RESULTS)
	{
		r->state = RS_START;
		return HD_MY_REPLY_MORE;
	}
	r->state = RS_DONE;
	return HD_MY_REPLY_DONE;
}

static HdMyReplyStep
on_err(HdMyReply *r)
{
	r->error = true;
	r->state = RS_DONE;
	return HD_MY_REPLY_DONE;
}

/* An EOF packet (or, with DEPRECATE_EOF, the OK that ends rows): its status. */
static bool
end_status(HdMyReply *r, const unsigned char *p, size_t len, uint16_t *status)
{
	if (hd_my_is_eof(p, len))
	{
		*status = len >= 5 ? hd_my_get_u16(p + 3) : 0;
		return true;
	}
	if (r->deprecate_eof && hd_my_parse_ok(p, len, &r->ok))
	{
		*status = r->ok.status;
		r->packet_is_ok = true;
		return true;
	}
	return false;
}

static HdMyReplyStep
feed_start(HdMyReply *r, const unsigned char *p, size_t len)
{
	HdMyReader	rd;
	uint64_t	n;

	if (len == 0)
		return invalid(r, "an empty reply packet");
	if (p[0] == 0xff)
		return on_err(r);
	if (r->kind == HD_MY_REPLY_STRING)
	{
		r->state = RS_DONE;
		return HD_MY_REPLY_DONE;
	}
	/* COM_SET_OPTION is answered with an EOF */
	if (r->kind == HD_MY_REPLY_OK && hd_my_is_eof(p, len))
		return end_with_status(r, len >= 5 ? hd_my_get_u16(p + 3) : 0);
	if (p[0] == 0x00 && r->kind == HD_MY_REPLY_PREPARE)
	{
		hd_my_reader_init(&rd, p, len);
		hd_my_read_int(&rd, 1);
		r->stmt_id = (uint32_t) hd_my_read_int(&rd, 4);
		r->columns = (uint16_t) hd_my_read_int(&rd, 2);
		r->params = (uint16_t) hd_my_read_int(&rd, 2);
		if (!rd.ok)
			return invalid(r, "a truncated prepare reply");
		r->prep_columns = r->columns;
		/* without parameters the column definitions come first */
		r->left = r->params ? r->params : r->columns;
		r->state = r->params ? RS_PREP_PARAMS : RS_PREP_COLUMNS;
		return r->left || r->prep_columns ? HD_MY_REPLY_MORE :
			(r->state = RS_DONE, HD_MY_REPLY_DONE);
	}
	if (p[0] == 0x00)
	{
		if (!hd_my_parse_ok(p, len, &r->ok))
			return invalid(r, "a malformed OK packet");
		r->packet_is_ok = true;
		return end_with_status(r, r->ok.status);
	}
	if (r->kind != HD_MY_REPLY_QUERY)
		return invalid(r, "an unexpected reply");
	if (p[0] == 0xfb)
		return HD_MY_REPLY_LOCAL_INFILE;	/* the server's next packet starts again */
	hd_my_reader_init(&rd, p, len);
	n = hd_my_read_lenenc(&rd, NULL);
	if (!rd.ok || n == 0 || rd.pos != len)
		return invalid(r, "a malformed column count");
	r->left = n;
	r->result_sets++;
	r->state = RS_COLUMNS;
	return HD_MY_REPLY_MORE;
}

/* After parameter or column definitions: the EOF that ends them, unless deprecated. */
static void
after_definitions(HdMyReply *r, int eof_state, int next_state)
{
	r->state = r->deprecate_eof ? next_state : eof_state;
}

static HdMyReplyStep
prepare_next(HdMyReply *r)
{
	if (r->state == RS_PREP_PARAMS || r->state == RS_PREP_PARAMS_EOF)
	{
		r->left = r->prep_columns;
		r->state = RS_PREP_COLUMNS;
	}
	else
		r->state = RS_DONE;
	if (r->state == RS_PREP_COLUMNS && r->left == 0)
		r->state = RS_DONE;
	return r->state == RS_DONE ? HD_MY_REPLY_DONE : HD_MY_REPLY_MORE;
}

HdMyReplyStep
hd_my_reply_feed(HdMyReply *r, const unsigned char *p, size_t len)
{
	uint16_t	status;
	bool		continuation = r->continued;

	r->packet_is_ok = false;
	/* the pieces after a packet of the maximum length continue it: not read */
	r->continued = len == HD_MY_MAX_PAYLOAD;
	if (continuation)
		return HD_MY_REPLY_MORE;
	switch (r->state)
	{
		case RS_START:
			return feed_start(r, p, len);
		case RS_COLUMNS:
			if (--r->left == 0)
				after_definitions(r, RS_COLUMNS_EOF, RS_ROWS);
			return HD_MY_REPLY_MORE;
		case RS_COLUMNS_EOF:
			if (!hd_my_is_eof(p, len))
				return invalid(r, "no EOF after the column definitions");
			status = len >= 5 ? hd_my_get_u16(p + 3) : 0;
			/* a cursor was opened: its rows come with COM_STMT_FETCH */
			if (status & HD_MY_STATUS_CURSOR_EXISTS)
				return end_with_status(r, status);
			r->state = RS_ROWS;
			return HD_MY_REPLY_MORE;
		case RS_ROWS:
			if (len > 0 && p[0] == 0xff)
				return on_err(r);
			/* a row starting 0xfe is at least 16 MB long: a shorter one ends the rows */
			if (len > 0 && p[0] == 0xfe && len < HD_MY_MAX_PAYLOAD)
			{
				if (!end_status(r, p, len, &status))
					return invalid(r, "a malformed end of rows");
				return end_with_status(r, status);
			}
			return HD_MY_REPLY_MORE;
		case RS_PREP_PARAMS:
		case RS_PREP_COLUMNS:
			if (r->left == 0)
				return prepare_next(r);
			if (--r->left == 0)
			{
				if (r->deprecate_eof)
					return prepare_next(r);
				r->state = r->state == RS_PREP_PARAMS ? RS_PREP_PARAMS_EOF : RS_PREP_COLUMNS_EOF;
			}
			return HD_MY_REPLY_MORE;
		case RS_PREP_PARAMS_EOF:
		case RS_PREP_COLUMNS_EOF:
			if (!hd_my_is_eof(p, len))
				return invalid(r, "no EOF after the prepared statement's definitions");
			return prepare_next(r);
		case RS_FIELD_LIST:
			if (len > 0 && p[0] == 0xff)
				return on_err(r);
			if (len > 0 && p[0] == 0xfe && len < HD_MY_MAX_PAYLOAD)
			{
				r->state = RS_DONE;
				return HD_MY_REPLY_DONE;
			}
			return HD_MY_REPLY_MORE;
		default:
			return invalid(r, "a packet after the reply's end");
	}
}

#define SESSION_TRACK_STATE_CHANGE 2

int
hd_my_put_client_ok(HdIoBuf *out, uint8_t seq, const unsigned char *payload, size_t len,
					uint32_t client_caps, bool *state_changed)
{
	HdMyReader	r;
	size_t		fixed;
	uint16_t	status;
	const unsigned char *info = NULL;
	size_t		info_len = 0;
	const unsigned char *block = NULL;
	size_t		block_len = 0;
	HdIoBuf		kept = {0};
	size_t		mark;
	int			rc = -1;

	*state_changed = false;
	hd_my_reader_init(&r, payload, len);
	hd_my_read_int(&r, 1);
	hd_my_read_lenenc(&r, NULL);
	hd_my_read_lenenc(&r, NULL);
	status = (uint16_t) hd_my_read_int(&r, 2);
	hd_my_read_int(&r, 2);
	if (!r.ok)
		return -1;
	fixed = r.pos;
	if (r.pos < r.len)
		info = hd_my_read_lenenc_str(&r, &info_len);
	if (r.ok && r.pos < r.len && (status & HD_MY_STATUS_SESSION_STATE_CHANGED))
		block = hd_my_read_lenenc_str(&r, &block_len);
	if (!r.ok)
		return -1;
	/* the entries the client may see: all but the state-change tracker's */
	if (block)
	{
		HdMyReader	b;

		hd_my_reader_init(&b, block, block_len);
		while (b.ok && b.pos < b.len)
		{
			size_t		start = b.pos;
			uint64_t	type = hd_my_read_int(&b, 1);
			size_t		n;

			if (hd_my_read_lenenc_str(&b, &n) == NULL)
				break;
			if (type == SESSION_TRACK_STATE_CHANGE)
				*state_changed = true;
			else if (hd_iobuf_append(&kept, block + start, b.pos - start) != 0)
				goto done;
		}
		if (!b.ok)
			goto done;
	}
	if (!(client_caps & HD_MY_CLIENT_SESSION_TRACK) || hd_iobuf_live(&kept) == 0)
		status &= (uint16_t) ~HD_MY_STATUS_SESSION_STATE_CHANGED;
	if (hd_my_packet_begin(out, &mark) != 0 || hd_iobuf_append(out, payload, fixed) != 0)
		goto done;
	/* the status word sits just before the warnings, at the fixed part's end */
	out->data[out->len - 4] = (char) (status & 0xff);
	out->data[out->len - 3] = (char) (status >> 8);
	if (client_caps & HD_MY_CLIENT_SESSION_TRACK)
	{
		if ((info || hd_iobuf_live(&kept) > 0) && hd_my_put_lenenc_str(out, info, info_len) != 0)
			goto done;
		if (hd_iobuf_live(&kept) > 0 &&
			hd_my_put_lenenc_str(out, hd_iobuf_head(&kept), hd_iobuf_live(&kept)) != 0)
			goto done;
	}
	else if (info_len > 0 && hd_my_put_lenenc_str(out, info, info_len) != 0)
		goto done;				/* length-encoded, as MariaDB sends it to such a client too */
	hd_my_packet_end(out, mark, seq);
	rc = 0;
done:
	hd_iobuf_free(&kept);
	return rc;
}

const char *
hd_my_command_name(uint8_t command, char *buf, size_t len)
{
	static const struct
	{
		uint8_t		code;
		const char *name;
	}			names[] = {
		{HD_MY_COM_QUIT, "COM_QUIT"}, {HD_MY_COM_INIT_DB, "COM_INIT_DB"},
		{HD_MY_COM_QUERY, "COM_QUERY"}, {HD_MY_COM_FIELD_LIST, "COM_FIELD_LIST"},
		{HD_MY_COM_STATISTICS, "COM_STATISTICS"}, {HD_MY_COM_PROCESS_KILL, "COM_PROCESS_KILL"},
		{HD_MY_COM_DEBUG, "COM_DEBUG"}, {HD_MY_COM_PING, "COM_PING"},
		{HD_MY_COM_CHANGE_USER, "COM_CHANGE_USER"}, {HD_MY_COM_STMT_PREPARE, "COM_STMT_PREPARE"},
		{HD_MY_COM_STMT_EXECUTE, "COM_STMT_EXECUTE"},
		{HD_MY_COM_STMT_SEND_LONG_DATA, "COM_STMT_SEND_LONG_DATA"},
		{HD_MY_COM_STMT_CLOSE, "COM_STMT_CLOSE"}, {HD_MY_COM_STMT_RESET, "COM_STMT_RESET"},
		{HD_MY_COM_SET_OPTION, "COM_SET_OPTION"}, {HD_MY_COM_STMT_FETCH, "COM_STMT_FETCH"},
		{HD_MY_COM_RESET_CONNECTION, "COM_RESET_CONNECTION"},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == command)
			return names[i].name;
	snprintf(buf, len, "command 0x%02x", command);
	return buf;
}
