/*
 * ini.h
 *    Reading the agent's ini-style files: its settings file (settings.h) and
 *    the config files of its state directory (configs.h).
 *
 * Contract:
 *   - hd_ini_parse() reads path line by line and reports each line's meaning
 *     to the handler:
 *       blank, or first non-blank character ';' or '#'   a comment, skipped
 *       [name]                                          on_section(name)
 *       key = value                                     on_entry(key, value)
 *     Blanks around the section name, the key and the value are trimmed.
 *     There are no inline comments and no quoting: the value is the rest of
 *     the line, so that paths and names may hold ';', '#' and quotes.
 *   - A handler returns 0 to go on, or -1 after writing into problem what is
 *     wrong with the line and how to fix it; hd_ini_parse() then stops and
 *     returns -1 with "PATH:LINE: PROBLEM" in err. Any other line (no '=', an
 *     empty key, a NUL byte, an unterminated [section], a line longer than
 *     HD_INI_MAX_LINE) is refused the same way without calling the handler.
 *     A file that cannot be read gives "PATH: cannot read: REASON".
 *   - Returns 0 after the last line. The handler owns nothing it is given:
 *     the strings live until it returns.
 *   - No global state.
 */
#ifndef HD_INI_H
#define HD_INI_H

#include <stddef.h>

#define HD_INI_MAX_LINE 4096

typedef struct HdIniHandler
{
	void	   *arg;
	int			(*on_section) (void *arg, const char *section, unsigned lineno,
							   char *problem, size_t problemlen);
	int			(*on_entry) (void *arg, const char *key, const char *value,
							 unsigned lineno, char *problem, size_t problemlen);
} HdIniHandler;

extern int	hd_ini_parse(const char *path, const HdIniHandler *handler,
						 char *err, size_t errlen);

#endif							/* HD_INI_H */
