/*
 * clock.h
 *    The agent's clock for ordering events against each other: seconds of
 *    CLOCK_MONOTONIC. Unlike ev_time() (the wall clock), it never steps
 *    back when the system's time is set, so "this probe was sent after
 *    that request was read" holds when its stamps say so (strict
 *    consistency, docs/cache.md). Its values mean nothing across processes.
 */
#ifndef HD_BASE_CLOCK_H
#define HD_BASE_CLOCK_H

#include <time.h>

static inline double
hd_clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

#endif							/* HD_BASE_CLOCK_H */
