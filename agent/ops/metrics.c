/*
 * metrics.c
 *    The Prometheus endpoint; see metrics.h.
 *
 * A connection reads its request into a buffer (at most
 * HD_METRICS_MAX_REQUEST bytes), answers once the header is complete, writes
 * the answer as the socket takes it, then half-closes and reads until the
 * peer closes (so that unread request bytes cannot turn the close into a
 * reset that loses the answer). One timer bounds the whole connection.
 */
#include "ops/metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "base/text_buf.h"
#include "base/version.h"
#include "mywire/mywire.h"

typedef struct HdMetrics
{
	HdAgent    *agent;
	HdListener	listener;		/* pauses when descriptors run out (listener.h) */
	HdList		conns;
} HdMetrics;

typedef enum ConnState
{
	CONN_READING,
	CONN_WRITING,
	CONN_LINGERING				/* answered: wait for the peer to close */
} ConnState;

typedef struct MetricsConn
{
	HdMetrics  *metrics;
	HdList		link;
	int			fd;
	ev_io		io;
	ev_timer	timer;
	ConnState	state;
	HdIoBuf		in;
	HdIoBuf		out;
} MetricsConn;

/* ---------------------------------------------------------------------------
 * Counting (shared with the admin console)
 */

const char *
hd_client_state_name(const HdClient *client)
{
	if (client->state == HD_CLIENT_CANCEL)
		return "cancel";		/* a CancelRequest in flight (cancel.c) */
	if (client->state != HD_CLIENT_ACTIVE)
		return client->state == HD_CLIENT_CLOSED ? "closed" : "login";
	if (client->server)
		return "active";
	return client->wait.waiting ? "waiting" : "idle";
}

const char *
hd_pool_conn_state_name(HdPoolConnState state)
{
	switch (state)
	{
		case HD_CONN_CONNECTING:
			return "connecting";
		case HD_CONN_LOGIN:
			return "login";
		case HD_CONN_IDLE:
			return "idle";
		case HD_CONN_ACTIVE:
			return "active";
		case HD_CONN_RESETTING:
			return "resetting";
		case HD_CONN_CLOSED:
			break;
	}
	return "closed";
}

const char *
hd_server_state_name(const HdServer *server)
{
	return hd_pool_conn_state_name(server->conn.state);
}

static void
add_histogram(HdHistogram *to, const HdHistogram *from)
{
	for (int i = 0; i <= HD_LATENCY_NBOUNDS; i++)
		to->buckets[i] += from->buckets[i];
	to->count += from->count;
	to->sum += from->sum;
}

static void
add_stats(HdStats *to, const HdStats *from)
{
	to->transactions += from->transactions;
	to->queries += from->queries;
	to->bytes_from_clients += from->bytes_from_clients;
	to->bytes_to_clients += from->bytes_to_clients;
	to->errors_to_clients += from->errors_to_clients;
	to->wait_timeouts += from->wait_timeouts;
	to->connect_failures += from->connect_failures;
	to->pinned_clients += from->pinned_clients;
	add_histogram(&to->query_latency, &from->query_latency);
	add_histogram(&to->transaction_latency, &from->transaction_latency);
	add_histogram(&to->wait_latency, &from->wait_latency);
}

/* A pool's servers and counters. */
static void
add_pool(const HdPool *pool, HdPoolCounts *out)
{
	const HdList *item;

	for (item = pool->conns.next; item != &pool->conns; item = item->next)
	{
		const HdPoolConn *conn = hd_container_of(item, HdPoolConn, link);

		switch (conn->state)
		{
			case HD_CONN_CONNECTING:
			case HD_CONN_LOGIN:
				out->servers_connecting++;
				break;
			case HD_CONN_IDLE:
				out->servers_idle++;
				break;
			case HD_CONN_ACTIVE:
			case HD_CONN_RESETTING:
				out->servers_active++;
				break;
			case HD_CONN_CLOSED:
				break;
		}
	}
	add_stats(&out->stats, &pool->stats);
}

static void
add_client(const HdClient *client, HdPoolCounts *out)
{
	if (client->state == HD_CLIENT_LOGIN)
		out->clients_waiting++;
	else if (client->state != HD_CLIENT_ACTIVE)
		return;
	else if (client->server)
		out->clients_active++;
	else if (client->wait.waiting)
		out->clients_waiting++;
	else
		out->clients_idle++;
}

/* Which MySQL sessions add_my_session() counts: one pool's, or a config's. */
typedef struct MySessionCount
{
	const HdPool *pool;			/* NULL: every pool of config_id */
	const char *config_id;
	HdPoolCounts *out;
} MySessionCount;

/* A MySQL session, counted as add_client() counts a PostgreSQL one. */
static void
add_my_session(void *arg, const HdMySessionRow *row)
{
	MySessionCount *c = arg;

	if (row->pool == NULL ||
		(c->pool ? row->pool != c->pool : strcmp(row->pool->config.id, c->config_id) != 0))
		return;
	if (strcmp(row->state, "active") == 0)
		c->out->clients_active++;
	else if (strcmp(row->state, "idle") == 0)
		c->out->clients_idle++;
	else
		c->out->clients_waiting++;	/* queued, or logging in to its pool */
}

void
hd_pool_counts_add(HdAgent *agent, const HdPool *pool, HdPoolCounts *out)
{
	HdList	   *item;
	HdList	   *tmp;

	add_pool(pool, out);
	if (pool->config.protocol == HD_PROTOCOL_MYSQL)
	{
		MySessionCount c = {pool, pool->config.id, out};

		if (agent->mysql)
			hd_my_agent_sessions(agent->mysql, add_my_session, &c);
		return;
	}
	hd_list_foreach_safe(item, tmp, &agent->clients)
	{
		HdClient   *client = hd_container_of(item, HdClient, link);

		if (client->pool == pool)
			add_client(client, out);
	}
}

static void
add_config_pools(HdList *pools, const char *config_id, HdPoolCounts *out)
{
	HdList	   *item;
	HdList	   *tmp;

	hd_list_foreach_safe(item, tmp, pools)
	{
		HdPool	   *pool = hd_container_of(item, HdPool, link);

		if (strcmp(pool->config.id, config_id) == 0)
			add_pool(pool, out);
	}
}

void
hd_config_counts(HdAgent *agent, const char *config_id, HdPoolCounts *out)
{
	HdList	   *item;
	HdList	   *tmp;

	memset(out, 0, sizeof(*out));
	add_config_pools(&agent->pools, config_id, out);
	hd_list_foreach_safe(item, tmp, &agent->clients)
	{
		HdClient   *client = hd_container_of(item, HdClient, link);

		if (client->pool && strcmp(client->pool->config.id, config_id) == 0)
			add_client(client, out);
	}
	if (agent->mysql)
	{
		MySessionCount c = {NULL, config_id, out};

		add_config_pools(hd_my_agent_pools(agent->mysql), config_id, out);
		hd_my_agent_sessions(agent->mysql, add_my_session, &c);
	}
}

/* ---------------------------------------------------------------------------
 * The exposition format
 */

/* A label value: backslash, double quote and newline escaped. */
static void
put_label_value(HdTextBuf *buf, const char *value)
{
	for (const char *p = value; *p; p++)
	{
		if (*p == '\\')
			hd_text_buf_puts(buf, "\\\\");
		else if (*p == '"')
			hd_text_buf_puts(buf, "\\\"");
		else if (*p == '\n')
			hd_text_buf_puts(buf, "\\n");
		else
			hd_text_buf_putc(buf, *p);
	}
}

static void
put_header(HdTextBuf *buf, const char *name, const char *type, const char *help)
{
	hd_text_buf_printf(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * name{config="...",protocol="...",extra} (extra: more labels, already
 * formatted, or NULL)
 */
static void
put_series(HdTextBuf *buf, const char *name, const char *suffix, const HdConfig *config,
		   const char *extra)
{
	hd_text_buf_printf(buf, "%s%s{config=\"", name, suffix);
	put_label_value(buf, config->name);
	hd_text_buf_printf(buf, "\",protocol=\"%s\"", hd_protocol_name(config->protocol));
	if (extra)
	{
		hd_text_buf_putc(buf, ',');
		hd_text_buf_puts(buf, extra);
	}
	hd_text_buf_puts(buf, "} ");
}

typedef struct Counter
{
	const char *name;
	const char *help;
	size_t		offset;			/* of the uint64_t in HdStats */
} Counter;

typedef struct Histogram
{
	const char *name;
	const char *help;
	size_t		offset;			/* of the HdHistogram in HdStats */
} Histogram;

static const Counter counters[] = {
	{"hyperdrive_transactions_total",
		"Transactions (and statements outside one) completed through the agent.",
	offsetof(HdStats, transactions)},
	{"hyperdrive_queries_total",
		"Simple Query messages and extended-protocol Syncs sent to the origin.",
	offsetof(HdStats, queries)},
	{"hyperdrive_client_bytes_received_total",
		"Bytes received from clients and forwarded to the origin.",
	offsetof(HdStats, bytes_from_clients)},
	{"hyperdrive_client_bytes_sent_total",
		"Bytes sent to clients.",
	offsetof(HdStats, bytes_to_clients)},
	{"hyperdrive_errors_total",
		"ErrorResponses sent to clients, the origin's and the agent's.",
	offsetof(HdStats, errors_to_clients)},
	{"hyperdrive_wait_timeouts_total",
		"Clients refused after waiting query_wait_timeout for an origin connection.",
	offsetof(HdStats, wait_timeouts)},
	{"hyperdrive_origin_connect_failures_total",
		"Origin connections or logins that failed.",
	offsetof(HdStats, connect_failures)},
	{"hyperdrive_pinned_clients_total",
		"Clients pinned to one origin connection until they disconnect.",
	offsetof(HdStats, pinned_clients)},
};

static const Histogram histograms[] = {
	{"hyperdrive_query_duration_seconds",
		"Time from a request sent to the origin to its ReadyForQuery.",
	offsetof(HdStats, query_latency)},
	{"hyperdrive_transaction_duration_seconds",
		"Time a client held an origin connection (transaction pooling).",
	offsetof(HdStats, transaction_latency)},
	{"hyperdrive_wait_duration_seconds",
		"Time a client waited for an origin connection.",
	offsetof(HdStats, wait_latency)},
};

/* The MySQL wing's own counters: agent-wide, as the wing keeps them. */
static void
put_mysql_counters(HdAgent *agent, HdTextBuf *buf)
{
	HdMyCounters c = {0};

	if (agent->mysql)
		hd_my_agent_counters(agent->mysql, &c);
	put_header(buf, "hyperdrive_mysql_pins_total", "counter",
			   "MySQL sessions pinned to their origin connection (a statement whose effect the agent cannot carry).");
	hd_text_buf_printf(buf, "hyperdrive_mysql_pins_total %llu\n", (unsigned long long) c.pins);
	put_header(buf, "hyperdrive_mysql_diagnostics_refused_total", "counter",
			   "MySQL reads of the previous statement's diagnostics refused: its origin connection was used by another session since.");
	hd_text_buf_printf(buf, "hyperdrive_mysql_diagnostics_refused_total %llu\n",
					   (unsigned long long) c.diagnostics_refused);
}

char *
hd_metrics_render(HdAgent *agent, size_t *len)
{
	HdTextBuf	buf = HD_TEXT_BUF_INIT;
	size_t		n = agent->configs.count;
	HdPoolCounts *counts = calloc(n ? n : 1, sizeof(HdPoolCounts));
	static const char *const client_states[] = {"active", "waiting", "idle"};
	static const char *const server_states[] = {"active", "idle", "connecting"};
	char	   *text;

	if (counts == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		hd_config_counts(agent, agent->configs.items[i].id, &counts[i]);

	put_header(&buf, "hyperdrive_up", "gauge", "Whether the agent is running (always 1).");
	hd_text_buf_puts(&buf, "hyperdrive_up 1\n");
	put_header(&buf, "hyperdrive_build_info", "gauge", "The agent's version, as a label.");
	hd_text_buf_puts(&buf, "hyperdrive_build_info{version=\"");
	put_label_value(&buf, HYPERDRIVE_VERSION);
	hd_text_buf_puts(&buf, "\"} 1\n");

	put_header(&buf, "hyperdrive_clients", "gauge",
			   "Client connections: active (holding an origin connection), waiting for one, or idle.");
	for (size_t i = 0; i < n; i++)
	{
		int			values[3] = {counts[i].clients_active, counts[i].clients_waiting,
		counts[i].clients_idle};

		for (int s = 0; s < 3; s++)
		{
			char		label[32];

			snprintf(label, sizeof(label), "state=\"%s\"", client_states[s]);
			put_series(&buf, "hyperdrive_clients", "", &agent->configs.items[i], label);
			hd_text_buf_printf(&buf, "%d\n", values[s]);
		}
	}
	put_header(&buf, "hyperdrive_server_connections", "gauge",
			   "Origin connections: active (held by a client), idle, or connecting.");
	for (size_t i = 0; i < n; i++)
	{
		int			values[3] = {counts[i].servers_active, counts[i].servers_idle,
		counts[i].servers_connecting};

		for (int s = 0; s < 3; s++)
		{
			char		label[32];

			snprintf(label, sizeof(label), "state=\"%s\"", server_states[s]);
			put_series(&buf, "hyperdrive_server_connections", "", &agent->configs.items[i],
					   label);
			hd_text_buf_printf(&buf, "%d\n", values[s]);
		}
	}
	for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++)
	{
		put_header(&buf, counters[c].name, "counter", counters[c].help);
		for (size_t i = 0; i < n; i++)
		{
			const uint64_t *value = (const uint64_t *) ((const char *) &counts[i].stats +
														counters[c].offset);

			put_series(&buf, counters[c].name, "", &agent->configs.items[i], NULL);
			hd_text_buf_printf(&buf, "%llu\n", (unsigned long long) *value);
		}
	}
	for (size_t h = 0; h < sizeof(histograms) / sizeof(histograms[0]); h++)
	{
		put_header(&buf, histograms[h].name, "histogram", histograms[h].help);
		for (size_t i = 0; i < n; i++)
		{
			const HdHistogram *hist = (const HdHistogram *) ((const char *) &counts[i].stats +
															 histograms[h].offset);
			const HdConfig *config = &agent->configs.items[i];
			uint64_t	cumulative = 0;

			for (int b = 0; b <= HD_LATENCY_NBOUNDS; b++)
			{
				char		label[48];

				cumulative += hist->buckets[b];
				if (b < HD_LATENCY_NBOUNDS)
					snprintf(label, sizeof(label), "le=\"%g\"", hd_latency_bounds[b]);
				else
					snprintf(label, sizeof(label), "le=\"+Inf\"");
				put_series(&buf, histograms[h].name, "_bucket", config, label);
				hd_text_buf_printf(&buf, "%llu\n", (unsigned long long) cumulative);
			}
			put_series(&buf, histograms[h].name, "_sum", config, NULL);
			hd_text_buf_printf(&buf, "%.9g\n", hist->sum);
			put_series(&buf, histograms[h].name, "_count", config, NULL);
			hd_text_buf_printf(&buf, "%llu\n", (unsigned long long) hist->count);
		}
	}
	free(counts);
	put_mysql_counters(agent, &buf);
	hd_cache_metrics(agent->cache, &buf);
	*len = buf.len;				/* with the cache's series */
	text = hd_text_buf_finish(&buf);
	if (text == NULL)
		*len = 0;
	return text;
}

/* ---------------------------------------------------------------------------
 * HTTP
 */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);

static void
conn_close(MetricsConn *conn)
{
	struct ev_loop *loop = conn->metrics->agent->loop;

	ev_io_stop(loop, &conn->io);
	ev_timer_stop(loop, &conn->timer);
	close(conn->fd);
	hd_list_del(&conn->link);
	hd_iobuf_free(&conn->in);
	hd_iobuf_free(&conn->out);
	free(conn);
}

static void
conn_watch(MetricsConn *conn, int events)
{
	struct ev_loop *loop = conn->metrics->agent->loop;

	ev_io_stop(loop, &conn->io);
	ev_io_set(&conn->io, conn->fd, events);
	ev_io_start(loop, &conn->io);
}

/* Queue a whole response; body may be NULL for none (HEAD). */
static int
respond(MetricsConn *conn, const char *status, const char *content_type, const char *extra,
		const char *body, size_t body_len, bool head_only)
{
	char		header[512];
	int			n;

	n = snprintf(header, sizeof(header),
				 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
				 "Connection: close\r\n\r\n",
				 status, content_type, body_len, extra ? extra : "");
	if (n < 0 || (size_t) n >= sizeof(header) ||
		hd_iobuf_append(&conn->out, header, (size_t) n) < 0)
		return -1;
	if (!head_only && body_len > 0 && hd_iobuf_append(&conn->out, body, body_len) < 0)
		return -1;
	return 0;
}

static int
respond_text(MetricsConn *conn, const char *status, const char *extra, const char *text,
			 bool head_only)
{
	return respond(conn, status, "text/plain; charset=utf-8", extra, text, strlen(text),
				   head_only);
}

/* The request header is complete in conn->in (head_len bytes): answer it. */
static int
handle_request(MetricsConn *conn, size_t head_len)
{
	char		line[HD_METRICS_MAX_REQUEST + 1];
	const char *head = hd_iobuf_head(&conn->in);
	size_t		line_len = 0;
	char	   *method;
	char	   *target;
	char	   *version;
	char	   *save = NULL;
	bool		head_only;

	while (line_len < head_len && head[line_len] != '\r' && head[line_len] != '\n')
		line_len++;
	memcpy(line, head, line_len);
	line[line_len] = '\0';
	method = strtok_r(line, " ", &save);
	target = method ? strtok_r(NULL, " ", &save) : NULL;
	version = target ? strtok_r(NULL, " ", &save) : NULL;
	if (version == NULL || strtok_r(NULL, " ", &save) != NULL ||
		strncmp(version, "HTTP/1.", 7) != 0)
		return respond_text(conn, "400 Bad Request", NULL, "bad request\n", false);
	head_only = strcmp(method, "HEAD") == 0;
	if (strcmp(method, "GET") != 0 && !head_only)
		return respond_text(conn, "405 Method Not Allowed", "Allow: GET, HEAD\r\n",
							"method not allowed: use GET\n", false);
	target[strcspn(target, "?#")] = '\0';
	if (strcmp(target, "/metrics") != 0)
		return respond_text(conn, "404 Not Found", NULL, "not found: the metrics are at /metrics\n",
							head_only);
	{
		size_t		len;
		char	   *text = hd_metrics_render(conn->metrics->agent, &len);
		int			rc;

		if (text == NULL)
			return respond_text(conn, "500 Internal Server Error", NULL, "out of memory\n",
								head_only);
		rc = respond(conn, "200 OK", "text/plain; version=0.0.4; charset=utf-8", NULL, text,
					 len, head_only);
		free(text);
		return rc;
	}
}

/* The length of the request header (through its blank line), or 0 if incomplete. */
static size_t
header_length(const HdIoBuf *in)
{
	const char *data = hd_iobuf_head(in);
	size_t		live = hd_iobuf_live(in);

	for (size_t i = 0; i + 1 < live; i++)
	{
		if (data[i] != '\n')
			continue;
		if (data[i + 1] == '\n')
			return i + 2;
		if (i + 2 < live && data[i + 1] == '\r' && data[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void
conn_write(MetricsConn *conn)
{
	int			rc = hd_iobuf_write_fd(&conn->out, conn->fd);

	if (rc < 0)
	{
		conn_close(conn);
		return;
	}
	if (rc > 0)
	{
		conn_watch(conn, EV_WRITE);
		return;
	}
	/* all sent: half-close, and wait for the peer to close its side */
	(void) shutdown(conn->fd, SHUT_WR);
	conn->state = CONN_LINGERING;
	conn_watch(conn, EV_READ);
}

static void
conn_read(MetricsConn *conn)
{
	for (;;)
	{
		long		n;
		size_t		head_len;

		if (conn->state == CONN_LINGERING)
		{
			char		discard[4096];
			ssize_t		got = read(conn->fd, discard, sizeof(discard));

			if (got > 0 || (got < 0 && errno == EINTR))
				continue;
			if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return;
			conn_close(conn);
			return;
		}
		n = hd_iobuf_read_fd(&conn->in, conn->fd,
							 HD_METRICS_MAX_REQUEST + 1 - hd_iobuf_live(&conn->in));
		if (n == -2)
			return;
		if (n <= 0)
		{
			conn_close(conn);
			return;
		}
		head_len = header_length(&conn->in);
		if (head_len == 0 || head_len > HD_METRICS_MAX_REQUEST)
		{
			if (hd_iobuf_live(&conn->in) >= HD_METRICS_MAX_REQUEST)
			{
				hd_debug("metrics: request from a scraper too large: closing");
				conn_close(conn);
				return;
			}
			continue;
		}
		if (handle_request(conn, head_len) < 0)
		{
			conn_close(conn);
			return;
		}
		conn->state = CONN_WRITING;
		conn_write(conn);
		return;
	}
}

static void
conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	MetricsConn *conn = w->data;

	(void) loop;
	if (conn->state == CONN_WRITING && (revents & EV_WRITE))
		conn_write(conn);
	else if (revents & EV_READ)
		conn_read(conn);
}

static void
conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	MetricsConn *conn = w->data;

	(void) loop;
	(void) revents;
	if (conn->state == CONN_READING)
		hd_debug("metrics: a scraper did not send its request within %.0f s: closing",
				 HD_METRICS_TIMEOUT);
	conn_close(conn);
}

/* A scraper connected (listener.h). */
static void
scraper_accepted(void *arg, int fd, const struct sockaddr_storage *addr)
{
	HdMetrics  *metrics = arg;
	struct ev_loop *loop = metrics->agent->loop;
	MetricsConn *conn;

	(void) addr;
	if (hd_socket_prepare(fd) < 0 || (conn = calloc(1, sizeof(MetricsConn))) == NULL)
	{
		close(fd);
		return;
	}
	conn->metrics = metrics;
	conn->fd = fd;
	conn->state = CONN_READING;
	hd_list_append(&metrics->conns, &conn->link);
	ev_io_init(&conn->io, conn_io_cb, fd, EV_READ);
	ev_timer_init(&conn->timer, conn_timeout_cb, HD_METRICS_TIMEOUT, 0.);
	conn->io.data = conn->timer.data = conn;
	ev_io_start(loop, &conn->io);
	ev_timer_start(loop, &conn->timer);
}

int
hd_metrics_start(HdAgent *agent)
{
	const HdSettings *settings = &agent->settings;
	HdMetrics  *metrics;
	char		err[512];

	agent->metrics = NULL;
	if (settings->metrics_host == NULL)
		return 0;
	metrics = calloc(1, sizeof(HdMetrics));
	if (metrics == NULL)
	{
		hd_error("out of memory starting the metrics endpoint");
		return -1;
	}
	hd_listener_init(&metrics->listener);
	if (hd_listener_open_tcp(&metrics->listener, settings->metrics_host, settings->metrics_port,
							 "metrics_addr", err, sizeof(err)) < 0)
	{
		hd_error("metrics endpoint: %s", err);
		free(metrics);
		return -1;
	}
	metrics->agent = agent;
	hd_list_init(&metrics->conns);
	hd_listener_start(&metrics->listener, agent->loop, "metrics scrapers", scraper_accepted,
					  metrics);
	agent->metrics = metrics;
	hd_info("metrics on http://%s:%d/metrics", settings->metrics_host, settings->metrics_port);
	return 0;
}

void
hd_metrics_stop(HdAgent *agent)
{
	HdMetrics  *metrics = agent->metrics;
	HdList	   *item;

	if (metrics == NULL)
		return;
	while ((item = hd_list_first(&metrics->conns)) != NULL)
		conn_close(hd_container_of(item, MetricsConn, link));
	hd_listener_close(&metrics->listener);
	free(metrics);
	agent->metrics = NULL;
}
