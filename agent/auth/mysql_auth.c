/*
 * mysql_auth.c
 *    mysql_native_password and caching_sha2_password arithmetic, both
 *    sides, and the RSA of caching_sha2's full authentication. The contract
 *    is in mysql_auth.h.
 */
#include "auth/mysql_auth.h"
#include "base/hex.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

struct HdMyRsaKey
{
	EVP_PKEY   *pkey;
	char	   *public_pem;		/* OPENSSL_malloc'd, NUL-terminated */
};

/* ---- digests ---- */

/*
 * SHA-1 or SHA-256 of a . b (b may be empty). EVP_Digest cannot fail for
 * these in a working libcrypto short of memory exhaustion; the output is
 * then all zero, which matches no token (a SHA-1 preimage of zeros is not
 * known), so a failure refuses a login instead of accepting one.
 */
static void
digest2(const EVP_MD *md, const void *a, size_t alen, const void *b,
		size_t blen, uint8_t *out, size_t outlen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;

	if (ctx == NULL ||
		!EVP_DigestInit_ex(ctx, md, NULL) ||
		!EVP_DigestUpdate(ctx, a, alen) ||
		(blen > 0 && !EVP_DigestUpdate(ctx, b, blen)) ||
		!EVP_DigestFinal_ex(ctx, out, &n) || n != outlen)
		memset(out, 0, outlen);
	EVP_MD_CTX_free(ctx);
}

static void
xor_into(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = a[i] ^ b[i];
}

/* ---- mysql_native_password ---- */

void
hd_my_native_stage1(const char *pw, size_t len, uint8_t stage1[HD_MY_SHA1_LEN])
{
	digest2(EVP_sha1(), pw, len, NULL, 0, stage1, HD_MY_SHA1_LEN);
}

void
hd_my_native_stage2(const uint8_t stage1[HD_MY_SHA1_LEN],
					uint8_t stage2[HD_MY_SHA1_LEN])
{
	digest2(EVP_sha1(), stage1, HD_MY_SHA1_LEN, NULL, 0, stage2, HD_MY_SHA1_LEN);
}

int
hd_my_native_parse_hash(const char *authentication_string,
						uint8_t stage2[HD_MY_SHA1_LEN])
{
	const char *s = authentication_string;

	memset(stage2, 0, HD_MY_SHA1_LEN);
	if (s[0] == '\0')
		return HD_MY_HASH_NONE;
	if (s[0] != '*')
		return HD_MY_HASH_MALFORMED;
	s++;
	/* reads pairs while both are hex digits, so never past the NUL */
	for (int i = 0; i < HD_MY_SHA1_LEN; i++)
	{
		int			hi = hd_hex_value(s[2 * i]);
		int			lo = hi < 0 ? -1 : hd_hex_value(s[2 * i + 1]);

		if (lo < 0)
		{
			memset(stage2, 0, HD_MY_SHA1_LEN);
			return HD_MY_HASH_MALFORMED;
		}
		stage2[i] = (uint8_t) (hi << 4 | lo);
	}
	if (s[2 * HD_MY_SHA1_LEN] != '\0')
	{
		memset(stage2, 0, HD_MY_SHA1_LEN);
		return HD_MY_HASH_MALFORMED;
	}
	return HD_MY_HASH_OK;
}

void
hd_my_native_format_hash(const uint8_t stage2[HD_MY_SHA1_LEN],
						 char out[HD_MY_NATIVE_HASH_LEN + 1])
{
	static const char digits[] = "0123456789ABCDEF";

	out[0] = '*';
	for (int i = 0; i < HD_MY_SHA1_LEN; i++)
	{
		out[1 + 2 * i] = digits[stage2[i] >> 4];
		out[2 + 2 * i] = digits[stage2[i] & 0x0f];
	}
	out[HD_MY_NATIVE_HASH_LEN] = '\0';
}

/* SHA1(nonce . stage2): the mask both sides XOR stage1 with. */
static void
native_mask(const uint8_t stage2[HD_MY_SHA1_LEN],
			const uint8_t nonce[HD_MY_NONCE_LEN], uint8_t mask[HD_MY_SHA1_LEN])
{
	digest2(EVP_sha1(), nonce, HD_MY_NONCE_LEN, stage2, HD_MY_SHA1_LEN,
			mask, HD_MY_SHA1_LEN);
}

void
hd_my_native_token(const uint8_t stage1[HD_MY_SHA1_LEN],
				   const uint8_t nonce[HD_MY_NONCE_LEN],
				   uint8_t token[HD_MY_SHA1_LEN])
{
	uint8_t		stage2[HD_MY_SHA1_LEN];
	uint8_t		mask[HD_MY_SHA1_LEN];

	hd_my_native_stage2(stage1, stage2);
	native_mask(stage2, nonce, mask);
	xor_into(token, stage1, mask, HD_MY_SHA1_LEN);
	OPENSSL_cleanse(mask, sizeof(mask));
}

bool
hd_my_native_check(const uint8_t stage2[HD_MY_SHA1_LEN],
				   const uint8_t nonce[HD_MY_NONCE_LEN],
				   const uint8_t *token, size_t token_len,
				   uint8_t stage1_out[HD_MY_SHA1_LEN])
{
	uint8_t		mask[HD_MY_SHA1_LEN];
	uint8_t		stage1[HD_MY_SHA1_LEN];
	uint8_t		check[HD_MY_SHA1_LEN];
	bool		right;

	if (stage1_out != NULL)
		memset(stage1_out, 0, HD_MY_SHA1_LEN);
	if (token_len != HD_MY_SHA1_LEN)
		return false;
	native_mask(stage2, nonce, mask);
	xor_into(stage1, token, mask, HD_MY_SHA1_LEN);
	hd_my_native_stage2(stage1, check);
	right = CRYPTO_memcmp(check, stage2, HD_MY_SHA1_LEN) == 0;
	if (right && stage1_out != NULL)
		memcpy(stage1_out, stage1, HD_MY_SHA1_LEN);
	OPENSSL_cleanse(stage1, sizeof(stage1));
	OPENSSL_cleanse(mask, sizeof(mask));
	return right;
}

bool
hd_my_native_check_plain(const uint8_t stage2[HD_MY_SHA1_LEN],
						 const char *pw, size_t len,
						 uint8_t stage1_out[HD_MY_SHA1_LEN])
{
	uint8_t		stage1[HD_MY_SHA1_LEN];
	uint8_t		check[HD_MY_SHA1_LEN];
	bool		right;

	if (stage1_out != NULL)
		memset(stage1_out, 0, HD_MY_SHA1_LEN);
	if (len == 0)
		return false;
	hd_my_native_stage1(pw, len, stage1);
	hd_my_native_stage2(stage1, check);
	right = CRYPTO_memcmp(check, stage2, HD_MY_SHA1_LEN) == 0;
	if (right && stage1_out != NULL)
		memcpy(stage1_out, stage1, HD_MY_SHA1_LEN);
	OPENSSL_cleanse(stage1, sizeof(stage1));
	return right;
}

bool
hd_my_native_check_empty(size_t token_len)
{
	return token_len == 0;
}

bool
hd_my_native_check_password(const char *pw, size_t len,
							const uint8_t nonce[HD_MY_NONCE_LEN],
							const uint8_t *token, size_t token_len)
{
	uint8_t		stage1[HD_MY_SHA1_LEN];
	uint8_t		stage2[HD_MY_SHA1_LEN];
	bool		right;

	if (len == 0)
		return hd_my_native_check_empty(token_len);
	hd_my_native_stage1(pw, len, stage1);
	hd_my_native_stage2(stage1, stage2);
	OPENSSL_cleanse(stage1, sizeof(stage1));
	right = hd_my_native_check(stage2, nonce, token, token_len, NULL);
	OPENSSL_cleanse(stage2, sizeof(stage2));
	return right;
}

/* ---- caching_sha2_password, fast path ---- */

size_t
hd_my_sha2_token(const char *pw, size_t len,
				 const uint8_t nonce[HD_MY_NONCE_LEN],
				 uint8_t token[HD_MY_SHA256_LEN])
{
	uint8_t		p1[HD_MY_SHA256_LEN];
	uint8_t		p2[HD_MY_SHA256_LEN];
	uint8_t		p3[HD_MY_SHA256_LEN];

	if (len == 0)
		return 0;
	digest2(EVP_sha256(), pw, len, NULL, 0, p1, sizeof(p1));
	digest2(EVP_sha256(), p1, sizeof(p1), NULL, 0, p2, sizeof(p2));
	digest2(EVP_sha256(), p2, sizeof(p2), nonce, HD_MY_NONCE_LEN, p3, sizeof(p3));
	xor_into(token, p1, p3, HD_MY_SHA256_LEN);
	OPENSSL_cleanse(p1, sizeof(p1));
	OPENSSL_cleanse(p2, sizeof(p2));
	OPENSSL_cleanse(p3, sizeof(p3));
	return HD_MY_SHA256_LEN;
}

bool
hd_my_sha2_check(const char *pw, size_t len,
				 const uint8_t nonce[HD_MY_NONCE_LEN],
				 const uint8_t *token, size_t token_len)
{
	uint8_t		expected[HD_MY_SHA256_LEN];
	bool		right;

	if (len == 0)
		return token_len == 0 || (token_len == 1 && token[0] == '\0');
	if (token_len != HD_MY_SHA256_LEN)
		return false;
	hd_my_sha2_token(pw, len, nonce, expected);
	right = CRYPTO_memcmp(expected, token, HD_MY_SHA256_LEN) == 0;
	OPENSSL_cleanse(expected, sizeof(expected));
	return right;
}

/* ---- RSA ---- */

/*
 * "what: OpenSSL's first queued reason" into err, and the queue emptied so
 * that a stale reason is never blamed on a later, unrelated call.
 */
static void
rsa_error(char *err, size_t errlen, const char *what)
{
	unsigned long code = ERR_get_error();
	char		reason[160];

	if (code != 0)
	{
		ERR_error_string_n(code, reason, sizeof(reason));
		snprintf(err, errlen, "%s: %s", what, reason);
	}
	else
		snprintf(err, errlen, "%s", what);
	ERR_clear_error();
}

/* The public half as PEM SubjectPublicKeyInfo, OPENSSL_malloc'd; NULL on failure. */
static char *
public_pem_of(EVP_PKEY *pkey)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *data;
	long		n;
	char	   *pem = NULL;

	if (bio == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, pkey) == 1 &&
		(n = BIO_get_mem_data(bio, &data)) > 0 &&
		(pem = OPENSSL_malloc((size_t) n + 1)) != NULL)
	{
		memcpy(pem, data, (size_t) n);
		pem[n] = '\0';
	}
	BIO_free(bio);
	return pem;
}

/* Wraps a key pair; takes pkey over (freed on failure). */
static HdMyRsaKey *
rsa_key_wrap(EVP_PKEY *pkey, char *err, size_t errlen)
{
	HdMyRsaKey *key = OPENSSL_zalloc(sizeof(HdMyRsaKey));

	if (key == NULL || (key->public_pem = public_pem_of(pkey)) == NULL)
	{
		rsa_error(err, errlen, "cannot write the RSA public key as PEM");
		OPENSSL_free(key);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	key->pkey = pkey;
	return key;
}

HdMyRsaKey *
hd_my_rsa_generate(char *err, size_t errlen)
{
	EVP_PKEY   *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) HD_MY_RSA_BITS);

	if (pkey == NULL)
	{
		rsa_error(err, errlen, "cannot generate an RSA key");
		return NULL;
	}
	return rsa_key_wrap(pkey, err, errlen);
}

HdMyRsaKey *
hd_my_rsa_from_private_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	BIO		   *bio;
	EVP_PKEY   *pkey;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int) len)) == NULL)
	{
		rsa_error(err, errlen, "cannot read the RSA private key");
		return NULL;
	}
	/* no passphrase callback: an encrypted key is refused, never prompted for */
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *) "");
	BIO_free(bio);
	if (pkey == NULL)
	{
		rsa_error(err, errlen, "not an unencrypted PEM private key");
		return NULL;
	}
	if (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_get_bits(pkey) != HD_MY_RSA_BITS)
	{
		snprintf(err, errlen, "the private key is not a %d-bit RSA key",
				 HD_MY_RSA_BITS);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return rsa_key_wrap(pkey, err, errlen);
}

void
hd_my_rsa_free(HdMyRsaKey *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	OPENSSL_free(key->public_pem);
	OPENSSL_free(key);
}

const char *
hd_my_rsa_public_pem(const HdMyRsaKey *key)
{
	return key->public_pem;
}

/* An encryption or decryption context for pkey with MySQL's padding (OAEP, SHA-1). */
static EVP_PKEY_CTX *
oaep_ctx(EVP_PKEY *pkey, bool encrypt)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);

	if (ctx == NULL)
		return NULL;
	if ((encrypt ? EVP_PKEY_encrypt_init(ctx) : EVP_PKEY_decrypt_init(ctx)) <= 0 ||
		EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0 ||
		EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) <= 0 ||
		EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha1()) <= 0)
	{
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* buf[i] ^= nonce[i % 20]: MySQL's hiding of the password under the key. */
static void
xor_nonce(uint8_t *buf, size_t n, const uint8_t nonce[HD_MY_NONCE_LEN])
{
	for (size_t i = 0; i < n; i++)
		buf[i] ^= nonce[i % HD_MY_NONCE_LEN];
}

/* The decrypted, un-XORed plaintext plain[0 .. n) as a password; 0 or -1. */
static int
take_password(const uint8_t *plain, size_t n, char *pw, size_t pwmax,
			  size_t *pwlen, char *err, size_t errlen)
{
	if (n == 0 || plain[n - 1] != '\0')
	{
		snprintf(err, errlen, "the decrypted password does not end in NUL (wrong nonce?)");
		return -1;
	}
	if (memchr(plain, '\0', n - 1) != NULL)
	{
		snprintf(err, errlen, "the decrypted password holds a NUL byte");
		return -1;
	}
	if (n > pwmax)
	{
		snprintf(err, errlen, "the decrypted password is longer than %zu bytes",
				 pwmax == 0 ? 0 : pwmax - 1);
		return -1;
	}
	memcpy(pw, plain, n);		/* its NUL included */
	*pwlen = n - 1;
	return 0;
}

int
hd_my_rsa_decrypt_password(const HdMyRsaKey *key, const uint8_t *cipher,
						   size_t len, const uint8_t nonce[HD_MY_NONCE_LEN],
						   char *pw, size_t pwmax, size_t *pwlen,
						   char *err, size_t errlen)
{
	uint8_t		plain[HD_MY_RSA_CIPHER_LEN];
	size_t		n = sizeof(plain);
	EVP_PKEY_CTX *ctx;
	int			rc = -1;

	*pwlen = 0;
	if (pwmax > 0)
		OPENSSL_cleanse(pw, pwmax);
	if (len != HD_MY_RSA_CIPHER_LEN)
	{
		snprintf(err, errlen, "the encrypted password is %zu bytes, not %d",
				 len, HD_MY_RSA_CIPHER_LEN);
		return -1;
	}
	if ((ctx = oaep_ctx(key->pkey, false)) == NULL)
	{
		rsa_error(err, errlen, "cannot set up RSA decryption");
		return -1;
	}
	if (EVP_PKEY_decrypt(ctx, plain, &n, cipher, len) <= 0)
		rsa_error(err, errlen, "cannot decrypt the password (not encrypted with this key)");
	else
	{
		xor_nonce(plain, n, nonce);
		rc = take_password(plain, n, pw, pwmax, pwlen, err, errlen);
	}
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_cleanse(plain, sizeof(plain));
	return rc;
}

/* An RSA public key from PEM SubjectPublicKeyInfo bytes (what MySQL sends); NULL with err. */
static EVP_PKEY *
read_public_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	BIO		   *bio;
	EVP_PKEY   *pkey;

	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int) len)) == NULL)
	{
		rsa_error(err, errlen, "cannot read the server's public key");
		return NULL;
	}
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL)
	{
		rsa_error(err, errlen, "the server's public key is not a PEM public key");
		return NULL;
	}
	if (!EVP_PKEY_is_a(pkey, "RSA"))
	{
		snprintf(err, errlen, "the server's public key is not an RSA key");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

int
hd_my_rsa_encrypt_password(const char *public_pem, size_t pem_len,
						   const char *pw, size_t len,
						   const uint8_t nonce[HD_MY_NONCE_LEN],
						   uint8_t *out, size_t outmax, size_t *outlen,
						   char *err, size_t errlen)
{
	EVP_PKEY   *pkey = read_public_pem(public_pem, pem_len, err, errlen);
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t    *plain = NULL;
	size_t		keylen;
	int			rc = -1;

	*outlen = 0;
	if (pkey == NULL)
		return -1;
	keylen = (size_t) EVP_PKEY_get_size(pkey);
	if (len + 1 + 2 * HD_MY_SHA1_LEN + 2 > keylen)
		snprintf(err, errlen, "the password (%zu bytes) is too long for the server's %zu-bit RSA key",
				 len, keylen * 8);
	else if (outmax < keylen)
		snprintf(err, errlen, "no room for the encrypted password (%zu bytes, %zu given)",
				 keylen, outmax);
	else if ((plain = OPENSSL_malloc(len + 1)) == NULL ||
			 (ctx = oaep_ctx(pkey, true)) == NULL)
		rsa_error(err, errlen, "cannot set up RSA encryption");
	else
	{
		size_t		n = outmax;

		memcpy(plain, pw, len);
		plain[len] = '\0';
		xor_nonce(plain, len + 1, nonce);
		if (EVP_PKEY_encrypt(ctx, out, &n, plain, len + 1) <= 0)
			rsa_error(err, errlen, "cannot encrypt the password");
		else
		{
			*outlen = n;
			rc = 0;
		}
		OPENSSL_cleanse(plain, len + 1);
	}
	OPENSSL_free(plain);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return rc;
}
