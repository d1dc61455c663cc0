/*
 * ini.c
 *    Reading ini-style files (see ini.h).
 */
#include "base/ini.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Trim blanks at both ends, in place; returns the new start. */
static char *
trim(char *s)
{
	size_t		len;

	while (is_blank(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		s[--len] = '\0';
	return s;
}

/* "[name]": the trimmed name, or NULL (with a problem) if unterminated. */
static char *
section_name(char *line, char *problem, size_t problemlen)
{
	size_t		len = strlen(line);

	if (line[len - 1] != ']')
	{
		snprintf(problem, problemlen,
				 "a section header must end with \"]\", as in [agent]");
		return NULL;
	}
	line[len - 1] = '\0';
	return trim(line + 1);
}

/* One line, already trimmed and known not to be blank or a comment. */
static int
parse_line(char *line, unsigned lineno, const HdIniHandler *handler,
		   char *problem, size_t problemlen)
{
	char	   *eq;
	char	   *key;

	if (line[0] == '[')
	{
		char	   *name = section_name(line, problem, problemlen);

		if (name == NULL)
			return -1;
		return handler->on_section(handler->arg, name, lineno, problem, problemlen);
	}
	eq = strchr(line, '=');
	if (eq == NULL)
	{
		snprintf(problem, problemlen,
				 "expected \"name = value\", a [section] or a comment (; or #), not \"%.60s%s\"",
				 line, strlen(line) > 60 ? "..." : "");
		return -1;
	}
	*eq = '\0';
	key = trim(line);
	if (key[0] == '\0')
	{
		snprintf(problem, problemlen, "a setting name is missing before \"=\"");
		return -1;
	}
	return handler->on_entry(handler->arg, key, trim(eq + 1), lineno, problem, problemlen);
}

/* Whether a raw line (with its newline) is acceptable text; sets problem if not. */
static bool
check_raw_line(const char *line, size_t len, char *problem, size_t problemlen)
{
	if (memchr(line, '\0', len) != NULL)
	{
		snprintf(problem, problemlen,
				 "contains a NUL byte (is this a text file? it may be damaged)");
		return false;
	}
	if (len > HD_INI_MAX_LINE)
	{
		snprintf(problem, problemlen, "line is longer than %d bytes", HD_INI_MAX_LINE);
		return false;
	}
	return true;
}

static int
parse_stream(FILE *f, const char *path, const HdIniHandler *handler,
			 char *err, size_t errlen)
{
	char	   *buf = NULL;
	size_t		cap = 0;
	ssize_t		len;
	unsigned	lineno = 0;
	char		problem[512];
	int			status = 0;

	while (status == 0 && (len = getline(&buf, &cap, f)) >= 0)
	{
		char	   *line;

		lineno++;
		if (!check_raw_line(buf, (size_t) len, problem, sizeof(problem)))
			status = -1;
		else if (*(line = trim(buf)) == '\0' || line[0] == ';' || line[0] == '#')
			continue;
		else
			status = parse_line(line, lineno, handler, problem, sizeof(problem));
		if (status != 0)
			snprintf(err, errlen, "%s:%u: %s", path, lineno, problem);
	}
	free(buf);
	if (status == 0 && ferror(f))
	{
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		status = -1;
	}
	return status;
}

int
hd_ini_parse(const char *path, const HdIniHandler *handler, char *err, size_t errlen)
{
	FILE	   *f = fopen(path, "re");
	int			status;

	if (f == NULL)
	{
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	status = parse_stream(f, path, handler, err, errlen);
	fclose(f);
	return status;
}
