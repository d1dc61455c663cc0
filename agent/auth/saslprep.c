/*
 * saslprep.c
 *    The bytes PostgreSQL 15 hashes for a SCRAM password (see saslprep.h).
 *
 * The tables are RFC 3454's (Unicode 3.2), as RFC 4013 (SASLprep) selects
 * them; ranges are inclusive and sorted.
 */
#include "auth/saslprep.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct CodeRange
{
	uint32_t	first;
	uint32_t	last;
} CodeRange;

#define NRANGES(t) (sizeof(t) / sizeof((t)[0]))

/* C.1.2: non-ASCII space characters, mapped to U+0020. */
static const CodeRange non_ascii_spaces[] = {
	{0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200B},
	{0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}
};

/* B.1: commonly mapped to nothing. */
static const CodeRange mapped_to_nothing[] = {
	{0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x1806, 0x1806},
	{0x180B, 0x180D}, {0x200B, 0x200D}, {0x2060, 0x2060},
	{0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF}
};

/*
 * Prohibited output (RFC 4013 2.3): C.1.2, C.2.1, C.2.2, C.3, C.5, C.6,
 * C.7, C.8, C.9, merged. C.4 (non-characters) is tested apart: U+FDD0 ..
 * U+FDEF here, and the last two code points of every plane in is_prohibited().
 */
static const CodeRange prohibited[] = {
	{0x0000, 0x001F}, {0x007F, 0x00A0}, {0x0340, 0x0341},
	{0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x1680, 0x1680},
	{0x180E, 0x180E}, {0x2000, 0x200F}, {0x2028, 0x202F},
	{0x205F, 0x2063}, {0x206A, 0x206F}, {0x2FF0, 0x2FFB},
	{0x3000, 0x3000}, {0xD800, 0xF8FF}, {0xFDD0, 0xFDEF},
	{0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFD}, {0x1D173, 0x1D17A},
	{0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0x10FFFF}
};

static bool
in_ranges(uint32_t c, const CodeRange *ranges, size_t n)
{
	for (size_t i = 0; i < n && ranges[i].first <= c; i++)
	{
		if (c <= ranges[i].last)
			return true;
	}
	return false;
}

static bool
is_prohibited(uint32_t c)
{
	return (c & 0xFFFE) == 0xFFFE || in_ranges(c, prohibited, NRANGES(prohibited));
}

/*
 * Decodes one strict UTF-8 character at s[0 .. len) (len > 0): its length,
 * or 0 if the bytes are not valid UTF-8, as pg_utf8_islegal() decides.
 */
static size_t
utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	unsigned char b = s[0];
	unsigned char lo = 0x80;
	unsigned char hi = 0xBF;
	size_t		n;

	if (b < 0x80)
	{
		*cp = b;
		return 1;
	}
	if (b >= 0xC2 && b <= 0xDF)
		n = 2;
	else if (b >= 0xE0 && b <= 0xEF)
		n = 3;
	else if (b >= 0xF0 && b <= 0xF4)
		n = 4;
	else
		return 0;				/* continuation byte, overlong lead, > U+10FFFF */
	if (len < n)
		return 0;
	/* the second byte's range excludes overlongs, surrogates and > U+10FFFF */
	if (b == 0xE0)
		lo = 0xA0;
	else if (b == 0xED)
		hi = 0x9F;
	else if (b == 0xF0)
		lo = 0x90;
	else if (b == 0xF4)
		hi = 0x8F;
	if (s[1] < lo || s[1] > hi)
		return 0;
	*cp = b & (0x7F >> n);
	for (size_t i = 1; i < n; i++)
	{
		if (i > 1 && (s[i] < 0x80 || s[i] > 0xBF))
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3F);
	}
	return n;
}

/* Appends the UTF-8 form of a code point up to U+FFFF. */
static char *
utf8_put(char *out, uint32_t c)
{
	if (c < 0x80)
		*out++ = (char) c;
	else if (c < 0x800)
	{
		*out++ = (char) (0xC0 | (c >> 6));
		*out++ = (char) (0x80 | (c & 0x3F));
	}
	else
	{
		*out++ = (char) (0xE0 | (c >> 12));
		*out++ = (char) (0x80 | ((c >> 6) & 0x3F));
		*out++ = (char) (0x80 | (c & 0x3F));
	}
	return out;
}

/*
 * The NFKC form of a Latin-1 character, as UTF-8, or NULL if it is its own.
 * These are all the compatibility decompositions below U+0100 (U+00A0 is
 * mapped to a space before). The combining marks they produce follow a
 * space and compose with nothing, and every other character up to U+00FF is
 * a starter already in NFC, so normalizing a string of them is normalizing
 * each character.
 */
static const char *
latin1_nfkc(uint32_t c)
{
	switch (c)
	{
		case 0xA8:
			return " \xCC\x88";	/* U+0020 U+0308 */
		case 0xAA:
			return "a";
		case 0xAF:
			return " \xCC\x84";	/* U+0020 U+0304 */
		case 0xB2:
			return "2";
		case 0xB3:
			return "3";
		case 0xB4:
			return " \xCC\x81";	/* U+0020 U+0301 */
		case 0xB5:
			return "\xCE\xBC";	/* U+03BC */
		case 0xB8:
			return " \xCC\xA7";	/* U+0020 U+0327 */
		case 0xB9:
			return "1";
		case 0xBA:
			return "o";
		case 0xBC:
			return "1" "\xE2\x81\x84" "4";	/* 1 U+2044 4 */
		case 0xBD:
			return "1" "\xE2\x81\x84" "2";
		case 0xBE:
			return "3" "\xE2\x81\x84" "4";
		default:
			return NULL;
	}
}

static bool
is_ascii(const char *s)
{
	for (; *s; s++)
	{
		if ((unsigned char) *s >= 0x80)
			return false;
	}
	return true;
}

/*
 * Steps 1 (map) and 3 (prohibit) of SASLprep over the whole password, into
 * chars[] (room for strlen(password) code points). Returns the number of
 * mapped code points, 0 if PostgreSQL would hash the raw password (invalid
 * UTF-8, empty result, prohibited character), or -1 if the result needs
 * tables this module does not have.
 */
static long
map_and_check(const char *password, uint32_t *chars)
{
	const unsigned char *s = (const unsigned char *) password;
	size_t		len = strlen(password);
	size_t		count = 0;
	bool		beyond_latin1 = false;

	/* the whole string must be valid UTF-8 before anything else counts */
	for (size_t i = 0; i < len;)
	{
		uint32_t	c;
		size_t		n = utf8_decode(s + i, len - i, &c);

		if (n == 0)
			return 0;
		i += n;
		if (in_ranges(c, non_ascii_spaces, NRANGES(non_ascii_spaces)))
			chars[count++] = 0x20;
		else if (!in_ranges(c, mapped_to_nothing, NRANGES(mapped_to_nothing)))
			chars[count++] = c;
	}
	if (count == 0)
		return 0;
	for (size_t i = 0; i < count; i++)
	{
		if (is_prohibited(chars[i]))
			return 0;
		if (chars[i] > 0xFF)
			beyond_latin1 = true;
	}
	/* Unassigned code points and bidi rules cannot matter below U+0100. */
	return beyond_latin1 ? -1 : (long) count;
}

HdSaslprepResult
hd_saslprep_password(const char *password, char **out)
{
	size_t		len = strlen(password);
	uint32_t   *chars;
	long		count;
	char	   *p;

	*out = NULL;
	if (is_ascii(password))
		return (*out = strdup(password)) ? HD_SASLPREP_OK : HD_SASLPREP_OOM;
	chars = malloc(len * sizeof(uint32_t));
	if (chars == NULL)
		return HD_SASLPREP_OOM;
	count = map_and_check(password, chars);
	if (count <= 0)
	{
		free(chars);
		if (count < 0)
			return HD_SASLPREP_UNSUPPORTED;
		return (*out = strdup(password)) ? HD_SASLPREP_OK : HD_SASLPREP_OOM;
	}
	/* a Latin-1 character (2 bytes) grows to 5 bytes at most (U+00BC) */
	p = *out = malloc(len * 3 + 1);
	if (p == NULL)
	{
		free(chars);
		return HD_SASLPREP_OOM;
	}
	for (long i = 0; i < count; i++)
	{
		const char *nfkc = latin1_nfkc(chars[i]);

		if (nfkc != NULL)
			p = stpcpy(p, nfkc);
		else
			p = utf8_put(p, chars[i]);
	}
	*p = '\0';
	free(chars);
	return HD_SASLPREP_OK;
}
