/*
 * suggest.c
 *    "Did you mean ...?" (see suggest.h).
 */
#include "base/suggest.h"

#include <ctype.h>
#include <string.h>

/* Names we compare are short; anything longer is not a typo of one of them. */
#define MAX_WORD 64

static int
min3(int a, int b, int c)
{
	int			m = a < b ? a : b;

	return m < c ? m : c;
}

/* Optimal string alignment distance, case-insensitive; -1 if a word is too long. */
static int
distance(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);
	int			d[MAX_WORD + 1][MAX_WORD + 1];

	if (la > MAX_WORD || lb > MAX_WORD)
		return -1;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int) i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int) j;
	for (size_t i = 1; i <= la; i++)
	{
		for (size_t j = 1; j <= lb; j++)
		{
			int			ca = tolower((unsigned char) a[i - 1]);
			int			cb = tolower((unsigned char) b[j - 1]);
			int			cost = ca == cb ? 0 : 1;

			d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && ca == tolower((unsigned char) b[j - 2]) &&
				tolower((unsigned char) a[i - 2]) == cb && d[i - 2][j - 2] + 1 < d[i][j])
				d[i][j] = d[i - 2][j - 2] + 1;
		}
	}
	return d[la][lb];
}

const char *
hd_suggest(const char *word, const char *const *candidates)
{
	size_t		len = strlen(word);
	int			limit = len <= 4 ? 1 : (int) (len / 4 > 2 ? len / 4 : 2);
	const char *best = NULL;
	int			best_distance = limit + 1;

	for (; *candidates != NULL; candidates++)
	{
		int			dist = distance(word, *candidates);

		if (dist >= 0 && dist < best_distance)
		{
			best = *candidates;
			best_distance = dist;
		}
	}
	return best;
}
