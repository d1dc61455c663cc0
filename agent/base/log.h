/*
 * log.h
 *    The agent's log: one line per event on stderr, with time and level.
 *
 * Contract:
 *   - hd_log_set_level() is called from the settings (at start and on
 *     reload); messages below that level are dropped cheaply.
 *   - Lines never contain passwords: callers pass names and SQLSTATEs, not
 *     secrets.
 *   - A line is one line, whatever the arguments hold: in the formatted
 *     message, control characters (C0, DEL, and C1 as UTF-8), backslash and
 *     bytes that are not valid UTF-8 are escaped (\n, \r, \t, \\, \xHH), so
 *     that what clients send (user and database names, parameters, SQL) can
 *     neither forge a line nor send escape sequences to a terminal. Callers
 *     need not escape anything. A message longer than HD_LOG_MAX_MESSAGE
 *     bytes is cut and ends in "...". Each line is written with one write().
 *   - Rate limit: of one kind of line (the same format string at the same
 *     level) at most HD_LOG_BURST are written per HD_LOG_INTERVAL seconds;
 *     the rest are counted, not written. Once that interval is over, the
 *     next line of the kind, or hd_log_tick() (the agent calls it once a
 *     second), first writes one line saying how many were suppressed. Kinds
 *     are kept in a fixed table (more slots than the agent has log calls;
 *     any beyond it share one entry), so the limiter's memory is bounded.
 *   - For the unit tests: hd_log_set_output(), hd_log_set_clock() and
 *     hd_log_set_rate_limit() replace stderr, the monotonic clock and the
 *     limits; hd_log_reset() forgets every kind.
 */
#ifndef HD_LOG_H
#define HD_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>


typedef enum HdLogLevel
{
	HD_LOG_ERROR,
	HD_LOG_WARNING,
	HD_LOG_INFO,
	HD_LOG_DEBUG
} HdLogLevel;

#define HD_LOG_MAX_MESSAGE 8192
#define HD_LOG_BURST 100
#define HD_LOG_INTERVAL 10.0	/* seconds */

extern void hd_log_set_level(HdLogLevel level);
extern int	hd_log_enabled(HdLogLevel level);
extern void hd_log(HdLogLevel level, const char *fmt,...) __attribute__((format(printf, 2, 3)));
/* Report the kinds whose suppressed lines' interval is over. */
extern void hd_log_tick(void);

/*
 * One line per interval about one subject (a config's store failing, a
 * listener out of descriptors), stricter than the per-kind limit: the
 * caller keeps an HdLogLimit (zeroed: nothing logged yet) and writes its
 * line only when hd_log_due() says so; *left_out is how many calls were
 * not due since the last line, for the line to say.
 */
typedef struct HdLogLimit
{
	double		at;				/* the last line (the log's clock); 0: none yet */
	uint64_t	left_out;		/* calls not due since then */
} HdLogLimit;

extern bool hd_log_due(HdLogLimit *limit, double interval, uint64_t *left_out);

extern void hd_log_set_output(FILE *out);
extern void hd_log_set_clock(double (*now) (void));
extern void hd_log_set_rate_limit(unsigned burst, double interval);
extern void hd_log_reset(void);

#define hd_error(...) hd_log(HD_LOG_ERROR, __VA_ARGS__)
#define hd_warning(...) hd_log(HD_LOG_WARNING, __VA_ARGS__)
#define hd_info(...) hd_log(HD_LOG_INFO, __VA_ARGS__)
#define hd_debug(...) do { if (hd_log_enabled(HD_LOG_DEBUG)) hd_log(HD_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif							/* HD_LOG_H */
