/*
 * tap.h — the Test Anything Protocol output shared by the agent's unit tests.
 *
 * Each test program includes this once: ok() prints one numbered result,
 * tap_done() prints the plan at the end and gives the exit status (1 if any
 * test failed), so prove and t/0*_unit.pl read every program the same way.
 */
#ifndef HD_TESTS_TAP_H
#define HD_TESTS_TAP_H

#include <stdio.h>

static int	test_number = 0;
static int	failures = 0;

static inline void
ok(int condition, const char *name)
{
	test_number++;
	if (!condition)
		failures++;
	printf("%sok %d - %s\n", condition ? "" : "not ", test_number, name);
}

/* Prints the plan; the program's exit status. */
static inline int
tap_done(void)
{
	printf("1..%d\n", test_number);
	return failures ? 1 : 0;
}

#endif
