/*
 * mysql_auth.h
 *    The arithmetic of MySQL/MariaDB's two password plugins, both sides:
 *    mysql_native_password and caching_sha2_password (its fast path, and its
 *    full authentication with an RSA-encrypted password when there is no
 *    TLS). The agent is the server towards MySQL clients and the client
 *    towards MySQL origins; the packets around these bytes (the handshake,
 *    AuthSwitchRequest, the 0x01 "more data" packets, the 0x02 "send me the
 *    public key" request) are the MySQL wing's (agent/mywire/).
 *
 * Contract:
 *   - Pure computation: no sockets, no global state, no logging; every
 *     function is reentrant. Cryptography is OpenSSL's (libcrypto) only.
 *   - A nonce (the server's "scramble", "auth plugin data") is the 20 bytes
 *     HD_MY_NONCE_LEN: the caller drops the NUL that servers send after it
 *     in the handshake and in AuthSwitchRequest.
 *   - Bytes from the network come as (pointer, length), never assumed
 *     NUL-terminated and never read outside that range; a token of the
 *     wrong length is a wrong token (false), never an overread.
 *   - Tokens and hashes are compared in constant time (CRYPTO_memcmp);
 *     intermediate digests and decrypted passwords in local buffers are
 *     wiped (OPENSSL_cleanse) before returning.
 *   - Failures say why in err (for the agent's log). The caller answers a
 *     client every failed check and every failed decryption with the same
 *     "Access denied" error, so that which step failed (RSA padding, the
 *     trailing NUL, the password) is never an oracle.
 *   - Passwords are bytes, hashed as given: MySQL and MariaDB hash the bytes
 *     the client sends, in its connection character set (no normalization
 *     as SASLprep on the PostgreSQL side).
 *
 * mysql_native_password (both servers):
 *   stage1 = SHA1(password), stage2 = SHA1(stage1). The server stores
 *   "*" + HEX(stage2) (authentication_string, 41 characters; what MariaDB's
 *   PASSWORD() returns). The client sends token = stage1 XOR SHA1(nonce .
 *   stage2); the server computes stage1' = token XOR SHA1(nonce . stage2)
 *   and accepts if SHA1(stage1') = stage2. So verifying a client against a
 *   stored hash yields stage1, and stage1 (not the password) is all a login
 *   needs: that is how the agent logs in to the origin as a user whose hash
 *   it read, without knowing the password.
 *   An account without a password stores "" and is logged in to with an
 *   empty token; MariaDB 10.11 refuses an empty token for an account with a
 *   password and a non-empty one for an account without (checked; as
 *   native_password_authenticate() in sql/sql_acl.cc).
 *
 * caching_sha2_password (MySQL 8's default; MariaDB servers do not offer
 * it, its clients speak it):
 *   fast path: token = SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) . nonce),
 *   32 bytes; an empty password is an empty token (MySQL's client sends one
 *   NUL byte instead; both are accepted). When the server has no cached
 *   hash it asks for the password itself ("perform full authentication"):
 *   over TLS in clear text, else RSA-encrypted with the server's public key
 *   (RSA_PKCS1_OAEP_PADDING, SHA-1 and MGF1-SHA-1, OpenSSL's and every
 *   driver's default), the plaintext being (password . NUL) XOR the nonce
 *   repeated. A 2048-bit key holds passwords of up to
 *   HD_MY_RSA_MAX_PASSWORD_LEN bytes.
 */
#ifndef HD_MYSQL_AUTH_H
#define HD_MYSQL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HD_MY_NONCE_LEN 20
#define HD_MY_SHA1_LEN 20
#define HD_MY_SHA256_LEN 32
#define HD_MY_NATIVE_HASH_LEN 41	/* "*" + 40 hex digits, without the NUL */
#define HD_MY_RSA_BITS 2048
#define HD_MY_RSA_CIPHER_LEN (HD_MY_RSA_BITS / 8)
/* OAEP with SHA-1 takes 2 * 20 + 2 bytes of the block; one more is the NUL */
#define HD_MY_RSA_MAX_PASSWORD_LEN (HD_MY_RSA_CIPHER_LEN - 2 * HD_MY_SHA1_LEN - 2 - 1)

/* ---- mysql_native_password ---- */

/* stage1 = SHA1(pw): what a login needs, in place of the password. */
extern void hd_my_native_stage1(const char *pw, size_t len,
								uint8_t stage1[HD_MY_SHA1_LEN]);

/* stage2 = SHA1(stage1) = SHA1(SHA1(pw)): what the server stores. */
extern void hd_my_native_stage2(const uint8_t stage1[HD_MY_SHA1_LEN],
								uint8_t stage2[HD_MY_SHA1_LEN]);

/* What hd_my_native_parse_hash() found in an authentication_string. */
#define HD_MY_HASH_OK 0			/* "*" + 40 hex digits: *stage2 filled */
#define HD_MY_HASH_NONE 1		/* "": an account without a password */
#define HD_MY_HASH_MALFORMED (-1)	/* anything else (another plugin's
									 * string, an old 16-digit hash, ...) */

/*
 * Reads a stored mysql_native_password authentication_string (a
 * NUL-terminated string as a result row gives it): "*" followed by exactly
 * 40 hex digits, either case, nothing after. stage2 is zeroed unless
 * HD_MY_HASH_OK.
 */
extern int	hd_my_native_parse_hash(const char *authentication_string,
									uint8_t stage2[HD_MY_SHA1_LEN]);

/* "*" + 40 uppercase hex digits and a NUL, as PASSWORD() prints it. */
extern void hd_my_native_format_hash(const uint8_t stage2[HD_MY_SHA1_LEN],
									 char out[HD_MY_NATIVE_HASH_LEN + 1]);

/*
 * Client side: the 20-byte token a client sends for this nonce, from stage1
 * (an account without a password sends an empty token instead; this
 * function has no such case, the caller knows).
 */
extern void hd_my_native_token(const uint8_t stage1[HD_MY_SHA1_LEN],
							   const uint8_t nonce[HD_MY_NONCE_LEN],
							   uint8_t token[HD_MY_SHA1_LEN]);

/*
 * Server side, against a stored hash (HD_MY_HASH_OK): true if token[0 ..
 * token_len) is the right token for this nonce; then stage1_out (if not
 * NULL) = SHA1(password). A token of any length but 20 (the empty one
 * included: "no password") is false, stage1_out then zeroed.
 */
extern bool hd_my_native_check(const uint8_t stage2[HD_MY_SHA1_LEN],
							   const uint8_t nonce[HD_MY_NONCE_LEN],
							   const uint8_t *token, size_t token_len,
							   uint8_t stage1_out[HD_MY_SHA1_LEN]);

/*
 * Server side, against a stored hash (HD_MY_HASH_OK), from a password the
 * client sent itself (caching_sha2_password's full authentication, over
 * TLS or RSA-encrypted; mysql_clear_password): true if SHA1(SHA1(pw)) is the
 * stored hash; then stage1_out (if not NULL) = SHA1(pw), else zeroed. The
 * way to serve a looked-up user to a client that speaks only
 * caching_sha2_password. The empty password is false here (its account has
 * no hash: hd_my_native_check_empty()).
 */
extern bool hd_my_native_check_plain(const uint8_t stage2[HD_MY_SHA1_LEN],
									 const char *pw, size_t len,
									 uint8_t stage1_out[HD_MY_SHA1_LEN]);

/*
 * Server side, for an account without a password (HD_MY_HASH_NONE): true
 * only for the empty token (or the empty password).
 */
extern bool hd_my_native_check_empty(size_t token_len);

/*
 * Server side, against a password the agent knows (a config's own user):
 * the empty password takes the empty token only, any other password the
 * token hd_my_native_token() gives.
 */
extern bool hd_my_native_check_password(const char *pw, size_t len,
										const uint8_t nonce[HD_MY_NONCE_LEN],
										const uint8_t *token, size_t token_len);

/* ---- caching_sha2_password, fast path ---- */

/*
 * Client side: the token for this password and nonce into token; returns
 * its length: HD_MY_SHA256_LEN, or 0 for the empty password (send an empty
 * token; token is left untouched).
 */
extern size_t hd_my_sha2_token(const char *pw, size_t len,
							   const uint8_t nonce[HD_MY_NONCE_LEN],
							   uint8_t token[HD_MY_SHA256_LEN]);

/*
 * Server side, against a password the agent knows: true if token[0 ..
 * token_len) is the 32-byte token of pw; for the empty password, the empty
 * token or a single NUL byte (MySQL's own client) and nothing else.
 */
extern bool hd_my_sha2_check(const char *pw, size_t len,
							 const uint8_t nonce[HD_MY_NONCE_LEN],
							 const uint8_t *token, size_t token_len);

/* ---- caching_sha2_password, full authentication with RSA ---- */

typedef struct HdMyRsaKey HdMyRsaKey;

/*
 * A new HD_MY_RSA_BITS key pair, made in memory (the agent makes one at
 * start: clients ask for its public key with the 0x02 request). NULL, with
 * OpenSSL's reason in err, if OpenSSL fails.
 */
extern HdMyRsaKey *hd_my_rsa_generate(char *err, size_t errlen);

/*
 * A key pair from a PEM private key (PKCS#8 "BEGIN PRIVATE KEY" or PKCS#1
 * "BEGIN RSA PRIVATE KEY", unencrypted), for a key kept on disk so that
 * clients configured with the server's public key file (server-public-key-
 * path) keep working across restarts. Only RSA keys of HD_MY_RSA_BITS are
 * taken. NULL with the reason in err otherwise.
 */
extern HdMyRsaKey *hd_my_rsa_from_private_pem(const char *pem, size_t len,
											  char *err, size_t errlen);

/* Frees a key (NULL is fine). */
extern void hd_my_rsa_free(HdMyRsaKey *key);

/*
 * The public key as the server sends it after a 0x02 request: PEM
 * SubjectPublicKeyInfo, "-----BEGIN PUBLIC KEY-----\n...-----END PUBLIC
 * KEY-----\n", NUL-terminated; owned by the key.
 */
extern const char *hd_my_rsa_public_pem(const HdMyRsaKey *key);

/*
 * Server side: decrypts a client's cipher[0 .. len) (exactly
 * HD_MY_RSA_CIPHER_LEN bytes) and undoes the XOR with the nonce; the
 * password, without its NUL, into pw[0 .. *pwlen), NUL-terminated (pwmax
 * must leave room for it). 0 on success; -1 with the reason in err for a
 * cipher of the wrong length, one that does not decrypt with this key
 * (wrong key, garbage), a plaintext not ending in NUL after the XOR (a
 * wrong nonce) or holding another NUL, or a password longer than pwmax - 1.
 * pw is wiped on failure.
 */
extern int	hd_my_rsa_decrypt_password(const HdMyRsaKey *key,
									   const uint8_t *cipher, size_t len,
									   const uint8_t nonce[HD_MY_NONCE_LEN],
									   char *pw, size_t pwmax, size_t *pwlen,
									   char *err, size_t errlen);

/*
 * Client side (the agent logging in to a MySQL 8 origin with
 * caching_sha2_password and no TLS): encrypts (pw . NUL) XOR the nonce with
 * the server's public key public_pem[0 .. pem_len) (PEM SubjectPublicKeyInfo,
 * "BEGIN PUBLIC KEY", as MySQL sends it; not necessarily NUL-terminated)
 * into out[0 .. *outlen), as many bytes as the key has. 0 on success; -1
 * with the reason in err if the PEM is not such an RSA public key, the
 * password does not fit the key (2 * 20 + 2 bytes of OAEP and the NUL), or
 * out is smaller than the key.
 */
extern int	hd_my_rsa_encrypt_password(const char *public_pem, size_t pem_len,
									   const char *pw, size_t len,
									   const uint8_t nonce[HD_MY_NONCE_LEN],
									   uint8_t *out, size_t outmax,
									   size_t *outlen,
									   char *err, size_t errlen);

#endif							/* HD_MYSQL_AUTH_H */
