/*
 * stream.c
 *    See stream.h.
 */
#include "stream/stream.h"

#include <ctype.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/be.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/sqlstate.h"
#include "config/conninfo.h"

#define BACKOFF_FIRST 1.0
#define BACKOFF_MAX 30.0
#define BACKOFF_RESET_AFTER 10.0	/* seconds of streaming */
#define LOUD_EVERY 60.0			/* seconds between WARNINGs while failing */
#define PG_EPOCH_OFFSET_S INT64_C(946684800)	/* 2000-01-01 - 1970-01-01 */

typedef enum Phase
{
	PHASE_WAIT,					/* backoff timer armed (or about to connect) */
	PHASE_CONNECTING,
	PHASE_CHECK,				/* SELECT ... FROM pg_replication_slots */
	PHASE_DROP,					/* DROP_REPLICATION_SLOT */
	PHASE_CREATE,				/* CREATE_REPLICATION_SLOT */
	PHASE_START,				/* START_REPLICATION */
	PHASE_STREAMING,
	PHASE_STOPPED
} Phase;

/* A freshness probe's answer: the origin's WAL insert position when it ran. */
typedef struct ProbePoint
{
	uint64_t	lsn;
	double		sent_at;		/* hd_clock_now() just before the probe was sent */
} ProbePoint;

#define PROBE_PENDING_MAX 32
/* A column the plugin is asked to watch (hyperdrive.watch_column()). */
typedef enum WatchState
{
	WATCH_QUEUED,
	WATCH_SENT,
	WATCH_DONE,
	WATCH_FAILED
} WatchState;

typedef struct WatchRequest
{
	uint32_t	relid;
	uint16_t	attnum;
	WatchState	state;
} WatchRequest;

#define PROBE_RETRY 1.0			/* seconds after a failed probe connection */

typedef struct QueryResult
{
	ExecStatusType status;
	char		sqlstate[6];
	char		message[512];
	int			ntuples;
	char	   *values[8];		/* of the first row, malloc'd ("" for NULL) */
	int			nfields;
} QueryResult;

struct HdStream
{
	struct ev_loop *loop;
	HdConfig	config;
	char	   *state_dir;
	char	   *application_name;
	char		slot[HD_SLOT_NAME_MAX + 1];
	HdStreamCallbacks cb;
	double		connect_timeout;	/* seconds */
	double		status_interval;

	PGconn	   *conn;
	Phase		phase;
	ev_io		io;
	ev_timer	retry_timer;
	ev_timer	timeout_timer;
	ev_timer	tick;

	/* positions */
	uint64_t	start_lsn;		/* the caller's */
	uint64_t	applied_lsn;
	uint64_t	confirmed_lsn;
	uint64_t	received_lsn;
	uint64_t	server_wal_end;
	uint64_t	slot_confirmed; /* confirmed_flush_lsn when looked up */
	bool		durable_gate;	/* confirm at most durable_lsn (the caller's sync) */
	uint64_t	durable_lsn;
	bool		request_replies;	/* ask for a keepalive with each status update */
	uint64_t	connect_wal_lsn;	/* origin's pg_current_wal_lsn() at the slot lookup */
	char	   *connect_snapshot;	/* and its pg_current_snapshot(), malloc'd */
	uint64_t	pending_wal_lsn;	/* from the lookup, published at CONNECTED */
	char	   *pending_snapshot;

	/* slot */
	bool		slot_seen;		/* this stream has seen or created the slot */
	bool		slot_lost_reported; /* SLOT_LOST said; cleared once streaming */

	/* failures */
	double		backoff;
	uint64_t	failures;		/* in a row */
	ev_tstamp	first_failure_at;
	ev_tstamp	last_loud_at;
	ev_tstamp	streaming_since;
	char		last_error[512];

	/* counters */
	uint64_t	records;
	uint64_t	skipped;
	uint64_t	malformed;
	uint64_t	reconnects;
	uint64_t	slots_lost;

	/* re-entrancy */
	int			busy;			/* inside one of our ev callbacks */
	bool		delivering;		/* inside on_record */
	int64_t		delivering_sent_at; /* its XLogData send time (0: none) */
	bool		stop_pending;	/* hd_stream_stop() during on_record */
	bool		free_pending;

	/* the running command's first (or error) result */
	QueryResult qr;
	bool		qr_have;

	/* the freshness probe (probe_interval > 0): its own plain connection */
	double		probe_interval;
	PGconn	   *probe_conn;
	bool		probe_connecting;
	bool		probe_waiting;	/* a probe was sent, its answer not read yet */
	double		probe_sent_at;	/* hd_clock_now() before the last probe was sent */
	double		probe_connect_at;	/* ev_now() when its connection began */
	double		probe_demand;	/* hd_stream_want_fresh(): a probe must be sent at or
								 * after this (hd_clock_now()); 0: none owed */
	uint64_t	probes_on_demand;
	double		probe_retry_at; /* no new connection before */
	bool		probe_failing;	/* said so (once per failure streak) */
	ev_io		probe_io;
	ev_timer	probe_timer;
	ProbePoint	pending[PROBE_PENDING_MAX];	/* answered, not applied yet; ascending */
	size_t		npending;
	double		fresh_as_of;	/* sent_at of the newest probe whose position is applied */
	bool		fresh_moved;	/* since the caller was last told (on_fresh) */

	bool		test_drop_old_values;	/* params: a deliberately wrong stream */

	/* columns whose values the plugin is asked to carry (hd_stream_watch_column()) */
	WatchRequest *watches;
	size_t		nwatches;
	size_t		capwatches;
	bool		watch_waiting;	/* the probe connection runs a watch request */
	bool		watch_last;		/* the last thing sent on it was one */
	size_t		watch_sent;		/* which */
};

static void io_cb(struct ev_loop *loop, ev_io *w, int revents);
static bool watch_send(HdStream *s);
static void watch_answered(HdStream *s, PGresult *res);
static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void timeout_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void send_check(HdStream *s);
static void send_create(HdStream *s);
static void send_start(HdStream *s);
static void probe_settle(HdStream *s);
static void probe_close(HdStream *s);
static void probe_send(HdStream *s);

/* ------------------------------------------------------------------------
 * Small helpers.
 */

const char *
hd_stream_state_name(HdStreamState state)
{
	switch (state)
	{
		case HD_STREAM_CONNECTED:
			return "connected";
		case HD_STREAM_DISCONNECTED:
			return "disconnected";
		case HD_STREAM_SLOT_LOST:
			return "slot_lost";
		case HD_STREAM_ERROR:
			return "error";
	}
	return "unknown";
}

void
hd_lsn_format(uint64_t lsn, char *out, size_t outlen)
{
	snprintf(out, outlen, "%X/%X", (unsigned) (lsn >> 32), (unsigned) (lsn & 0xFFFFFFFFu));
}

int
hd_lsn_parse(const char *text, uint64_t *lsn)
{
	uint64_t	parts[2] = {0, 0};
	const char *p = text;

	for (int i = 0; i < 2; i++)
	{
		int			digits = 0;

		while (isxdigit((unsigned char) *p))
		{
			int			c = tolower((unsigned char) *p);

			parts[i] = parts[i] * 16 + (uint64_t) (c <= '9' ? c - '0' : c - 'a' + 10);
			if (++digits > 8)
				return -1;
			p++;
		}
		if (digits == 0)
			return -1;
		if (i == 0 && *p++ != '/')
			return -1;
	}
	if (*p != '\0')
		return -1;
	*lsn = (parts[0] << 32) | parts[1];
	return 0;
}

void
hd_stream_default_slot(const char *config_name, char out[HD_SLOT_NAME_MAX + 1])
{
	size_t		n;

	n = (size_t) snprintf(out, HD_SLOT_NAME_MAX + 1, "hyperdrive_%s", config_name);
	if (n > HD_SLOT_NAME_MAX)
		n = HD_SLOT_NAME_MAX;
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) tolower((unsigned char) out[i]);

		out[i] = (char) ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_');
	}
}

int
hd_stream_check_slot_name(const char *name, char *err, size_t errlen)
{
	size_t		len = strlen(name);

	if (len == 0 || len > HD_SLOT_NAME_MAX)
	{
		snprintf(err, errlen, "a replication slot name must be 1 to %d characters long",
				 HD_SLOT_NAME_MAX);
		return -1;
	}
	for (size_t i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
		{
			snprintf(err, errlen,
					 "a replication slot name may contain only lower case letters, "
					 "digits and underscores");
			return -1;
		}
	}
	return 0;
}

/* Microseconds since 2000-01-01 00:00 UTC, as the protocol's timestamps. */
static int64_t
pg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t) ts.tv_sec - PG_EPOCH_OFFSET_S) * INT64_C(1000000) +
		(int64_t) ts.tv_nsec / 1000;
}

/* A libpq message without its trailing newlines. */
static void
trim_message(char *dst, size_t dstlen, const char *src)
{
	size_t		len;

	snprintf(dst, dstlen, "%s", src && src[0] ? src : "unknown error");
	len = strlen(dst);
	while (len > 0 && (dst[len - 1] == '\n' || dst[len - 1] == ' '))
		dst[--len] = '\0';
	/* multi-line libpq messages (DETAIL, several hosts) on one log line */
	for (char *p = dst; *p; p++)
		if (*p == '\n')
			*p = ' ';
}

static bool
is_invalidated_message(const char *msg)
{
	return msg && (strstr(msg, "can no longer get changes from replication slot") != NULL ||
				   strstr(msg, "cannot read from logical replication slot") != NULL ||
				   strstr(msg, "This slot has been invalidated") != NULL);
}

/* ------------------------------------------------------------------------
 * The connection's socket.
 */

/* io watches conn's socket for events (not at all without a socket). */
static void
watch_conn(struct ev_loop *loop, ev_io *io, PGconn *conn, int events)
{
	int			fd = conn ? PQsocket(conn) : -1;

	ev_io_stop(loop, io);
	if (fd < 0)
		return;
	ev_io_set(io, fd, events);
	ev_io_start(loop, io);
}

static void
watch(HdStream *s, int events)
{
	watch_conn(s->loop, &s->io, s->conn, events);
}

static void
close_conn(HdStream *s)
{
	ev_io_stop(s->loop, &s->io);
	ev_timer_stop(s->loop, &s->timeout_timer);
	ev_timer_stop(s->loop, &s->tick);
	if (s->conn)
		PQfinish(s->conn);
	s->conn = NULL;
}

static void
call_state(HdStream *s, HdStreamState state, const char *why)
{
	if (s->cb.on_state)
		s->cb.on_state(s->cb.arg, state, why);
}

static void
schedule_retry(HdStream *s, double delay)
{
	s->phase = PHASE_WAIT;
	ev_timer_stop(s->loop, &s->retry_timer);
	ev_timer_set(&s->retry_timer, delay, 0.);
	ev_timer_start(s->loop, &s->retry_timer);
}

/*
 * An attempt failed or a stream ended: close, say so, retry with backoff.
 * The caller returns at once afterwards (the stream may have been stopped
 * or freed by on_state).
 */
static void
fail(HdStream *s, HdStreamState state, const char *fmt,...)
	__attribute__((format(printf, 3, 4)));

static void
fail(HdStream *s, HdStreamState state, const char *fmt,...)
{
	va_list		args;
	char		why[512];
	ev_tstamp	now = ev_now(s->loop);
	double		delay;

	va_start(args, fmt);
	vsnprintf(why, sizeof(why), fmt, args);
	va_end(args);
	close_conn(s);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	s->reconnects++;

	/*
	 * Between half and all of the backoff: the streams of many configs that
	 * failed together (an origin restart) do not all log in again together,
	 * each attempt timing out under the others' load.
	 */
	delay = s->backoff * (0.5 + 0.5 * arc4random_uniform(1001) / 1000.0);
	s->backoff = s->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : s->backoff * 2;
	if (s->failures++ == 0)
	{
		s->first_failure_at = s->last_loud_at = now;
		hd_warning("change stream of config \"%s\" (slot %s): %s; reconnecting in %.1f s",
				   s->config.name, s->slot, why, delay);
	}
	else if (now - s->last_loud_at >= LOUD_EVERY)
	{
		s->last_loud_at = now;
		hd_warning("change stream of config \"%s\" (slot %s): still failing after %" PRIu64
				   " attempts over %.0f s: %s; next attempt in %.1f s",
				   s->config.name, s->slot, s->failures, now - s->first_failure_at, why, delay);
	}
	else
		hd_debug("change stream of config \"%s\" (slot %s): %s; reconnecting in %.1f s",
				 s->config.name, s->slot, why, delay);

	s->phase = PHASE_WAIT;
	call_state(s, state, why);
	if (s->phase == PHASE_STOPPED)
		return;
	schedule_retry(s, delay);
}

static void
flush_output(HdStream *s)
{
	int			r = PQflush(s->conn);

	if (r < 0)
	{
		char		msg[512];

		trim_message(msg, sizeof(msg), PQerrorMessage(s->conn));
		fail(s, s->phase == PHASE_STREAMING ? HD_STREAM_DISCONNECTED : HD_STREAM_ERROR,
			 "%s", msg);
		return;
	}
	watch(s, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

/* ------------------------------------------------------------------------
 * Connecting.
 */

/*
 * Starts a non-blocking connection to the config's origin: the replication
 * connection, or (replication false) the freshness probe's. NULL with why
 * in err if even that failed.
 */
static PGconn *
connect_start(HdStream *s, bool replication, char *err, size_t errlen)
{
	char		perr[256];
	char	   *password = NULL;
	HdOriginParams params;
	PGconn	   *conn;

	if (hd_config_read_password(s->state_dir, s->config.id, &password, perr, sizeof(perr)) < 0)
	{
		snprintf(err, errlen, "cannot read the config's password: %s", perr);
		return NULL;
	}
	hd_origin_params_init(&params, &s->config,
						  replication ? s->application_name : "hyperdrive freshness probe",
						  password);
	if (replication)
		hd_origin_params_add(&params, "replication", "database");
	hd_origin_params_add(&params, "keepalives", "1");
	hd_origin_params_add(&params, "keepalives_idle", "10");
	hd_origin_params_add(&params, "keepalives_interval", "5");
	hd_origin_params_add(&params, "keepalives_count", "3");
	hd_origin_params_add(&params, "tcp_user_timeout", "30000");
	hd_origin_params_end(&params);
	conn = PQconnectStartParams(params.keys, params.values, 0);
	if (password)
		hd_free_secret(password);
	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD || PQsetnonblocking(conn, 1) != 0)
	{
		trim_message(perr, sizeof(perr), conn ? PQerrorMessage(conn) : "out of memory");
		snprintf(err, errlen, "cannot connect: %s", perr);
		if (conn)
			PQfinish(conn);
		return NULL;
	}
	return conn;
}

static void
start_connect(HdStream *s)
{
	char		err[512];

	s->conn = connect_start(s, true, err, sizeof(err));
	if (s->conn == NULL)
	{
		fail(s, HD_STREAM_ERROR, "%s", err);
		return;
	}
	s->phase = PHASE_CONNECTING;
	ev_timer_set(&s->timeout_timer, s->connect_timeout, 0.);
	ev_timer_start(s->loop, &s->timeout_timer);
	watch(s, EV_WRITE);
}

static void
poll_connect(HdStream *s)
{
	char		msg[512];

	switch (PQconnectPoll(s->conn))
	{
		case PGRES_POLLING_READING:
			watch(s, EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			watch(s, EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			ev_timer_stop(s->loop, &s->timeout_timer);
			send_check(s);
			return;
		default:
			trim_message(msg, sizeof(msg), PQerrorMessage(s->conn));
			fail(s, HD_STREAM_ERROR, "cannot connect: %s", msg);
			return;
	}
}

/* ------------------------------------------------------------------------
 * Commands before streaming. Each is one simple query; its results are
 * gathered into a QueryResult and handled by the phase's function.
 */


static void
result_free(QueryResult *r)
{
	for (int i = 0; i < r->nfields; i++)
		free(r->values[i]);
	r->nfields = 0;
}

static void
send_command(HdStream *s, Phase phase, const char *command)
{
	char		msg[512];

	hd_debug("change stream of config \"%s\": %s", s->config.name, command);
	s->phase = phase;
	result_free(&s->qr);
	memset(&s->qr, 0, sizeof(s->qr));
	s->qr_have = false;
	if (!PQsendQuery(s->conn, command))
	{
		trim_message(msg, sizeof(msg), PQerrorMessage(s->conn));
		fail(s, HD_STREAM_ERROR, "%s", msg);
		return;
	}
	flush_output(s);
}

static void
report_slot_lost(HdStream *s, const char *why)
{
	if (s->slot_lost_reported)
		return;
	s->slot_lost_reported = true;
	s->slots_lost++;
	hd_warning("change stream of config \"%s\": %s; everything derived from the stream "
			   "must be dropped; the slot will be created again", s->config.name, why);
	/* changes are gone: start over from the new slot's consistent point */
	s->applied_lsn = s->confirmed_lsn = s->received_lsn = 0;
	s->start_lsn = 0;
	s->slot_confirmed = 0;
	call_state(s, HD_STREAM_SLOT_LOST, why);
}

static void
send_check(HdStream *s)
{
	char		sql[768];

	/* the name is [a-z0-9_]: safe in a literal */
	snprintf(sql, sizeof(sql),
			 "SELECT coalesce(slot_type, ''), coalesce(plugin::text, ''), "
			 "coalesce(database = current_database(), false)::text, "
			 "coalesce(wal_status, ''), coalesce(confirmed_flush_lsn::text, ''), "
			 "coalesce(database::text, ''), w.lsn, w.snap "
			 "FROM (SELECT pg_catalog.pg_current_wal_lsn()::text AS lsn, "
			 "pg_catalog.pg_current_snapshot()::text AS snap) w "
			 "LEFT JOIN pg_catalog.pg_replication_slots ON slot_name = '%s'", s->slot);
	send_command(s, PHASE_CHECK, sql);
}

static void
send_drop(HdStream *s)
{
	char		sql[128];

	snprintf(sql, sizeof(sql), "DROP_REPLICATION_SLOT %s", s->slot);
	send_command(s, PHASE_DROP, sql);
}

static void
send_create(HdStream *s)
{
	char		sql[160];

	snprintf(sql, sizeof(sql),
			 "CREATE_REPLICATION_SLOT %s LOGICAL hyperdrive (SNAPSHOT 'nothing')", s->slot);
	send_command(s, PHASE_CREATE, sql);
}

static void
send_start(HdStream *s)
{
	char		sql[256];
	char		lsn[24];

	hd_lsn_format(s->applied_lsn, lsn, sizeof(lsn));
	snprintf(sql, sizeof(sql),
			 "START_REPLICATION SLOT %s LOGICAL %s (\"format\" 'compact', \"heartbeat\" 'on'%s)",
			 s->slot, lsn, s->test_drop_old_values ? ", \"values-test-drop-old\" 'on'" : "");
	send_command(s, PHASE_START, sql);
}

static void
handle_check(HdStream *s, QueryResult *r)
{
	if (r->status != PGRES_TUPLES_OK)
	{
		fail(s, HD_STREAM_ERROR, "cannot look up replication slot %s: %s", s->slot, r->message);
		return;
	}
	if (r->ntuples == 1 && r->nfields >= 8)
	{
		/* where the origin was when we looked: a consumer may wait to catch up to it */
		(void) hd_lsn_parse(r->values[6], &s->pending_wal_lsn);
		free(s->pending_snapshot);
		s->pending_snapshot = strdup(r->values[7]);
	}
	if (r->ntuples == 0 || r->values[0][0] == '\0')
	{
		char		why[256];
		char		lsn[24];

		if (s->slot_seen || s->start_lsn != 0)
		{
			hd_lsn_format(s->applied_lsn, lsn, sizeof(lsn));
			snprintf(why, sizeof(why),
					 "replication slot %s does not exist any more (dropped?): changes after %s "
					 "are lost", s->slot, lsn);
			report_slot_lost(s, why);
			if (s->phase == PHASE_STOPPED)
				return;
		}
		else
			hd_info("change stream of config \"%s\": creating replication slot %s",
					s->config.name, s->slot);
		send_create(s);
		return;
	}
	if (r->nfields < 6)
	{
		fail(s, HD_STREAM_ERROR, "unexpected reply to the lookup of replication slot %s", s->slot);
		return;
	}
	if (strcmp(r->values[0], "logical") != 0 || strcmp(r->values[1], "hyperdrive") != 0 ||
		strcmp(r->values[2], "true") != 0)
	{
		fail(s, HD_STREAM_ERROR,
			 "replication slot %s exists but is not a logical \"hyperdrive\" slot of database "
			 "\"%s\" (it is a %s slot%s%s%s%s%s): drop it or choose another slot name",
			 s->slot, s->config.database, r->values[0],
			 r->values[1][0] ? " with plugin \"" : "", r->values[1], r->values[1][0] ? "\"" : "",
			 r->values[5][0] ? " of database " : "", r->values[5]);
		return;
	}
	s->slot_seen = true;
	if (strcmp(r->values[3], "lost") == 0)
	{
		char		why[256];

		snprintf(why, sizeof(why),
				 "replication slot %s was invalidated (wal_status lost: the server removed WAL "
				 "it still needed, see max_slot_wal_keep_size)", s->slot);
		report_slot_lost(s, why);
		if (s->phase == PHASE_STOPPED)
			return;
		send_drop(s);
		return;
	}
	if (strcmp(r->values[3], "unreserved") == 0)
		hd_warning("change stream of config \"%s\": replication slot %s is about to lose WAL it "
				   "needs (wal_status unreserved)", s->config.name, s->slot);
	if (r->values[4][0] && hd_lsn_parse(r->values[4], &s->slot_confirmed) == 0 &&
		s->applied_lsn < s->slot_confirmed)
	{
		/*
		 * Someone else confirmed past our position (another consumer of the
		 * slot, pg_replication_slot_advance(), or a start LSN older than
		 * what was confirmed): the changes in between are gone for us.
		 */
		if (s->applied_lsn != 0 && !s->slot_lost_reported)
		{
			char		a[24];
			char		c[24];
			char		why[320];

			hd_lsn_format(s->applied_lsn, a, sizeof(a));
			hd_lsn_format(s->slot_confirmed, c, sizeof(c));
			snprintf(why, sizeof(why),
					 "replication slot %s has confirmed up to %s, past this consumer's position "
					 "%s (another consumer of the slot, or the slot was advanced): the changes "
					 "in between are lost", s->slot, c, a);
			s->slot_lost_reported = true;
			s->slots_lost++;
			hd_warning("change stream of config \"%s\": %s; everything derived from the "
					   "stream must be dropped", s->config.name, why);
			s->applied_lsn = s->slot_confirmed;
			call_state(s, HD_STREAM_SLOT_LOST, why);
			if (s->phase == PHASE_STOPPED)
				return;
		}
		/* never confirm below what the slot has */
		s->applied_lsn = s->slot_confirmed;
	}
	send_start(s);
}

static void
handle_drop(HdStream *s, QueryResult *r)
{
	if (r->status != PGRES_COMMAND_OK && r->status != PGRES_TUPLES_OK &&
		strcmp(r->sqlstate, HD_SQLSTATE_UNDEFINED_OBJECT) != 0)
	{
		fail(s, HD_STREAM_ERROR, "cannot drop invalidated replication slot %s: %s", s->slot,
			 r->message);
		return;
	}
	hd_info("change stream of config \"%s\": dropped replication slot %s", s->config.name,
			s->slot);
	send_create(s);
}

static void
handle_create(HdStream *s, QueryResult *r)
{
	if (r->status == PGRES_TUPLES_OK)
	{
		uint64_t	consistent = 0;

		if (r->nfields >= 2)
			(void) hd_lsn_parse(r->values[1], &consistent);
		hd_info("change stream of config \"%s\": created replication slot %s at %s",
				s->config.name, s->slot, r->nfields >= 2 ? r->values[1] : "?");
		s->slot_seen = true;
		s->slot_confirmed = consistent;
		if (s->applied_lsn < consistent)
			s->applied_lsn = consistent;
		send_start(s);
		return;
	}
	if (strcmp(r->sqlstate, HD_SQLSTATE_DUPLICATE_OBJECT) == 0)
	{
		/* created meanwhile by someone else: look again */
		send_check(s);
		return;
	}
	fail(s, HD_STREAM_ERROR, "cannot create replication slot %s: %s", s->slot, r->message);
}

static void stream_read(HdStream *s);

static void
handle_start_error(HdStream *s, QueryResult *r)
{
	char		why[768];

	if (is_invalidated_message(r->message))
	{
		snprintf(why, sizeof(why), "replication slot %s was invalidated: %s", s->slot,
				 r->message);
		report_slot_lost(s, why);
		if (s->phase == PHASE_STOPPED)
			return;
		send_drop(s);
		return;
	}
	if (strcmp(r->sqlstate, HD_SQLSTATE_UNDEFINED_OBJECT) == 0)
	{
		/* dropped between the lookup and the start */
		snprintf(why, sizeof(why), "replication slot %s does not exist any more: %s", s->slot,
				 r->message);
		report_slot_lost(s, why);
		if (s->phase == PHASE_STOPPED)
			return;
		send_create(s);
		return;
	}
	fail(s, HD_STREAM_ERROR, "cannot start streaming from replication slot %s: %s", s->slot,
		 r->message);
}

static void
start_streaming(HdStream *s)
{
	char		why[160];
	char		lsn[24];

	s->phase = PHASE_STREAMING;
	s->streaming_since = ev_now(s->loop);
	s->slot_lost_reported = false;
	if (s->failures > 0)
		hd_info("change stream of config \"%s\": streaming again after %" PRIu64
				" failed attempts", s->config.name, s->failures);
	hd_lsn_format(s->applied_lsn, lsn, sizeof(lsn));
	snprintf(why, sizeof(why), "streaming from replication slot %s at %s", s->slot, lsn);
	hd_info("change stream of config \"%s\": %s", s->config.name, why);
	ev_timer_set(&s->tick, s->status_interval, s->status_interval);
	ev_timer_start(s->loop, &s->tick);
	s->connect_wal_lsn = s->pending_wal_lsn;
	free(s->connect_snapshot);
	s->connect_snapshot = s->pending_snapshot;
	s->pending_snapshot = NULL;
	call_state(s, HD_STREAM_CONNECTED, why);
	if (s->phase != PHASE_STREAMING)
		return;
	/* CopyData may already be buffered */
	stream_read(s);
}

/* Reads what is there; handles the command's results once it is complete. */
static void
command_read(HdStream *s)
{
	PGresult   *res;
	char		msg[512];

	if (!PQconsumeInput(s->conn))
	{
		trim_message(msg, sizeof(msg), PQerrorMessage(s->conn));
		fail(s, HD_STREAM_ERROR, "%s", msg);
		return;
	}
	for (;;)
	{
		QueryResult *r = &s->qr;

		if (PQisBusy(s->conn))
			return;				/* more to come; s->qr keeps what came so far */
		res = PQgetResult(s->conn);
		if (res == NULL)
			break;
		if (PQresultStatus(res) == PGRES_COPY_BOTH)
		{
			PQclear(res);
			result_free(r);
			start_streaming(s);
			return;
		}
		/* keep the first result; an error wins */
		if (!s->qr_have || (PQresultStatus(res) == PGRES_FATAL_ERROR &&
							r->status != PGRES_FATAL_ERROR))
		{
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

			result_free(r);
			r->status = PQresultStatus(res);
			snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", state ? state : "");
			trim_message(r->message, sizeof(r->message), PQresultErrorMessage(res));
			r->ntuples = PQntuples(res);
			if (r->status == PGRES_TUPLES_OK && r->ntuples > 0)
			{
				int			nf = PQnfields(res);

				for (int i = 0; i < nf && i < 8; i++)
				{
					r->values[i] = strdup(PQgetisnull(res, 0, i) ? "" : PQgetvalue(res, 0, i));
					if (r->values[i] == NULL)
						break;
					r->nfields = i + 1;
				}
			}
			s->qr_have = true;
		}
		PQclear(res);
	}
	if (!s->qr_have)
	{
		fail(s, HD_STREAM_ERROR, "no reply to a replication command");
		return;
	}
	s->qr_have = false;
	switch (s->phase)
	{
		case PHASE_CHECK:
			handle_check(s, &s->qr);
			break;
		case PHASE_DROP:
			handle_drop(s, &s->qr);
			break;
		case PHASE_CREATE:
			handle_create(s, &s->qr);
			break;
		case PHASE_START:
			handle_start_error(s, &s->qr);
			break;
		default:
			break;
	}
}

/* ------------------------------------------------------------------------
 * Streaming.
 */

static void
send_feedback(HdStream *s, bool final)
{
	unsigned char msg[34];
	char		err[512];
	uint64_t	lsn = s->applied_lsn;

	/* with a durability gate, only what the caller has made durable */
	if (s->durable_gate && s->durable_lsn < lsn)
		lsn = s->durable_lsn;
	msg[0] = 'r';
	hd_put_u64(msg + 1, lsn);	/* write */
	hd_put_u64(msg + 9, lsn);	/* flush */
	hd_put_u64(msg + 17, lsn);	/* apply */
	hd_put_u64(msg + 25, (uint64_t) pg_now());
	msg[33] = (s->request_replies && !final) ? 1 : 0;
	if (PQputCopyData(s->conn, (const char *) msg, sizeof(msg)) != 1)
	{
		if (final)
			return;
		trim_message(err, sizeof(err), PQerrorMessage(s->conn));
		fail(s, HD_STREAM_DISCONNECTED, "cannot send a status update: %s", err);
		return;
	}
	s->confirmed_lsn = lsn;
	if (!final)
		flush_output(s);
}

static void do_stop(HdStream *s);

static void
deliver(HdStream *s, const HdRecord *record)
{
	int			rc;
	char		lsn[24];

	if (record->end_lsn > s->received_lsn)
		s->received_lsn = record->end_lsn;
	if (record->end_lsn != 0 && record->end_lsn <= s->applied_lsn)
	{
		s->skipped++;
		return;
	}
	s->delivering = true;
	rc = s->cb.on_record(s->cb.arg, record);
	s->delivering = false;
	if (rc == 0)
	{
		if (record->end_lsn > s->applied_lsn)
			s->applied_lsn = record->end_lsn;
		s->records++;
		probe_settle(s);
	}
	if (s->stop_pending)
	{
		do_stop(s);
		return;
	}
	if (rc != 0)
	{
		hd_lsn_format(record->end_lsn, lsn, sizeof(lsn));
		fail(s, HD_STREAM_DISCONNECTED,
			 "the record ending at %s was not applied (the server will send it again)", lsn);
	}
}

static void
handle_xlogdata(HdStream *s, const unsigned char *buf, size_t len)
{
	HdRecord	record;
	HdDecodeError derr;
	uint64_t	data_start;
	char		lsn[24];

	if (len < 25)
	{
		fail(s, HD_STREAM_DISCONNECTED, "malformed XLogData message (%zu bytes)", len);
		return;
	}
	data_start = hd_get_u64(buf + 1);
	if (hd_record_decode(buf + 25, len - 25, &record, &derr) == 0)
	{
		s->delivering_sent_at = (int64_t) hd_get_u64(buf + 17);
		deliver(s, &record);
		s->delivering_sent_at = 0;
		hd_record_free(&record);
		return;
	}
	/* Unknown content: safe is "everything may have changed". */
	hd_record_free(&record);
	s->malformed++;
	hd_lsn_format(data_start, lsn, sizeof(lsn));
	hd_error("change stream of config \"%s\": malformed record at %s (%zu bytes): %s; "
			 "treating it as \"invalidate all\"", s->config.name, lsn, len - 25, derr.message);
	{
		HdRecord	all = {0};
		char		reason[320];

		snprintf(reason, sizeof(reason), "malformed record: %s", derr.message);
		all.version = HD_RECORD_VERSION;
		all.flags = HD_FLAG_INVALIDATE_ALL;
		all.commit_lsn = data_start;
		all.end_lsn = data_start;
		all.all_reason = reason;
		deliver(s, &all);
	}
}

static void
handle_keepalive(HdStream *s, const unsigned char *buf, size_t len)
{
	uint64_t	wal_end;

	if (len < 18)
	{
		fail(s, HD_STREAM_DISCONNECTED, "malformed keepalive message (%zu bytes)", len);
		return;
	}
	wal_end = hd_get_u64(buf + 1);
	if (wal_end > s->server_wal_end)
		s->server_wal_end = wal_end;
	if (wal_end > s->received_lsn)
		s->received_lsn = wal_end;
	/*
	 * Records are applied as they arrive, so everything received has been
	 * applied: nothing of this database committed before wal_end is owed.
	 */
	if (wal_end > s->applied_lsn)
	{
		s->applied_lsn = wal_end;
		probe_settle(s);
	}
	if (buf[17])
		send_feedback(s, false);
}

static void
stream_read(HdStream *s)
{
	char		msg[512];

	if (!PQconsumeInput(s->conn))
	{
		trim_message(msg, sizeof(msg), PQerrorMessage(s->conn));
		fail(s, HD_STREAM_DISCONNECTED, "%s", msg);
		return;
	}
	for (;;)
	{
		char	   *buf = NULL;
		int			n = PQgetCopyData(s->conn, &buf, 1);

		if (n == 0)
			break;
		if (n == -1)
		{
			/* the server ended the stream: its final result says why */
			PGresult   *res;
			char		why[512] = "the server ended the stream";

			/* (PQgetResult would block while busy: take only what is here) */
			while (!PQisBusy(s->conn) && (res = PQgetResult(s->conn)) != NULL)
			{
				if (PQresultStatus(res) == PGRES_FATAL_ERROR)
					trim_message(why, sizeof(why), PQresultErrorMessage(res));
				PQclear(res);
			}
			if (is_invalidated_message(why))
			{
				report_slot_lost(s, why);
				if (s->phase == PHASE_STOPPED)
					return;
			}
			fail(s, HD_STREAM_DISCONNECTED, "%s", why);
			return;
		}
		if (n < 0)
		{
			trim_message(msg, sizeof(msg), PQerrorMessage(s->conn));
			if (is_invalidated_message(msg))
			{
				report_slot_lost(s, msg);
				if (s->phase == PHASE_STOPPED)
					return;
			}
			fail(s, HD_STREAM_DISCONNECTED, "%s", msg);
			return;
		}
		if (buf[0] == 'w')
			handle_xlogdata(s, (const unsigned char *) buf, (size_t) n);
		else if (buf[0] == 'k')
			handle_keepalive(s, (const unsigned char *) buf, (size_t) n);
		else
		{
			int			type = (unsigned char) buf[0];

			PQfreemem(buf);
			fail(s, HD_STREAM_DISCONNECTED, "unexpected message type 0x%02x in the stream", type);
			return;
		}
		PQfreemem(buf);
		if (s->phase != PHASE_STREAMING)
			return;				/* stopped, or failed */
	}
	flush_output(s);
}

/* ------------------------------------------------------------------------
 * Loop callbacks.
 */

static void destroy(HdStream *s);

static void
leave(HdStream *s)
{
	if (--s->busy == 0 && s->free_pending)
		destroy(s);
}

static void
io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdStream   *s = w->data;

	(void) loop;
	s->busy++;
	if (s->phase == PHASE_CONNECTING)
		poll_connect(s);
	else if (s->conn != NULL)
	{
		if (revents & EV_WRITE)
			flush_output(s);
		if ((revents & EV_READ) && s->conn != NULL)
		{
			if (s->phase == PHASE_STREAMING)
				stream_read(s);
			else if (s->phase >= PHASE_CHECK && s->phase <= PHASE_START)
				command_read(s);
		}
	}
	leave(s);
}

static void
retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdStream   *s = w->data;

	(void) loop;
	(void) revents;
	s->busy++;
	if (s->phase == PHASE_WAIT)
		start_connect(s);
	leave(s);
}

static void
timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdStream   *s = w->data;

	(void) loop;
	(void) revents;
	s->busy++;
	if (s->phase == PHASE_CONNECTING)
		fail(s, HD_STREAM_ERROR, "timed out connecting to %s:%d after %.0f s", s->config.host,
			 s->config.port, s->connect_timeout);
	leave(s);
}

static void
tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	HdStream   *s = w->data;

	(void) revents;
	s->busy++;
	if (s->phase == PHASE_STREAMING)
	{
		if (s->failures > 0 && ev_now(loop) - s->streaming_since >= BACKOFF_RESET_AFTER)
		{
			s->failures = 0;
			s->backoff = BACKOFF_FIRST;
		}
		send_feedback(s, false);
	}
	leave(s);
}

/* ------------------------------------------------------------------------
 * The freshness probe. While streaming, every probe_interval a plain
 * connection of its own asks the origin for pg_current_wal_insert_lsn().
 * Every transaction acknowledged before the probe was sent ends below that
 * position, so once the stream has applied up to it, everything
 * acknowledged before the probe's send time has been applied: fresh_as_of.
 * The send time of the latest stream message cannot say that: a walsender
 * working through a backlog sends fresh timestamps for old changes. And
 * this takes no clock but the agent's.
 */

static void
probe_watch(HdStream *s, int events)
{
	watch_conn(s->loop, &s->probe_io, s->probe_conn, events);
}

static void
probe_close(HdStream *s)
{
	ev_io_stop(s->loop, &s->probe_io);
	if (s->probe_conn)
		PQfinish(s->probe_conn);
	s->probe_conn = NULL;
	s->probe_connecting = false;
	s->probe_waiting = false;
	if (s->watch_waiting && s->watches[s->watch_sent].state == WATCH_SENT)
		s->watches[s->watch_sent].state = WATCH_QUEUED;	/* unanswered: again */
	s->watch_waiting = false;
}

/* The probe connection failed: closed, retried after PROBE_RETRY. */
static void
probe_fail(HdStream *s, const char *what, const char *detail)
{
	char		msg[512];

	trim_message(msg, sizeof(msg), detail && detail[0] ? detail : "no detail");
	if (!s->probe_failing)
		hd_warning("change stream of config \"%s\": freshness probe: %s: %s; its freshness is "
				   "unknown until the probe answers again (retrying every %.0f s)",
				   s->config.name, what, msg, PROBE_RETRY);
	else
		hd_debug("change stream of config \"%s\": freshness probe: %s: %s", s->config.name,
				 what, msg);
	s->probe_failing = true;
	probe_close(s);
	s->probe_retry_at = ev_now(s->loop) + PROBE_RETRY;
}

/*
 * Whether every commit before WAL position lsn (a probe's answer) has been
 * applied. pg_current_wal_insert_lsn() on a WAL page that holds no record
 * yet points past the page's header (24 bytes; 40 at the start of a
 * segment), while the last record applied ends at the page's start: with
 * nothing written since, lsn would never be reached. Nothing committed can
 * lie in such a gap: a record that ends at most 24 bytes past applied
 * starts at or after it and so is a bare 24-byte header, never a commit;
 * a 1 MB boundary (the smallest segment size) is always a page's start,
 * whose header takes the 40 bytes.
 */
static bool
probe_covered(const HdStream *s, uint64_t lsn)
{
	uint64_t	applied = s->applied_lsn;

	return lsn <= applied || lsn - applied <= 24 ||
		(applied % (UINT64_C(1) << 20) == 0 && lsn - applied <= 40);
}

/* Answered probes whose position is applied now move fresh_as_of. */
static void
probe_settle(HdStream *s)
{
	size_t		done = 0;

	while (done < s->npending && probe_covered(s, s->pending[done].lsn))
	{
		if (s->pending[done].sent_at > s->fresh_as_of)
		{
			s->fresh_as_of = s->pending[done].sent_at;
			s->fresh_moved = true;
		}
		done++;
	}
	if (done == 0)
		return;
	memmove(s->pending, s->pending + done, (s->npending - done) * sizeof(ProbePoint));
	s->npending -= done;
	if (s->fresh_moved && s->cb.on_fresh)
	{
		s->fresh_moved = false;
		s->cb.on_fresh(s->cb.arg);
	}
}

static void
probe_answered(HdStream *s, uint64_t lsn)
{
	if (s->npending == PROBE_PENDING_MAX)
	{
		/* forgetting the oldest only delays freshness: never claims too much */
		memmove(s->pending, s->pending + 1, (PROBE_PENDING_MAX - 1) * sizeof(ProbePoint));
		s->npending--;
	}
	s->pending[s->npending].lsn = lsn;
	s->pending[s->npending].sent_at = s->probe_sent_at;
	s->npending++;
	if (s->probe_failing)
	{
		hd_info("change stream of config \"%s\": freshness probe answers again", s->config.name);
		s->probe_failing = false;
	}
	probe_settle(s);
}

static void
probe_send(HdStream *s)
{
	double		sent_at;
	int			r;

	/* watch requests and probes take turns: freshness never waits for many watches */
	if (!s->watch_last && watch_send(s))
	{
		s->watch_last = true;
		return;
	}
	s->watch_last = false;
	/* stamped before it leaves: the origin may answer before send returns */
	sent_at = hd_clock_now();
	if (!PQsendQuery(s->probe_conn, "SELECT pg_catalog.pg_current_wal_insert_lsn()"))
	{
		probe_fail(s, "cannot send", PQerrorMessage(s->probe_conn));
		return;
	}
	s->probe_sent_at = sent_at;
	if (s->probe_demand > 0)
		s->probes_on_demand++;
	s->probe_demand = 0;		/* sent after every request that asked so far */
	s->probe_waiting = true;
	if ((r = PQflush(s->probe_conn)) < 0)
	{
		probe_fail(s, "cannot send", PQerrorMessage(s->probe_conn));
		return;
	}
	probe_watch(s, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void
probe_read(HdStream *s)
{
	uint64_t	lsn;

	if (!PQconsumeInput(s->probe_conn))
	{
		probe_fail(s, "connection lost", PQerrorMessage(s->probe_conn));
		return;
	}
	while (!PQisBusy(s->probe_conn))
	{
		PGresult   *res = PQgetResult(s->probe_conn);

		if (res == NULL)
		{
			s->probe_waiting = false;
			s->watch_waiting = false;
			if (s->probe_demand > 0)
				probe_send(s);	/* requests arrived while it was out: the next one */
			return;
		}
		if (s->watch_waiting)
		{
			watch_answered(s, res);
			PQclear(res);
			continue;
		}
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
			PQnfields(res) != 1 || hd_lsn_parse(PQgetvalue(res, 0, 0), &lsn) != 0)
		{
			char		detail[512];

			snprintf(detail, sizeof(detail), "%s", PQresultErrorMessage(res)[0]
					 ? PQresultErrorMessage(res) : "not one WAL position");
			PQclear(res);
			probe_fail(s, "unexpected answer", detail);
			return;
		}
		PQclear(res);
		probe_answered(s, lsn);
	}
}

static void
probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	HdStream   *s = w->data;

	(void) loop;
	if (s->probe_connecting)
	{
		switch (PQconnectPoll(s->probe_conn))
		{
			case PGRES_POLLING_READING:
				probe_watch(s, EV_READ);
				return;
			case PGRES_POLLING_WRITING:
				probe_watch(s, EV_WRITE);
				return;
			case PGRES_POLLING_OK:
				s->probe_connecting = false;
				probe_send(s);
				return;
			default:
				probe_fail(s, "cannot connect", PQerrorMessage(s->probe_conn));
				return;
		}
	}
	if (revents & EV_WRITE)
	{
		int			r = PQflush(s->probe_conn);

		if (r < 0)
		{
			probe_fail(s, "cannot send", PQerrorMessage(s->probe_conn));
			return;
		}
		probe_watch(s, r == 1 ? EV_READ | EV_WRITE : EV_READ);
	}
	if (revents & EV_READ)
		probe_read(s);
}

/*
 * Watch requests. The plugin carries the values of the columns listed in
 * hyperdrive.watched_column for its slot (docs/stream.md, "Watched
 * columns"); the probe's connection, a plain one as the config's user,
 * adds them with hyperdrive.watch_column(), one at a time, taking turns
 * with the probes. Nothing waits for one to take effect: until the stream
 * carries a column's values, its consumer treats the column's values as
 * unknown (every row), and a request that fails only leaves it so.
 */

static bool
watch_send(HdStream *s)
{
	char		relid[16];
	char		attnum[8];
	const char *values[3];
	size_t		i;
	int			r;

	for (i = 0; i < s->nwatches && s->watches[i].state != WATCH_QUEUED; i++)
		;
	if (i == s->nwatches)
		return false;
	snprintf(relid, sizeof(relid), "%u", s->watches[i].relid);
	snprintf(attnum, sizeof(attnum), "%u", (unsigned) s->watches[i].attnum);
	values[0] = s->slot;
	values[1] = relid;
	values[2] = attnum;
	if (!PQsendQueryParams(s->probe_conn,
						   "SELECT hyperdrive.watch_column($1::pg_catalog.name, "
						   "$2::pg_catalog.oid::pg_catalog.regclass, $3::pg_catalog.int2)",
						   3, NULL, values, NULL, NULL, 0))
	{
		probe_fail(s, "cannot send", PQerrorMessage(s->probe_conn));
		return true;
	}
	s->watches[i].state = WATCH_SENT;
	s->watch_sent = i;
	s->watch_waiting = true;
	s->probe_waiting = true;
	if ((r = PQflush(s->probe_conn)) < 0)
	{
		probe_fail(s, "cannot send", PQerrorMessage(s->probe_conn));
		return true;
	}
	probe_watch(s, r == 1 ? EV_READ | EV_WRITE : EV_READ);
	return true;
}

static void
watch_answered(HdStream *s, PGresult *res)
{
	WatchRequest *w = &s->watches[s->watch_sent];
	char		msg[512];

	if (w->state != WATCH_SENT)
		return;					/* a second result of the same request */
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		w->state = WATCH_DONE;
		hd_debug("change stream of config \"%s\": the plugin now carries the values of "
				 "column %u of relation %u", s->config.name, (unsigned) w->attnum, w->relid);
		return;
	}
	w->state = WATCH_FAILED;
	trim_message(msg, sizeof(msg), PQresultErrorMessage(res));
	hd_warning("change stream of config \"%s\": cannot watch column %u of relation %u (%s): "
			   "changes of it invalidate every cached result that read it",
			   s->config.name, (unsigned) w->attnum, w->relid, msg);
}

int
hd_stream_watch_column(HdStream *s, uint32_t relid, uint16_t attnum)
{
	for (size_t i = 0; i < s->nwatches; i++)
		if (s->watches[i].relid == relid && s->watches[i].attnum == attnum)
			return s->watches[i].state == WATCH_FAILED ? -1 : 0;
	if (s->nwatches == HD_STREAM_WATCH_MAX)
		return -1;
	if (s->nwatches == s->capwatches)
	{
		size_t		cap = s->capwatches ? s->capwatches * 2 : 16;
		WatchRequest *grown = realloc(s->watches, cap * sizeof(WatchRequest));

		if (grown == NULL)
			return -1;
		s->watches = grown;
		s->capwatches = cap;
	}
	s->watches[s->nwatches].relid = relid;
	s->watches[s->nwatches].attnum = attnum;
	s->watches[s->nwatches].state = WATCH_QUEUED;
	s->nwatches++;
	return 0;
}

/* Connect the probe's connection, or send the next probe if none is out. */
static void
probe_tick(HdStream *s)
{
	char		err[512];

	if (s->phase != PHASE_STREAMING)
		return;					/* freshness means nothing without a stream */
	if (s->probe_conn == NULL)
	{
		if (ev_now(s->loop) < s->probe_retry_at)
			return;
		s->probe_conn = connect_start(s, false, err, sizeof(err));
		if (s->probe_conn == NULL)
		{
			probe_fail(s, "no connection", err);
			return;
		}
		s->probe_connecting = true;
		s->probe_connect_at = ev_now(s->loop);
		probe_watch(s, EV_WRITE);
		return;
	}
	if (s->probe_connecting)
	{
		if (ev_now(s->loop) - s->probe_connect_at > s->connect_timeout)
			probe_fail(s, "cannot connect", "timed out");
		return;
	}
	if (!s->probe_waiting)
		probe_send(s);
}

static void
probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void) loop;
	(void) revents;
	probe_tick(w->data);
}

/* The send time of the newest probe sent: out, answered or applied. */
static double
probe_newest(const HdStream *s)
{
	double		newest = s->fresh_as_of;

	if (s->npending > 0 && s->pending[s->npending - 1].sent_at > newest)
		newest = s->pending[s->npending - 1].sent_at;
	if (s->probe_conn && !s->probe_connecting && s->probe_waiting && !s->watch_waiting &&
		s->probe_sent_at > newest)
		newest = s->probe_sent_at;
	return newest;
}

void
hd_stream_want_fresh(HdStream *s, double as_of)
{
	if (s == NULL || s->probe_interval <= 0 || as_of <= probe_newest(s))
		return;					/* no probe at all, or one sent after as_of will answer */
	if (as_of > s->probe_demand)
		s->probe_demand = as_of;
	/* one out (or a watch request): the next goes when it is answered */
	probe_tick(s);
}

/* ------------------------------------------------------------------------
 * The API.
 */

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

HdStream *
hd_stream_start(const HdStreamParams *params, const HdStreamCallbacks *callbacks, char *err,
				size_t errlen)
{
	HdStream   *s;

	if (params == NULL || params->loop == NULL || params->config == NULL ||
		params->state_dir == NULL || callbacks == NULL || callbacks->on_record == NULL)
	{
		snprintf(err, errlen, "hd_stream_start: loop, config, state_dir and on_record are required");
		return NULL;
	}
	s = calloc(1, sizeof(HdStream));
	if (s == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (params->slot && params->slot[0])
	{
		if (hd_stream_check_slot_name(params->slot, err, errlen) < 0)
		{
			free(s);
			return NULL;
		}
		snprintf(s->slot, sizeof(s->slot), "%s", params->slot);
	}
	else
		hd_stream_default_slot(params->config->name, s->slot);

	hd_config_init(&s->config);
	memcpy(s->config.id, params->config->id, sizeof(s->config.id));
	memcpy(s->config.name, params->config->name, sizeof(s->config.name));
	s->config.port = params->config->port;
	s->config.sslmode = params->config->sslmode;
	s->config.host = dup_or_null(params->config->host);
	s->config.database = dup_or_null(params->config->database);
	s->config.user = dup_or_null(params->config->user);
	s->config.sslrootcert = dup_or_null(params->config->sslrootcert);
	s->state_dir = strdup(params->state_dir);
	s->application_name = strdup(params->application_name ? params->application_name
								 : "hyperdrive stream");
	if (s->config.host == NULL || s->config.database == NULL || s->config.user == NULL ||
		(params->config->sslrootcert && s->config.sslrootcert == NULL) ||
		s->state_dir == NULL || s->application_name == NULL)
	{
		snprintf(err, errlen, params->config->host && params->config->database &&
				 params->config->user ? "out of memory" : "the config has no host, database or user");
		hd_config_free(&s->config);
		free(s->state_dir);
		free(s->application_name);
		free(s);
		return NULL;
	}
	s->cb = *callbacks;
	s->loop = params->loop;
	s->connect_timeout = params->connect_timeout_ms > 0 ? params->connect_timeout_ms / 1000.0 : 5.0;
	s->status_interval = params->status_interval_ms > 0 ? params->status_interval_ms / 1000.0 : 1.0;
	s->start_lsn = s->applied_lsn = params->start_lsn;
	s->durable_gate = params->confirm_durable_only;
	s->durable_lsn = params->start_lsn;
	s->request_replies = params->request_replies;
	s->test_drop_old_values = params->test_drop_old_values;
	s->backoff = BACKOFF_FIRST;
	ev_init(&s->io, io_cb);
	s->io.data = s;

	/*
	 * Change records before client I/O: when the stream's socket and clients'
	 * sockets are readable at the same wake-up, libev runs the stream's
	 * callback first, so a read waiting beside a record that invalidates its
	 * entry is not served from that entry (a loaded machine wakes the agent
	 * late, with both waiting: that was the stale tail). Client watchers keep
	 * the default priority.
	 */
	ev_set_priority(&s->io, EV_MAXPRI);
	ev_init(&s->retry_timer, retry_cb);
	s->retry_timer.data = s;
	ev_init(&s->timeout_timer, timeout_cb);
	s->timeout_timer.data = s;
	ev_init(&s->tick, tick_cb);
	s->tick.data = s;
	ev_init(&s->probe_io, probe_io_cb);
	s->probe_io.data = s;
	ev_init(&s->probe_timer, probe_timer_cb);
	s->probe_timer.data = s;
	s->probe_interval = params->probe_interval_ms > 0 ? params->probe_interval_ms / 1000.0 : 0;
	if (s->probe_interval > 0)
	{
		ev_timer_set(&s->probe_timer, s->probe_interval, s->probe_interval);
		ev_timer_start(s->loop, &s->probe_timer);
	}
	schedule_retry(s, 0.);
	return s;
}

/* Final confirmation, CopyDone, close. */
static void
do_stop(HdStream *s)
{
	s->stop_pending = false;
	if (s->phase == PHASE_STREAMING && s->conn)
	{
		send_feedback(s, true);
		(void) PQputCopyEnd(s->conn, NULL);
		(void) PQflush(s->conn);	/* non-blocking: a few bytes into an idle socket */
	}
	close_conn(s);
	probe_close(s);
	ev_timer_stop(s->loop, &s->probe_timer);
	ev_timer_stop(s->loop, &s->retry_timer);
	s->phase = PHASE_STOPPED;
}

void
hd_stream_stop(HdStream *s)
{
	if (s == NULL || s->phase == PHASE_STOPPED)
		return;
	if (s->delivering)
	{
		s->stop_pending = true;
		return;
	}
	do_stop(s);
}

static void
destroy(HdStream *s)
{
	do_stop(s);
	result_free(&s->qr);
	free(s->connect_snapshot);
	free(s->pending_snapshot);
	free(s->watches);
	hd_config_free(&s->config);
	free(s->state_dir);
	free(s->application_name);
	free(s);
}

void
hd_stream_free(HdStream *s)
{
	if (s == NULL)
		return;
	if (s->busy > 0)
	{
		hd_stream_stop(s);
		s->free_pending = true;
		return;
	}
	destroy(s);
}

bool
hd_stream_connected(const HdStream *s)
{
	return s != NULL && s->phase == PHASE_STREAMING;
}

void
hd_stream_status(const HdStream *s, HdStreamStatus *out)
{
	uint64_t	top;

	memset(out, 0, sizeof(*out));
	out->connected = hd_stream_connected(s);
	snprintf(out->slot, sizeof(out->slot), "%s", s->slot);
	out->received_lsn = s->received_lsn;
	out->applied_lsn = s->applied_lsn;
	out->confirmed_lsn = s->confirmed_lsn;
	out->server_wal_end = s->server_wal_end;
	top = s->server_wal_end > s->received_lsn ? s->server_wal_end : s->received_lsn;
	out->lag_bytes = top > s->applied_lsn ? top - s->applied_lsn : 0;
	out->records = s->records;
	out->skipped = s->skipped;
	out->malformed = s->malformed;
	out->reconnects = s->reconnects;
	out->slots_lost = s->slots_lost;
	out->last_error = s->last_error;
	out->connect_wal_lsn = s->connect_wal_lsn;
	out->fresh_as_of = s->fresh_as_of;
	out->probes_on_demand = s->probes_on_demand;
}

void
hd_stream_set_durable_lsn(HdStream *s, uint64_t lsn)
{
	if (s && lsn > s->durable_lsn)
		s->durable_lsn = lsn;
}

int64_t
hd_stream_record_sent_at(const HdStream *s)
{
	return s && s->delivering ? s->delivering_sent_at : 0;
}

const char *
hd_stream_connect_snapshot(const HdStream *s)
{
	return s && s->connect_snapshot ? s->connect_snapshot : "";
}
