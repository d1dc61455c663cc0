/*
 * sql_quote.c
 *    SQL identifiers and literals, quoted exactly as PostgreSQL 15 does
 *    (see sql_quote.h).
 */
#include "base/sql_quote.h"

#include <stdlib.h>
#include <string.h>

/*
 * PostgreSQL 15's keywords of every category except UNRESERVED_KEYWORD
 * (col_name, type_func_name and reserved), from parser/kwlist.h, in strcmp
 * order for bsearch. quote_identifier() quotes exactly these.
 */
static const char *const quoted_keywords[] = {
	"all", "analyse", "analyze", "and", "any", "array", "as", "asc",
	"asymmetric", "authorization", "between", "bigint", "binary", "bit",
	"boolean", "both", "case", "cast", "char", "character", "check",
	"coalesce", "collate", "collation", "column", "concurrently", "constraint",
	"create", "cross", "current_catalog", "current_date", "current_role",
	"current_schema", "current_time", "current_timestamp", "current_user",
	"dec", "decimal", "default", "deferrable", "desc", "distinct", "do",
	"else", "end", "except", "exists", "extract", "false", "fetch", "float",
	"for", "foreign", "freeze", "from", "full", "grant", "greatest", "group",
	"grouping", "having", "ilike", "in", "initially", "inner", "inout", "int",
	"integer", "intersect", "interval", "into", "is", "isnull", "join",
	"lateral", "leading", "least", "left", "like", "limit", "localtime",
	"localtimestamp", "national", "natural", "nchar", "none", "normalize",
	"not", "notnull", "null", "nullif", "numeric", "offset", "on", "only",
	"or", "order", "out", "outer", "overlaps", "overlay", "placing",
	"position", "precision", "primary", "real", "references", "returning",
	"right", "row", "select", "session_user", "setof", "similar", "smallint",
	"some", "substring", "symmetric", "table", "tablesample", "then", "time",
	"timestamp", "to", "trailing", "treat", "trim", "true", "union", "unique",
	"user", "using", "values", "varchar", "variadic", "verbose", "when",
	"where", "window", "with", "xmlattributes", "xmlconcat", "xmlelement",
	"xmlexists", "xmlforest", "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot",
	"xmlserialize", "xmltable",
};

static int
compare_keyword(const void *key, const void *entry)
{
	return strcmp(key, *(const char *const *) entry);
}

static bool
is_quoted_keyword(const char *ident)
{
	return bsearch(ident, quoted_keywords,
				   sizeof(quoted_keywords) / sizeof(quoted_keywords[0]),
				   sizeof(quoted_keywords[0]), compare_keyword) != NULL;
}

/* Bytes compared as ASCII only: any other byte (UTF-8 included) needs quotes. */
bool
hd_identifier_needs_quotes(const char *ident)
{
	if (!((ident[0] >= 'a' && ident[0] <= 'z') || ident[0] == '_'))
		return true;
	for (const char *p = ident; *p; p++)
	{
		char		c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			return true;
	}
	return is_quoted_keyword(ident);
}

void
hd_quote_identifier(HdTextBuf *buf, const char *ident)
{
	if (!hd_identifier_needs_quotes(ident))
	{
		hd_text_buf_puts(buf, ident);
		return;
	}
	hd_text_buf_putc(buf, '"');
	for (const char *p = ident; *p; p++)
	{
		if (*p == '"')
			hd_text_buf_putc(buf, '"');
		hd_text_buf_putc(buf, *p);
	}
	hd_text_buf_putc(buf, '"');
}

void
hd_quote_literal(HdTextBuf *buf, const char *value)
{
	/* quote_literal() switches to E'' syntax so the backslashes survive */
	if (strchr(value, '\\') != NULL)
		hd_text_buf_putc(buf, 'E');
	hd_text_buf_putc(buf, '\'');
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			hd_text_buf_putc(buf, *p);
		hd_text_buf_putc(buf, *p);
	}
	hd_text_buf_putc(buf, '\'');
}
