/*
 * test_auth.c
 *    Unit tests of agent/auth/auth.c, agent/auth/scram.c and agent/auth/saslprep.c, as a
 *    TAP program: make agent-unit && agent/tests/test_auth (prove runs it
 *    through t/005_auth_unit.pl).
 *
 * Where the expected values come from:
 *   - RFC 7677 section 3: the SCRAM-SHA-256 example exchange (user "user",
 *     password "pencil").
 *   - PostgreSQL 15.20 itself: the secrets below were read from pg_authid
 *     after "SET password_encryption = 'scram-sha-256'; CREATE ROLE <role>
 *     PASSWORD '<password>'" on a throwaway server (and 'md5' for hd_md5);
 *     the same roles logged in through this code's client side against that
 *     server, and psql logged in through its server side.
 *   - md5 values: echo -n 'secrethd_md5' | md5sum, and
 *     printf 'b632ed0bb6994b185d7ff662c3c0fa26\x01\x02\x03\x04' | md5sum.
 *
 * Inputs are copied into buffers of exactly their length (no terminating
 * NUL), so that AddressSanitizer catches any read past the end.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "auth/saslprep.h"
#include "auth/scram.h"

/* ---- TAP ---- */

typedef struct Tap
{
	int			run;
	int			failed;
} Tap;

static bool ok(Tap *tap, bool cond, const char *fmt,...) __attribute__((format(printf, 3, 4)));

static bool
ok(Tap *tap, bool cond, const char *fmt,...)
{
	va_list		ap;

	tap->run++;
	if (!cond)
		tap->failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap->run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static void
diag_error(const HdAuthError *err)
{
	printf("#   error: [%s] %s%s%s\n", err->sqlstate, err->message,
		   err->detail[0] ? " / " : "", err->detail);
}

/* An error with this SQLSTATE, message and (unless NULL) detail? */
static bool
error_is(const HdAuthError *err, const char *sqlstate, const char *message,
		 const char *detail)
{
	bool		same = strcmp(err->sqlstate, sqlstate) == 0 &&
		strcmp(err->message, message) == 0 &&
		(detail == NULL || strcmp(err->detail, detail) == 0);

	if (!same)
		diag_error(err);
	return same;
}

/* ---- fixtures ---- */

/* RFC 7677, section 3 */
#define RFC_CLIENT_NONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SERVER_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CLIENT_NONCE
#define RFC_SERVER_FIRST "r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_CLIENT_NONCE RFC_SERVER_NONCE \
	",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
/*
 * RFC 7677 prints "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjRESQ=", which is
 * not even base64 of 32 bytes (43 characters): the RFC's typo. The real
 * ServerSignature of the example, as every implementation computes it:
 */
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
#define RFC_SERVER_FINAL_AS_PRINTED "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjRESQ="
/* the secret PostgreSQL would store for "pencil" with RFC_SALT (computed with Python's hashlib) */
#define RFC_SECRET "SCRAM-SHA-256$4096:" RFC_SALT \
	"$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
/* HMAC(SaltedPassword, "Client Key") of that secret */
static const char rfc_client_key_hex[] =
	"a60fc923d67e8644a92d16b96eda5ef4656b0c725c484374be25535576996e8b";

/* From PostgreSQL 15.20's pg_authid (see the top of this file). */
#define PG_SECRET_PW "SCRAM-SHA-256$4096:Ox2Mj5n/VdlQ1L6gF4mSfg==$BtJl3q0QuAmbfyLhk/Ek6QAqehwtHtLejN5VDQ363LE=:ryh9hGvyvuCtonl8wSCGTLpDGceqcv+kdxs24tnqWOQ="
#define PG_PASSWORD_LATIN "P\xC3\xA4ssw\xC3\xB6rd\xC2\xBD\xC2\xAA\xC2\xA8\xC2\xB5"	/* Pässwörd½ª¨µ */
#define PG_SECRET_LATIN "SCRAM-SHA-256$4096:4QwqSZ+liDG4j1412GDzuQ==$rDAlQedyeCNK7DVnbXa6NdJu+vVSic8sGjf5SXu4mZk=:LSzezisw9smH7t5I02REB08LuUL+DxXBWN80bB2q7aQ="
#define PG_PASSWORD_NBSP "a\xC2\xA0" "b\xC2\xAD" "c"	/* a, NBSP, b, soft hyphen, c */
#define PG_SECRET_NBSP "SCRAM-SHA-256$4096:iA091KcpjeGZHRgojDO46w==$FxmOclGfstIqtfaJwuTgB6iukEVbPVsW1j9wrvXrNbE=:kBiCO/UViqOwSgCbuHqLucqVFEuLYdgL66KKM//u5iU="
#define PG_PASSWORD_CTRL "\xC3\xA9\x01x"	/* é, U+0001, x: prohibited, so hashed raw */
#define PG_SECRET_CTRL "SCRAM-SHA-256$4096:us3ccp0Jdr5wyOTV1Z8iDw==$Vhm4gQBZpwqL+kw5QlDc2WCPNci5y1EWIV36wEC0qyY=:yFsW34HrE3h4qZcalr/eu/xFWFs+jKSPNtD8YnvLaqM="
#define PG_PASSWORD_CJK "\xE3\x83\x91\xE3\x82\xB9\xE3\x83\xAF\xE3\x83\xBC\xE3\x83\x89"	/* パスワード */
#define PG_SECRET_CJK "SCRAM-SHA-256$4096:d53JHgLv2XLbkt9Tol0FPg==$rOnRPxz5dgAYCPvJrTkXoqMznkcu4HKarFu2iOLiWgo=:KDHMPpT5B+iJC70R6l9yCevHj3zohjAG0A99mFvQkLk="
#define PG_MD5_SECRET "md5b632ed0bb6994b185d7ff662c3c0fa26"	/* role hd_md5, password "secret" */
#define MD5_RESPONSE_01020304 "md558945c2ce3b30fbf4304c301bfc21ef8"

static const unsigned char md5_salt[HD_MD5_SALT_LEN] = {1, 2, 3, 4};

static HdScramSecret
secret_of(const char *text)
{
	HdScramSecret secret;

	if (!hd_scram_parse_secret(text, &secret))
	{
		printf("Bail out! fixture secret does not parse: %s\n", text);
		exit(255);
	}
	return secret;
}

static void
hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/* A copy of s[0 .. len) in a buffer of exactly len bytes (caller frees). */
static char *
exact(const char *s, size_t len)
{
	char	   *copy = malloc(len ? len : 1);

	memcpy(copy, s, len);
	return copy;
}

/* ---- the steps, each on an exact-size copy of its input ---- */

static HdAuthStatus
srv_first(HdScramServer *server, const char *msg, size_t len, const char **out,
		  HdAuthError *err)
{
	char	   *copy = exact(msg, len);
	HdAuthStatus status = hd_scram_server_handle_client_first(server, copy, len, out, err);

	free(copy);
	return status;
}

static HdAuthStatus
srv_final(HdScramServer *server, const char *msg, size_t len, const char **out,
		  HdAuthError *err)
{
	char	   *copy = exact(msg, len);
	HdAuthStatus status = hd_scram_server_handle_client_final(server, copy, len, out, err);

	free(copy);
	return status;
}

static HdAuthStatus
cli_first(HdScramClient *client, const char *msg, size_t len, const char **out,
		  HdAuthError *err)
{
	char	   *copy = exact(msg, len);
	HdAuthStatus status = hd_scram_client_handle_server_first(client, copy, len, out, err);

	free(copy);
	return status;
}

static HdAuthStatus
cli_final(HdScramClient *client, const char *msg, size_t len, HdAuthError *err)
{
	char	   *copy = exact(msg, len);
	HdAuthStatus status = hd_scram_client_handle_server_final(client, copy, len, err);

	free(copy);
	return status;
}

/* Result of a whole in-process exchange. */
typedef struct Exchange
{
	HdAuthStatus server;		/* of the last server step run */
	HdAuthStatus client;		/* of the last client step run */
	HdAuthError server_err;
	HdAuthError client_err;
} Exchange;

/* Runs client and server against each other until one stops. */
static Exchange
run_exchange(HdScramClient *client, HdScramServer *server)
{
	Exchange	x;
	const char *c1,
			   *s1,
			   *c2,
			   *s2;

	memset(&x, 0, sizeof(x));
	x.client = hd_scram_client_first(client, &c1, &x.client_err);
	if (x.client != HD_AUTH_OK)
		return x;
	x.server = srv_first(server, c1, strlen(c1), &s1, &x.server_err);
	if (x.server != HD_AUTH_OK)
		return x;
	x.client = cli_first(client, s1, strlen(s1), &c2, &x.client_err);
	if (x.client != HD_AUTH_OK)
		return x;
	x.server = srv_final(server, c2, strlen(c2), &s2, &x.server_err);
	if (x.server != HD_AUTH_OK)
		return x;
	x.client = cli_final(client, s2, strlen(s2), &x.client_err);
	return x;
}

/* ClientProof for a ClientKey over an AuthMessage, computed here independently. */
static void
make_proof(const unsigned char client_key[32], const char *auth, char out[45])
{
	unsigned char stored[32];
	unsigned char sig[32];
	unsigned char proof[32];
	unsigned int len = 32;

	EVP_Digest(client_key, 32, stored, &len, EVP_sha256(), NULL);
	HMAC(EVP_sha256(), stored, 32, (const unsigned char *) auth, strlen(auth), sig, &len);
	for (int i = 0; i < 32; i++)
		proof[i] = client_key[i] ^ sig[i];
	hd_base64_encode(proof, 32, out);
}

/* ---- base64 ---- */

static void
test_base64(Tap *tap)
{
	static const char *const vectors[][2] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}
	};
	static const char *const bad[] = {
		"Zg=", "Zg", "Zh==", "Zm9=", "Zm=v", "=Zm9", "Zm9\n", "Zm9v====",
		"Zg==Zg==", "Zm9*", "Z===", "Zm 9"
	};
	bool		enc_ok = true;
	bool		dec_ok = true;
	unsigned char buf[16];
	size_t		n;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
	{
		char		out[16];
		size_t		len = strlen(vectors[i][0]);

		enc_ok &= hd_base64_encode((const unsigned char *) vectors[i][0], len, out) ==
			strlen(vectors[i][1]) && strcmp(out, vectors[i][1]) == 0 &&
			hd_base64_encoded_len(len) == strlen(vectors[i][1]);
		dec_ok &= hd_base64_decode(vectors[i][1], strlen(vectors[i][1]), buf,
								   sizeof(buf), &n) &&
			n == len && memcmp(buf, vectors[i][0], len) == 0;
	}
	ok(tap, enc_ok, "base64: RFC 4648 test vectors encode");
	ok(tap, dec_ok, "base64: RFC 4648 test vectors decode");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		char	   *copy = exact(bad[i], strlen(bad[i]));

		ok(tap, !hd_base64_decode(copy, strlen(bad[i]), buf, sizeof(buf), &n),
		   "base64: refuses non-canonical or invalid \"%.*s\"",
		   (int) strcspn(bad[i], "\n"), bad[i]);
		free(copy);
	}
	ok(tap, !hd_base64_decode("Zm9vYmFy", 8, buf, 5, &n),
	   "base64: refuses output longer than the buffer");
}

/* ---- SASLprep ---- */

static void
saslprep_case(Tap *tap, const char *in, HdSaslprepResult want, const char *out,
			  const char *what)
{
	char	   *got = NULL;
	HdSaslprepResult r = hd_saslprep_password(in, &got);

	ok(tap, r == want && (out == NULL ? got == NULL : got && strcmp(got, out) == 0),
	   "saslprep: %s", what);
	free(got);
}

static void
test_saslprep(Tap *tap)
{
	saslprep_case(tap, "pencil", HD_SASLPREP_OK, "pencil", "ASCII unchanged");
	saslprep_case(tap, "a\x01" "b", HD_SASLPREP_OK, "a\x01" "b",
				  "ASCII with a control character unchanged (PostgreSQL skips ASCII)");
	saslprep_case(tap, PG_PASSWORD_NBSP, HD_SASLPREP_OK, "a bc",
				  "NBSP mapped to space, soft hyphen to nothing");
	saslprep_case(tap, PG_PASSWORD_LATIN, HD_SASLPREP_OK,
				  "P\xC3\xA4ssw\xC3\xB6rd1\xE2\x81\x84" "2a \xCC\x88\xCE\xBC",
				  "Latin-1 normalized to NFKC");
	saslprep_case(tap, "a\xE3\x80\x80" "b", HD_SASLPREP_OK, "a b",
				  "U+3000 ideographic space mapped to space");
	saslprep_case(tap, PG_PASSWORD_CTRL, HD_SASLPREP_OK, PG_PASSWORD_CTRL,
				  "prohibited character: raw bytes");
	saslprep_case(tap, "\xE2\x80\xA8x\xE3\x83\x91", HD_SASLPREP_OK, "\xE2\x80\xA8x\xE3\x83\x91",
				  "prohibited U+2028 beside a CJK character: raw bytes");
	saslprep_case(tap, "\xC2\xAD", HD_SASLPREP_OK, "\xC2\xAD",
				  "empty after mapping: raw bytes");
	saslprep_case(tap, "a\xC3\x28", HD_SASLPREP_OK, "a\xC3\x28", "invalid UTF-8: raw bytes");
	saslprep_case(tap, "\xC0\xAF", HD_SASLPREP_OK, "\xC0\xAF", "overlong UTF-8: raw bytes");
	saslprep_case(tap, "\xED\xA0\x80", HD_SASLPREP_OK, "\xED\xA0\x80",
				  "UTF-8 surrogate: raw bytes");
	saslprep_case(tap, "x\xE2\x82", HD_SASLPREP_OK, "x\xE2\x82", "truncated UTF-8: raw bytes");
	saslprep_case(tap, PG_PASSWORD_CJK, HD_SASLPREP_UNSUPPORTED, NULL,
				  "beyond Latin-1: refused, not guessed");
}

/* ---- secrets ---- */

static void
test_secret_parse(Tap *tap)
{
	static const char *const bad[] = {
		"", "pw", "SCRAM-SHA-256$", "scram-sha-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$0:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$-1:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096x:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$2147483648:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22Z!J0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4g==:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=$",
	};
	HdScramSecret secret;
	char		text[HD_SCRAM_SECRET_BUFSIZE];
	int			refused = 0;

	ok(tap, hd_scram_parse_secret(PG_SECRET_PW, &secret) && secret.iterations == 4096 &&
	   secret.salt_len == 16, "secret: PostgreSQL's secret parses");
	ok(tap, hd_scram_format_secret(&secret, text, sizeof(text)) == strlen(PG_SECRET_PW) &&
	   strcmp(text, PG_SECRET_PW) == 0, "secret: formats back to the same text");
	ok(tap, hd_scram_format_secret(&secret, text, 20) == 0 && text[0] == '\0',
	   "secret: formatting refuses a short buffer");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		refused += !hd_scram_parse_secret(bad[i], &secret);
	ok(tap, refused == (int) (sizeof(bad) / sizeof(bad[0])),
	   "secret: %d malformed secrets refused (scheme, count 0/-1/junk/overflow, salt, key lengths, trailer)",
	   refused);
	ok(tap, hd_secret_kind(PG_MD5_SECRET) == HD_SECRET_MD5 &&
	   hd_secret_kind("md5B632ED0BB6994B185D7FF662C3C0FA26") == HD_SECRET_PLAINTEXT &&
	   hd_secret_kind("md5b632ed0bb6994b185d7ff662c3c0fa2") == HD_SECRET_PLAINTEXT &&
	   hd_secret_kind(PG_SECRET_PW) == HD_SECRET_SCRAM &&
	   hd_secret_kind("pw") == HD_SECRET_PLAINTEXT,
	   "secret: kinds as PostgreSQL's get_password_type() (md5 is lowercase hex)");
}

static void
test_secret_build(Tap *tap)
{
	HdScramSecret secret;
	HdScramSecret again;
	HdAuthError err;
	char		text[HD_SCRAM_SECRET_BUFSIZE];
	char		text2[HD_SCRAM_SECRET_BUFSIZE];
	unsigned char salt[16];
	size_t		n;
	bool		match = false;

	hd_base64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt), &n);
	ok(tap, hd_scram_secret_from_password("pencil", salt, n, 4096, &secret, &err) == HD_AUTH_OK &&
	   hd_scram_format_secret(&secret, text, sizeof(text)) > 0 &&
	   strcmp(text, RFC_SECRET) == 0, "secret: from \"pencil\" and the RFC 7677 salt");
	ok(tap, hd_scram_build_secret("pencil", text, sizeof(text), &err) == HD_AUTH_OK &&
	   hd_scram_build_secret("pencil", text2, sizeof(text2), &err) == HD_AUTH_OK &&
	   hd_scram_parse_secret(text, &secret) && hd_scram_parse_secret(text2, &again) &&
	   secret.iterations == 4096 && secret.salt_len == 16 &&
	   memcmp(secret.salt, again.salt, 16) != 0,
	   "secret: built with a random 16-byte salt and 4096 iterations");
	ok(tap, hd_scram_verify_plain_password(&secret, "pencil", &match, &err) == HD_AUTH_OK &&
	   match, "secret: a built secret verifies its password");
	ok(tap, hd_scram_build_secret(PG_PASSWORD_CJK, text, sizeof(text), &err) == HD_AUTH_ERROR &&
	   error_is(&err, HD_SQLSTATE_FEATURE_NOT_SUPPORTED,
				"password cannot be prepared for SCRAM authentication", NULL),
	   "secret: a password needing full Unicode normalization is refused");
	ok(tap, hd_scram_secret_from_password("x", salt, 0, 4096, &secret, &err) == HD_AUTH_ERROR &&
	   hd_scram_secret_from_password("x", salt, 16, 0, &secret, &err) == HD_AUTH_ERROR,
	   "secret: empty salt and iteration count 0 refused");
}

static void
verify_plain_case(Tap *tap, const char *secret_text, const char *password,
				  bool want, const char *what)
{
	HdScramSecret secret = secret_of(secret_text);
	HdAuthError err;
	bool		match = !want;

	ok(tap, hd_scram_verify_plain_password(&secret, password, &match, &err) == HD_AUTH_OK &&
	   match == want, "PostgreSQL secret: %s", what);
}

static void
test_pg_secrets(Tap *tap)
{
	HdScramSecret secret = secret_of(PG_SECRET_CJK);
	HdAuthError err;
	bool		match;

	verify_plain_case(tap, PG_SECRET_PW, "pw", true, "\"pw\" matches");
	verify_plain_case(tap, PG_SECRET_PW, "px", false, "\"px\" does not match");
	verify_plain_case(tap, PG_SECRET_PW, "", false, "\"\" does not match");
	verify_plain_case(tap, PG_SECRET_LATIN, PG_PASSWORD_LATIN, true,
					  "Latin-1 password matches (SASLprep NFKC as PostgreSQL)");
	verify_plain_case(tap, PG_SECRET_NBSP, PG_PASSWORD_NBSP, true,
					  "NBSP and soft hyphen password matches (SASLprep mapping)");
	verify_plain_case(tap, PG_SECRET_NBSP, "a bc", true,
					  "... and so does its mapped form");
	verify_plain_case(tap, PG_SECRET_CTRL, PG_PASSWORD_CTRL, true,
					  "password with a prohibited character matches (raw bytes)");
	ok(tap, hd_scram_verify_plain_password(&secret, PG_PASSWORD_CJK, &match, &err) == HD_AUTH_ERROR &&
	   strcmp(err.sqlstate, HD_SQLSTATE_FEATURE_NOT_SUPPORTED) == 0,
	   "PostgreSQL secret: CJK password refused as unsupported, not mismatched");
}

/* ---- RFC 7677 ---- */

static void
test_rfc7677(Tap *tap)
{
	HdScramSecret secret = secret_of(RFC_SECRET);
	HdScramServer *server = hd_scram_server_new(&secret, "user");
	HdScramClient *client = hd_scram_client_new_password("pencil", NULL);
	HdAuthError err;
	const char *out;
	unsigned char ck[32];
	unsigned char sk[32];
	unsigned char want_ck[32];

	hex_to_bytes(rfc_client_key_hex, want_ck, 32);
	ok(tap, hd_scram_client_set_nonce(client, RFC_CLIENT_NONCE) &&
	   hd_scram_client_set_username(client, "user") &&
	   hd_scram_server_set_nonce(server, RFC_SERVER_NONCE), "RFC 7677: nonces injected");
	ok(tap, hd_scram_client_first(client, &out, &err) == HD_AUTH_OK &&
	   strcmp(out, RFC_CLIENT_FIRST) == 0, "RFC 7677: client-first-message");
	ok(tap, srv_first(server, RFC_CLIENT_FIRST, strlen(RFC_CLIENT_FIRST), &out, &err) == HD_AUTH_OK &&
	   strcmp(out, RFC_SERVER_FIRST) == 0, "RFC 7677: server-first-message");
	ok(tap, cli_first(client, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out, &err) == HD_AUTH_OK &&
	   strcmp(out, RFC_CLIENT_FINAL) == 0, "RFC 7677: client-final-message and its proof");
	ok(tap, srv_final(server, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL), &out, &err) == HD_AUTH_OK &&
	   strcmp(out, RFC_SERVER_FINAL) == 0, "RFC 7677: proof accepted, server-final-message");
	ok(tap, cli_final(client, RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL), &err) == HD_AUTH_OK,
	   "RFC 7677: client accepts the server signature");
	ok(tap, hd_scram_server_passthrough_keys(server, ck, sk) &&
	   memcmp(ck, want_ck, 32) == 0 && memcmp(sk, secret.server_key, 32) == 0,
	   "RFC 7677: server recovers ClientKey from the proof, and gives ServerKey");
	hd_scram_server_free(server);
	hd_scram_client_free(client);
}

/* ---- in-process exchanges ---- */

static void
test_exchange_password(Tap *tap)
{
	char		text[HD_SCRAM_SECRET_BUFSIZE];
	HdScramSecret secret;
	HdScramServer *server;
	HdScramClient *client;
	HdAuthError err;
	Exchange	x;

	hd_scram_build_secret("correct horse", text, sizeof(text), &err);
	secret = secret_of(text);
	server = hd_scram_server_new(&secret, "alice");
	client = hd_scram_client_new_password("correct horse", &err);
	x = run_exchange(client, server);
	ok(tap, x.server == HD_AUTH_OK && x.client == HD_AUTH_OK,
	   "exchange: password, random nonces: both sides succeed");
	hd_scram_server_free(server);
	hd_scram_client_free(client);

	server = hd_scram_server_new(&secret, "alice");
	client = hd_scram_client_new_password("wrong horse", &err);
	x = run_exchange(client, server);
	ok(tap, x.server == HD_AUTH_FAILED &&
	   error_is(&x.server_err, HD_SQLSTATE_INVALID_PASSWORD,
				"password authentication failed for user \"alice\"", ""),
	   "exchange: wrong password fails as PostgreSQL's (28P01)");
	hd_scram_server_free(server);
	hd_scram_client_free(client);
}

static void
pg_secret_exchange(Tap *tap, const char *secret_text, const char *password,
				   const char *what)
{
	HdScramSecret secret = secret_of(secret_text);
	HdScramServer *server = hd_scram_server_new(&secret, "hd");
	HdScramClient *client = hd_scram_client_new_password(password, NULL);
	Exchange	x = run_exchange(client, server);

	ok(tap, x.server == HD_AUTH_OK && x.client == HD_AUTH_OK,
	   "exchange: PostgreSQL's secret, %s", what);
	hd_scram_server_free(server);
	hd_scram_client_free(client);
}

/* Logs in once with the password; returns the server's pass-through keys. */
static bool
first_login(const HdScramSecret *secret, const char *password, unsigned char ck[32],
			unsigned char sk[32])
{
	HdScramServer *server = hd_scram_server_new(secret, "bob");
	HdScramClient *client = hd_scram_client_new_password(password, NULL);
	Exchange	x = run_exchange(client, server);
	bool		got = x.server == HD_AUTH_OK && x.client == HD_AUTH_OK &&
		hd_scram_server_passthrough_keys(server, ck, sk);

	hd_scram_server_free(server);
	hd_scram_client_free(client);
	return got;
}

static void
test_exchange_passthrough(Tap *tap)
{
	HdScramSecret secret = secret_of(PG_SECRET_PW);
	HdScramSecret other;
	HdScramServer *server;
	HdScramClient *client;
	HdAuthError err;
	unsigned char ck[32];
	unsigned char sk[32];
	unsigned char ck2[32];
	unsigned char sk2[32];
	Exchange	x;

	ok(tap, first_login(&secret, "pw", ck, sk), "pass-through: keys from a client's login");
	server = hd_scram_server_new(&secret, "bob");
	client = hd_scram_client_new_keys(ck, sk, &err);
	x = run_exchange(client, server);
	ok(tap, x.server == HD_AUTH_OK && x.client == HD_AUTH_OK,
	   "pass-through: the keys log in again without the password");
	ok(tap, hd_scram_server_passthrough_keys(server, ck2, sk2) &&
	   memcmp(ck, ck2, 32) == 0 && memcmp(sk, sk2, 32) == 0,
	   "pass-through: and the origin recovers the same ClientKey");
	hd_scram_server_free(server);
	hd_scram_client_free(client);

	/* same password, another salt: the keys embody the first salt */
	{
		char		text[HD_SCRAM_SECRET_BUFSIZE];

		hd_scram_build_secret("pw", text, sizeof(text), &err);
		other = secret_of(text);
	}
	server = hd_scram_server_new(&other, "bob");
	client = hd_scram_client_new_keys(ck, sk, &err);
	x = run_exchange(client, server);
	ok(tap, x.client == HD_AUTH_OK && x.server == HD_AUTH_FAILED,
	   "pass-through: refused by an origin whose secret has another salt");
	hd_scram_server_free(server);
	hd_scram_client_free(client);

	/* keys that match the StoredKey but not the ServerKey: an impostor origin */
	sk[0] ^= 1;
	server = hd_scram_server_new(&secret, "bob");
	client = hd_scram_client_new_keys(ck, sk, &err);
	x = run_exchange(client, server);
	ok(tap, x.server == HD_AUTH_OK && x.client == HD_AUTH_ERROR &&
	   error_is(&x.client_err, HD_SQLSTATE_INVALID_AUTHORIZATION,
				"incorrect server signature", NULL),
	   "pass-through: a server signature from another ServerKey is refused");
	hd_scram_server_free(server);
	hd_scram_client_free(client);
}

/* The salt a server-first-message announces, as text. */
static void
mock_salt(const char *user, const unsigned char key[32], char out[64])
{
	HdScramServer *server = hd_scram_server_new_mock(user, key);
	HdAuthError err;
	const char *first;
	const char *s;

	out[0] = '\0';
	if (srv_first(server, "n,,n=,r=abc", 11, &first, &err) == HD_AUTH_OK &&
		(s = strstr(first, ",s=")) != NULL)
		snprintf(out, 64, "%.*s", (int) strcspn(s + 3, ","), s + 3);
	hd_scram_server_free(server);
}

static void
test_mock(Tap *tap)
{
	unsigned char key[32] = {7};
	unsigned char ck[32];
	unsigned char sk[32];
	char		a1[64],
				a2[64],
				b[64];
	HdScramServer *server = hd_scram_server_new_mock("ghost", key);
	HdScramClient *client = hd_scram_client_new_password("anything", NULL);
	Exchange	x = run_exchange(client, server);

	ok(tap, x.server == HD_AUTH_FAILED &&
	   error_is(&x.server_err, HD_SQLSTATE_INVALID_PASSWORD,
				"password authentication failed for user \"ghost\"", NULL) &&
	   !hd_scram_server_passthrough_keys(server, ck, sk),
	   "mock: runs to the end, then fails like a wrong password");
	hd_scram_server_free(server);
	hd_scram_client_free(client);
	mock_salt("ghost", key, a1);
	mock_salt("ghost", key, a2);
	mock_salt("phantom", key, b);
	ok(tap, strlen(a1) == 24 && strcmp(a1, a2) == 0 && strcmp(a1, b) != 0,
	   "mock: salt stable per role, different across roles");
}

/* The 'y' flag: the client could bind but thinks we cannot; c= must be "eSws". */
static void
test_cbind_y(Tap *tap)
{
	HdScramSecret secret = secret_of(RFC_SECRET);
	HdScramServer *server = hd_scram_server_new(&secret, "user");
	HdAuthError err;
	const char *first;
	const char *final;
	unsigned char ck[32];
	char		auth[256];
	char		proof[45];
	char		msg[256];

	hex_to_bytes(rfc_client_key_hex, ck, 32);
	hd_scram_server_set_nonce(server, "SRV");
	srv_first(server, "y,,n=,r=abc", 11, &first, &err);
	snprintf(auth, sizeof(auth), "n=,r=abc,%s,c=eSws,r=abcSRV", first);
	make_proof(ck, auth, proof);
	snprintf(msg, sizeof(msg), "c=eSws,r=abcSRV,p=%s", proof);
	ok(tap, srv_final(server, msg, strlen(msg), &final, &err) == HD_AUTH_OK,
	   "server: flag 'y' with c=eSws accepted");
	hd_scram_server_free(server);
}

/* An extension before p= is part of client-final-message-without-proof. */
static void
test_final_extension(Tap *tap)
{
	HdScramSecret secret = secret_of(RFC_SECRET);
	HdScramServer *server = hd_scram_server_new(&secret, "user");
	HdAuthError err;
	const char *first;
	const char *final;
	unsigned char ck[32];
	char		auth[256];
	char		proof[45];
	char		msg[256];

	hex_to_bytes(rfc_client_key_hex, ck, 32);
	hd_scram_server_set_nonce(server, "SRV");
	srv_first(server, "n,,n=,r=abc,x=ext", 17, &first, &err);
	snprintf(auth, sizeof(auth), "n=,r=abc,x=ext,%s,c=biws,r=abcSRV,x=1", first);
	make_proof(ck, auth, proof);
	snprintf(msg, sizeof(msg), "c=biws,r=abcSRV,x=1,p=%s,", proof);
	ok(tap, srv_final(server, msg, strlen(msg), &final, &err) == HD_AUTH_OK,
	   "server: extensions in both client messages (and a trailing comma) accepted");
	hd_scram_server_free(server);
}

/* ---- server side: malformed input ---- */

typedef struct BadInput
{
	const char *msg;
	size_t		len;			/* 0: strlen(msg) */
	const char *sqlstate;
	const char *message;
	const char *detail;			/* NULL: not checked */
	const char *what;
} BadInput;

static void
test_server_bad_first(Tap *tap)
{
	static const BadInput cases[] = {
		{"", 0, "08P01", "malformed SCRAM message", "The message is empty.", "empty"},
		{"n,,n=,r=a\0b", 11, "08P01", "malformed SCRAM message",
		"Message length does not match input length.", "NUL inside"},
		{"p=tls-server-end-point,,n=,r=abc", 0, "08P01", "malformed SCRAM message",
			"The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data.",
		"channel binding 'p' refused"},
		{"x,,n=,r=abc", 0, "08P01", "malformed SCRAM message",
		"Unexpected channel-binding flag \"'x'\".", "unknown flag"},
		{"n", 0, "08P01", "malformed SCRAM message",
		"Comma expected, but found character \"0x00\".", "truncated after the flag"},
		{"n,a=admin,n=,r=abc", 0, "0A000",
		"client uses authorization identity, but it is not supported", "", "authzid"},
		{"n,x,n=,r=abc", 0, "08P01", "malformed SCRAM message",
		"Unexpected attribute \"'x'\" in client-first-message.", "junk for authzid"},
		{"n,,m=ext,n=,r=abc", 0, "0A000",
		"client requires an unsupported SCRAM extension", "", "mandatory extension"},
		{"n,,r=abc", 0, "08P01", "malformed SCRAM message",
		"Expected attribute \"n\" but found \"'r'\".", "missing user name"},
		{"n,,n=", 0, "08P01", "malformed SCRAM message",
		"Expected attribute \"r\" but found \"0x00\".", "missing nonce"},
		{"n,,n=,r", 0, "08P01", "malformed SCRAM message",
		"Expected character \"=\" for attribute \"r\".", "nonce without '='"},
		{"n,,n=,r=ab\x01" "c", 0, "08P01", "non-printable characters in SCRAM nonce", "",
		"non-printable nonce"},
		{"n,,n=,r=ab\xC3\xA9", 0, "08P01", "non-printable characters in SCRAM nonce", "",
		"non-ASCII nonce"},
		{"n,,n=,r=abc,1=x", 0, "08P01", "malformed SCRAM message",
		"Attribute expected, but found invalid character \"'1'\".", "bad extension name"},
		{"n,,n=,r=abc,x", 0, "08P01", "malformed SCRAM message",
		"Expected character \"=\" for attribute \"x\".", "extension without '='"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		HdScramSecret secret = secret_of(RFC_SECRET);
		HdScramServer *server = hd_scram_server_new(&secret, "user");
		const BadInput *c = &cases[i];
		size_t		len = c->len ? c->len : strlen(c->msg);
		HdAuthError err;
		const char *out = "x";
		HdAuthStatus status = srv_first(server, c->msg, len, &out, &err);

		ok(tap, status == HD_AUTH_ERROR && out == NULL &&
		   error_is(&err, c->sqlstate, c->message, c->detail),
		   "server client-first: %s", c->what);
		hd_scram_server_free(server);
	}
}

/* A server that has answered "n,,n=,r=abc" with nonce "SRV". */
static HdScramServer *
server_after_first(void)
{
	static HdScramSecret secret;
	HdScramServer *server;
	HdAuthError err;
	const char *out;

	secret = secret_of(RFC_SECRET);
	server = hd_scram_server_new(&secret, "user");
	hd_scram_server_set_nonce(server, "SRV");
	srv_first(server, "n,,n=,r=abc", 11, &out, &err);
	return server;
}

/* The right client-final-message for server_after_first(). */
static void
good_final(char msg[256])
{
	unsigned char ck[32];
	char		auth[256];
	char		proof[45];

	hex_to_bytes(rfc_client_key_hex, ck, 32);
	snprintf(auth, 256, "n=,r=abc,r=abcSRV,s=" RFC_SALT ",i=4096,c=biws,r=abcSRV");
	make_proof(ck, auth, proof);
	snprintf(msg, 256, "c=biws,r=abcSRV,p=%s", proof);
}

static void
test_server_bad_final(Tap *tap)
{
	char		good[256];
	char		flipped[256];
	char		extra[300];
	char		bigger[300];
	char		garbage[300];
	HdScramServer *server;
	HdAuthError err;
	const char *out;

	good_final(good);
	snprintf(flipped, sizeof(flipped), "%s", good);
	/* another base64 digit, not in the last group: another valid proof */
	flipped[strlen("c=biws,r=abcSRV,p=") + 3] =
		flipped[strlen("c=biws,r=abcSRV,p=") + 3] == 'A' ? 'B' : 'A';
	snprintf(extra, sizeof(extra), "%.*s", (int) strlen(good) - 4, good);
	strcat(extra, "AA==");		/* 31 bytes, not 32 */
	snprintf(bigger, sizeof(bigger), "c=biws,r=abcSRV,p=%044d", 0);	/* 33 bytes */
	snprintf(garbage, sizeof(garbage), "%s,x=1", good);
	{
		const BadInput cases[] = {
			{"c=eSws,r=abcSRV,p=x", 0, "08P01",
				"unexpected SCRAM channel-binding attribute in client-final-message", "",
			"c=eSws after flag 'n'"},
			{"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=abcSRV,p=x", 0, "08P01",
				"unexpected SCRAM channel-binding attribute in client-final-message", "",
			"channel binding data"},
			{"r=abcSRV,p=x", 0, "08P01", "malformed SCRAM message",
			"Expected attribute \"c\" but found \"'r'\".", "missing c="},
			{"c=biws,p=x", 0, "08P01", "malformed SCRAM message",
			"Expected attribute \"r\" but found \"'p'\".", "missing r="},
			{"c=biws,r=abcSRV", 0, "08P01", "malformed SCRAM message",
			"Attribute expected, but found end of string.", "missing p="},
			{"c=biws,r=abcSRV,p=!!!!", 0, "08P01", "malformed SCRAM message",
			"Malformed proof in client-final-message.", "proof not base64"},
			{extra, 0, "08P01", "malformed SCRAM message",
			"Malformed proof in client-final-message.", "proof of 31 bytes"},
			{bigger, 0, "08P01", "malformed SCRAM message",
			"Malformed proof in client-final-message.", "proof of 33 bytes"},
			{garbage, 0, "08P01", "malformed SCRAM message",
			"Garbage found at the end of client-final-message.", "attribute after p="},
			{"c=biws,r=abcSRX,p=x", 0, "08P01", "malformed SCRAM message",
			"Malformed proof in client-final-message.", "nonce checked after the syntax"},
			{flipped, 0, "28P01", "password authentication failed for user \"user\"", "",
			"wrong proof"},
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		{
			const BadInput *c = &cases[i];
			HdAuthStatus status;

			server = server_after_first();
			status = srv_final(server, c->msg, strlen(c->msg), &out, &err);
			ok(tap, status != HD_AUTH_OK && out == NULL &&
			   error_is(&err, c->sqlstate, c->message, c->detail),
			   "server client-final: %s", c->what);
			hd_scram_server_free(server);
		}
	}
	{
		char		wrong_nonce[256];

		snprintf(wrong_nonce, sizeof(wrong_nonce), "%s", good);
		wrong_nonce[strlen("c=biws,r=abcSR")] = 'X';
		server = server_after_first();
		ok(tap, srv_final(server, wrong_nonce, strlen(wrong_nonce), &out, &err) == HD_AUTH_ERROR &&
		   error_is(&err, "08P01", "invalid SCRAM response", "Nonce does not match."),
		   "server client-final: nonce mismatch");
		hd_scram_server_free(server);
	}
	server = server_after_first();
	ok(tap, srv_final(server, good, strlen(good), &out, &err) == HD_AUTH_OK,
	   "server client-final: the well-formed message is accepted");
	ok(tap, srv_final(server, good, strlen(good), &out, &err) == HD_AUTH_ERROR &&
	   error_is(&err, "XX000", "invalid SCRAM exchange state", NULL),
	   "server: a step after the end is refused");
	hd_scram_server_free(server);
}

static void
test_server_truncation(Tap *tap)
{
	char		good[256];
	size_t		len;
	int			refused = 0;
	HdScramServer *server;
	HdAuthError err;
	const char *out;

	good_final(good);
	len = strlen(good);
	for (size_t n = 0; n < len; n++)
	{
		server = server_after_first();
		refused += srv_final(server, good, n, &out, &err) == HD_AUTH_ERROR;
		hd_scram_server_free(server);
	}
	ok(tap, refused == (int) len,
	   "server: all %zu truncations of client-final-message refused", len);

	/* straight to the API: the exact-size copy of SIZE_MAX bytes cannot be made */
	server = hd_scram_server_new(&(HdScramSecret) {.iterations = 1, .salt_len = 1}, "u");
	ok(tap, hd_scram_server_handle_client_first(server, "n,,n=,r=abc", SIZE_MAX, &out,
												&err) == HD_AUTH_ERROR &&
	   error_is(&err, "08P01", "malformed SCRAM message",
				"The message is longer than 65535 bytes."),
	   "server: a huge length is refused before anything is read");
	hd_scram_server_free(server);

	server = server_after_first();
	ok(tap, srv_first(server, "n,,n=,r=abc", 11, &out, &err) == HD_AUTH_ERROR &&
	   srv_final(server, good, strlen(good), &out, &err) == HD_AUTH_ERROR,
	   "server: client-first twice refused, and the exchange is dead after it");
	hd_scram_server_free(server);
}

static void
test_server_long_first(Tap *tap)
{
	size_t		len = 65535;
	char	   *msg = malloc(len + 1);
	HdScramSecret secret = secret_of(RFC_SECRET);
	HdScramServer *server;
	HdAuthError err;
	const char *out;

	memcpy(msg, "n,,n=,r=", 8);
	memset(msg + 8, 'A', len + 1 - 8);
	server = hd_scram_server_new(&secret, "u");
	ok(tap, srv_first(server, msg, len, &out, &err) == HD_AUTH_OK &&
	   strlen(out) > len, "server: a 65535-byte client-first-message (long nonce) is handled");
	hd_scram_server_free(server);
	server = hd_scram_server_new(&secret, "u");
	ok(tap, srv_first(server, msg, len + 1, &out, &err) == HD_AUTH_ERROR,
	   "server: a 65536-byte message is refused");
	hd_scram_server_free(server);
	free(msg);
}

static void
test_mechanism(Tap *tap)
{
	HdAuthError err;

	ok(tap, hd_scram_check_mechanism("SCRAM-SHA-256", &err) == HD_AUTH_OK,
	   "mechanism: SCRAM-SHA-256 accepted");
	ok(tap, hd_scram_check_mechanism("SCRAM-SHA-256-PLUS", &err) == HD_AUTH_ERROR &&
	   error_is(&err, "08P01", "client selected an invalid SASL authentication mechanism", ""),
	   "mechanism: SCRAM-SHA-256-PLUS refused (not offered)");
	ok(tap, hd_scram_check_mechanism("PLAIN", &err) == HD_AUTH_ERROR &&
	   hd_scram_check_mechanism(NULL, &err) == HD_AUTH_ERROR,
	   "mechanism: others refused");
}

/* ---- client side: malformed input ---- */

/* A client that has sent its first message with nonce "cnonce". */
static HdScramClient *
client_after_first(bool with_keys)
{
	unsigned char ck[32] = {1};
	unsigned char sk[32] = {2};
	HdScramClient *client = with_keys ? hd_scram_client_new_keys(ck, sk, NULL) :
		hd_scram_client_new_password("pencil", NULL);
	HdAuthError err;
	const char *out;

	hd_scram_client_set_nonce(client, "cnonce");
	hd_scram_client_first(client, &out, &err);
	return client;
}

static void
test_client_bad_first(Tap *tap)
{
	static const BadInput cases[] = {
		{"", 0, "08P01", "malformed SCRAM message (empty message)", NULL, "empty"},
		{"r=cnonceS\0,s=" RFC_SALT ",i=1", 30, "08P01",
		"malformed SCRAM message (length mismatch)", NULL, "NUL inside"},
		{"s=" RFC_SALT ",i=4096", 0, "08P01",
		"malformed SCRAM message (attribute \"r\" expected)", NULL, "missing nonce"},
		{"r", 0, "08P01",
			"malformed SCRAM message (expected character \"=\" for attribute \"r\")", NULL,
		"truncated nonce"},
		{"r=xnonceS,s=" RFC_SALT ",i=4096", 0, "08P01",
		"invalid SCRAM response (nonce mismatch)", NULL, "nonce not ours"},
		{"r=cnonce,s=" RFC_SALT ",i=4096", 0, "08P01",
		"invalid SCRAM response (nonce mismatch)", NULL, "server added no nonce"},
		{"r=cnonc", 0, "08P01", "invalid SCRAM response (nonce mismatch)", NULL,
		"nonce shorter than ours"},
		{"r=cnonceS,i=4096", 0, "08P01",
		"malformed SCRAM message (attribute \"s\" expected)", NULL, "missing salt"},
		{"r=cnonceS,s=W22Z!J0SNY7soEsUEjb6gQ==,i=4096", 0, "08P01",
		"malformed SCRAM message (invalid salt)", NULL, "salt not base64"},
		{"r=cnonceS,s=,i=4096", 0, "08P01",
		"malformed SCRAM message (invalid salt)", NULL, "empty salt"},
		{"r=cnonceS,s=" RFC_SALT, 0, "08P01",
		"malformed SCRAM message (attribute \"i\" expected)", NULL, "missing count"},
		{"r=cnonceS,s=" RFC_SALT ",i=0", 0, "08P01",
		"malformed SCRAM message (invalid iteration count)", NULL, "iteration count 0"},
		{"r=cnonceS,s=" RFC_SALT ",i=-1", 0, "08P01",
		"malformed SCRAM message (invalid iteration count)", NULL, "iteration count -1"},
		{"r=cnonceS,s=" RFC_SALT ",i=2147483648", 0, "08P01",
		"malformed SCRAM message (invalid iteration count)", NULL, "iteration count > INT_MAX"},
		{"r=cnonceS,s=" RFC_SALT ",i=99999999999999999999999", 0, "08P01",
		"malformed SCRAM message (invalid iteration count)", NULL, "iteration count huge"},
		{"r=cnonceS,s=" RFC_SALT ",i=4k", 0, "08P01",
		"malformed SCRAM message (invalid iteration count)", NULL, "iteration count junk"},
		{"r=cnonceS,s=" RFC_SALT ",i=", 0, "08P01",
		"malformed SCRAM message (invalid iteration count)", NULL, "iteration count empty"},
		{"r=cnonceS,s=" RFC_SALT ",i=4096,x=1", 0, "08P01",
			"malformed SCRAM message (garbage at end of server-first-message)", NULL,
		"garbage at the end"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const BadInput *c = &cases[i];
		HdScramClient *client = client_after_first(false);
		size_t		len = c->len ? c->len : strlen(c->msg);
		HdAuthError err;
		const char *out = "x";

		ok(tap, cli_first(client, c->msg, len, &out, &err) == HD_AUTH_ERROR && out == NULL &&
		   error_is(&err, c->sqlstate, c->message, c->detail),
		   "client server-first: %s", c->what);
		hd_scram_client_free(client);
	}
}

static void
test_client_keys_accept_any_salt(Tap *tap)
{
	HdScramClient *client = client_after_first(true);
	HdAuthError err;
	const char *out;
	const char *msg = "r=cnonceS,s=QQ==,i=2147483647";

	ok(tap, cli_first(client, msg, strlen(msg), &out, &err) == HD_AUTH_OK &&
	   strncmp(out, "c=biws,r=cnonceS,p=", 19) == 0,
	   "client with keys: any salt and count accepted (no PBKDF2 at 2^31 iterations)");
	hd_scram_client_free(client);
}

/* A client (password "pencil") that has sent its proof to the RFC server. */
static HdScramClient *
client_after_final(void)
{
	HdScramClient *client = hd_scram_client_new_password("pencil", NULL);
	HdAuthError err;
	const char *out;

	hd_scram_client_set_nonce(client, RFC_CLIENT_NONCE);
	hd_scram_client_set_username(client, "user");
	hd_scram_client_first(client, &out, &err);
	cli_first(client, RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST), &out, &err);
	return client;
}

static void
test_client_bad_final(Tap *tap)
{
	static const BadInput cases[] = {
		{"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 0, "28000",
		"incorrect server signature", NULL, "wrong server signature"},
		{RFC_SERVER_FINAL_AS_PRINTED, 0, "08P01",
			"malformed SCRAM message (invalid server signature)", NULL,
		"RFC 7677's misprinted signature"},
		{"e=invalid-proof", 0, "28000",
			"error received from server in SCRAM exchange: invalid-proof", NULL,
		"server error e="},
		{"e=bad\x01value", 0, "28000",
			"error received from server in SCRAM exchange: bad?value", NULL,
		"server error sanitized"},
		{"v=6rriTRBi23WpRR", 0, "08P01",
		"malformed SCRAM message (invalid server signature)", NULL, "short signature"},
		{"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjRESQ", 0, "08P01",
		"malformed SCRAM message (invalid server signature)", NULL, "signature not base64"},
		{RFC_SERVER_FINAL ",x=1", 0, "08P01",
			"malformed SCRAM message (garbage at end of server-final-message)", NULL,
		"garbage at the end"},
		{"x=1", 0, "08P01", "malformed SCRAM message (attribute \"v\" expected)", NULL,
		"no verifier"},
		{"", 0, "08P01", "malformed SCRAM message (empty message)", NULL, "empty"},
	};
	HdScramClient *client;
	HdAuthError err;
	size_t		len = strlen(RFC_SERVER_FINAL);
	int			refused = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const BadInput *c = &cases[i];

		client = client_after_final();
		ok(tap, cli_final(client, c->msg, strlen(c->msg), &err) == HD_AUTH_ERROR &&
		   error_is(&err, c->sqlstate, c->message, c->detail),
		   "client server-final: %s", c->what);
		hd_scram_client_free(client);
	}
	for (size_t n = 0; n < len; n++)
	{
		client = client_after_final();
		refused += cli_final(client, RFC_SERVER_FINAL, n, &err) == HD_AUTH_ERROR;
		hd_scram_client_free(client);
	}
	ok(tap, refused == (int) len, "client: all %zu truncations of server-final-message refused",
	   len);
	client = client_after_final();
	ok(tap, hd_scram_client_handle_server_final(client, RFC_SERVER_FINAL, SIZE_MAX,
												&err) == HD_AUTH_ERROR &&
	   error_is(&err, "08P01", "malformed SCRAM message (message too long)", NULL),
	   "client: a huge length is refused before anything is read");
	hd_scram_client_free(client);
}

static void
test_client_misc(Tap *tap)
{
	HdScramClient *client = hd_scram_client_new_password("pencil", NULL);
	HdAuthError err;
	const char *out;
	int			handled = 0;
	size_t		len = strlen(RFC_SERVER_FIRST);

	ok(tap, cli_first(client, RFC_SERVER_FIRST, len, &out, &err) == HD_AUTH_ERROR &&
	   error_is(&err, "XX000", "invalid SCRAM exchange state", NULL),
	   "client: server-first before client-first refused");
	hd_scram_client_free(client);

	client = hd_scram_client_new_password("pencil", NULL);
	ok(tap, !hd_scram_client_set_nonce(client, "a,b") && !hd_scram_client_set_nonce(client, "") &&
	   hd_scram_client_set_username(client, "a,b=c") &&
	   hd_scram_client_first(client, &out, &err) == HD_AUTH_OK &&
	   strncmp(out, "n,,n=a=2Cb=3Dc,r=", 17) == 0 && strlen(out) == 17 + 24,
	   "client: bad nonce overrides refused; user name escaped; random nonce of 24 characters");
	hd_scram_client_free(client);

	for (size_t n = 0; n <= len; n++)
	{
		HdScramClient *c = hd_scram_client_new_password("pencil", NULL);
		HdAuthStatus status;

		hd_scram_client_set_nonce(c, RFC_CLIENT_NONCE);
		hd_scram_client_first(c, &out, &err);
		status = cli_first(c, RFC_SERVER_FIRST, n, &out, &err);
		/* prefixes before the first digit of i= must fail; later ones are valid counts */
		handled += n < len - 3 ? status == HD_AUTH_ERROR : status == HD_AUTH_OK;
		hd_scram_client_free(c);
	}
	ok(tap, handled == (int) len + 1,
	   "client: every truncation of server-first-message handled (%d of %zu)", handled, len + 1);
	ok(tap, hd_scram_client_new_password(PG_PASSWORD_CJK, &err) == NULL &&
	   strcmp(err.sqlstate, HD_SQLSTATE_FEATURE_NOT_SUPPORTED) == 0,
	   "client: a password needing full Unicode normalization is refused up front");
}

/* ---- MD5 ---- */

static HdAuthStatus
md5_check(const char *stored, const char *user, const char *resp, size_t len,
		  HdAuthError *err)
{
	char	   *copy = exact(resp, len);
	HdAuthStatus status = hd_md5_server_check(stored, user, md5_salt, copy, len, err);

	free(copy);
	return status;
}

static void
test_md5(Tap *tap)
{
	char		secret[HD_MD5_SECRET_LEN + 1];
	char		resp[HD_MD5_SECRET_LEN + 1];
	char		resp2[HD_MD5_SECRET_LEN + 1];
	HdAuthError err;
	size_t		rlen = HD_MD5_SECRET_LEN + 1;

	ok(tap, hd_md5_secret("secret", "hd_md5", secret) && strcmp(secret, PG_MD5_SECRET) == 0,
	   "md5: secret equals PostgreSQL's for hd_md5/secret");
	ok(tap, hd_md5_client_response("secret", "hd_md5", md5_salt, resp) &&
	   strcmp(resp, MD5_RESPONSE_01020304) == 0, "md5: client response to salt 01020304");
	ok(tap, hd_md5_client_response_from_secret(PG_MD5_SECRET, md5_salt, resp2) &&
	   strcmp(resp2, resp) == 0, "md5: the same response from the stored secret");
	ok(tap, !hd_md5_client_response_from_secret("secret", md5_salt, resp2),
	   "md5: a response from a non-md5 secret is refused");
	ok(tap, md5_check(PG_MD5_SECRET, "hd_md5", resp, rlen, &err) == HD_AUTH_OK,
	   "md5: server accepts the response against the md5 secret");
	ok(tap, md5_check("secret", "hd_md5", resp, rlen, &err) == HD_AUTH_OK,
	   "md5: server accepts the response against a plaintext password");
	resp2[0] = '\0';
	hd_md5_client_response("secreT", "hd_md5", md5_salt, resp2);
	ok(tap, md5_check(PG_MD5_SECRET, "hd_md5", resp2, rlen, &err) == HD_AUTH_FAILED &&
	   error_is(&err, "28P01", "password authentication failed for user \"hd_md5\"", "") &&
	   strcmp(err.log_detail, "Password does not match for user \"hd_md5\".") == 0,
	   "md5: wrong password fails, reason only in log_detail");
	ok(tap, md5_check("secret", "other", resp, rlen, &err) == HD_AUTH_FAILED,
	   "md5: the user name is part of the hash of a plaintext password");
	ok(tap, md5_check(PG_SECRET_PW, "hd", resp, rlen, &err) == HD_AUTH_FAILED &&
	   strcmp(err.log_detail,
			  "User \"hd\" has a password that cannot be used with MD5 authentication.") == 0,
	   "md5: a SCRAM secret cannot answer an MD5 challenge");
	ok(tap, md5_check(PG_MD5_SECRET, "hd_md5", resp, rlen - 1, &err) == HD_AUTH_ERROR &&
	   error_is(&err, "08P01", "invalid password packet size", NULL),
	   "md5: packet without its NUL refused");
	ok(tap, md5_check(PG_MD5_SECRET, "hd_md5", "md5\0abc", 8, &err) == HD_AUTH_ERROR &&
	   error_is(&err, "08P01", "invalid password packet size", NULL),
	   "md5: packet with a NUL inside refused");
	ok(tap, md5_check(PG_MD5_SECRET, "hd_md5", "", 1, &err) == HD_AUTH_ERROR &&
	   error_is(&err, "28P01", "empty password returned by client", NULL),
	   "md5: empty password refused");
	ok(tap, md5_check(PG_MD5_SECRET, "hd_md5", "md5", 4, &err) == HD_AUTH_FAILED,
	   "md5: short response fails");
	ok(tap, md5_check(PG_MD5_SECRET, "hd_md5", "", 0, &err) == HD_AUTH_ERROR,
	   "md5: zero-length packet refused");
}

/* ---- plaintext ---- */

static HdAuthStatus
plain_check(const char *stored, const char *user, const char *password, HdAuthError *err)
{
	size_t		len = strlen(password) + 1;
	char	   *copy = exact(password, len);
	HdAuthStatus status = hd_password_check(stored, user, copy, len, err);

	free(copy);
	return status;
}

static void
test_plaintext(Tap *tap)
{
	HdAuthError err;
	char	   *copy;

	ok(tap, plain_check("pencil", "u", "pencil", &err) == HD_AUTH_OK,
	   "plaintext: right password against a plaintext one");
	ok(tap, plain_check("pencil", "u", "pencil2", &err) == HD_AUTH_FAILED &&
	   plain_check("pencil", "u", "penci", &err) == HD_AUTH_FAILED &&
	   plain_check("pencil", "u", "Pencil", &err) == HD_AUTH_FAILED &&
	   error_is(&err, "28P01", "password authentication failed for user \"u\"", ""),
	   "plaintext: longer, shorter, different passwords fail");
	ok(tap, plain_check(PG_MD5_SECRET, "hd_md5", "secret", &err) == HD_AUTH_OK &&
	   plain_check(PG_MD5_SECRET, "hd_md5", "secret2", &err) == HD_AUTH_FAILED,
	   "plaintext: against PostgreSQL's md5 secret");
	ok(tap, plain_check(PG_SECRET_PW, "hd", "pw", &err) == HD_AUTH_OK &&
	   plain_check(PG_SECRET_PW, "hd", "pw ", &err) == HD_AUTH_FAILED,
	   "plaintext: against PostgreSQL's SCRAM secret");
	ok(tap, plain_check(PG_SECRET_LATIN, "hd", PG_PASSWORD_LATIN, &err) == HD_AUTH_OK,
	   "plaintext: Latin-1 password against PostgreSQL's SCRAM secret");
	ok(tap, plain_check(PG_SECRET_CJK, "hd", PG_PASSWORD_CJK, &err) == HD_AUTH_ERROR &&
	   strcmp(err.sqlstate, "0A000") == 0,
	   "plaintext: CJK password against SCRAM refused as unsupported");
	copy = exact("pencil", 6);
	ok(tap, hd_password_check("pencil", "u", copy, 6, &err) == HD_AUTH_ERROR &&
	   error_is(&err, "08P01", "invalid password packet size", NULL),
	   "plaintext: packet without its NUL refused");
	free(copy);
	ok(tap, plain_check("pencil", "u", "", &err) == HD_AUTH_ERROR &&
	   error_is(&err, "28P01", "empty password returned by client", NULL),
	   "plaintext: empty password refused");
}

int
main(void)
{
	Tap			tap = {0, 0};

	test_base64(&tap);
	test_saslprep(&tap);
	test_secret_parse(&tap);
	test_secret_build(&tap);
	test_pg_secrets(&tap);
	test_rfc7677(&tap);
	test_exchange_password(&tap);
	pg_secret_exchange(&tap, PG_SECRET_PW, "pw", "\"pw\"");
	pg_secret_exchange(&tap, PG_SECRET_LATIN, PG_PASSWORD_LATIN, "Latin-1 password");
	pg_secret_exchange(&tap, PG_SECRET_CTRL, PG_PASSWORD_CTRL, "prohibited-character password");
	test_exchange_passthrough(&tap);
	test_mock(&tap);
	test_cbind_y(&tap);
	test_final_extension(&tap);
	test_mechanism(&tap);
	test_server_bad_first(&tap);
	test_server_bad_final(&tap);
	test_server_truncation(&tap);
	test_server_long_first(&tap);
	test_client_bad_first(&tap);
	test_client_keys_accept_any_salt(&tap);
	test_client_bad_final(&tap);
	test_client_misc(&tap);
	test_md5(&tap);
	test_plaintext(&tap);
	printf("1..%d\n", tap.run);
	if (tap.failed)
		printf("# %d of %d tests failed\n", tap.failed, tap.run);
	return tap.failed ? 1 : 0;
}
