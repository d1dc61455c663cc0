/*
 * scram.c
 *    SCRAM-SHA-256, server and client side (see scram.h).
 *
 * The names follow RFC 5802:
 *   SaltedPassword  = PBKDF2-HMAC-SHA-256(password, salt, iterations)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = SHA-256(ClientKey)
 *   ServerKey       = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage     = client-first-message-bare "," server-first-message ","
 *                     client-final-message-without-proof
 *   ClientSignature = HMAC(StoredKey, AuthMessage)
 *   ClientProof     = ClientKey XOR ClientSignature
 *   ServerSignature = HMAC(ServerKey, AuthMessage)
 * A stored secret holds StoredKey and ServerKey, so the server can check a
 * proof (H(proof XOR ClientSignature) == StoredKey) without being able to
 * make one; but after a successful check it holds ClientKey, which is all a
 * client needs (with ServerKey, to check the server) to log in elsewhere
 * with the same secret: that is the pass-through.
 *
 * Every message is parsed from a NUL-terminated copy, with a cursor that
 * only moves forward over characters it has seen, so no malformed input can
 * make it read past the end.
 */
#include "auth/scram.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/saslprep.h"

#define SECRET_SCHEME "SCRAM-SHA-256$"
#define MALFORMED "malformed SCRAM message"
#define B64_KEY_LEN 44			/* base64 of HD_SCRAM_KEY_LEN bytes */
#define B64_SALT_BUFSIZE ((HD_SCRAM_MAX_SALT_LEN + 2) / 3 * 4 + 1)

typedef enum ScramStep
{
	STEP_START,					/* server: waiting for client-first; client:
								 * about to send it */
	STEP_FIRST_DONE,			/* first messages exchanged */
	STEP_FINAL_DONE,			/* client: proof sent, waiting for server-final */
	STEP_FINISHED,				/* success */
	STEP_BROKEN					/* an error happened: nothing more */
} ScramStep;

struct HdScramServer
{
	ScramStep	step;
	bool		doomed;			/* mock exchange: fails at the end */
	HdScramSecret secret;
	char	   *user;
	char		nonce[HD_SCRAM_MAX_NONCE_LEN + 1];	/* ours; "" until chosen */
	char		cbind_flag;		/* 'n' or 'y' */
	char	   *client_first_bare;
	char	   *client_nonce;
	char	   *server_first;
	char	   *server_final;
	unsigned char client_key[HD_SCRAM_KEY_LEN];	/* once the proof checked */
};

struct HdScramClient
{
	ScramStep	step;
	char	   *password;		/* SASLprep'd; NULL with pass-through keys */
	unsigned char client_key[HD_SCRAM_KEY_LEN];	/* given, or derived from */
	unsigned char server_key[HD_SCRAM_KEY_LEN];	/* the password */
	char		nonce[HD_SCRAM_MAX_NONCE_LEN + 1];	/* ours; "" until chosen */
	char	   *username;		/* escaped saslname */
	char	   *client_first;	/* "n,," + client-first-message-bare */
	char	   *server_first;
	char	   *client_final;
	unsigned char server_signature[HD_SCRAM_KEY_LEN];	/* expected */
};

/* ---- primitives ---- */

static bool
hmac_sha256(const unsigned char *key, size_t keylen, const void *data, size_t len,
			unsigned char out[HD_SCRAM_KEY_LEN])
{
	unsigned int olen = 0;

	return HMAC(EVP_sha256(), key, (int) keylen, data, len, out, &olen) != NULL &&
		olen == HD_SCRAM_KEY_LEN;
}

static bool
sha256(const void *data, size_t len, unsigned char out[HD_SCRAM_KEY_LEN])
{
	unsigned int olen = 0;

	return EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL) == 1 &&
		olen == HD_SCRAM_KEY_LEN;
}

/* ClientKey and ServerKey of a (prepared) password, with a salt and count. */
static bool
password_keys(const char *password, const unsigned char *salt, size_t salt_len,
			  int iterations, unsigned char client_key[HD_SCRAM_KEY_LEN],
			  unsigned char server_key[HD_SCRAM_KEY_LEN])
{
	unsigned char salted[HD_SCRAM_KEY_LEN];
	bool		ok;

	ok = PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt, (int) salt_len,
						   iterations, EVP_sha256(), HD_SCRAM_KEY_LEN, salted) == 1 &&
		hmac_sha256(salted, sizeof(salted), "Client Key", 10, client_key) &&
		hmac_sha256(salted, sizeof(salted), "Server Key", 10, server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	return ok;
}

static void
xor_keys(unsigned char *out, const unsigned char *a, const unsigned char *b)
{
	for (int i = 0; i < HD_SCRAM_KEY_LEN; i++)
		out[i] = a[i] ^ b[i];
}

/* A malloc'd formatted string, NULL if out of memory. */
static char *
format(const char *fmt,...)
__attribute__((format(printf, 1, 2)));

static char *
format(const char *fmt,...)
{
	va_list		ap;
	char	   *s = NULL;
	int			n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* Frees a string that may hold key material. */
static void
free_wiped(char *s)
{
	if (s != NULL)
	{
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static HdAuthStatus
out_of_memory(HdAuthError *err)
{
	return hd_auth_error(err, HD_SQLSTATE_OUT_OF_MEMORY, "out of memory", NULL);
}

static HdAuthStatus
crypto_failure(HdAuthError *err)
{
	return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
						 "could not compute SCRAM keys", NULL);
}

static HdAuthStatus
bad_state(HdAuthError *err)
{
	return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
						 "invalid SCRAM exchange state", NULL);
}

/* RFC 5802 "printable": %x21-2B / %x2D-7E, i.e. printable ASCII but ','. */
static bool
is_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < 0x21 || s[i] > 0x7E || s[i] == ',')
			return false;
	}
	return true;
}

/* A nonce we may send: 1 .. HD_SCRAM_MAX_NONCE_LEN printable characters. */
static bool
valid_own_nonce(const char *nonce)
{
	size_t		len = strlen(nonce);

	return len > 0 && len <= HD_SCRAM_MAX_NONCE_LEN && is_printable(nonce, len);
}

/* 18 random bytes in base64, as PostgreSQL's nonces. */
static bool
random_nonce(char out[HD_SCRAM_MAX_NONCE_LEN + 1])
{
	unsigned char raw[HD_SCRAM_RAW_NONCE_LEN];

	if (!hd_random_bytes(raw, sizeof(raw)))
		return false;
	hd_base64_encode(raw, sizeof(raw), out);
	return true;
}

/*
 * Decimal 1 .. INT_MAX, digits only. (PostgreSQL's strtol() would also take
 * blanks, a sign, and 0 or less in a stored secret; no real secret has them.)
 */
static bool
parse_iterations(const char *s, size_t len, int *iterations)
{
	long long	value = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		value = value * 10 + (s[i] - '0');
		if (value > INT_MAX)
			return false;
	}
	if (value < 1)
		return false;
	*iterations = (int) value;
	return true;
}

static bool
decode_key(const char *s, size_t len, unsigned char key[HD_SCRAM_KEY_LEN])
{
	size_t		n;

	return hd_base64_decode(s, len, key, HD_SCRAM_KEY_LEN, &n) && n == HD_SCRAM_KEY_LEN;
}

static bool
decode_salt(const char *s, size_t len, unsigned char *salt, size_t *salt_len)
{
	return hd_base64_decode(s, len, salt, HD_SCRAM_MAX_SALT_LEN, salt_len) &&
		*salt_len > 0;
}

/*
 * A NUL-terminated copy of a message, refused (with the messages of the
 * server or of libpq) if empty, too long, or containing a NUL.
 */
static char *
copy_message(const char *data, size_t len, bool server, HdAuthError *err)
{
	char	   *copy;

	if (len == 0)
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
					  server ? MALFORMED : MALFORMED " (empty message)",
					  server ? "The message is empty." : NULL);
	else if (len > HD_SCRAM_MAX_MESSAGE_LEN)
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
					  server ? MALFORMED : MALFORMED " (message too long)",
					  server ? "The message is longer than %d bytes." : NULL,
					  HD_SCRAM_MAX_MESSAGE_LEN);
	else if (memchr(data, '\0', len) != NULL)
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
					  server ? MALFORMED : MALFORMED " (length mismatch)",
					  server ? "Message length does not match input length." : NULL);
	else if ((copy = malloc(len + 1)) == NULL)
		out_of_memory(err);
	else
	{
		memcpy(copy, data, len);
		copy[len] = '\0';
		return copy;
	}
	return NULL;
}

/* ---- attribute parsing: "a=value" separated by ',' ---- */

/* The value starting at start, up to ',' or the end; *p moves past the ','. */
static void
take_value(const char **p, const char *start, const char **value, size_t *len)
{
	const char *end = start + strcspn(start, ",");

	*value = start;
	*len = (size_t) (end - start);
	*p = *end ? end + 1 : end;
}

/* Server side: attribute attr at *p, with PostgreSQL's read_attr_value() errors. */
static bool
server_read_attr(const char **p, char attr, const char **value, size_t *len,
				 HdAuthError *err)
{
	const char *s = *p;
	char		buf[5];

	if (*s != attr)
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
					  "Expected attribute \"%c\" but found \"%s\".",
					  attr, hd_auth_sanitize_char(*s, buf));
	else if (s[1] != '=')
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
					  "Expected character \"=\" for attribute \"%c\".", attr);
	else
	{
		take_value(p, s + 2, value, len);
		return true;
	}
	return false;
}

/* Server side: any attribute at *p, with PostgreSQL's read_any_attr() errors. */
static bool
server_read_any_attr(const char **p, char *attr, const char **value, size_t *len,
					 HdAuthError *err)
{
	const char *s = *p;
	char		buf[5];

	if (*s == '\0')
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
					  "Attribute expected, but found end of string.");
	else if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
					  "Attribute expected, but found invalid character \"%s\".",
					  hd_auth_sanitize_char(*s, buf));
	else if (s[1] != '=')
		hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
					  "Expected character \"=\" for attribute \"%c\".", *s);
	else
	{
		*attr = *s;
		take_value(p, s + 2, value, len);
		return true;
	}
	return false;
}

/* Client side: attribute attr at *p, with libpq's errors. */
static bool
client_read_attr(const char **p, char attr, const char **value, size_t *len,
				 HdAuthError *err)
{
	const char *s = *p;
	char		msg[96];

	if (*s != attr)
		snprintf(msg, sizeof(msg), MALFORMED " (attribute \"%c\" expected)", attr);
	else if (s[1] != '=')
		snprintf(msg, sizeof(msg),
				 MALFORMED " (expected character \"=\" for attribute \"%c\")", attr);
	else
	{
		take_value(p, s + 2, value, len);
		return true;
	}
	hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, msg, NULL);
	return false;
}

static bool
value_is(const char *value, size_t len, const char *expected)
{
	return len == strlen(expected) && memcmp(value, expected, len) == 0;
}

/* ---- secrets ---- */

bool
hd_scram_parse_secret(const char *text, HdScramSecret *secret)
{
	const char *p = text;
	const char *colon;
	const char *dollar;
	const char *colon2;

	memset(secret, 0, sizeof(*secret));
	if (strncmp(p, SECRET_SCHEME, strlen(SECRET_SCHEME)) != 0)
		return false;
	p += strlen(SECRET_SCHEME);
	if ((colon = strchr(p, ':')) == NULL ||
		(dollar = strchr(colon, '$')) == NULL ||
		(colon2 = strchr(dollar, ':')) == NULL)
		return false;
	return parse_iterations(p, (size_t) (colon - p), &secret->iterations) &&
		decode_salt(colon + 1, (size_t) (dollar - colon - 1), secret->salt,
					&secret->salt_len) &&
		decode_key(dollar + 1, (size_t) (colon2 - dollar - 1), secret->stored_key) &&
		decode_key(colon2 + 1, strlen(colon2 + 1), secret->server_key);
}

size_t
hd_scram_format_secret(const HdScramSecret *secret, char *out, size_t outsize)
{
	char		salt[B64_SALT_BUFSIZE];
	char		stored[B64_KEY_LEN + 1];
	char		server[B64_KEY_LEN + 1];
	int			n;

	hd_base64_encode(secret->salt, secret->salt_len, salt);
	hd_base64_encode(secret->stored_key, HD_SCRAM_KEY_LEN, stored);
	hd_base64_encode(secret->server_key, HD_SCRAM_KEY_LEN, server);
	n = snprintf(out, outsize, SECRET_SCHEME "%d:%s$%s:%s",
				 secret->iterations, salt, stored, server);
	if (n < 0 || (size_t) n >= outsize)
	{
		if (outsize > 0)
			out[0] = '\0';
		return 0;
	}
	return (size_t) n;
}

/* The password as PostgreSQL hashes it (saslprep.h), or an error. */
static HdAuthStatus
prepare_password(const char *password, char **prepared, HdAuthError *err)
{
	switch (hd_saslprep_password(password, prepared))
	{
		case HD_SASLPREP_OK:
			return HD_AUTH_OK;
		case HD_SASLPREP_UNSUPPORTED:
			return hd_auth_error(err, HD_SQLSTATE_FEATURE_NOT_SUPPORTED,
								 "password cannot be prepared for SCRAM authentication",
								 "It has characters beyond U+00FF that SASLprep would have "
								 "to normalize, which this agent cannot do.");
		case HD_SASLPREP_OOM:
			break;
	}
	return out_of_memory(err);
}

HdAuthStatus
hd_scram_secret_from_password(const char *password, const unsigned char *salt,
							  size_t salt_len, int iterations,
							  HdScramSecret *secret, HdAuthError *err)
{
	char	   *prepared = NULL;
	unsigned char client_key[HD_SCRAM_KEY_LEN];
	HdAuthStatus status;

	memset(secret, 0, sizeof(*secret));
	if (salt_len == 0 || salt_len > HD_SCRAM_MAX_SALT_LEN || iterations < 1)
		return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
							 "invalid SCRAM salt or iteration count", NULL);
	status = prepare_password(password, &prepared, err);
	if (status != HD_AUTH_OK)
		return status;
	secret->iterations = iterations;
	secret->salt_len = salt_len;
	memcpy(secret->salt, salt, salt_len);
	if (!password_keys(prepared, salt, salt_len, iterations, client_key,
					   secret->server_key) ||
		!sha256(client_key, sizeof(client_key), secret->stored_key))
		status = crypto_failure(err);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	free_wiped(prepared);
	return status;
}

HdAuthStatus
hd_scram_build_secret(const char *password, char *out, size_t outsize,
					  HdAuthError *err)
{
	unsigned char salt[HD_SCRAM_SALT_LEN];
	HdScramSecret secret;
	HdAuthStatus status;

	if (!hd_random_bytes(salt, sizeof(salt)))
		return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
							 "could not generate random salt", NULL);
	status = hd_scram_secret_from_password(password, salt, sizeof(salt),
										   HD_SCRAM_ITERATIONS, &secret, err);
	if (status == HD_AUTH_OK && hd_scram_format_secret(&secret, out, outsize) == 0)
		status = hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
							   "SCRAM secret buffer too small", NULL);
	OPENSSL_cleanse(&secret, sizeof(secret));
	return status;
}

HdAuthStatus
hd_scram_verify_plain_password(const HdScramSecret *secret, const char *password,
							   bool *match, HdAuthError *err)
{
	char	   *prepared = NULL;
	unsigned char client_key[HD_SCRAM_KEY_LEN];
	unsigned char server_key[HD_SCRAM_KEY_LEN];
	HdAuthStatus status;

	*match = false;
	status = prepare_password(password, &prepared, err);
	if (status != HD_AUTH_OK)
		return status;
	/* like PostgreSQL, compare ServerKey: it proves the password as well */
	if (password_keys(prepared, secret->salt, secret->salt_len, secret->iterations,
					  client_key, server_key))
		*match = hd_ct_equal(server_key, secret->server_key, HD_SCRAM_KEY_LEN);
	else
		status = crypto_failure(err);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	free_wiped(prepared);
	return status;
}

/* ---- server side ---- */

HdAuthStatus
hd_scram_check_mechanism(const char *mechanism, HdAuthError *err)
{
	if (mechanism != NULL && strcmp(mechanism, HD_SCRAM_MECHANISM) == 0)
		return HD_AUTH_OK;
	return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
						 "client selected an invalid SASL authentication mechanism",
						 NULL);
}

HdScramServer *
hd_scram_server_new(const HdScramSecret *secret, const char *user)
{
	HdScramServer *server = calloc(1, sizeof(HdScramServer));

	if (server == NULL)
		return NULL;
	server->secret = *secret;
	server->user = strdup(user ? user : "");
	if (server->user == NULL)
	{
		hd_scram_server_free(server);
		return NULL;
	}
	return server;
}

HdScramServer *
hd_scram_server_new_mock(const char *user,
						 const unsigned char mock_key[HD_SCRAM_KEY_LEN])
{
	HdScramSecret secret;
	unsigned char digest[HD_SCRAM_KEY_LEN];
	HdScramServer *server = NULL;
	size_t		ulen = strlen(user ? user : "");
	unsigned char *input = malloc(ulen + HD_SCRAM_KEY_LEN);

	/* a plausible secret: stable salt, default count, keys that match nothing */
	memset(&secret, 0, sizeof(secret));
	if (input != NULL)
	{
		memcpy(input, user ? user : "", ulen);
		memcpy(input + ulen, mock_key, HD_SCRAM_KEY_LEN);
		if (sha256(input, ulen + HD_SCRAM_KEY_LEN, digest))
		{
			secret.iterations = HD_SCRAM_ITERATIONS;
			secret.salt_len = HD_SCRAM_SALT_LEN;
			memcpy(secret.salt, digest, HD_SCRAM_SALT_LEN);
			server = hd_scram_server_new(&secret, user);
		}
		free(input);
	}
	if (server != NULL)
		server->doomed = true;
	return server;
}

void
hd_scram_server_free(HdScramServer *server)
{
	if (server == NULL)
		return;
	free(server->user);
	free(server->client_first_bare);
	free(server->client_nonce);
	free(server->server_first);
	free(server->server_final);
	OPENSSL_cleanse(server, sizeof(*server));
	free(server);
}

bool
hd_scram_server_set_nonce(HdScramServer *server, const char *nonce)
{
	if (server->step != STEP_START || !valid_own_nonce(nonce))
		return false;
	strcpy(server->nonce, nonce);
	return true;
}

/* gs2-header: "n," or "y," then no authzid (PostgreSQL's messages). */
static HdAuthStatus
parse_gs2_header(HdScramServer *server, const char **p, HdAuthError *err)
{
	char		buf[5];

	switch (**p)
	{
		case 'n':
		case 'y':
			server->cbind_flag = *(*p)++;
			if (**p != ',')
				return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
									 "Comma expected, but found character \"%s\".",
									 hd_auth_sanitize_char(**p, buf));
			(*p)++;
			break;
		case 'p':
			/* channel binding: only with SCRAM-SHA-256-PLUS, not offered */
			return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
								 "The client selected SCRAM-SHA-256 without channel binding, "
								 "but the SCRAM message includes channel binding data.");
		default:
			return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
								 "Unexpected channel-binding flag \"%s\".",
								 hd_auth_sanitize_char(**p, buf));
	}
	if (**p == 'a')
		return hd_auth_error(err, HD_SQLSTATE_FEATURE_NOT_SUPPORTED,
							 "client uses authorization identity, but it is not supported",
							 NULL);
	if (**p != ',')
		return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
							 "Unexpected attribute \"%s\" in client-first-message.",
							 hd_auth_sanitize_char(**p, buf));
	(*p)++;
	return HD_AUTH_OK;
}

/* client-first-message: gs2-header, then n=<ignored>,r=<nonce>[,ext...]. */
static HdAuthStatus
parse_client_first(HdScramServer *server, const char *msg, HdAuthError *err)
{
	const char *p = msg;
	const char *value;
	size_t		len;
	char		attr;

	if (parse_gs2_header(server, &p, err) != HD_AUTH_OK)
		return HD_AUTH_ERROR;
	if ((server->client_first_bare = strdup(p)) == NULL)
		return out_of_memory(err);
	if (*p == 'm')
		return hd_auth_error(err, HD_SQLSTATE_FEATURE_NOT_SUPPORTED,
							 "client requires an unsupported SCRAM extension", NULL);
	/* the user name is ignored: the role is the startup packet's */
	if (!server_read_attr(&p, 'n', &value, &len, err) ||
		!server_read_attr(&p, 'r', &value, &len, err))
		return HD_AUTH_ERROR;
	if (!is_printable(value, len))
		return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
							 "non-printable characters in SCRAM nonce", NULL);
	if ((server->client_nonce = strndup(value, len)) == NULL)
		return out_of_memory(err);
	/* optional extensions: none supported, so ignored (but well-formed) */
	while (*p != '\0')
	{
		if (!server_read_any_attr(&p, &attr, &value, &len, err))
			return HD_AUTH_ERROR;
	}
	return HD_AUTH_OK;
}

static HdAuthStatus
build_server_first(HdScramServer *server, HdAuthError *err)
{
	char		salt[B64_SALT_BUFSIZE];

	if (server->nonce[0] == '\0' && !random_nonce(server->nonce))
		return hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
							 "could not generate random nonce", NULL);
	hd_base64_encode(server->secret.salt, server->secret.salt_len, salt);
	server->server_first = format("r=%s%s,s=%s,i=%d", server->client_nonce,
								  server->nonce, salt, server->secret.iterations);
	return server->server_first ? HD_AUTH_OK : out_of_memory(err);
}

HdAuthStatus
hd_scram_server_handle_client_first(HdScramServer *server, const char *data,
									size_t len, const char **out, HdAuthError *err)
{
	HdAuthStatus status;
	char	   *msg;

	*out = NULL;
	if (server->step != STEP_START)
		status = bad_state(err);
	else if ((msg = copy_message(data, len, true, err)) == NULL)
		status = HD_AUTH_ERROR;
	else
	{
		status = parse_client_first(server, msg, err);
		if (status == HD_AUTH_OK)
			status = build_server_first(server, err);
		free(msg);
	}
	server->step = status == HD_AUTH_OK ? STEP_FIRST_DONE : STEP_BROKEN;
	if (status == HD_AUTH_OK)
		*out = server->server_first;
	return status;
}

/*
 * client-final-message: c=<cbind>,r=<nonce>[,ext...],p=<proof>. Returns the
 * nonce, the proof, and the length of client-final-message-without-proof
 * (everything before ",p=").
 */
static HdAuthStatus
parse_client_final(HdScramServer *server, const char *msg, const char **nonce,
				   size_t *nonce_len, unsigned char proof[HD_SCRAM_KEY_LEN],
				   size_t *without_proof_len, HdAuthError *err)
{
	const char *p = msg;
	const char *value;
	const char *proof_start;
	size_t		len;
	char		attr;

	if (!server_read_attr(&p, 'c', &value, &len, err))
		return HD_AUTH_ERROR;
	/* base64 of the gs2-header, which must repeat the flag of client-first */
	if (!(value_is(value, len, "biws") && server->cbind_flag == 'n') &&
		!(value_is(value, len, "eSws") && server->cbind_flag == 'y'))
		return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
							 "unexpected SCRAM channel-binding attribute in client-final-message",
							 NULL);
	if (!server_read_attr(&p, 'r', nonce, nonce_len, err))
		return HD_AUTH_ERROR;
	do
	{
		/* p follows a ',' here: a missing one fails in server_read_any_attr() */
		proof_start = p - 1;
		if (!server_read_any_attr(&p, &attr, &value, &len, err))
			return HD_AUTH_ERROR;
	} while (attr != 'p');
	if (!decode_key(value, len, proof))
		return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
							 "Malformed proof in client-final-message.");
	if (*p != '\0')
		return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, MALFORMED,
							 "Garbage found at the end of client-final-message.");
	*without_proof_len = (size_t) (proof_start - msg);
	return HD_AUTH_OK;
}

/* The final nonce must be the client's followed by ours. */
static bool
final_nonce_matches(const HdScramServer *server, const char *nonce, size_t len)
{
	size_t		clen = strlen(server->client_nonce);
	size_t		slen = strlen(server->nonce);

	return len == clen + slen &&
		memcmp(nonce, server->client_nonce, clen) == 0 &&
		memcmp(nonce + clen, server->nonce, slen) == 0;
}

/*
 * Checks the proof; on success remembers ClientKey and builds
 * server-final-message. The proof is checked even in a mock exchange, so
 * that it takes the same time as a real one.
 */
static HdAuthStatus
verify_proof(HdScramServer *server, const char *msg, size_t without_proof_len,
			 const unsigned char proof[HD_SCRAM_KEY_LEN], HdAuthError *err)
{
	unsigned char signature[HD_SCRAM_KEY_LEN];
	unsigned char client_key[HD_SCRAM_KEY_LEN];
	unsigned char stored_key[HD_SCRAM_KEY_LEN];
	char		v[B64_KEY_LEN + 1];
	char	   *auth = format("%s,%s,%.*s", server->client_first_bare,
							  server->server_first, (int) without_proof_len, msg);
	HdAuthStatus status = HD_AUTH_OK;

	if (auth == NULL)
		return out_of_memory(err);
	if (!hmac_sha256(server->secret.stored_key, HD_SCRAM_KEY_LEN, auth, strlen(auth), signature))
		status = crypto_failure(err);
	else
	{
		xor_keys(client_key, proof, signature);
		if (!sha256(client_key, sizeof(client_key), stored_key))
			status = crypto_failure(err);
		else if (!hd_ct_equal(stored_key, server->secret.stored_key, HD_SCRAM_KEY_LEN) ||
				 server->doomed)
			status = hd_auth_failed(err, server->user, NULL);
		else if (!hmac_sha256(server->secret.server_key, HD_SCRAM_KEY_LEN, auth,
							  strlen(auth), signature))
			status = crypto_failure(err);
		else
		{
			memcpy(server->client_key, client_key, HD_SCRAM_KEY_LEN);
			hd_base64_encode(signature, sizeof(signature), v);
			if ((server->server_final = format("v=%s", v)) == NULL)
				status = out_of_memory(err);
		}
	}
	OPENSSL_cleanse(client_key, sizeof(client_key));
	free(auth);
	return status;
}

HdAuthStatus
hd_scram_server_handle_client_final(HdScramServer *server, const char *data,
									size_t len, const char **out, HdAuthError *err)
{
	HdAuthStatus status;
	char	   *msg;
	const char *nonce = NULL;
	size_t		nonce_len = 0;
	size_t		without_proof_len = 0;
	unsigned char proof[HD_SCRAM_KEY_LEN];

	*out = NULL;
	if (server->step != STEP_FIRST_DONE)
		status = bad_state(err);
	else if ((msg = copy_message(data, len, true, err)) == NULL)
		status = HD_AUTH_ERROR;
	else
	{
		status = parse_client_final(server, msg, &nonce, &nonce_len, proof,
									&without_proof_len, err);
		if (status == HD_AUTH_OK && !final_nonce_matches(server, nonce, nonce_len))
			status = hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION,
								   "invalid SCRAM response", "Nonce does not match.");
		if (status == HD_AUTH_OK)
			status = verify_proof(server, msg, without_proof_len, proof, err);
		free(msg);
	}
	server->step = status == HD_AUTH_OK ? STEP_FINISHED : STEP_BROKEN;
	if (status == HD_AUTH_OK)
		*out = server->server_final;
	return status;
}

bool
hd_scram_server_passthrough_keys(const HdScramServer *server,
								 unsigned char client_key[HD_SCRAM_KEY_LEN],
								 unsigned char server_key[HD_SCRAM_KEY_LEN])
{
	if (server->step != STEP_FINISHED || server->doomed)
		return false;
	memcpy(client_key, server->client_key, HD_SCRAM_KEY_LEN);
	memcpy(server_key, server->secret.server_key, HD_SCRAM_KEY_LEN);
	return true;
}

/* ---- client side ---- */

static HdScramClient *
client_new(HdAuthError *err)
{
	HdScramClient *client = calloc(1, sizeof(HdScramClient));

	if (client != NULL && (client->username = strdup("")) != NULL)
		return client;
	free(client);
	out_of_memory(err);
	return NULL;
}

HdScramClient *
hd_scram_client_new_password(const char *password, HdAuthError *err)
{
	HdScramClient *client = client_new(err);

	if (client != NULL &&
		prepare_password(password, &client->password, err) != HD_AUTH_OK)
	{
		hd_scram_client_free(client);
		return NULL;
	}
	return client;
}

HdScramClient *
hd_scram_client_new_keys(const unsigned char client_key[HD_SCRAM_KEY_LEN],
						 const unsigned char server_key[HD_SCRAM_KEY_LEN],
						 HdAuthError *err)
{
	HdScramClient *client = client_new(err);

	if (client != NULL)
	{
		memcpy(client->client_key, client_key, HD_SCRAM_KEY_LEN);
		memcpy(client->server_key, server_key, HD_SCRAM_KEY_LEN);
	}
	return client;
}

void
hd_scram_client_free(HdScramClient *client)
{
	if (client == NULL)
		return;
	free_wiped(client->password);
	free(client->username);
	free(client->client_first);
	free(client->server_first);
	free(client->client_final);
	OPENSSL_cleanse(client, sizeof(*client));
	free(client);
}

bool
hd_scram_client_set_nonce(HdScramClient *client, const char *nonce)
{
	if (client->step != STEP_START || !valid_own_nonce(nonce))
		return false;
	strcpy(client->nonce, nonce);
	return true;
}

bool
hd_scram_client_set_username(HdScramClient *client, const char *user)
{
	char	   *escaped;
	char	   *p;

	if (client->step != STEP_START ||
		(escaped = malloc(strlen(user) * 3 + 1)) == NULL)
		return false;
	for (p = escaped; *user; user++)
	{
		if (*user == ',')
			p = stpcpy(p, "=2C");
		else if (*user == '=')
			p = stpcpy(p, "=3D");
		else
			*p++ = *user;
	}
	*p = '\0';
	free(client->username);
	client->username = escaped;
	return true;
}

HdAuthStatus
hd_scram_client_first(HdScramClient *client, const char **out, HdAuthError *err)
{
	HdAuthStatus status = HD_AUTH_OK;

	*out = NULL;
	if (client->step != STEP_START)
		status = bad_state(err);
	else if (client->nonce[0] == '\0' && !random_nonce(client->nonce))
		status = hd_auth_error(err, HD_SQLSTATE_INTERNAL_ERROR,
							   "could not generate nonce", NULL);
	else if ((client->client_first = format("n,,n=%s,r=%s", client->username,
											client->nonce)) == NULL)
		status = out_of_memory(err);
	client->step = status == HD_AUTH_OK ? STEP_FIRST_DONE : STEP_BROKEN;
	if (status == HD_AUTH_OK)
		*out = client->client_first;
	return status;
}

static HdAuthStatus
client_error(HdAuthError *err, const char *message)
{
	return hd_auth_error(err, HD_SQLSTATE_PROTOCOL_VIOLATION, message, NULL);
}

/* server-first-message: r=<our nonce + theirs>,s=<salt>,i=<count>. */
static HdAuthStatus
parse_server_first(HdScramClient *client, const char *msg, const char **nonce,
				   size_t *nonce_len, unsigned char *salt, size_t *salt_len,
				   int *iterations, HdAuthError *err)
{
	const char *p = msg;
	const char *value;
	size_t		len;
	size_t		ours = strlen(client->nonce);

	if (!client_read_attr(&p, 'r', nonce, nonce_len, err))
		return HD_AUTH_ERROR;
	/* the server must have appended something of its own to our nonce */
	if (*nonce_len <= ours || memcmp(*nonce, client->nonce, ours) != 0)
		return client_error(err, "invalid SCRAM response (nonce mismatch)");
	if (!client_read_attr(&p, 's', &value, &len, err))
		return HD_AUTH_ERROR;
	if (!decode_salt(value, len, salt, salt_len))
		return client_error(err, MALFORMED " (invalid salt)");
	if (!client_read_attr(&p, 'i', &value, &len, err))
		return HD_AUTH_ERROR;
	if (!parse_iterations(value, len, iterations))
		return client_error(err, MALFORMED " (invalid iteration count)");
	if (*p != '\0')
		return client_error(err, MALFORMED " (garbage at end of server-first-message)");
	return HD_AUTH_OK;
}

/*
 * client-final-message: the proof, computed with the keys (derived from
 * the password now, or given); also the ServerSignature to expect.
 */
static HdAuthStatus
build_client_final(HdScramClient *client, const char *nonce, size_t nonce_len,
				   HdAuthError *err)
{
	unsigned char stored_key[HD_SCRAM_KEY_LEN];
	unsigned char signature[HD_SCRAM_KEY_LEN];
	unsigned char proof[HD_SCRAM_KEY_LEN];
	char		p[B64_KEY_LEN + 1];
	char	   *without_proof = format("c=biws,r=%.*s", (int) nonce_len, nonce);
	char	   *auth = NULL;
	HdAuthStatus status = HD_AUTH_OK;

	if (without_proof == NULL ||
		(auth = format("%s,%s,%s", client->client_first + 3, client->server_first,
					   without_proof)) == NULL)
		status = out_of_memory(err);
	else if (!sha256(client->client_key, HD_SCRAM_KEY_LEN, stored_key) ||
			 !hmac_sha256(stored_key, HD_SCRAM_KEY_LEN, auth, strlen(auth), signature) ||
			 !hmac_sha256(client->server_key, HD_SCRAM_KEY_LEN, auth, strlen(auth),
						  client->server_signature))
		status = crypto_failure(err);
	else
	{
		xor_keys(proof, client->client_key, signature);
		hd_base64_encode(proof, sizeof(proof), p);
		if ((client->client_final = format("%s,p=%s", without_proof, p)) == NULL)
			status = out_of_memory(err);
	}
	free(without_proof);
	free(auth);
	return status;
}

static HdAuthStatus
client_take_server_first(HdScramClient *client, const char *msg, HdAuthError *err)
{
	unsigned char salt[HD_SCRAM_MAX_SALT_LEN];
	size_t		salt_len = 0;
	int			iterations = 0;
	const char *nonce = NULL;
	size_t		nonce_len = 0;
	HdAuthStatus status;

	status = parse_server_first(client, msg, &nonce, &nonce_len, salt, &salt_len,
								&iterations, err);
	if (status != HD_AUTH_OK)
		return status;
	if ((client->server_first = strdup(msg)) == NULL)
		return out_of_memory(err);
	/* with pass-through keys, salt and count are already in them (scram.h) */
	if (client->password != NULL &&
		!password_keys(client->password, salt, salt_len, iterations,
					   client->client_key, client->server_key))
		return crypto_failure(err);
	return build_client_final(client, nonce, nonce_len, err);
}

HdAuthStatus
hd_scram_client_handle_server_first(HdScramClient *client, const char *data,
									size_t len, const char **out, HdAuthError *err)
{
	HdAuthStatus status;
	char	   *msg;

	*out = NULL;
	if (client->step != STEP_FIRST_DONE)
		status = bad_state(err);
	else if ((msg = copy_message(data, len, false, err)) == NULL)
		status = HD_AUTH_ERROR;
	else
	{
		status = client_take_server_first(client, msg, err);
		free(msg);
	}
	client->step = status == HD_AUTH_OK ? STEP_FINAL_DONE : STEP_BROKEN;
	if (status == HD_AUTH_OK)
		*out = client->client_final;
	return status;
}

/* An error the server sent (e=...): quoted printable and short, as PostgreSQL's sanitize_str(). */
static HdAuthStatus
server_sent_error(const char *value, size_t len, HdAuthError *err)
{
	char		clean[65];
	char		msg[128];
	size_t		n = len < sizeof(clean) - 1 ? len : sizeof(clean) - 1;

	for (size_t i = 0; i < n; i++)
		clean[i] = value[i] >= 0x21 && value[i] <= 0x7E ? value[i] : '?';
	clean[n] = '\0';
	snprintf(msg, sizeof(msg), "error received from server in SCRAM exchange: %s", clean);
	return hd_auth_error(err, HD_SQLSTATE_INVALID_AUTHORIZATION, msg, NULL);
}

/* server-final-message: v=<ServerSignature>, or e=<error>. */
static HdAuthStatus
client_take_server_final(HdScramClient *client, const char *msg, HdAuthError *err)
{
	const char *p = msg;
	const char *value;
	size_t		len;
	unsigned char signature[HD_SCRAM_KEY_LEN];

	if (*p == 'e')
		return client_read_attr(&p, 'e', &value, &len, err) ?
			server_sent_error(value, len, err) : HD_AUTH_ERROR;
	if (!client_read_attr(&p, 'v', &value, &len, err))
		return HD_AUTH_ERROR;
	if (*p != '\0')
		return client_error(err, MALFORMED " (garbage at end of server-final-message)");
	if (!decode_key(value, len, signature))
		return client_error(err, MALFORMED " (invalid server signature)");
	if (!hd_ct_equal(signature, client->server_signature, HD_SCRAM_KEY_LEN))
		return hd_auth_error(err, HD_SQLSTATE_INVALID_AUTHORIZATION,
							 "incorrect server signature",
							 "The server does not know the password: it may be an impostor.");
	return HD_AUTH_OK;
}

HdAuthStatus
hd_scram_client_handle_server_final(HdScramClient *client, const char *data,
									size_t len, HdAuthError *err)
{
	HdAuthStatus status;
	char	   *msg;

	if (client->step != STEP_FINAL_DONE)
		status = bad_state(err);
	else if ((msg = copy_message(data, len, false, err)) == NULL)
		status = HD_AUTH_ERROR;
	else
	{
		status = client_take_server_final(client, msg, err);
		free(msg);
	}
	client->step = status == HD_AUTH_OK ? STEP_FINISHED : STEP_BROKEN;
	return status;
}
