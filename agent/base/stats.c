/*
 * stats.c
 *    See stats.h.
 */
#include "base/stats.h"

const double hd_latency_bounds[HD_LATENCY_NBOUNDS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0
};

void
hd_histogram_observe(HdHistogram *h, double seconds)
{
	int			i = 0;

	if (seconds < 0)
		seconds = 0;
	while (i < HD_LATENCY_NBOUNDS && seconds > hd_latency_bounds[i])
		i++;
	h->buckets[i]++;
	h->count++;
	h->sum += seconds;
}
