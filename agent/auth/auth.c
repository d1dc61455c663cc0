/*
 * auth.c
 *    Errors, base64, random bytes, stored-secret kinds, MD5 and plaintext
 *    passwords (see auth.h).
 */
#include "auth/auth.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/scram.h"

#define MD5_HEX_CHARS "0123456789abcdef"

HdAuthStatus
hd_auth_error(HdAuthError *err, const char *sqlstate, const char *message,
			  const char *detail_fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return HD_AUTH_ERROR;
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", sqlstate);
	snprintf(err->message, sizeof(err->message), "%s", message);
	err->detail[0] = '\0';
	err->log_detail[0] = '\0';
	if (detail_fmt != NULL)
	{
		va_start(ap, detail_fmt);
		vsnprintf(err->detail, sizeof(err->detail), detail_fmt, ap);
		va_end(ap);
	}
	return HD_AUTH_ERROR;
}

HdAuthStatus
hd_auth_failed(HdAuthError *err, const char *user, const char *log_detail)
{
	if (err == NULL)
		return HD_AUTH_FAILED;
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", HD_SQLSTATE_INVALID_PASSWORD);
	snprintf(err->message, sizeof(err->message),
			 "password authentication failed for user \"%s\"", user ? user : "");
	err->detail[0] = '\0';
	snprintf(err->log_detail, sizeof(err->log_detail), "%s", log_detail ? log_detail : "");
	return HD_AUTH_FAILED;
}

const char *
hd_auth_sanitize_char(char c, char buf[5])
{
	if (c >= 0x21 && c <= 0x7E)
		snprintf(buf, 5, "'%c'", c);
	else
		snprintf(buf, 5, "0x%02x", (unsigned char) c);
	return buf;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
hd_base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t
hd_base64_encode(const unsigned char *in, size_t n, char *out)
{
	char	   *p = out;

	for (size_t i = 0; i < n; i += 3)
	{
		uint32_t	group = (uint32_t) in[i] << 16;
		size_t		left = n - i;

		if (left > 1)
			group |= (uint32_t) in[i + 1] << 8;
		if (left > 2)
			group |= in[i + 2];
		*p++ = b64_alphabet[(group >> 18) & 0x3F];
		*p++ = b64_alphabet[(group >> 12) & 0x3F];
		*p++ = left > 1 ? b64_alphabet[(group >> 6) & 0x3F] : '=';
		*p++ = left > 2 ? b64_alphabet[group & 0x3F] : '=';
	}
	*p = '\0';
	return (size_t) (p - out);
}

/* The value of a base64 digit, -1 if c is not one. */
static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes one group of 4 characters into bytes; how many, or -1. */
static int
b64_group(const char *in, bool last, unsigned char bytes[3])
{
	int			v[4];
	int			pad = 0;
	uint32_t	group;

	for (int j = 0; j < 4; j++)
	{
		if (in[j] == '=')
		{
			/* "xx==" or "xxx=", and only in the last group */
			if (!last || j < 2)
				return -1;
			v[j] = 0;
			pad++;
		}
		else if (pad > 0 || (v[j] = b64_value(in[j])) < 0)
			return -1;
	}
	/* the bits that padding leaves unused must be zero (canonical form) */
	if ((pad == 1 && (v[2] & 0x03)) || (pad == 2 && (v[1] & 0x0F)))
		return -1;
	group = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
	bytes[0] = (unsigned char) (group >> 16);
	bytes[1] = (unsigned char) (group >> 8);
	bytes[2] = (unsigned char) group;
	return 3 - pad;
}

bool
hd_base64_decode(const char *in, size_t len, unsigned char *out, size_t outsize,
				 size_t *outlen)
{
	size_t		o = 0;

	if (len % 4 != 0)
		return false;
	for (size_t i = 0; i < len; i += 4)
	{
		unsigned char bytes[3];
		int			n = b64_group(in + i, i + 4 == len, bytes);

		if (n < 0 || (size_t) n > outsize - o)
			return false;
		memcpy(out + o, bytes, (size_t) n);
		o += (size_t) n;
	}
	*outlen = o;
	return true;
}

/* ---- random bytes, comparison ---- */

bool
hd_random_bytes(unsigned char *buf, size_t n)
{
	return n <= INT32_MAX && RAND_bytes(buf, (int) n) == 1;
}

bool
hd_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- stored secrets ---- */

HdSecretKind
hd_secret_kind(const char *stored)
{
	HdScramSecret secret;

	if (strncmp(stored, "md5", 3) == 0 && strlen(stored) == HD_MD5_SECRET_LEN &&
		strspn(stored + 3, MD5_HEX_CHARS) == HD_MD5_SECRET_LEN - 3)
		return HD_SECRET_MD5;
	if (hd_scram_parse_secret(stored, &secret))
		return HD_SECRET_SCRAM;
	return HD_SECRET_PLAINTEXT;
}

/* ---- MD5 ---- */

/* out = "md5" + hex(md5(a || b)); false if OpenSSL has no MD5. */
static bool
md5_hex(const void *a, size_t alen, const void *b, size_t blen,
		char out[HD_MD5_SECRET_LEN + 1])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	bool		ok;

	ok = ctx != NULL &&
		EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
		EVP_DigestUpdate(ctx, a, alen) == 1 &&
		EVP_DigestUpdate(ctx, b, blen) == 1 &&
		EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 && dlen == 16;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return false;
	memcpy(out, "md5", 3);
	for (unsigned int i = 0; i < 16; i++)
	{
		out[3 + 2 * i] = MD5_HEX_CHARS[digest[i] >> 4];
		out[4 + 2 * i] = MD5_HEX_CHARS[digest[i] & 0x0F];
	}
	out[HD_MD5_SECRET_LEN] = '\0';
	return true;
}

bool
hd_md5_secret(const char *password, const char *user, char out[HD_MD5_SECRET_LEN + 1])
{
	return md5_hex(password, strlen(password), user, strlen(user), out);
}

bool
hd_md5_client_response_from_secret(const char *secret,
								   const unsigned char salt[HD_MD5_SALT_LEN],
								   char out[HD_MD5_SECRET_LEN + 1])
{
	if (hd_secret_kind(secret) != HD_SECRET_MD5)
		return false;
	/* the hex digits, without "md5", are what gets salted */
	return md5_hex(secret + 3, HD_MD5_SECRET_LEN - 3, salt, HD_MD5_SALT_LEN, out);
}

bool
hd_md5_client_response(const char *password, const char *user,
					   const unsigned char salt[HD_MD5_SALT_LEN],
					   char out[HD_MD5_SECRET_LEN + 1])
{
	char		secret[HD_MD5_SECRET_LEN + 1];
	bool		ok;

	ok = hd_md5_secret(password, user, secret) &&
		hd_md5_client_response_from_secret(secret, salt, out);
	OPENSSL_cleanse(secret, sizeof(secret));
	return ok;
}

/*
 * A PasswordMessage payload must be one NUL-terminated string filling the
 * message, and not empty (PostgreSQL's recv_password_packet()).
 */
static HdAuthStatus
check_password_packet(const char *data, size_t len, HdAuthError *err)
{
	if (len == 0 || memchr(data, '\0', len) != data + len - 1)
		return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
							 "invalid password packet size", NULL);
	if (len == 1)
		return hd_auth_error(err, HD_SQLSTATE_INVALID_PASSWORD,
							 "empty password returned by client", NULL);
	return HD_AUTH_OK;
}

static HdAuthStatus
password_mismatch(HdAuthError *err, const char *user)
{
	char		why[160];

	snprintf(why, sizeof(why), "Password does not match for user \"%s\".", user);
	return hd_auth_failed(err, user, why);
}

HdAuthStatus
hd_md5_server_check(const char *stored, const char *user,
					const unsigned char salt[HD_MD5_SALT_LEN],
					const char *data, size_t len, HdAuthError *err)
{
	char		expected[HD_MD5_SECRET_LEN + 1];
	HdSecretKind kind = hd_secret_kind(stored);
	HdAuthStatus status = check_password_packet(data, len, err);
	bool		ok;

	if (status != HD_AUTH_OK)
		return status;
	if (kind == HD_SECRET_SCRAM)
	{
		char		why[192];

		snprintf(why, sizeof(why),
				 "User \"%s\" has a password that cannot be used with MD5 authentication.",
				 user);
		return hd_auth_failed(err, user, why);
	}
	ok = kind == HD_SECRET_MD5 ?
		hd_md5_client_response_from_secret(stored, salt, expected) :
		hd_md5_client_response(stored, user, salt, expected);
	if (!ok)
		return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
							 "could not compute an MD5 hash", NULL);
	if (len - 1 != HD_MD5_SECRET_LEN || !hd_ct_equal(data, expected, HD_MD5_SECRET_LEN))
		return password_mismatch(err, user);
	return HD_AUTH_OK;
}

/* ---- plaintext ---- */

static bool
sha256(const void *data, size_t len, unsigned char out[32])
{
	unsigned int olen = 0;

	return EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL) == 1 && olen == 32;
}

/* Compares two plaintext passwords without leaking where, or whether the lengths, differ. */
static HdAuthStatus
plaintext_equal(const char *a, const char *b, bool *match, HdAuthError *err)
{
	unsigned char ha[32];
	unsigned char hb[32];

	if (!sha256(a, strlen(a), ha) || !sha256(b, strlen(b), hb))
		return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
							 "could not compute a SHA-256 hash", NULL);
	*match = hd_ct_equal(ha, hb, sizeof(ha));
	return HD_AUTH_OK;
}

static HdAuthStatus
check_plain_against(const char *stored, const char *user, const char *password,
					bool *match, HdAuthError *err)
{
	HdScramSecret scram;
	char		md5[HD_MD5_SECRET_LEN + 1];

	switch (hd_secret_kind(stored))
	{
		case HD_SECRET_SCRAM:
			(void) hd_scram_parse_secret(stored, &scram);
			return hd_scram_verify_plain_password(&scram, password, match, err);
		case HD_SECRET_MD5:
			if (!hd_md5_secret(password, user, md5))
				return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
									 "could not compute an MD5 hash", NULL);
			*match = hd_ct_equal(md5, stored, HD_MD5_SECRET_LEN);
			OPENSSL_cleanse(md5, sizeof(md5));
			return HD_AUTH_OK;
		case HD_SECRET_PLAINTEXT:
			break;
	}
	return plaintext_equal(stored, password, match, err);
}

HdAuthStatus
hd_password_check(const char *stored, const char *user, const char *data,
				  size_t len, HdAuthError *err)
{
	bool		match = false;
	HdAuthStatus status = check_password_packet(data, len, err);

	if (status == HD_AUTH_OK)
		status = check_plain_against(stored, user, data, &match, err);
	if (status != HD_AUTH_OK)
		return status;
	return match ? HD_AUTH_OK : password_mismatch(err, user);
}
