/*
 * sql_quote.h
 *    SQL identifiers and literals, quoted exactly as PostgreSQL 15 does.
 *
 * Contract:
 *   - hd_quote_identifier() appends ident as quote_identifier() would: bare
 *     when it is lowercase letters, digits and underscores, does not start
 *     with a digit, and is not a keyword PostgreSQL 15 reserves in any way
 *     (every category but "unreserved"); otherwise in double quotes, with
 *     each " doubled. The keyword list is PostgreSQL 15's (parser/kwlist.h):
 *     another server version may quote a few words differently.
 *     quote_all_identifiers=on is not mirrored.
 *   - hd_quote_literal() appends value as quote_literal() would: in single
 *     quotes with ' doubled; when it contains a backslash, prefixed with E and
 *     with each backslash doubled.
 */
#ifndef HD_SQL_QUOTE_H
#define HD_SQL_QUOTE_H

#include <stdbool.h>

#include "base/text_buf.h"

extern bool hd_identifier_needs_quotes(const char *ident);
extern void hd_quote_identifier(HdTextBuf *buf, const char *ident);
extern void hd_quote_literal(HdTextBuf *buf, const char *value);

#endif							/* HD_SQL_QUOTE_H */
