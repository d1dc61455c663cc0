/*
 * auth.h
 *    PostgreSQL password authentication, the parts every method shares:
 *    errors, base64, random bytes, constant-time comparison, stored-secret
 *    kinds, MD5 (both sides) and plaintext passwords. SCRAM-SHA-256 is in
 *    scram.h, the SASLprep normalization of passwords in saslprep.h.
 *
 * Contract:
 *   - Pure computation: no sockets, no global state, no logging; every
 *     function is reentrant. The caller moves the bytes (a PasswordMessage
 *     payload, the salt of AuthenticationMD5Password, ...) and decides what
 *     to send; these functions say what the bytes mean and what to answer.
 *   - Bytes from the network come as (pointer, length). They are never
 *     assumed NUL-terminated and never read outside that range.
 *   - A refused input fills an HdAuthError with what PostgreSQL 15 puts in
 *     the ErrorResponse in the same case (SQLSTATE, message, detail; the
 *     same wording) and, apart, what PostgreSQL only writes to its own log
 *     (log_detail: it tells the server operator why a login failed, and must
 *     not be sent to the client, which could otherwise probe for roles).
 *     Messages never quote raw client bytes: a character is shown as 'c' if
 *     printable ASCII, else as 0x%02x, as PostgreSQL does.
 *   - Secrets and passwords are compared in constant time (CRYPTO_memcmp),
 *     plaintext passwords through their SHA-256 so that the length is not
 *     leaked either.
 *   - Cryptography is OpenSSL's (libcrypto); a failure there (no MD5 in a
 *     FIPS-only build, RAND_bytes without entropy) is reported, never
 *     ignored.
 */
#ifndef HD_AUTH_H
#define HD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/sqlstate.h"		/* the SQLSTATEs it reports */


typedef struct HdAuthError
{
	char		sqlstate[6];	/* "" while no error */
	char		message[192];	/* the ErrorResponse 'M' field */
	char		detail[256];	/* the 'D' field, "" if none */
	char		log_detail[256];	/* for the agent's log only, "" if none */
} HdAuthError;

typedef enum HdAuthStatus
{
	HD_AUTH_OK = 0,				/* step done: send the output, if any */
	HD_AUTH_ERROR = -1,			/* protocol violation or local failure */
	HD_AUTH_FAILED = -2			/* wrong password: "password authentication
								 * failed for user ..." (28P01) */
} HdAuthStatus;

/* Fills *err (if not NULL); detail_fmt may be NULL. Returns HD_AUTH_ERROR. */
extern HdAuthStatus hd_auth_error(HdAuthError *err, const char *sqlstate,
								  const char *message, const char *detail_fmt,...)
			__attribute__((format(printf, 4, 5)));

/* Fills *err with PostgreSQL's wrong-password error. Returns HD_AUTH_FAILED. */
extern HdAuthStatus hd_auth_failed(HdAuthError *err, const char *user,
								   const char *log_detail);

/* A byte as PostgreSQL's messages show one: "'c'" or "0x%02x" (buf >= 5). */
extern const char *hd_auth_sanitize_char(char c, char buf[5]);

/* ---- base64 (RFC 4648, standard alphabet, padded, no line breaks) ---- */

/* Length of the encoding of n bytes, without the terminating NUL. */
extern size_t hd_base64_encoded_len(size_t n);

/* Encodes; out needs hd_base64_encoded_len(n) + 1 bytes. Returns the length. */
extern size_t hd_base64_encode(const unsigned char *in, size_t n, char *out);

/*
 * Decodes exactly in[0 .. len) into out[0 .. outsize). Strict: the length is
 * a multiple of 4, padding only at the end, no whitespace, and the unused
 * bits of the last group are zero (so one value has one encoding). Returns
 * false if the text is not such base64 or decodes to more than outsize bytes.
 */
extern bool hd_base64_decode(const char *in, size_t len, unsigned char *out,
							 size_t outsize, size_t *outlen);

/* ---- random bytes, comparison ---- */

/* n bytes from OpenSSL's CSPRNG; false if it has none to give. */
extern bool hd_random_bytes(unsigned char *buf, size_t n);

/* Equal bytes? In time independent of where they differ. */
extern bool hd_ct_equal(const void *a, const void *b, size_t n);

/* ---- stored secrets (pg_authid.rolpassword, or the agent's user list) ---- */

typedef enum HdSecretKind
{
	HD_SECRET_PLAINTEXT,
	HD_SECRET_MD5,				/* "md5" + 32 lowercase hex digits */
	HD_SECRET_SCRAM				/* SCRAM-SHA-256$<iter>:<salt>$<stored>:<server> */
} HdSecretKind;

/* What a stored password is, decided as PostgreSQL's get_password_type(). */
extern HdSecretKind hd_secret_kind(const char *stored);

/* ---- MD5 (AuthenticationMD5Password) ---- */

#define HD_MD5_SECRET_LEN 35	/* "md5" + 32 hex digits, without the NUL */
#define HD_MD5_SALT_LEN 4

/* PostgreSQL's stored md5 secret: "md5" + hex(md5(password || user)). */
extern bool hd_md5_secret(const char *password, const char *user,
						  char out[HD_MD5_SECRET_LEN + 1]);

/*
 * The client's PasswordMessage text for AuthenticationMD5Password with this
 * salt: "md5" + hex(md5(hex(md5(password || user)) || salt)), as libpq.
 */
extern bool hd_md5_client_response(const char *password, const char *user,
								   const unsigned char salt[HD_MD5_SALT_LEN],
								   char out[HD_MD5_SECRET_LEN + 1]);

/*
 * The same from a stored md5 secret instead of the password (pass-through:
 * the md5 secret is all the protocol needs). False if secret is not one.
 */
extern bool hd_md5_client_response_from_secret(const char *secret,
											   const unsigned char salt[HD_MD5_SALT_LEN],
											   char out[HD_MD5_SECRET_LEN + 1]);

/*
 * Server side: checks the PasswordMessage payload data[0 .. len) (the
 * string with its terminating NUL, as received) that answered our
 * AuthenticationMD5Password with this salt, against stored: an md5 secret,
 * or a plaintext password (hashed with user first). A SCRAM secret cannot
 * answer an MD5 challenge: HD_AUTH_FAILED, as PostgreSQL (which, when the
 * method is md5 but the secret SCRAM, runs SCRAM instead: the caller's
 * choice, see hd_secret_kind()).
 */
extern HdAuthStatus hd_md5_server_check(const char *stored, const char *user,
										const unsigned char salt[HD_MD5_SALT_LEN],
										const char *data, size_t len,
										HdAuthError *err);

/* ---- plaintext (AuthenticationCleartextPassword) ---- */

/*
 * Server side: checks the PasswordMessage payload data[0 .. len) against
 * stored: a SCRAM secret (as PostgreSQL's scram_verify_plain_password(),
 * SASLprep included), an md5 secret, or a plaintext password.
 */
extern HdAuthStatus hd_password_check(const char *stored, const char *user,
									  const char *data, size_t len,
									  HdAuthError *err);

#endif							/* HD_AUTH_H */
