/*
 * log.c
 *    See log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

/* The one piece of process state besides the loop: set from the settings. */
static HdLogLevel current_level = HD_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARNING", "LOG", "DEBUG"};

void
hd_log_set_level(HdLogLevel level)
{
	current_level = level;
}

int
hd_log_enabled(HdLogLevel level)
{
	return level <= current_level;
}

void
hd_log(HdLogLevel level, const char *fmt,...)
{
	struct timeval now;
	struct tm tm;
	char		stamp[32];
	va_list		args;

	if (!hd_log_enabled(level))
		return;
	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s.%03d UTC [hyperdrive] %s: ", stamp, (int) (now.tv_usec / 1000),
			level_names[level]);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
}
