/*
 * test_mysql_auth.c
 *    Unit tests of agent/auth/mysql_auth.c (mysql_native_password,
 *    caching_sha2_password and its RSA), as a TAP program: make agent-unit &&
 *    agent/tests/test_mysql_auth (prove runs it through
 *    t/005_mysql_auth_unit.pl). No server.
 *
 * Where the expected values come from (computed once, written here):
 *   - MariaDB 10.11.19 itself, on a throwaway server: SELECT PASSWORD('password'),
 *     PASSWORD('x'), PASSWORD('secret'), PASSWORD(REPEAT('a',100)) and of the
 *     UTF-8 string below (mariadb --default-character-set=utf8mb4); and two
 *     logins it accepted: PyMySQL 1.0.2 connecting as users made with
 *     CREATE USER .. IDENTIFIED BY 'secret' (and the UTF-8 password), its
 *     scramble_native_password() wrapped to record the nonce the server sent
 *     and the token that logged in.
 *   - Python's hashlib: stage1 values,
 *       python3 -c 'import hashlib; print(hashlib.sha1(b"secret").hexdigest())'
 *   - PyMySQL 1.0.2's pymysql/_auth.py (an implementation independent of
 *     this one): /usr/bin/python3 -c 'import pymysql._auth as a;
 *       print(a.scramble_native_password(PW, NONCE).hex(),
 *             a.scramble_caching_sha2(PW, NONCE).hex())'
 *     for PW in b"secret", b"password", b"\xff\x00\x01 pw" and the two
 *     nonces below; and a.sha2_rsa_encrypt(PW, NONCE, open("k.pub").read())
 *     (OAEP with cryptography 38) with the fixture key below.
 *   - The mariadb CLI 10.11 (libmariadb 3.3.20) against a fake MySQL 8
 *     server (a Python socket offering caching_sha2_password with nonce2,
 *     answering "perform full authentication", then the fixture public key
 *     when asked): its fast-path token was PyMySQL's, and its encrypted
 *     password is cipher_libmariadb_secret_nonce2. The same with mysql2
 *     3.26.1 (Node, allowPublicKeyRetrieval: it refuses to ask for the key
 *     without it or TLS): the same token, cipher_mysql2_secret_nonce2.
 *   - The fixture RSA key was made for this test only (openssl genpkey
 *     -algorithm RSA -pkeyopt rsa_keygen_bits:2048; openssl pkey -pubout):
 *     it protects nothing.
 *
 * Inputs from "the network" are copied into heap buffers of exactly their
 * length (no terminating NUL), so that AddressSanitizer or valgrind catches
 * any read past the end:
 *   make -B agent/tests/test_mysql_auth AGENT_EXTRA_CFLAGS='-fsanitize=address,undefined'
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/mysql_auth.h"
#include "bytes.h"
#include "tap.h"

/* ---- fixtures ---- */

static const uint8_t nonce1[HD_MY_NONCE_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
};
static const uint8_t nonce2[HD_MY_NONCE_LEN] = "abcdefghijklmnopqrst";	/* no NUL kept */

#define UTF8_PW "P\xc3\xa4ssw\xc3\xb6rd\xe2\x82\xac \xf0\x9f\x99\x82"	/* Pässwörd€ 🙂 */
#define LATIN_PW "P\xc3\xa4ssw\xc3\xb6rd"	/* Pässwörd */
#define LONG_PW "correct horse battery staple, twice over"	/* longer than a nonce */
#define BINARY_PW "\xff\x00\x01 pw"		/* 6 bytes, a NUL inside */
#define BINARY_PW_LEN 6

/* MariaDB 10.11.19's PASSWORD() */
static const struct
{
	const char *pw;
	const char *hash;
}			mariadb_hashes[] = {
	{"password", "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"},
	{"x", "*B69027D44F6E5EDC07F1AEAD1477967B16F28227"},
	{"secret", "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"},
	{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	"*54360E71FF5356F5D9EDFBD3E3B5D64AA02CA1EC"},
	{UTF8_PW, "*9D35D06E6647E26E338B427199A8FC58759BB6B0"},
};

/* Logins MariaDB 10.11.19 accepted: the nonce of its greeting, PyMySQL's token. */
static const struct
{
	const char *pw;
	const char *nonce_hex;
	const char *token_hex;
}			mariadb_logins[] = {
	{"secret", "374e63283b2f772d762e215671563c666d71705f",
	"698fabfa147401af70d95d505945ada1ffb60698"},
	{UTF8_PW, "45644b29282f512a7c577d30757b2d694c7e5674",
	"fc079f13fd349d6e6d7d4f6a550ed6e932d3a04c"},
};

/* hashlib.sha1(pw) */
#define STAGE1_SECRET "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4"
#define STAGE1_PASSWORD "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8"

/* PyMySQL's scramble_native_password() and scramble_caching_sha2() */
static const struct
{
	const char *pw;
	size_t		len;
	const uint8_t *nonce;
	const char *native_hex;
	const char *sha2_hex;
}			pymysql_tokens[] = {
	{"secret", 6, nonce1, "b32bb3a583e1340c0a1108d58b1be49781ad8c2f",
	"746ebe205d56a0707acb3e796e834e0dd7b1d61743b26bd5202c7a623230c7c9"},
	{"secret", 6, nonce2, "8817c50fa779daef010ee7577825b0847df9842e",
	"c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809"},
	{"password", 8, nonce1, "c17d6009a5cb47e59f7483fcf05553bbbf7dd0d6",
	"f7ab1c623a6e98dceab35e926290e5746a3141116115f4dd8ccca994393eccdd"},
	{"password", 8, nonce2, "bfdd49584b917d42c758edd2a7a541f721843041",
	"6584c404bc44a3d014cacc4fc823edc02991a53d5ae825ea0f91c7a0f1f26653"},
	{BINARY_PW, BINARY_PW_LEN, nonce1, "03266f37e355d9b23690f6e40e3729236ab5642b",
	"818a3fbe310e3beb269801325e7683da3d119529965fff58575e2c7df95986fa"},
	{BINARY_PW, BINARY_PW_LEN, nonce2, "ef375dca948563f9d0a82372bafe3b008e51d2a4",
	"ab1e35b462bd977698a7f696ea61362bf65eab624ac935b25ee15f37b9785dd0"},
};

static const char fixture_private_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDLHTRHRvIO/0si\n"
	"AwNMdNuvCL69kl5WPDLBoz4UDPRUXAuMucdqMvrtbqRrl1bvP/n527b+deLXmJ0w\n"
	"iFLEISrsC6oLePiL2MCL6NFz/dSzCosNvWJahGr1Nrlatk9o/w0ePfjkGcEfpKr0\n"
	"2GexHrWbvLZVGeKkYdll+bSncMALt+mtNcb6jBYJaWyKrvOVfQGvo6F/Lxv76xmg\n"
	"aJ+65izPoROMsSk9dkTdEzy3cw1y4S287jUlyRM+LAUAISf8A55IzBir+3QwyHQ0\n"
	"Q+dd7fe2rS1akAyUDm0Av77owiQ9MbI650wpRe9qTVQezXPfWKWyEhtjA6WozTKM\n"
	"dHiaSmtjAgMBAAECggEAOPZWQH0Vin4vSHkW1jzZlVN7BrhDS6TzSRnqYX4mkXgE\n"
	"5zD8y3xDog3K/7+AKnXDOb7UKbXO6c7Lmp5Is+dnXa6BwFjrP3EIwtQG1aREn/ef\n"
	"erl3mVIUmvN/dQC28YfB2o7fu7y7TBAGv8bnAaXOocABVIl/ZcFpUi9+6gx1V3N6\n"
	"nj3F+XM/2ixPZWAvo7lX8RFKXIl8nmEMPwx1Yv/3ii173E/I+lIQ7tjd//cqH+If\n"
	"h2JtW8MygplcuDhl7EmOQAIZwRvEH67Bnb9OAvbV147AHO56jEpFRznwmnwwkhzP\n"
	"/V/aCPfh07PAqwT7xm6CMkD2rJM9DJCXXRiqoP72lQKBgQD5291LnkNgwqLi4xqL\n"
	"ym3c0dTeqQfr1oM3CXVNDoUv0sgugr1enER/LYpmSkXE76Bkfz9q9dCB8dP4Xift\n"
	"SuJH1pL5NgfAwCLO89F49fvlKM5OytFNjNcS70lPUQkm0J3vnOQFLAaqjXLFo/+h\n"
	"alaiLYRbz2/kVKkdNzTr5LZORwKBgQDQGzefE8E/pp2fIT6a9D07N08yhKUvBQ+1\n"
	"Z2/zHC2yHNkIjz8iUMGhPGA+tHmTYMiMjBD9X0kXfSMxZyiXYkfrVavyQLBYnNK6\n"
	"ZS9HL7mfaku2NTqkG4UGBC+I8ZXqwzp4QctDzVdMchVPHWkvI46AnQ8MVhOqmZnJ\n"
	"orfuWmv8BQKBgEjSgPwSI3cnI0xXfpwxorWSXqWKxGlDOzkmQ47y5XSbzYZoyoKx\n"
	"rvEWN9k6Wn1cjfXcdIJbJKtK7UndP2vUwIDJlEqYKchO95Yzz+CeaQ1QSFkEmd4t\n"
	"Z134afh5GN68PNvicT7kpwi8czARbWcBVECuXX5YxjbZSfTe60i5fzzvAoGANn/a\n"
	"OivHQS8WOlVPeu8ZlgdvEzDPvZeavIwhMk6f3PRXFjnFc+woOVyBbAqBiEohW0VX\n"
	"MbOhhag87jQw2ixf306pYCD2zc4MFcpn7kGeYBRLTaV0/QND/AZemIOEGl4UUugQ\n"
	"HmqJQTjjQbvXDwRFzoLTLQzhy5y8PKUDfEVr4C0CgYANwU9muw1fe6Nsmxll43T4\n"
	"FkWpsovXQFes9tcQwcDFqD4bIfyGfNI8RQ+EsWUbxCzY/3y7JF7/jF+f3Ke0T9IA\n"
	"05FM8zUkeBMy7e0eUflTM5JkA/JWW4QAdpz5jIjaSlSvKnUvM77q9pa6+brzDVh/\n"
	"vAZjnzNip8qYYoRHa+CLCA==\n"
	"-----END PRIVATE KEY-----\n";

static const char fixture_public_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAyx00R0byDv9LIgMDTHTb\n"
	"rwi+vZJeVjwywaM+FAz0VFwLjLnHajL67W6ka5dW7z/5+du2/nXi15idMIhSxCEq\n"
	"7AuqC3j4i9jAi+jRc/3UswqLDb1iWoRq9Ta5WrZPaP8NHj345BnBH6Sq9NhnsR61\n"
	"m7y2VRnipGHZZfm0p3DAC7fprTXG+owWCWlsiq7zlX0Br6Ohfy8b++sZoGifuuYs\n"
	"z6ETjLEpPXZE3RM8t3MNcuEtvO41JckTPiwFACEn/AOeSMwYq/t0MMh0NEPnXe33\n"
	"tq0tWpAMlA5tAL++6MIkPTGyOudMKUXvak1UHs1z31ilshIbYwOlqM0yjHR4mkpr\n"
	"YwIDAQAB\n"
	"-----END PUBLIC KEY-----\n";

/*
 * PyMySQL's sha2_rsa_encrypt() to fixture_public_pem: ("secret", nonce1),
 * (LATIN_PW, nonce2), ("", nonce1), (LONG_PW, nonce2)
 */
static const char cipher_secret_nonce1[] =
	"13ecb3cf95b8c8ccbcbbe932fff1dc0002f49e7449d26a48f9eaf22daa579d09"
	"b529540f862306cf4a1c321d83484b045a7a8c0f700b0d0e9193ed863da0fd6f"
	"74bd02bfb6ba0657da912bb6255aaed4af79c3977debb40636bf9de08cdc9d17"
	"28a1297f1562e969055eaa6d03c42174b4bf2eae7af59d6b5ee2ac86f5c0c8e8"
	"0fd2bb9e603220ac2dc6a8f58f78b2f068ace6e5bbe257280adc3eff726c3174"
	"2f7dcdf7452ab8ccf57c91a01b7ab11cb6635e483be648156b5fa6938540ad57"
	"035e32e341376e62699801b0cf4f27f6c1ec0ee721d4d6ddecfe4e3cdd6bc239"
	"71c9ac010a994a0c27da0a7ac8660ed1f83ead1b46b60619acdfa31d1f44c0ba";
static const char cipher_latin_nonce2[] =
	"8cbd708d7492540ab9efcf2b37197571ab901d7f174b574035905016bc7aa519"
	"8f746a81932fbacfc99f77ef7d6dedbad7da73457a85ab7c51de965f088b991d"
	"3500eca459fa0505c3b2783003188144318c702f473436ecf94d04e297086c21"
	"8b41feb5c1038c95c130c00cda7e32846c73732430a29813788b618be6bd097a"
	"3ac7d2e9b42bc87f5392ba11562f97b67bfb6622e5b2cb33a9c813b7c6d914ed"
	"068f2215d900eb3598573935e645c19742218b5d97e1fdb861ea86d3440f682e"
	"9068fd5f429d5c1ebd120c98852bf7b47cb407bdb59cdb8f7233ec7dbcbe042b"
	"e8ddc6bc1f2eb90e25734b89d834d9f868bea7886d1a9c0aa18c768bed16d6f1";
static const char cipher_empty_nonce1[] =
	"3342715c146c11f692ceaea3fe95e91f29f9af74e8ca8a9158b2b41d59c91a76"
	"f709feacc08e1a287025d2f2b399d1061d26f9774fd79e3c28b949c006e53464"
	"6a7b7bf8e43b2dabfacc678239836ccf6249a9ea3edc1b2f0fb0c82a77232b10"
	"a452a1a8e29dd0bd45e8221b7cadce08512b08e60f354554ba31ea5517eb4b52"
	"27acb26686c6879a1c18e426e1f4aac7a72257f8cd4fc2fe937db7013066f6fc"
	"cfd3a531e6171026a05cc42016d081222fd154fb0ea02cf9945d623ac5ccc2a6"
	"499a05c543aa90cc3fd1a9073b96e62733a1f28fe4c001b44d9fb4e2275b972f"
	"3cc69b78ad231b9f85027a6a6e64f9b8c91639f1dce3f5135255e53a02402c54";

static const char cipher_long_nonce2[] =
	"4f0168aedb77d6a47f580cd504d7a2cc46d83a00669de92d3e7f08a54c691337"
	"d8002151a9c0f42b3691268b70949049b22ef8470e18d093833eeac532c84cf5"
	"cc38395bfdbdd228a2c1e8e10aac90be137e1c9b5d893ccc4d0d3ef0de84aeb9"
	"99a465d4a2f586a4f8a109cca8777d1b2c539a087ee0aab0f1743243f0f7e4da"
	"5e8e429ec101d938383d39261512c0ccc7bbb617769a12a6a1109048ce246e92"
	"d1948dc1665eb32055a074743c530902be48538a6cc37ac588eeffd1cedf0dae"
	"352b1651a688d00ed8f1a8bd8c99db5591d0ce63c05d3d3d99e0b8bcd6757a2a"
	"a0719e96e24038ce8f8f271cbdc0fa826e343f3a8d402459379d33d007d0009d";

/*
 * The mariadb CLI 10.11 (libmariadb 3.3.20's caching_sha2_password plugin),
 * told by a fake server to do full authentication without TLS, asked for the
 * public key (0x02) and given fixture_public_pem: its encrypted "secret" for
 * nonce2 (its fast-path token before that was pymysql_tokens[1].sha2_hex).
 */
static const char cipher_libmariadb_secret_nonce2[] =
	"25da2cb8b6060a271626fae54c4d2bb19e777c1a6f7674505277b3c28a35a778"
	"7b407977191cf471ff44b20d5baf059f678abd428031c61099089d015231a761"
	"95f79b693f64325a22a242a61424c6d911a2f97682482527ab24bf126b1e21b3"
	"69e1f4e78a0453555fe6c137a63dc8a7edbff434bb19962092517bb5637b45b9"
	"0da11c177cc73cceb269721f8c913989135d84f8fce708214d14f2c5432e9a41"
	"fcedcfd0895de710a19c0a248dcc5d1705254a185438505822469436c8599a3c"
	"48116d8c3c3c64dc34ff9dd1de619f3bce191be2a89c28e2de37220daf136358"
	"cc683d1487261d269bf19e4b293a2c78c6360d7c541fb5c1688accfaa9247676";

/* The same from mysql2 3.26.1 (Node's crypto.publicEncrypt), allowPublicKeyRetrieval set. */
static const char cipher_mysql2_secret_nonce2[] =
	"8588740e4432301dd1225008b3b912077351cf12a9ed35cfdf7ac9ac4369388e"
	"fbdcf3cff44e126eb6ee7d0e20e8719037dc632faf7a520b0918c2a5cbe5f841"
	"cdc80eabf5dc8525c0e5bfeaff0298bb215e76634afb99c9e3e17263b071f894"
	"e0e9bcb75d8faa075f93a5f12b8ff075745ae343d0f890a7b9d5d20554ff36b0"
	"9a3c5989fcacf5657da58ac57867b144f08bd334b3f373839356a6307c8616e8"
	"f0610539b883eedf593ad5595313ae1e63b2e7f0d27e3b2e6e5cecb3fd5d678f"
	"aac546406590b76030b744e172459ce2aff50f5f42bad19be027df83147dc2a0"
	"5336a972f6988811514d85b2968df8c444e442e6c3e87c6fd0e5b8e4c783893c";

/* ---- helpers ---- */

/* Hex digits into out; the number of bytes. */
static size_t
from_hex(const char *hex, uint8_t *out)
{
	size_t		n;
	uint8_t    *bytes = unhex(hex, &n);

	memcpy(out, bytes, n);
	free(bytes);
	return n;
}

/* bytes[0 .. n) equal to these hex digits? Prints both if not. */
static bool
bytes_are(const uint8_t *bytes, size_t n, const char *hex)
{
	uint8_t		want[512];
	size_t		wn = from_hex(hex, want);

	if (wn == n && memcmp(bytes, want, n) == 0)
		return true;
	printf("#   got:  ");
	for (size_t i = 0; i < n; i++)
		printf("%02x", bytes[i]);
	printf("\n#   want: %s\n", hex);
	return false;
}

/* A heap copy of a C string, for parse_hash's reads to be guarded too. */
static char *
exact_str(const char *s)
{
	return (char *) exact(s, strlen(s) + 1);
}

static bool
all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

/* OpenSSL's error queue left empty (a stale reason would be blamed on a later call)? */
static bool
queue_empty(void)
{
	return ERR_peek_error() == 0;
}

/* ---- mysql_native_password ---- */

static void
test_native_hashes(void)
{
	char		name[160];

	for (size_t i = 0; i < sizeof(mariadb_hashes) / sizeof(mariadb_hashes[0]); i++)
	{
		const char *pw = mariadb_hashes[i].pw;
		uint8_t		stage1[HD_MY_SHA1_LEN];
		uint8_t		stage2[HD_MY_SHA1_LEN];
		uint8_t		parsed[HD_MY_SHA1_LEN];
		char		formatted[HD_MY_NATIVE_HASH_LEN + 1];
		char	   *stored = exact_str(mariadb_hashes[i].hash);

		hd_my_native_stage1(pw, strlen(pw), stage1);
		hd_my_native_stage2(stage1, stage2);
		hd_my_native_format_hash(stage2, formatted);
		snprintf(name, sizeof(name), "native: hash of password #%zu formats as MariaDB's PASSWORD() %s",
				 i, mariadb_hashes[i].hash);
		ok(strcmp(formatted, mariadb_hashes[i].hash) == 0 &&
		   strlen(formatted) == HD_MY_NATIVE_HASH_LEN, name);
		ok(hd_my_native_parse_hash(stored, parsed) == HD_MY_HASH_OK &&
		   memcmp(parsed, stage2, HD_MY_SHA1_LEN) == 0,
		   "native: and PASSWORD()'s text parses back to the same stage2");
		free(stored);
	}
}

static void
test_native_parse(void)
{
	uint8_t		stage2[HD_MY_SHA1_LEN];
	uint8_t		upper[HD_MY_SHA1_LEN];
	char	   *s;
	static const char *const malformed[] = {
		"*",
		"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E1",	/* 39 digits */
		"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E199",	/* 41 digits */
		"**2470C0C06DEE42FD1618BB99005ADCA2EC9D1E1",
		"2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19",	/* no star */
		"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E1G",
		"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19\n",
		" *2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19",
		"*2470C0C06DEE42FD1618BB9 005ADCA2EC9D1E19",
		"*0x70C0C06DEE42FD1618BB99005ADCA2EC9D1E19",
		"565491d704013245",		/* mysql_old_password */
		"*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19*",
	};

	s = exact_str("*2470c0c06dee42fd1618bb99005adca2ec9d1e19");
	ok(hd_my_native_parse_hash(s, stage2) == HD_MY_HASH_OK,
	   "native parse: lowercase hex is taken");
	free(s);
	s = exact_str("*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19");
	hd_my_native_parse_hash(s, upper);
	free(s);
	ok(memcmp(stage2, upper, HD_MY_SHA1_LEN) == 0, "native parse: either case, the same bytes");

	memset(stage2, 0xaa, sizeof(stage2));
	ok(hd_my_native_parse_hash("", stage2) == HD_MY_HASH_NONE &&
	   all_zero(stage2, HD_MY_SHA1_LEN),
	   "native parse: \"\" is an account without a password (stage2 zeroed)");

	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
	{
		char		name[160];

		s = exact_str(malformed[i]);
		memset(stage2, 0xaa, sizeof(stage2));
		snprintf(name, sizeof(name), "native parse: malformed #%zu refused, stage2 zeroed", i);
		ok(hd_my_native_parse_hash(s, stage2) == HD_MY_HASH_MALFORMED &&
		   all_zero(stage2, HD_MY_SHA1_LEN), name);
		free(s);
	}
}

static void
test_native_tokens(void)
{
	for (size_t i = 0; i < sizeof(pymysql_tokens) / sizeof(pymysql_tokens[0]); i++)
	{
		uint8_t		stage1[HD_MY_SHA1_LEN];
		uint8_t		token[HD_MY_SHA1_LEN];

		hd_my_native_stage1(pymysql_tokens[i].pw, pymysql_tokens[i].len, stage1);
		hd_my_native_token(stage1, pymysql_tokens[i].nonce, token);
		ok(bytes_are(token, sizeof(token), pymysql_tokens[i].native_hex),
		   "native token: PyMySQL's scramble_native_password()");
	}

	for (size_t i = 0; i < sizeof(mariadb_logins) / sizeof(mariadb_logins[0]); i++)
	{
		const char *pw = mariadb_logins[i].pw;
		uint8_t		nonce[HD_MY_NONCE_LEN];
		uint8_t		want[HD_MY_SHA1_LEN];
		uint8_t		stage1[HD_MY_SHA1_LEN];
		uint8_t		stage2[HD_MY_SHA1_LEN];
		uint8_t		token[HD_MY_SHA1_LEN];
		uint8_t		got_stage1[HD_MY_SHA1_LEN];
		uint8_t    *sent;

		from_hex(mariadb_logins[i].nonce_hex, nonce);
		from_hex(mariadb_logins[i].token_hex, want);
		hd_my_native_stage1(pw, strlen(pw), stage1);
		hd_my_native_stage2(stage1, stage2);
		hd_my_native_token(stage1, nonce, token);
		ok(memcmp(token, want, sizeof(want)) == 0,
		   "native token: the token of a login MariaDB accepted");
		sent = exact(want, sizeof(want));
		ok(hd_my_native_check(stage2, nonce, sent, sizeof(want), got_stage1) &&
		   memcmp(got_stage1, stage1, HD_MY_SHA1_LEN) == 0,
		   "native check: that login is accepted and yields SHA1(password)");
		free(sent);
	}
}

/* The right token of "secret" for nonce1, with one change, refused and stage1_out zeroed? */
static bool
native_refused(const uint8_t *stage2, const uint8_t *nonce, const uint8_t *token, size_t len)
{
	uint8_t		stage1[HD_MY_SHA1_LEN];
	uint8_t    *sent = exact(token, len);
	bool		refused;

	memset(stage1, 0xaa, sizeof(stage1));
	refused = !hd_my_native_check(stage2, nonce, sent, len, stage1) &&
		all_zero(stage1, HD_MY_SHA1_LEN);
	free(sent);
	return refused;
}

static void
test_native_check(void)
{
	uint8_t		stage1[HD_MY_SHA1_LEN];
	uint8_t		stage2[HD_MY_SHA1_LEN];
	uint8_t		token[HD_MY_SHA1_LEN + 13];
	uint8_t		bad[HD_MY_SHA1_LEN];
	uint8_t		got[HD_MY_SHA1_LEN];
	uint8_t		origin_token[HD_MY_SHA1_LEN];

	hd_my_native_parse_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", stage2);	/* "secret" */
	from_hex(pymysql_tokens[0].native_hex, token);	/* "secret", nonce1 */
	memset(token + HD_MY_SHA1_LEN, 0x41, sizeof(token) - HD_MY_SHA1_LEN);

	ok(hd_my_native_check(stage2, nonce1, token, HD_MY_SHA1_LEN, got) &&
	   bytes_are(got, sizeof(got), STAGE1_SECRET),
	   "native check: PyMySQL's token accepted, stage1 = hashlib.sha1(b\"secret\")");
	ok(hd_my_native_check(stage2, nonce1, token, HD_MY_SHA1_LEN, NULL),
	   "native check: stage1_out may be NULL");

	memcpy(bad, token, sizeof(bad));
	bad[0] ^= 0x01;
	ok(native_refused(stage2, nonce1, bad, sizeof(bad)), "native check: first bit flipped refused");
	memcpy(bad, token, sizeof(bad));
	bad[HD_MY_SHA1_LEN - 1] ^= 0x80;
	ok(native_refused(stage2, nonce1, bad, sizeof(bad)), "native check: last bit flipped refused");
	ok(native_refused(stage2, nonce2, token, HD_MY_SHA1_LEN),
	   "native check: the right token for another nonce refused");
	hd_my_native_parse_hash("*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19", bad);	/* "password" */
	ok(native_refused(bad, nonce1, token, HD_MY_SHA1_LEN),
	   "native check: against another account's hash refused");
	ok(native_refused(stage2, nonce1, token, 0), "native check: empty token (\"no password\") refused");
	ok(native_refused(stage2, nonce1, token, 19), "native check: 19 bytes (the right ones) refused");
	ok(native_refused(stage2, nonce1, token, 21), "native check: 21 bytes (the right 20 and one) refused");
	ok(native_refused(stage2, nonce1, token, 32), "native check: 32 bytes refused");
	memset(bad, 0, sizeof(bad));
	ok(native_refused(stage2, nonce1, bad, sizeof(bad)), "native check: all-zero token refused");

	/*
	 * Pass-through: what the check yields is enough to log in elsewhere: the
	 * origin's token for its own nonce is the one the password would give.
	 */
	hd_my_native_check(stage2, nonce1, token, HD_MY_SHA1_LEN, got);
	hd_my_native_token(got, nonce2, origin_token);
	ok(bytes_are(origin_token, sizeof(origin_token), pymysql_tokens[1].native_hex),
	   "native: a verified client's stage1 logs in for another nonce as the password would");

	memset(got, 0xaa, sizeof(got));
	ok(hd_my_native_check_plain(stage2, "secret", 6, got) && bytes_are(got, sizeof(got), STAGE1_SECRET),
	   "native check_plain: the password against its stored hash, stage1 out");
	ok(hd_my_native_check_plain(stage2, "secret", 6, NULL), "native check_plain: stage1_out may be NULL");
	memset(got, 0xaa, sizeof(got));
	ok(!hd_my_native_check_plain(stage2, "Secret", 6, got) && all_zero(got, sizeof(got)),
	   "native check_plain: another password refused, stage1 zeroed");
	ok(!hd_my_native_check_plain(stage2, "secret", 5, got) && !hd_my_native_check_plain(stage2, "secret\0", 7, got),
	   "native check_plain: a prefix, or the password with its NUL, refused");
	ok(!hd_my_native_check_plain(stage2, "", 0, got), "native check_plain: the empty password refused");

	ok(hd_my_native_check_empty(0), "native, no password: the empty token is accepted");
	ok(!hd_my_native_check_empty(1), "native, no password: a 1-byte token is refused");
	ok(!hd_my_native_check_empty(HD_MY_SHA1_LEN), "native, no password: a 20-byte token is refused");

	ok(hd_my_native_check_password("secret", 6, nonce1, token, HD_MY_SHA1_LEN),
	   "native check_password: the right token");
	ok(!hd_my_native_check_password("secreT", 6, nonce1, token, HD_MY_SHA1_LEN),
	   "native check_password: another password refused");
	ok(!hd_my_native_check_password("secret", 6, nonce1, token, 0),
	   "native check_password: empty token for a password refused");
	ok(hd_my_native_check_password("", 0, nonce1, token, 0),
	   "native check_password: empty password, empty token");
	ok(!hd_my_native_check_password("", 0, nonce1, token, HD_MY_SHA1_LEN),
	   "native check_password: empty password, a 20-byte token refused");
	hd_my_native_stage1("", 0, stage1);
	hd_my_native_token(stage1, nonce1, bad);
	ok(!hd_my_native_check_password("", 0, nonce1, bad, HD_MY_SHA1_LEN),
	   "native check_password: empty password, even the token of SHA1(\"\") refused");
	hd_my_native_stage1(BINARY_PW, BINARY_PW_LEN, stage1);
	hd_my_native_token(stage1, nonce2, bad);
	ok(hd_my_native_check_password(BINARY_PW, BINARY_PW_LEN, nonce2, bad, HD_MY_SHA1_LEN) &&
	   !hd_my_native_check_password(BINARY_PW, 1, nonce2, bad, HD_MY_SHA1_LEN),
	   "native check_password: a password with a NUL inside is hashed to its length");
}

/* ---- caching_sha2_password ---- */

static bool
sha2_refused(const char *pw, size_t pwlen, const uint8_t *nonce, const uint8_t *token, size_t len)
{
	uint8_t    *sent = exact(token, len);
	bool		refused = !hd_my_sha2_check(pw, pwlen, nonce, sent, len);

	free(sent);
	return refused;
}

static void
test_sha2(void)
{
	uint8_t		token[HD_MY_SHA256_LEN + 8];
	uint8_t		bad[HD_MY_SHA256_LEN];
	uint8_t		untouched[HD_MY_SHA256_LEN];
	static const uint8_t nul = 0;
	static const uint8_t one = 1;

	for (size_t i = 0; i < sizeof(pymysql_tokens) / sizeof(pymysql_tokens[0]); i++)
	{
		size_t		n = hd_my_sha2_token(pymysql_tokens[i].pw, pymysql_tokens[i].len,
										 pymysql_tokens[i].nonce, token);

		ok(n == HD_MY_SHA256_LEN && bytes_are(token, n, pymysql_tokens[i].sha2_hex),
		   "sha2 token: PyMySQL's scramble_caching_sha2()");
	}
	memset(untouched, 0x5a, sizeof(untouched));
	memcpy(bad, untouched, sizeof(bad));
	ok(hd_my_sha2_token("", 0, nonce1, bad) == 0 && memcmp(bad, untouched, sizeof(bad)) == 0,
	   "sha2 token: the empty password gives the empty token, buffer untouched");

	from_hex(pymysql_tokens[0].sha2_hex, token);	/* "secret", nonce1 */
	memset(token + HD_MY_SHA256_LEN, 0x41, sizeof(token) - HD_MY_SHA256_LEN);
	ok(!sha2_refused("secret", 6, nonce1, token, HD_MY_SHA256_LEN), "sha2 check: PyMySQL's token accepted");
	ok(sha2_refused("secret", 6, nonce2, token, HD_MY_SHA256_LEN), "sha2 check: for another nonce refused");
	ok(sha2_refused("secreT", 6, nonce1, token, HD_MY_SHA256_LEN), "sha2 check: another password refused");
	ok(sha2_refused("secret", 5, nonce1, token, HD_MY_SHA256_LEN), "sha2 check: a prefix of the password refused");
	memcpy(bad, token, sizeof(bad));
	bad[HD_MY_SHA256_LEN - 1] ^= 0x01;
	ok(sha2_refused("secret", 6, nonce1, bad, sizeof(bad)), "sha2 check: last bit flipped refused");
	ok(sha2_refused("secret", 6, nonce1, token, 0), "sha2 check: empty token refused");
	ok(sha2_refused("secret", 6, nonce1, &nul, 1), "sha2 check: a single NUL refused for a password");
	ok(sha2_refused("secret", 6, nonce1, token, 19), "sha2 check: 19 bytes refused");
	ok(sha2_refused("secret", 6, nonce1, token, 20), "sha2 check: 20 bytes (a native-sized token) refused");
	ok(sha2_refused("secret", 6, nonce1, token, 21), "sha2 check: 21 bytes refused");
	ok(sha2_refused("secret", 6, nonce1, token, 31), "sha2 check: 31 bytes (the right ones) refused");
	ok(sha2_refused("secret", 6, nonce1, token, 33), "sha2 check: 33 bytes (the right 32 and one) refused");

	ok(!sha2_refused("", 0, nonce1, token, 0), "sha2 check, empty password: the empty token");
	ok(!sha2_refused("", 0, nonce1, &nul, 1), "sha2 check, empty password: one NUL (MySQL's client)");
	ok(sha2_refused("", 0, nonce1, &one, 1), "sha2 check, empty password: one other byte refused");
	ok(sha2_refused("", 0, nonce1, token, HD_MY_SHA256_LEN), "sha2 check, empty password: 32 bytes refused");
}

/* ---- RSA ---- */

static size_t
cipher_of(const char *hex, uint8_t out[HD_MY_RSA_CIPHER_LEN])
{
	return from_hex(hex, out);
}

/* Decrypts with key into a buffer of pwmax; 0/-1, the password and error. */
static int
decrypt(const HdMyRsaKey *key, const uint8_t *cipher, size_t len, const uint8_t *nonce,
		char *pw, size_t pwmax, size_t *pwlen, char *err, size_t errlen)
{
	uint8_t    *sent = exact(cipher, len);
	int			rc = hd_my_rsa_decrypt_password(key, sent, len, nonce, pw, pwmax,
												pwlen, err, errlen);

	free(sent);
	if (rc != 0)
		printf("#   (decrypt: %s)\n", err);
	return rc;
}

static void
test_rsa_fixture(void)
{
	char		err[256];
	char		pw[300];
	size_t		pwlen = 99;
	uint8_t		cipher[HD_MY_RSA_CIPHER_LEN];
	HdMyRsaKey *key = hd_my_rsa_from_private_pem(fixture_private_pem,
												 strlen(fixture_private_pem),
												 err, sizeof(err));

	ok(key != NULL, "rsa: the fixture PKCS#8 private key loads");
	if (key == NULL)
	{
		printf("#   %s\n", err);
		return;
	}
	ok(strcmp(hd_my_rsa_public_pem(key), fixture_public_pem) == 0,
	   "rsa: its public PEM is what openssl pkey -pubout wrote");

	cipher_of(cipher_secret_nonce1, cipher);
	ok(decrypt(key, cipher, sizeof(cipher), nonce1, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == 6 && strcmp(pw, "secret") == 0,
	   "rsa decrypt: PyMySQL's sha2_rsa_encrypt(\"secret\")");
	ok(decrypt(key, cipher, sizeof(cipher), nonce1, pw, 7, &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == 6 && strcmp(pw, "secret") == 0,
	   "rsa decrypt: a buffer of exactly the password and its NUL is enough");
	memset(pw, 'x', sizeof(pw));
	ok(hd_my_rsa_decrypt_password(key, cipher, sizeof(cipher), nonce1, pw, 6, &pwlen,
								  err, sizeof(err)) == -1 &&
	   pwlen == 0 && all_zero((uint8_t *) pw, 6) && pw[6] == 'x' && strstr(err, "longer") != NULL,
	   "rsa decrypt: one byte short refused, the buffer wiped and not overrun");
	ok(hd_my_rsa_decrypt_password(key, cipher, sizeof(cipher), nonce2, pw, sizeof(pw), &pwlen,
								  err, sizeof(err)) == -1 && strstr(err, "NUL") != NULL,
	   "rsa decrypt: the wrong nonce refused (no NUL at the end)");

	cipher_of(cipher_latin_nonce2, cipher);
	ok(decrypt(key, cipher, sizeof(cipher), nonce2, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == strlen(LATIN_PW) && strcmp(pw, LATIN_PW) == 0,
	   "rsa decrypt: PyMySQL's of a UTF-8 password");
	cipher_of(cipher_libmariadb_secret_nonce2, cipher);
	ok(decrypt(key, cipher, sizeof(cipher), nonce2, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == 6 && strcmp(pw, "secret") == 0,
	   "rsa decrypt: the mariadb CLI's (libmariadb) encrypted \"secret\"");
	{
		/* full authentication, then the stored hash: a looked-up user's way in */
		uint8_t		stage2[HD_MY_SHA1_LEN];
		uint8_t		stage1[HD_MY_SHA1_LEN];

		hd_my_native_parse_hash("*14E65567ABDB5135D0CFD9A70B3032C179A49EE7", stage2);	/* "secret" */
		ok(hd_my_native_check_plain(stage2, pw, pwlen, stage1) && bytes_are(stage1, sizeof(stage1), STAGE1_SECRET),
		   "rsa: that password checks against MariaDB's PASSWORD('secret'), stage1 for the origin");
	}
	cipher_of(cipher_mysql2_secret_nonce2, cipher);
	ok(decrypt(key, cipher, sizeof(cipher), nonce2, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == 6 && strcmp(pw, "secret") == 0,
	   "rsa decrypt: mysql2's encrypted \"secret\"");
	cipher_of(cipher_long_nonce2, cipher);
	ok(decrypt(key, cipher, sizeof(cipher), nonce2, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == strlen(LONG_PW) && strcmp(pw, LONG_PW) == 0,
	   "rsa decrypt: PyMySQL's of a password longer than the nonce (repeated)");
	cipher_of(cipher_empty_nonce1, cipher);
	ok(decrypt(key, cipher, sizeof(cipher), nonce1, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == 0 && pw[0] == '\0',
	   "rsa decrypt: PyMySQL's of the empty password");

	cipher_of(cipher_secret_nonce1, cipher);
	ok(hd_my_rsa_decrypt_password(key, cipher, 255, nonce1, pw, sizeof(pw), &pwlen, err, sizeof(err)) == -1 &&
	   strstr(err, "255 bytes") != NULL, "rsa decrypt: 255 bytes refused");
	ok(hd_my_rsa_decrypt_password(key, cipher, 0, nonce1, pw, sizeof(pw), &pwlen, err, sizeof(err)) == -1,
	   "rsa decrypt: 0 bytes refused");
	cipher[100] ^= 0x04;
	ok(hd_my_rsa_decrypt_password(key, cipher, sizeof(cipher), nonce1, pw, sizeof(pw), &pwlen,
								  err, sizeof(err)) == -1 && pwlen == 0 && queue_empty(),
	   "rsa decrypt: one bit changed refused, OpenSSL's error queue emptied");
	memset(cipher, 0x5a, sizeof(cipher));
	ok(hd_my_rsa_decrypt_password(key, cipher, sizeof(cipher), nonce1, pw, sizeof(pw), &pwlen,
								  err, sizeof(err)) == -1,
	   "rsa decrypt: garbage refused");
	memset(cipher, 0xff, sizeof(cipher));
	ok(hd_my_rsa_decrypt_password(key, cipher, sizeof(cipher), nonce1, pw, sizeof(pw), &pwlen,
								  err, sizeof(err)) == -1,
	   "rsa decrypt: a number above the modulus refused");
	hd_my_rsa_free(key);
}

/* An RSA/EC key pair made here, as private and public PEM (malloc'd). */
static void
make_pem(const char *type, size_t bits, const char *curve, bool traditional,
		 char **private_pem, char **public_pem)
{
	EVP_PKEY   *pkey = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve)
		: EVP_PKEY_Q_keygen(NULL, NULL, type, bits);
	BIO		   *priv = BIO_new(BIO_s_mem());
	BIO		   *pub = BIO_new(BIO_s_mem());
	char	   *data;
	long		n;

	if (pkey == NULL || priv == NULL || pub == NULL ||
		!(traditional ? PEM_write_bio_PrivateKey_traditional(priv, pkey, NULL, NULL, 0, NULL, NULL)
		  : PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL)) ||
		!PEM_write_bio_PUBKEY(pub, pkey))
		abort();
	n = BIO_get_mem_data(priv, &data);
	*private_pem = strndup(data, (size_t) n);
	n = BIO_get_mem_data(pub, &data);
	*public_pem = strndup(data, (size_t) n);
	BIO_free(priv);
	BIO_free(pub);
	EVP_PKEY_free(pkey);
}

/* The fixture key written as PKCS#1 ("BEGIN RSA PRIVATE KEY"), or encrypted with a passphrase. */
static char *
fixture_rewritten(bool encrypted)
{
	BIO		   *in = BIO_new_mem_buf(fixture_private_pem, -1);
	BIO		   *out = BIO_new(BIO_s_mem());
	EVP_PKEY   *pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, (void *) "");
	char	   *data;
	long		n;
	char	   *pem;

	if (pkey == NULL || out == NULL ||
		!(encrypted ? PEM_write_bio_PrivateKey(out, pkey, EVP_aes_256_cbc(), NULL, 0, NULL, (void *) "hunter2")
		  : PEM_write_bio_PrivateKey_traditional(out, pkey, NULL, NULL, 0, NULL, NULL)))
		abort();
	n = BIO_get_mem_data(out, &data);
	pem = strndup(data, (size_t) n);
	BIO_free(in);
	BIO_free(out);
	EVP_PKEY_free(pkey);
	return pem;
}

static void
test_rsa_keys(void)
{
	char		err[256];
	char	   *pem;
	char	   *pub;
	HdMyRsaKey *key;

	pem = fixture_rewritten(false);
	key = hd_my_rsa_from_private_pem(pem, strlen(pem), err, sizeof(err));
	ok(strncmp(pem, "-----BEGIN RSA PRIVATE KEY-----", 31) == 0 && key != NULL &&
	   strcmp(hd_my_rsa_public_pem(key), fixture_public_pem) == 0,
	   "rsa: the same key as PKCS#1 loads, the same public key");
	hd_my_rsa_free(key);
	free(pem);

	pem = fixture_rewritten(true);
	key = hd_my_rsa_from_private_pem(pem, strlen(pem), err, sizeof(err));
	ok(key == NULL && err[0] != '\0' && queue_empty(),
	   "rsa: an encrypted private key refused (never prompted for)");
	hd_my_rsa_free(key);
	free(pem);

	pem = (char *) exact(fixture_private_pem, 500);
	key = hd_my_rsa_from_private_pem(pem, 500, err, sizeof(err));
	ok(key == NULL, "rsa: a truncated PEM refused (and not read past its length)");
	free(pem);
	key = hd_my_rsa_from_private_pem(fixture_public_pem, strlen(fixture_public_pem), err, sizeof(err));
	ok(key == NULL, "rsa: a public key where a private one is needed refused");

	make_pem("RSA", 1024, NULL, false, &pem, &pub);
	key = hd_my_rsa_from_private_pem(pem, strlen(pem), err, sizeof(err));
	ok(key == NULL && strstr(err, "2048-bit RSA") != NULL, "rsa: a 1024-bit key refused, saying why");
	free(pem);
	free(pub);
	make_pem("EC", 0, "P-256", false, &pem, &pub);
	key = hd_my_rsa_from_private_pem(pem, strlen(pem), err, sizeof(err));
	ok(key == NULL && strstr(err, "RSA") != NULL, "rsa: an EC key refused");
	free(pem);
	free(pub);

	hd_my_rsa_free(NULL);
	ok(true, "rsa: freeing NULL is fine");
}

/* Encrypts with a public PEM given as exactly its bytes; 0/-1. */
static int
encrypt(const char *public_pem, const char *pw, size_t len, const uint8_t *nonce,
		uint8_t *out, size_t outmax, size_t *outlen, char *err, size_t errlen)
{
	size_t		pem_len = strlen(public_pem);
	char	   *sent = (char *) exact(public_pem, pem_len);
	int			rc = hd_my_rsa_encrypt_password(sent, pem_len, pw, len, nonce, out, outmax,
												outlen, err, errlen);

	free(sent);
	if (rc != 0)
		printf("#   (encrypt: %s)\n", err);
	return rc;
}

static void
test_rsa_round_trip(void)
{
	char		err[256];
	char		pw[300];
	char		long_pw[HD_MY_RSA_MAX_PASSWORD_LEN + 2];
	size_t		pwlen;
	uint8_t		cipher[HD_MY_RSA_CIPHER_LEN + 16];
	uint8_t		cipher2[HD_MY_RSA_CIPHER_LEN];
	size_t		clen = 0;
	size_t		clen2 = 0;
	char	   *pem;
	char	   *pub;
	HdMyRsaKey *a = hd_my_rsa_generate(err, sizeof(err));
	HdMyRsaKey *b = hd_my_rsa_generate(err, sizeof(err));

	ok(a != NULL && b != NULL, "rsa: two keys generated");
	if (a == NULL || b == NULL)
	{
		printf("#   %s\n", err);
		return;
	}
	ok(strncmp(hd_my_rsa_public_pem(a), "-----BEGIN PUBLIC KEY-----\n", 27) == 0 &&
	   strstr(hd_my_rsa_public_pem(a), "-----END PUBLIC KEY-----\n") != NULL,
	   "rsa: the public key is PEM SubjectPublicKeyInfo");
	ok(strcmp(hd_my_rsa_public_pem(a), hd_my_rsa_public_pem(b)) != 0, "rsa: two keys differ");

	ok(encrypt(hd_my_rsa_public_pem(a), "secret", 6, nonce2, cipher, sizeof(cipher), &clen,
			   err, sizeof(err)) == 0 && clen == HD_MY_RSA_CIPHER_LEN,
	   "rsa encrypt: 256 bytes for a 2048-bit key");
	ok(decrypt(a, cipher, clen, nonce2, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == 6 && strcmp(pw, "secret") == 0,
	   "rsa: round trip with the same key");
	ok(encrypt(hd_my_rsa_public_pem(a), "secret", 6, nonce2, cipher2, sizeof(cipher2), &clen2,
			   err, sizeof(err)) == 0 && memcmp(cipher, cipher2, HD_MY_RSA_CIPHER_LEN) != 0,
	   "rsa encrypt: randomized (OAEP), two ciphers of one password differ");
	ok(hd_my_rsa_decrypt_password(b, cipher, clen, nonce2, pw, sizeof(pw), &pwlen,
								  err, sizeof(err)) == -1 && strstr(err, "this key") != NULL,
	   "rsa decrypt: with another key refused");

	ok(encrypt(fixture_public_pem, BINARY_PW + 3, 3, nonce1, cipher, sizeof(cipher), &clen,
			   err, sizeof(err)) == 0,
	   "rsa encrypt: to the fixture key");
	{
		HdMyRsaKey *f = hd_my_rsa_from_private_pem(fixture_private_pem, strlen(fixture_private_pem),
												   err, sizeof(err));

		ok(f != NULL && decrypt(f, cipher, clen, nonce1, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
		   pwlen == 3 && memcmp(pw, " pw", 4) == 0,
		   "rsa: and back with its private key");
		hd_my_rsa_free(f);
	}

	ok(encrypt(hd_my_rsa_public_pem(a), "a\0b", 3, nonce1, cipher, sizeof(cipher), &clen,
			   err, sizeof(err)) == 0 &&
	   hd_my_rsa_decrypt_password(a, cipher, clen, nonce1, pw, sizeof(pw), &pwlen,
								  err, sizeof(err)) == -1 && strstr(err, "holds a NUL") != NULL,
	   "rsa decrypt: a password with a NUL inside refused (servers take C strings)");

	memset(long_pw, 'p', sizeof(long_pw));
	ok(encrypt(hd_my_rsa_public_pem(a), long_pw, HD_MY_RSA_MAX_PASSWORD_LEN, nonce1, cipher,
			   sizeof(cipher), &clen, err, sizeof(err)) == 0 &&
	   decrypt(a, cipher, clen, nonce1, pw, sizeof(pw), &pwlen, err, sizeof(err)) == 0 &&
	   pwlen == HD_MY_RSA_MAX_PASSWORD_LEN && memcmp(pw, long_pw, pwlen) == 0,
	   "rsa: round trip of the longest password (213 bytes)");
	ok(hd_my_rsa_encrypt_password(hd_my_rsa_public_pem(a), strlen(hd_my_rsa_public_pem(a)),
								  long_pw, HD_MY_RSA_MAX_PASSWORD_LEN + 1, nonce1, cipher,
								  sizeof(cipher), &clen, err, sizeof(err)) == -1 &&
	   clen == 0 && strstr(err, "too long") != NULL,
	   "rsa encrypt: one byte more refused");
	ok(hd_my_rsa_encrypt_password(hd_my_rsa_public_pem(a), strlen(hd_my_rsa_public_pem(a)),
								  "secret", 6, nonce1, cipher, HD_MY_RSA_CIPHER_LEN - 1, &clen,
								  err, sizeof(err)) == -1 && strstr(err, "no room") != NULL,
	   "rsa encrypt: an output buffer of 255 bytes refused");
	ok(hd_my_rsa_encrypt_password(hd_my_rsa_public_pem(a), 100, "secret", 6, nonce1, cipher,
								  sizeof(cipher), &clen, err, sizeof(err)) == -1 && queue_empty(),
	   "rsa encrypt: a truncated public key refused, OpenSSL's queue emptied");
	ok(hd_my_rsa_encrypt_password("hello", 5, "secret", 6, nonce1, cipher, sizeof(cipher), &clen,
								  err, sizeof(err)) == -1,
	   "rsa encrypt: not PEM refused");

	make_pem("RSA", 1024, NULL, false, &pem, &pub);
	ok(encrypt(pub, long_pw, 128 - 42 - 1, nonce1, cipher, sizeof(cipher), &clen, err, sizeof(err)) == 0 &&
	   clen == 128,
	   "rsa encrypt: a 1024-bit origin key takes 85 bytes, 128 out");
	ok(hd_my_rsa_encrypt_password(pub, strlen(pub), long_pw, 128 - 42, nonce1, cipher, sizeof(cipher),
								  &clen, err, sizeof(err)) == -1 && strstr(err, "1024-bit") != NULL,
	   "rsa encrypt: and refuses 86, naming the key's size");
	free(pem);
	free(pub);
	make_pem("EC", 0, "P-256", false, &pem, &pub);
	ok(hd_my_rsa_encrypt_password(pub, strlen(pub), "secret", 6, nonce1, cipher, sizeof(cipher),
								  &clen, err, sizeof(err)) == -1 && strstr(err, "not an RSA key") != NULL,
	   "rsa encrypt: an EC public key refused");
	free(pem);
	free(pub);

	hd_my_rsa_free(a);
	hd_my_rsa_free(b);
}

int
main(void)
{
	test_native_hashes();
	test_native_parse();
	test_native_tokens();
	test_native_check();
	test_sha2();
	test_rsa_fixture();
	test_rsa_keys();
	test_rsa_round_trip();
	return tap_done();
}
