/*
 * stats.h
 *    Counters and latency histograms per pool, for SHOW STATS and /metrics.
 *
 * Contract: plain counters, updated on the data path without locks (one
 * thread). Histograms use fixed upper bounds (HD_LATENCY_BOUNDS, seconds),
 * cumulative as Prometheus expects them when exported; the last bucket is
 * +Inf.
 */
#ifndef HD_STATS_H
#define HD_STATS_H

#include <stdint.h>

#define HD_LATENCY_NBOUNDS 14
extern const double hd_latency_bounds[HD_LATENCY_NBOUNDS];

typedef struct HdHistogram
{
	uint64_t	buckets[HD_LATENCY_NBOUNDS + 1];	/* per bucket, not cumulative */
	uint64_t	count;
	double		sum;
} HdHistogram;

typedef struct HdStats
{
	uint64_t	transactions;	/* ended with ReadyForQuery 'I' */
	uint64_t	queries;		/* simple Query messages and extended Syncs */
	uint64_t	bytes_from_clients;
	uint64_t	bytes_to_clients;
	uint64_t	errors_to_clients;	/* ErrorResponses, the origin's and the agent's */
	uint64_t	wait_timeouts;	/* clients refused after query_wait_timeout */
	uint64_t	connect_failures;	/* origin connections or logins that failed */
	uint64_t	pinned_clients;	/* clients pinned to one origin connection (total) */
	HdHistogram query_latency;	/* request sent -> ReadyForQuery */
	HdHistogram transaction_latency;	/* server taken -> server released */
	HdHistogram wait_latency;	/* queued -> got a server */
	HdHistogram ryw_latency;	/* the read-your-writes WAL position query after a write */
} HdStats;

extern void hd_histogram_observe(HdHistogram *h, double seconds);

#endif							/* HD_STATS_H */
