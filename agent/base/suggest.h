/*
 * suggest.h
 *    "Did you mean ...?" for misspelt setting, key and option names.
 *
 * Contract: hd_suggest() returns the candidate closest to word, or NULL when
 * none is close enough to be a plausible typo. Closeness is the optimal
 * string alignment distance (insertions, deletions, substitutions and
 * transpositions of neighbours each cost 1), compared case-insensitively;
 * a candidate is close when that distance is at most 1 for words up to 4
 * characters, else at most max(2, length / 4). candidates is NULL-terminated.
 * Pure function; no allocation.
 */
#ifndef HD_SUGGEST_H
#define HD_SUGGEST_H

extern const char *hd_suggest(const char *word, const char *const *candidates);

#endif							/* HD_SUGGEST_H */
