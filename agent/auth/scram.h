/*
 * scram.h
 *    SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL 15 speaks it, both
 *    sides: the agent authenticating a client (server side) and the agent
 *    logging in to the origin (client side).
 *
 * Contract:
 *   - Messages are the SASL payloads only: the caller takes them out of
 *     SASLInitialResponse / SASLResponse and puts the answers into
 *     AuthenticationSASLContinue / AuthenticationSASLFinal. Input is
 *     (pointer, length), never read beyond; an output string belongs to the
 *     state object and stays valid until its next call or its free.
 *   - Each side is a small state machine: its steps must come in order, and
 *     after a step that did not return HD_AUTH_OK the object refuses every
 *     further step ("invalid SCRAM exchange state"); the caller ends the
 *     connection.
 *   - Server messages and errors are those of PostgreSQL 15's
 *     auth-scram.c; client messages and errors those of libpq's
 *     fe-auth-scram.c: "n,,n=,r=<nonce>" (empty user name: the server takes
 *     the role from the startup packet), nonces of 18 random bytes in
 *     base64 (24 characters), channel binding never used (this agent does not
 *     offer SCRAM-SHA-256-PLUS; a client may still say 'y', "I could but
 *     think you cannot", which is true).
 *   - Stricter than PostgreSQL where PostgreSQL is lax and nothing sane
 *     depends on it: base64 must be canonical; iteration counts are plain
 *     decimal 1 .. INT_MAX (no sign, no blanks); salts are 1 ..
 *     HD_SCRAM_MAX_SALT_LEN bytes; a server nonce must add at least one
 *     character; libpq's "garbage at end of server-first/final-message" is an
 *     error here, not a note; messages over HD_SCRAM_MAX_MESSAGE_LEN are
 *     refused.
 *   - Proofs, keys and signatures are compared in constant time; keys and
 *     passwords are wiped (OPENSSL_cleanse) when an object is freed.
 *   - PBKDF2 (a plaintext password on the client side, building or checking
 *     a secret) runs synchronously and costs in proportion to the iteration
 *     count, which the origin chooses: about 2 ms at 4096. Verifying a
 *     client against a stored secret, and logging in with pass-through keys,
 *     cost only a few HMACs.
 *   - No global state; reentrant.
 */
#ifndef HD_SCRAM_H
#define HD_SCRAM_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"

#define HD_SCRAM_MECHANISM "SCRAM-SHA-256"
#define HD_SCRAM_PLUS_MECHANISM "SCRAM-SHA-256-PLUS"
#define HD_SCRAM_KEY_LEN 32		/* SHA-256 */
#define HD_SCRAM_SALT_LEN 16	/* of the secrets we build, as PostgreSQL */
#define HD_SCRAM_MAX_SALT_LEN 64
#define HD_SCRAM_ITERATIONS 4096	/* of the secrets we build, as PostgreSQL */
#define HD_SCRAM_RAW_NONCE_LEN 18	/* random bytes, 24 in base64 */
#define HD_SCRAM_MAX_NONCE_LEN 64	/* of our own nonces (test override) */
#define HD_SCRAM_MAX_MESSAGE_LEN 65535	/* PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH */
#define HD_SCRAM_SECRET_BUFSIZE 256 /* fits any secret formatted here */

/* A stored secret: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> */
typedef struct HdScramSecret
{
	int			iterations;
	size_t		salt_len;
	unsigned char salt[HD_SCRAM_MAX_SALT_LEN];
	unsigned char stored_key[HD_SCRAM_KEY_LEN];
	unsigned char server_key[HD_SCRAM_KEY_LEN];
} HdScramSecret;

/* ---- secrets ---- */

/* Parses a stored secret (all base64 canonical, keys 32 bytes); false if malformed. */
extern bool hd_scram_parse_secret(const char *text, HdScramSecret *secret);

/* Formats a secret as PostgreSQL stores it; the length, or 0 if outsize is too small. */
extern size_t hd_scram_format_secret(const HdScramSecret *secret, char *out,
									 size_t outsize);

/* The secret of a password (SASLprep'd) with this salt and iteration count. */
extern HdAuthStatus hd_scram_secret_from_password(const char *password,
												  const unsigned char *salt,
												  size_t salt_len, int iterations,
												  HdScramSecret *secret,
												  HdAuthError *err);

/* A new secret as PostgreSQL builds one: random 16-byte salt, 4096 iterations. */
extern HdAuthStatus hd_scram_build_secret(const char *password, char *out,
										  size_t outsize, HdAuthError *err);

/* Does password match the secret? (PostgreSQL's scram_verify_plain_password()) */
extern HdAuthStatus hd_scram_verify_plain_password(const HdScramSecret *secret,
												   const char *password,
												   bool *match, HdAuthError *err);

/* ---- server side: the agent authenticating a client ---- */

typedef struct HdScramServer HdScramServer;

/*
 * The mechanism a client chose in SASLInitialResponse: only
 * "SCRAM-SHA-256" (the agent advertises nothing else); HD_AUTH_ERROR else.
 */
extern HdAuthStatus hd_scram_check_mechanism(const char *mechanism,
											 HdAuthError *err);

/* An exchange for a role with this secret; user is only for messages. NULL if out of memory. */
extern HdScramServer *hd_scram_server_new(const HdScramSecret *secret,
										  const char *user);

/*
 * A doomed exchange, for a role without a usable secret, that runs to the
 * end and then fails exactly as a wrong password does, so that a client
 * cannot tell which roles exist (PostgreSQL's mock authentication). The salt
 * is SHA-256(user || mock_key), truncated to 16 bytes: the same role always
 * gets the same salt. mock_key is a random value the agent keeps for its
 * lifetime (PostgreSQL keeps one per cluster).
 */
extern HdScramServer *hd_scram_server_new_mock(const char *user,
											   const unsigned char mock_key[HD_SCRAM_KEY_LEN]);

extern void hd_scram_server_free(HdScramServer *server);

/* Test hook: use this nonce (printable, no ',', 1..64 characters) instead of a random one. */
extern bool hd_scram_server_set_nonce(HdScramServer *server, const char *nonce);

/*
 * The client-first-message (the SASLInitialResponse data; if the client sent
 * none, length -1, answer with an empty AuthenticationSASLContinue and pass
 * the next SASLResponse here). On HD_AUTH_OK, *out is the
 * server-first-message for AuthenticationSASLContinue.
 */
extern HdAuthStatus hd_scram_server_handle_client_first(HdScramServer *server,
														const char *data, size_t len,
														const char **out,
														HdAuthError *err);

/*
 * The client-final-message. HD_AUTH_OK: the proof is right; *out is the
 * server-final-message for AuthenticationSASLFinal (then AuthenticationOk).
 * HD_AUTH_FAILED: wrong password (or a mock exchange).
 */
extern HdAuthStatus hd_scram_server_handle_client_final(HdScramServer *server,
														const char *data, size_t len,
														const char **out,
														HdAuthError *err);

/*
 * After a successful exchange: the client's ClientKey (its proof XOR the
 * ClientSignature; H(ClientKey) is the StoredKey just checked) and the
 * secret's ServerKey. With them the agent can log in to the origin as the
 * same role without knowing the password (hd_scram_client_new_keys(), as
 * PgBouncer's SCRAM pass-through), provided the origin stores the same
 * secret. False before success.
 */
extern bool hd_scram_server_passthrough_keys(const HdScramServer *server,
											 unsigned char client_key[HD_SCRAM_KEY_LEN],
											 unsigned char server_key[HD_SCRAM_KEY_LEN]);

/* ---- client side: the agent logging in to the origin ---- */

typedef struct HdScramClient HdScramClient;

/*
 * With a plaintext password, SASLprep'd as libpq does (saslprep.h; a
 * password this module cannot prepare is refused here). NULL and *err on
 * failure.
 */
extern HdScramClient *hd_scram_client_new_password(const char *password,
												   HdAuthError *err);

/*
 * With pass-through keys (hd_scram_server_passthrough_keys()). The server's
 * salt and iteration count are then accepted as they come, unchecked: the
 * keys were derived from the password with the salt and count of the
 * agent's copy of the secret, and cannot be derived again, so the server's
 * values cannot be used. If the origin's secret differs from that copy, its
 * StoredKey is not H(ClientKey) and it refuses the proof, and its
 * ServerSignature does not verify either; nothing is gained by checking
 * earlier, and nothing is lost by not checking.
 */
extern HdScramClient *hd_scram_client_new_keys(const unsigned char client_key[HD_SCRAM_KEY_LEN],
											   const unsigned char server_key[HD_SCRAM_KEY_LEN],
											   HdAuthError *err);

extern void hd_scram_client_free(HdScramClient *client);

/* Test hook: use this nonce (printable, no ',', 1..64 characters) instead of a random one. */
extern bool hd_scram_client_set_nonce(HdScramClient *client, const char *nonce);

/*
 * The user name to send in n= (RFC 5802 saslname, ',' and '=' escaped).
 * libpq sends an empty one, and so do we unless told: PostgreSQL ignores it.
 * Lets tests reproduce RFC 7677's example, which has n=user.
 */
extern bool hd_scram_client_set_username(HdScramClient *client, const char *user);

/* *out: the client-first-message for SASLInitialResponse (mechanism HD_SCRAM_MECHANISM). */
extern HdAuthStatus hd_scram_client_first(HdScramClient *client, const char **out,
										  HdAuthError *err);

/*
 * The server-first-message (AuthenticationSASLContinue data). *out: the
 * client-final-message, with the proof, for SASLResponse.
 */
extern HdAuthStatus hd_scram_client_handle_server_first(HdScramClient *client,
														const char *data, size_t len,
														const char **out,
														HdAuthError *err);

/*
 * The server-final-message (AuthenticationSASLFinal data). HD_AUTH_OK only
 * if its signature proves that the server knows the secret; a wrong one
 * means someone in between is pretending to be the origin, and the login
 * must be abandoned even though the origin (or the impostor) said yes.
 */
extern HdAuthStatus hd_scram_client_handle_server_final(HdScramClient *client,
														const char *data, size_t len,
														HdAuthError *err);

#endif							/* HD_SCRAM_H */
