/*
 * log.c
 *    See log.h.
 *
 * A line is built whole in a buffer (stamp, level, escaped message) and
 * written at once, so that lines of one process never interleave and a
 * client's bytes can never end a line early. The rate limiter counts lines
 * per kind in fixed windows: the first line of a kind opens a window of
 * `interval` seconds in which `burst` lines are written; the kind's slot is
 * found by the address of its format string, which is a literal at almost
 * every call site, so that finding it is a hash and a compare.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* more than the agent's log calls: in practice no kind shares a slot */
#define KIND_SLOTS 512
#define KIND_PROBES 16

typedef struct LogKind
{
	const char *fmt;			/* NULL: a free slot (or the shared overflow one) */
	HdLogLevel	level;
	unsigned	count;			/* lines in the current window */
	double		window_start;
	unsigned long suppressed;	/* in the current window */
} LogKind;

static double monotonic_now(void);

/*
 * The log's process state (the only piece besides the loop): the level from
 * the settings, where lines go, and the limiter's table.
 */
static struct
{
	HdLogLevel	level;
	FILE	   *out;			/* NULL: stderr */
	double		(*now) (void);
	unsigned	burst;
	double		interval;
	unsigned	pending;		/* kinds with suppressed lines not yet reported */
	LogKind		kinds[KIND_SLOTS + 1];	/* the last one: kinds that found no slot */
}			hd_logger = {
	.level = HD_LOG_INFO, .now = monotonic_now, .burst = HD_LOG_BURST,
	.interval = HD_LOG_INTERVAL
};

static const char *const level_names[] = {"ERROR", "WARNING", "LOG", "DEBUG"};

void
hd_log_set_level(HdLogLevel level)
{
	hd_logger.level = level;
}

int
hd_log_enabled(HdLogLevel level)
{
	return level <= hd_logger.level;
}

void
hd_log_set_output(FILE *out)
{
	hd_logger.out = out;
}

void
hd_log_set_clock(double (*now) (void))
{
	hd_logger.now = now ? now : monotonic_now;
}

void
hd_log_set_rate_limit(unsigned burst, double interval)
{
	hd_logger.burst = burst;
	hd_logger.interval = interval;
}

void
hd_log_reset(void)
{
	memset(hd_logger.kinds, 0, sizeof(hd_logger.kinds));
	hd_logger.pending = 0;
}

static double
monotonic_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------------------
 * Escaping
 */

/*
 * Length of the valid UTF-8 sequence of a non-ASCII character at s that is
 * not a C1 control (U+0080..U+009F: some terminals take U+009B as CSI), or
 * 0. Overlong forms and surrogates are not valid.
 */
static size_t
utf8_char_len(const unsigned char *s, size_t left)
{
	size_t		n;
	uint32_t	cp;

	if (s[0] < 0xC2 || s[0] > 0xF4)
		return 0;
	n = s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
	if (left < n)
		return 0;
	cp = s[0] & (0x7F >> n);
	for (size_t i = 1; i < n; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 2 && cp < 0xA0) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/*
 * Append s[0..len) to out at pos, escaped (log.h); out has room for 4 bytes
 * per input byte. Returns the new position.
 */
static size_t
escape(const char *s, size_t len, char *out, size_t pos)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *) s;
	size_t		i = 0;

	while (i < len)
	{
		unsigned char c = u[i];
		size_t		n;

		if (c >= 0x20 && c < 0x7F && c != '\\')
		{
			out[pos++] = (char) c;
			i++;
			continue;
		}
		if (c >= 0x80 && (n = utf8_char_len(u + i, len - i)) > 0)
		{
			memcpy(out + pos, s + i, n);
			pos += n;
			i += n;
			continue;
		}
		out[pos++] = '\\';
		if (c == '\\' || c == '\n' || c == '\r' || c == '\t')
			out[pos++] = c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		else
		{
			out[pos++] = 'x';
			out[pos++] = hex[c >> 4];
			out[pos++] = hex[c & 0xF];
		}
		i++;
	}
	return pos;
}

/* ---------------------------------------------------------------------------
 * Writing
 */

/* Longest line: stamp and level (< 64), the message escaped, "...", '\n'. */
#define MAX_LINE (64 + 4 * HD_LOG_MAX_MESSAGE + 8)

/* One line: stamp, level, the message escaped; written at once. */
static void
write_line(HdLogLevel level, const char *message, size_t len, bool cut)
{
	static char line[MAX_LINE];
	FILE	   *out = hd_logger.out ? hd_logger.out : stderr;
	struct timeval now;
	struct tm	tm;
	size_t		pos;

	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &tm);
	pos = strftime(line, 32, "%Y-%m-%d %H:%M:%S", &tm);
	pos += (size_t) snprintf(line + pos, 64 - pos, ".%03d UTC [hyperdrive] %s: ",
							 (int) (now.tv_usec / 1000), level_names[level]);
	pos = escape(message, len, line, pos);
	if (cut)
	{
		memcpy(line + pos, "...", 3);
		pos += 3;
	}
	line[pos++] = '\n';
	(void) fwrite(line, 1, pos, out);
	fflush(out);
}

/* The formatted message, cut at HD_LOG_MAX_MESSAGE bytes. */
static void
vwrite_line(HdLogLevel level, const char *fmt, va_list args)
{
	char		message[HD_LOG_MAX_MESSAGE + 1];
	int			n = vsnprintf(message, sizeof(message), fmt, args);

	if (n < 0)
		return;
	write_line(level, message, n > HD_LOG_MAX_MESSAGE ? HD_LOG_MAX_MESSAGE : (size_t) n,
			   n > HD_LOG_MAX_MESSAGE);
}

static void
write_linef(HdLogLevel level, const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vwrite_line(level, fmt, args);
	va_end(args);
}

/* ---------------------------------------------------------------------------
 * Rate limiting
 */

static LogKind *
kind_of(const char *fmt, HdLogLevel level)
{
	uintptr_t	h = (uintptr_t) fmt;

	h = (h >> 3) ^ (h >> 13) ^ (uintptr_t) level;
	for (size_t i = 0; i < KIND_PROBES; i++)
	{
		LogKind    *k = &hd_logger.kinds[(h + i) % KIND_SLOTS];

		if (k->fmt == fmt && k->level == level)
			return k;
		if (k->fmt == NULL)
		{
			k->fmt = fmt;
			k->level = level;
			return k;
		}
	}
	return &hd_logger.kinds[KIND_SLOTS];
}

/* Say how many lines of the kind were suppressed; a new window begins. */
static void
close_window(LogKind *k, double now)
{
	if (k->suppressed > 0)
	{
		if (k->fmt)
			write_linef(k->level, "%lu more lines like \"%s\" were suppressed "
						"(at most %u of a kind are written per %g s)",
						k->suppressed, k->fmt, hd_logger.burst, hd_logger.interval);
		else
			write_linef(k->level, "%lu more lines were suppressed "
						"(at most %u of a kind are written per %g s)",
						k->suppressed, hd_logger.burst, hd_logger.interval);
		hd_logger.pending--;
	}
	k->suppressed = 0;
	k->count = 0;
	k->window_start = now;
}

bool
hd_log_due(HdLogLimit *limit, double interval, uint64_t *left_out)
{
	double		now = hd_logger.now();

	if (limit->at > 0 && now - limit->at < interval)
	{
		limit->left_out++;
		return false;
	}
	*left_out = limit->left_out;
	limit->left_out = 0;
	limit->at = now;
	return true;
}

void
hd_log_tick(void)
{
	double		now;

	if (hd_logger.pending == 0)
		return;
	now = hd_logger.now();
	for (size_t i = 0; i <= KIND_SLOTS; i++)
	{
		LogKind    *k = &hd_logger.kinds[i];

		if (k->suppressed > 0 && now - k->window_start >= hd_logger.interval)
			close_window(k, now);
	}
}

void
hd_log(HdLogLevel level, const char *fmt,...)
{
	LogKind    *k;
	double		now;
	va_list		args;

	if (!hd_log_enabled(level))
		return;
	now = hd_logger.now();
	k = kind_of(fmt, level);
	if (k->count == 0 || now - k->window_start >= hd_logger.interval)
		close_window(k, now);
	if (++k->count > hd_logger.burst)
	{
		if (k->suppressed++ == 0)
			hd_logger.pending++;
		return;
	}
	va_start(args, fmt);
	vwrite_line(level, fmt, args);
	va_end(args);
}
