/*
 * saslprep.h
 *    The bytes PostgreSQL 15 feeds to SCRAM for a plaintext password.
 *
 * PostgreSQL (libpq when logging in, the server when building a secret or
 * checking a plaintext password) passes the password through SASLprep
 * (RFC 4013) and hashes the result; if the password is not valid UTF-8, or
 * SASLprep refuses it (prohibited characters, an empty result, bidi rules),
 * it hashes the raw bytes instead. Both sides must agree, so the agent must
 * do exactly the same, or a non-ASCII password that works with psql fails
 * through the agent.
 *
 * Contract:
 *   - hd_saslprep_password() returns in *out (malloc'd, caller frees) the
 *     bytes to hash, as PostgreSQL 15 computes them, whenever it can be sure
 *     of them:
 *       - ASCII passwords are used as they are (PostgreSQL skips SASLprep
 *         for them, control characters included);
 *       - invalid UTF-8 (PostgreSQL's strict check: no overlong forms, no
 *         surrogates, nothing above U+10FFFF) is used raw;
 *       - otherwise the RFC 3454 mapping is applied (non-ASCII spaces to
 *         U+0020, "commonly mapped to nothing" removed); an empty result, or
 *         a prohibited character (RFC 4013 section 2.3, tested on the mapped
 *         string, before normalization, as PostgreSQL does) means raw;
 *       - a mapped string of code points up to U+00FF is normalized to NFKC
 *         (within Latin-1, only 13 characters change, e.g. U+00BD to
 *         "1" U+2044 "2"; no composition can happen) and returned.
 *     Anything else (a code point above U+00FF that survives the mapping)
 *     needs Unicode's NFKC tables and the unassigned and bidi tables of
 *     RFC 3454, which this module does not carry: HD_SASLPREP_UNSUPPORTED,
 *     so that the caller refuses clearly instead of hashing the wrong bytes.
 *   - No global state; reentrant.
 */
#ifndef HD_SASLPREP_H
#define HD_SASLPREP_H

typedef enum HdSaslprepResult
{
	HD_SASLPREP_OK = 0,
	HD_SASLPREP_UNSUPPORTED = 1,
	HD_SASLPREP_OOM = 2
} HdSaslprepResult;

extern HdSaslprepResult hd_saslprep_password(const char *password, char **out);

#endif							/* HD_SASLPREP_H */
