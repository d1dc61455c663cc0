/*
 * test_log.c
 *    Unit tests of log.c: every line is one line with client bytes escaped,
 *    long messages are cut, and the rate limiter suppresses a kind of line
 *    past its burst, then says how many it suppressed. The clock is a
 *    variable of the test. Prints TAP; run by t/004_log_unit.pl.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "tap.h"

static double fake_now = 1000.0;
static char *captured;
static size_t captured_len;
static FILE *capture;

static double
fake_clock(void)
{
	return fake_now;
}

/* Start capturing the log anew. */
static void
begin(void)
{
	if (capture)
		fclose(capture);
	free(captured);
	captured = NULL;
	captured_len = 0;
	capture = open_memstream(&captured, &captured_len);
	hd_log_set_output(capture);
}

/* The captured log so far (valid until the next begin). */
static const char *
text(void)
{
	fflush(capture);
	return captured ? captured : "";
}

static int
count_lines(const char *s)
{
	int			n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* Every line starts with the stamp and a level: nothing was forged. */
static int
all_lines_stamped(const char *s)
{
	regex_t		re;
	int			good = 1;
	const char *line = s;

	if (regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\\.[0-9]{3} UTC \\[hyperdrive\\] "
				"(ERROR|WARNING|LOG|DEBUG): ", REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	while (*line)
	{
		const char *end = strchr(line, '\n');
		char	   *copy;

		if (end == NULL)
		{
			good = 0;			/* a line without its end */
			break;
		}
		copy = strndup(line, (size_t) (end - line));
		if (copy == NULL || regexec(&re, copy, 0, NULL, 0) != 0)
			good = 0;
		free(copy);
		line = end + 1;
	}
	regfree(&re);
	return good;
}

/* No byte below 0x20 but the line ends, and no DEL. */
static int
no_raw_controls(const char *s)
{
	for (; *s; s++)
		if (((unsigned char) *s < 0x20 && *s != '\n') || *s == 0x7F)
			return 0;
	return 1;
}

static void
test_escaping(void)
{
	const char *user = "evil\nFAKE 2020-01-01 00:00:00.000 UTC [hyperdrive] LOG: forged"
		"\x1b[31mred\r\t\\ \x7f \xc2\x9b \xff \xe2\x82\xac \xc3\xa9 \xed\xa0\x80 \xc0\xaf";

	begin();
	hd_info("client %s: hello", user);
	ok(count_lines(text()) == 1, "a message with newlines is one line");
	ok(all_lines_stamped(text()), "no forged line");
	ok(no_raw_controls(text()), "no raw control characters");
	ok(strstr(text(), "evil\\nFAKE") != NULL, "newline escaped as \\n");
	ok(strstr(text(), "\\x1b[31mred") != NULL, "ESC escaped as \\x1b");
	ok(strstr(text(), "\\r\\t\\\\ \\x7f ") != NULL, "CR, tab, backslash, DEL escaped");
	ok(strstr(text(), "\\xc2\\x9b ") != NULL, "a C1 control in UTF-8 escaped byte by byte");
	ok(strstr(text(), " \\xff ") != NULL, "a byte that is not UTF-8 escaped");
	ok(strstr(text(), " \xe2\x82\xac \xc3\xa9 ") != NULL, "valid UTF-8 kept as it is");
	ok(strstr(text(), "\\xed\\xa0\\x80 \\xc0\\xaf: hello\n") != NULL,
	   "surrogates and overlong forms escaped");
}

static void
test_long_message(void)
{
	char	   *big = malloc(3 * HD_LOG_MAX_MESSAGE);

	memset(big, '\n', 3 * HD_LOG_MAX_MESSAGE - 1);
	big[3 * HD_LOG_MAX_MESSAGE - 1] = '\0';
	begin();
	hd_warning("x%s", big);
	ok(count_lines(text()) == 1 && all_lines_stamped(text()), "a huge message is one line");
	ok(strlen(text()) < 4 * HD_LOG_MAX_MESSAGE + 100, "cut at HD_LOG_MAX_MESSAGE bytes");
	ok(strstr(text(), "\\n\\n...\n") != NULL, "and ends in ...");
	free(big);
}

static void
test_rate_limit(void)
{
	static const char *fmt = "accept failed: %d";

	hd_log_reset();
	hd_log_set_rate_limit(3, 10.0);
	begin();
	for (int i = 0; i < 1000; i++)
		hd_warning(fmt, i);
	ok(count_lines(text()) == 3, "1000 lines of a kind in a window: 3 written");
	ok(strstr(text(), "accept failed: 2\n") && !strstr(text(), "accept failed: 3\n"),
	   "the first 3");
	hd_info("another kind %d", 1);
	hd_info(fmt, 7);
	ok(count_lines(text()) == 5, "other kinds (another format, or level) are not held back");

	fake_now += 5;
	hd_log_tick();
	hd_warning(fmt, 1001);
	ok(count_lines(text()) == 5, "within the window: still suppressed, nothing reported yet");

	fake_now += 5;
	hd_log_tick();
	ok(strstr(text(), "WARNING: 998 more lines like \"accept failed: %d\" were suppressed "
			  "(at most 3 of a kind are written per 10 s)\n") != NULL,
	   "after the window, the tick reports how many were suppressed, at their level");
	ok(count_lines(text()) == 6, "once");
	hd_log_tick();
	ok(count_lines(text()) == 6, "and only once");
	hd_warning(fmt, 2000);
	ok(strstr(text(), "accept failed: 2000\n") != NULL, "a new window writes again");

	/* without a tick, the next line of the kind reports first */
	for (int i = 0; i < 10; i++)
		hd_warning(fmt, i);
	fake_now += 11;
	begin();
	hd_warning(fmt, 3000);
	ok(strstr(text(), "8 more lines like") != NULL &&
	   strstr(text(), "suppressed") < strstr(text(), "accept failed: 3000\n"),
	   "the next line of the kind says what was suppressed before it");

	/* a level that is off costs nothing and counts nothing */
	hd_log_set_level(HD_LOG_WARNING);
	begin();
	for (int i = 0; i < 10; i++)
		hd_info("quiet %d", i);
	fake_now += 11;
	hd_log_tick();
	ok(count_lines(text()) == 0, "lines below the level are neither written nor counted");
	hd_log_set_level(HD_LOG_INFO);
}

/* One subject's limit (hd_log_due): the first call, then one per interval. */
static void
test_due(void)
{
	HdLogLimit	limit = {0};
	HdLogLimit	other = {0};
	uint64_t	left_out = 99;
	int			due = 0;

	ok(hd_log_due(&limit, 60.0, &left_out) && left_out == 0, "the first call is due");
	for (int i = 0; i < 1000; i++)
		due += hd_log_due(&limit, 60.0, &left_out);
	ok(due == 0, "1000 more within the interval: none due");
	ok(hd_log_due(&other, 60.0, &left_out), "another subject has its own limit");
	fake_now += 59;
	ok(!hd_log_due(&limit, 60.0, &left_out), "still not due just before the interval ends");
	fake_now += 1;
	left_out = 0;
	ok(hd_log_due(&limit, 60.0, &left_out) && left_out == 1001,
	   "due once the interval is over, saying how many calls were not");
	ok(!hd_log_due(&limit, 60.0, &left_out), "and a new interval begins");
}

/* Many kinds: each keeps its own count, and the table stays bounded. */
static void
test_many_kinds(void)
{
	static char formats[2000][16];
	int			written;

	hd_log_reset();
	hd_log_set_rate_limit(2, 10.0);
	begin();
	for (int i = 0; i < 2000; i++)
	{
		snprintf(formats[i], sizeof(formats[i]), "kind %d", i);
		for (int j = 0; j < 3; j++)
			hd_log(HD_LOG_INFO, formats[i], 0);
	}
	written = count_lines(text());
	ok(written >= 2 * 400 && written < 2 * 2000 + 1,
	   "2000 kinds: those with a slot get their burst each, the rest share one");
	fake_now += 11;
	hd_log_tick();
	ok(strstr(text(), "more lines were suppressed") != NULL,
	   "kinds without a slot are reported together");
}

int
main(void)
{
	hd_log_set_clock(fake_clock);
	hd_log_set_level(HD_LOG_INFO);
	test_escaping();
	test_long_message();
	test_rate_limit();
	test_due();
	test_many_kinds();
	hd_log_set_output(NULL);
	fclose(capture);
	free(captured);
	return tap_done();
}
