/*
 * proto.c
 *    See proto.h.
 */
#include "pgwire/proto.h"

#include <stdlib.h>
#include <string.h>

/*
 * Offsets are kept relative to the buffer's first live byte: an append may
 * compact the buffer (move the live bytes to the front), which shifts
 * absolute offsets but not relative ones.
 */
void
hd_msg_begin(HdMsg *msg, HdIoBuf *out, char type)
{
	static const char zero_len[4] = {0, 0, 0, 0};

	msg->out = out;
	msg->failed = false;
	msg->rollback = hd_iobuf_live(out);
	if (type != 0 && hd_iobuf_append(out, &type, 1) < 0)
		msg->failed = true;
	msg->start = hd_iobuf_live(out);
	if (!msg->failed && hd_iobuf_append(out, zero_len, 4) < 0)
		msg->failed = true;
}

void
hd_msg_put_bytes(HdMsg *msg, const void *bytes, size_t n)
{
	if (!msg->failed && hd_iobuf_append(msg->out, bytes, n) < 0)
		msg->failed = true;
}

void
hd_msg_put_byte(HdMsg *msg, char byte)
{
	hd_msg_put_bytes(msg, &byte, 1);
}

void
hd_msg_put_u16(HdMsg *msg, uint16_t value)
{
	char		b[2];

	hd_put_u16(b, value);

	hd_msg_put_bytes(msg, b, 2);
}

void
hd_msg_put_u32(HdMsg *msg, uint32_t value)
{
	char		b[4];

	hd_put_u32(b, value);
	hd_msg_put_bytes(msg, b, 4);
}

void
hd_msg_put_str(HdMsg *msg, const char *str)
{
	hd_msg_put_bytes(msg, str, strlen(str) + 1);
}

int
hd_msg_end(HdMsg *msg)
{
	HdIoBuf    *out = msg->out;

	if (msg->failed)
	{
		/* drop the partial message: the buffer stays as it was */
		if (hd_iobuf_live(out) > msg->rollback)
			out->len = out->off + msg->rollback;
		return -1;
	}
	hd_put_u32(out->data + out->off + msg->start, (uint32_t) (hd_iobuf_live(out) - msg->start));
	return 0;
}

int
hd_send_error(HdIoBuf *out, const char *severity, const char *sqlstate,
			  const char *message, const char *detail, const char *hint)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'E');
	hd_msg_put_byte(&msg, 'S');
	hd_msg_put_str(&msg, severity);
	hd_msg_put_byte(&msg, 'V');
	hd_msg_put_str(&msg, severity);
	hd_msg_put_byte(&msg, 'C');
	hd_msg_put_str(&msg, sqlstate);
	hd_msg_put_byte(&msg, 'M');
	hd_msg_put_str(&msg, message);
	if (detail)
	{
		hd_msg_put_byte(&msg, 'D');
		hd_msg_put_str(&msg, detail);
	}
	if (hint)
	{
		hd_msg_put_byte(&msg, 'H');
		hd_msg_put_str(&msg, hint);
	}
	hd_msg_put_byte(&msg, 0);
	return hd_msg_end(&msg);
}

int
hd_send_auth(HdIoBuf *out, uint32_t code, const void *data, size_t n)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'R');
	hd_msg_put_u32(&msg, code);
	if (n > 0)
		hd_msg_put_bytes(&msg, data, n);
	return hd_msg_end(&msg);
}

int
hd_send_parameter_status(HdIoBuf *out, const char *name, const char *value)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'S');
	hd_msg_put_str(&msg, name);
	hd_msg_put_str(&msg, value);
	return hd_msg_end(&msg);
}

int
hd_send_backend_key(HdIoBuf *out, uint32_t pid, uint32_t key)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'K');
	hd_msg_put_u32(&msg, pid);
	hd_msg_put_u32(&msg, key);
	return hd_msg_end(&msg);
}

int
hd_send_ready(HdIoBuf *out, char status)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'Z');
	hd_msg_put_byte(&msg, status);
	return hd_msg_end(&msg);
}

const char *
hd_parse_startup(const char *body, size_t len, HdStartup *out)
{
	size_t		pos = 4;

	memset(out, 0, sizeof(*out));
	if (len < 4)
		return "invalid length of startup packet";
	out->code = hd_get_u32(body);
	if (out->code == HD_CANCEL_REQUEST_CODE)
	{
		if (len != 12)
			return "invalid length of cancel request packet";
		out->cancel_pid = hd_get_u32(body + 4);
		out->cancel_key = hd_get_u32(body + 8);
		return NULL;
	}
	if (out->code == HD_SSL_REQUEST_CODE || out->code == HD_GSSENC_REQUEST_CODE)
		return len == 4 ? NULL : "invalid length of encryption request packet";
	if ((out->code >> 16) != 3)
		return NULL;			/* the caller refuses the protocol version */

	/* name\0value\0 ... \0 */
	while (pos < len && body[pos] != '\0')
	{
		const char *name = body + pos;
		const char *name_end = memchr(name, '\0', len - pos);
		const char *value;
		const char *value_end;

		if (name_end == NULL)
			return "invalid startup packet layout: expected terminator as last byte";
		value = name_end + 1;
		if ((size_t) (value - body) >= len)
			return "invalid startup packet layout: expected terminator as last byte";
		value_end = memchr(value, '\0', len - (size_t) (value - body));
		if (value_end == NULL)
			return "invalid startup packet layout: expected terminator as last byte";
		if (out->nparams == HD_MAX_STARTUP_PARAMS)
			return "too many parameters in startup packet";
		out->names[out->nparams] = name;
		out->values[out->nparams] = value;
		out->nparams++;
		pos = (size_t) (value_end - body) + 1;
	}
	if (pos != len - 1)
		return "invalid startup packet layout: expected terminator as last byte";
	return NULL;
}

const char *
hd_startup_param(const HdStartup *startup, const char *name)
{
	for (int i = 0; i < startup->nparams; i++)
		if (strcmp(startup->names[i], name) == 0)
			return startup->values[i];
	return NULL;
}

const char *
hd_error_field(const char *body, size_t len, char code)
{
	size_t		pos = 0;

	while (pos < len && body[pos] != '\0')
	{
		char		field = body[pos++];
		const char *value = body + pos;
		const char *end = memchr(value, '\0', len - pos);

		if (end == NULL)
			return NULL;
		if (field == code)
			return value;
		pos = (size_t) (end - body) + 1;
	}
	return NULL;
}

char *
hd_data_row_value(const char *body, size_t len, int col)
{
	size_t		pos = 2;

	if (len < 2 || hd_get_u16(body) <= col)
		return NULL;
	for (int i = 0; i <= col; i++)
	{
		uint32_t	n;

		if (pos + 4 > len)
			return NULL;
		n = hd_get_u32(body + pos);
		pos += 4;
		if (n == UINT32_MAX)
		{
			if (i == col)
				return NULL;
			continue;
		}
		if (pos + n > len)
			return NULL;
		if (i == col)
		{
			char	   *s = malloc(n + 1);

			if (s)
			{
				memcpy(s, body + pos, n);
				s[n] = '\0';
			}
			return s;
		}
		pos += n;
	}
	return NULL;
}

int
hd_send_parse(HdIoBuf *out, const char *name, const char *query, const char *types,
			  size_t types_len)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, 'P');
	hd_msg_put_str(&msg, name);
	hd_msg_put_str(&msg, query);
	if (types)
		hd_msg_put_bytes(&msg, types, types_len);
	else
		hd_msg_put_u16(&msg, 0);
	return hd_msg_end(&msg);
}

int
hd_send_describe_close(HdIoBuf *out, char type, char kind, const char *name)
{
	HdMsg		msg;

	hd_msg_begin(&msg, out, type);
	hd_msg_put_byte(&msg, kind);
	hd_msg_put_str(&msg, name);
	return hd_msg_end(&msg);
}

int
hd_send_execute_sync(HdIoBuf *out)
{
	static const char execute_sync[] = {'E', 0, 0, 0, 9, 0, 0, 0, 0, 0, 'S', 0, 0, 0, 4};

	return hd_iobuf_append(out, execute_sync, sizeof(execute_sync));
}
