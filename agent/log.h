/*
 * log.h
 *    The agent's log: one line per event on stderr, with time and level.
 *
 * Contract: hd_log_set_level() is called from the settings (at start and on
 * reload); messages below that level are dropped cheaply. Lines never contain
 * passwords: callers pass names and SQLSTATEs, not secrets.
 */
#ifndef HD_LOG_H
#define HD_LOG_H

#include "settings.h"				/* HdLogLevel */

extern void hd_log_set_level(HdLogLevel level);
extern int	hd_log_enabled(HdLogLevel level);
extern void hd_log(HdLogLevel level, const char *fmt,...) __attribute__((format(printf, 2, 3)));

#define hd_error(...) hd_log(HD_LOG_ERROR, __VA_ARGS__)
#define hd_warning(...) hd_log(HD_LOG_WARNING, __VA_ARGS__)
#define hd_info(...) hd_log(HD_LOG_INFO, __VA_ARGS__)
#define hd_debug(...) do { if (hd_log_enabled(HD_LOG_DEBUG)) hd_log(HD_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif							/* HD_LOG_H */
