/*
 * my_connect.c
 *    bench/run's connect-per-transaction client for MySQL/MariaDB (the
 *    scenario mysql): sysbench cannot reconnect for every transaction, so
 *    this does, with MariaDB Connector/C (libmariadb), in PROCS processes
 *    for SECONDS seconds, each in a loop:
 *
 *        connect (TCP, mysql_native_password) -> one point select
 *        (SELECT c FROM sbtest1 WHERE id = <random in 1..ROWS>, text
 *        protocol) -> its row read -> COM_QUIT and close
 *
 *    and prints, on stdout, one "key value" a line:
 *
 *        requests N      requests completed (every one returned its row)
 *        errors N        requests that failed (the first error goes to stderr)
 *        seconds S       the measured time (the first fork to the last exit)
 *        rps X           requests / seconds
 *        p50_ms X        per-request latency, connect to close, 50th percentile
 *        p99_ms X        the same, 99th percentile
 *        client_cpu_us X this program's own CPU (user + system, all its
 *                        processes) per request
 *
 *    Exit status: 0 when every request succeeded, 1 when any failed, 2 on a
 *    usage or system error.
 *
 * Usage: my_connect HOST PORT USER PASSWORD DATABASE PROCS SECONDS ROWS
 *    (the password as an argument: a throwaway server's, in a benchmark)
 *
 * Each process keeps its latencies (µs) in memory and writes them to its pipe
 * when the time is up; the parent reads the pipes one after the other (a
 * child that finished waits on its full pipe until then), sorts, and takes
 * the nearest-rank percentiles, as bench/run does for pgbench's logs.
 */
#include <errno.h>
#include <stdbool.h>
#include <mysql.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct Target
{
	const char *host;
	unsigned int port;
	const char *user;
	const char *password;
	const char *database;
	long		rows;
} Target;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/*
 * Reads (out false) or writes (out true) all len bytes of buf from or to fd,
 * a pipe, where either may be partial. 0, or -1 on an error or EOF.
 */
static int
transfer_all(int fd, void *buf, size_t len, bool out)
{
	char	   *p = buf;

	while (len > 0)
	{
		ssize_t		n = out ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/*
 * One request: connect, one point select, its row, close. Returns 0, or -1
 * with the error in err (the caller prints the first one only).
 */
static int
one_request(const Target *t, unsigned int *seed, char *err, size_t errlen)
{
	MYSQL	   *conn = mysql_init(NULL);
	MYSQL_RES  *res;
	char		sql[96];
	int			rc = -1;
	unsigned int protocol = MYSQL_PROTOCOL_TCP;

	if (conn == NULL)
	{
		snprintf(err, errlen, "mysql_init: out of memory");
		return -1;
	}
	mysql_options(conn, MYSQL_OPT_PROTOCOL, &protocol);
	if (mysql_real_connect(conn, t->host, t->user, t->password, t->database, t->port, NULL, 0) == NULL)
	{
		snprintf(err, errlen, "connect: %s", mysql_error(conn));
		goto done;
	}
	snprintf(sql, sizeof(sql), "SELECT c FROM sbtest1 WHERE id = %ld",
			 1 + (long) (rand_r(seed) % t->rows));
	if (mysql_query(conn, sql) != 0)
	{
		snprintf(err, errlen, "%s: %s", sql, mysql_error(conn));
		goto done;
	}
	res = mysql_store_result(conn);
	if (res == NULL)
	{
		snprintf(err, errlen, "%s: no result: %s", sql, mysql_error(conn));
		goto done;
	}
	if (mysql_num_rows(res) != 1)
		snprintf(err, errlen, "%s: %llu rows, not 1", sql, (unsigned long long) mysql_num_rows(res));
	else
		rc = 0;
	mysql_free_result(res);
done:
	mysql_close(conn);
	return rc;
}

/*
 * A child's loop until the deadline; then its counts and latencies to fd:
 * uint64 requests, uint64 errors, then requests uint32 latencies (µs).
 */
static void
child(const Target *t, double deadline, int fd, int id)
{
	size_t		cap = 65536,
				n = 0;
	uint32_t   *lat = malloc(cap * sizeof(uint32_t));
	uint64_t	counts[2] = {0, 0};
	unsigned int seed = (unsigned int) (getpid() * 2654435761u) ^ (unsigned int) id;
	char		err[512];

	if (lat == NULL)
		_exit(2);
	while (now_us() < deadline)
	{
		double		t0 = now_us();

		if (one_request(t, &seed, err, sizeof(err)) != 0)
		{
			if (counts[1]++ == 0)
				fprintf(stderr, "my_connect: process %d: %s\n", id, err);
			continue;
		}
		if (n == cap)
		{
			uint32_t   *more = realloc(lat, cap * 2 * sizeof(uint32_t));

			if (more == NULL)
				_exit(2);
			lat = more;
			cap *= 2;
		}
		lat[n++] = (uint32_t) (now_us() - t0);
	}
	counts[0] = n;
	if (transfer_all(fd, counts, sizeof(counts), true) != 0 ||
		transfer_all(fd, lat, n * sizeof(uint32_t), true) != 0)
		_exit(2);
	_exit(0);
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *) a,
				y = *(const uint32_t *) b;

	return (x > y) - (x < y);
}

/* nearest rank, as bench/run's latency_percentiles */
static double
percentile_ms(const uint32_t *v, size_t n, double p)
{
	size_t		i = (size_t) (n * p + 0.5);

	if (n == 0)
		return 0;
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1] / 1000.0;
}

int
main(int argc, char **argv)
{
	Target		t;
	int			procs,
				seconds,
				i,
				failed = 0;
	int		   *fds;
	uint32_t   *all = NULL;
	size_t		total = 0;
	uint64_t	errors = 0;
	double		start,
				elapsed;
	struct rusage ru;

	if (argc != 9)
	{
		fprintf(stderr, "usage: my_connect HOST PORT USER PASSWORD DATABASE PROCS SECONDS ROWS\n");
		return 2;
	}
	t.host = argv[1];
	t.port = (unsigned int) atoi(argv[2]);
	t.user = argv[3];
	t.password = argv[4];
	t.database = argv[5];
	procs = atoi(argv[6]);
	seconds = atoi(argv[7]);
	t.rows = atol(argv[8]);
	if (procs < 1 || seconds < 1 || t.rows < 1 || t.port == 0)
	{
		fprintf(stderr, "my_connect: PROCS, SECONDS, ROWS and PORT must be positive\n");
		return 2;
	}
	if (mysql_library_init(0, NULL, NULL) != 0)
	{
		fprintf(stderr, "my_connect: mysql_library_init failed\n");
		return 2;
	}
	fds = calloc((size_t) procs, sizeof(int));
	if (fds == NULL)
		return 2;
	start = now_us();
	for (i = 0; i < procs; i++)
	{
		int			p[2];
		pid_t		pid;

		if (pipe(p) != 0 || (pid = fork()) < 0)
		{
			perror("my_connect: pipe/fork");
			return 2;
		}
		if (pid == 0)
		{
			close(p[0]);
			child(&t, start + seconds * 1e6, p[1], i);
		}
		close(p[1]);
		fds[i] = p[0];
	}
	for (i = 0; i < procs; i++)
	{
		uint64_t	counts[2];
		uint32_t   *more;

		if (transfer_all(fds[i], counts, sizeof(counts), false) != 0)
		{
			fprintf(stderr, "my_connect: process %d died without its results\n", i);
			failed = 1;
			continue;
		}
		errors += counts[1];
		more = realloc(all, (total + counts[0] + 1) * sizeof(uint32_t));
		if (more == NULL ||
			transfer_all(fds[i], more + total, counts[0] * sizeof(uint32_t), false) != 0)
		{
			fprintf(stderr, "my_connect: process %d: its latencies are missing\n", i);
			return 2;
		}
		all = more;
		total += counts[0];
		close(fds[i]);
	}
	while (wait(NULL) > 0)
		;
	elapsed = (now_us() - start) / 1e6;
	getrusage(RUSAGE_CHILDREN, &ru);
	qsort(all, total, sizeof(uint32_t), cmp_u32);
	printf("requests %zu\nerrors %llu\nseconds %.3f\nrps %.1f\n", total,
		   (unsigned long long) errors, elapsed, total / elapsed);
	printf("p50_ms %.3f\np99_ms %.3f\n", percentile_ms(all, total, 0.50),
		   percentile_ms(all, total, 0.99));
	printf("client_cpu_us %.1f\n", total == 0 ? 0.0 :
		   ((ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
			ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / (double) total);
	mysql_library_end();
	return (failed || errors > 0 || total == 0) ? 1 : 0;
}
