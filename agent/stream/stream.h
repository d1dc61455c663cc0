/*
 * stream.h
 *    The change stream consumer: one per config (origin database). It reads
 *    the hyperdrive plugin's records (docs/stream.md) over a logical
 *    replication connection, hands each to the caller (the cache), and
 *    confirms to the server what the caller has applied. Non-blocking, in the
 *    caller's libev loop. The replication socket's watcher has libev's highest
 *    priority (EV_MAXPRI): at a wake-up where it and other watchers of default
 *    priority are ready, every record read then is delivered before those
 *    watchers' callbacks run (a client's read waiting beside a record that
 *    invalidates its entry is not served from that entry).
 *
 * Connection: libpq, replication=database, as the config's user (password
 * from the config store, read at every attempt), host/port/dbname/sslmode
 * from the config; TCP keepalives and tcp_user_timeout detect a dead peer.
 * Each attempt, on one connection:
 *   1. looks the slot up in pg_replication_slots;
 *   2. if it is missing, creates it (CREATE_REPLICATION_SLOT S LOGICAL
 *      hyperdrive); if it is invalidated (wal_status 'lost'), drops and
 *      recreates it;
 *   3. START_REPLICATION SLOT S LOGICAL <applied LSN> ("format" 'compact',
 *      "heartbeat" 'on'), then reads CopyData: XLogData (one compact record
 *      each) and primary keepalives.
 *
 * Contract:
 *   - on_record() gets every record in commit order. It returns 0 when it has
 *     applied the record (the consumer may then confirm record->end_lsn to
 *     the server), or -1: nothing is confirmed, the consumer reconnects
 *     (with backoff) and the server sends the record again. Records are
 *     delivered at least once: after a reconnect or a restart the server
 *     resends what was not confirmed, so applying must be idempotent. Within
 *     one HdStream a record whose end LSN is at or below the applied LSN is
 *     skipped (counted in `skipped`).
 *   - A record the decoder refuses (hd_record_decode) is logged and delivered
 *     as a record with HD_FLAG_INVALIDATE_ALL (reason "malformed record: ..."),
 *     xid 0 and commit/end LSN from the XLogData header; the stream goes on.
 *   - Confirmation: Standby Status Update with write = flush = apply = the
 *     applied LSN, never a received-but-unapplied one. Sent every
 *     status_interval (default 1 s), at once when a keepalive asks for a
 *     reply, and on hd_stream_stop(). The applied LSN is the end LSN of the
 *     last record on_record() applied, or, when everything received has been
 *     applied, the WAL position of the latest keepalive (nothing for this
 *     database lies before it), so that an idle database does not hold WAL
 *     and the server can shut down. A caller that persists its position
 *     persists hd_stream_status().applied_lsn and passes it as start_lsn
 *     (an older value looks like lost changes: SLOT_LOST). The consumer never
 *     confirms below the slot's confirmed_flush_lsn.
 *   - on_state() reports:
 *       CONNECTED     streaming has started (why: slot and start LSN)
 *       DISCONNECTED  a streaming connection ended (server gone, network,
 *                     on_record() returned -1); a reconnect is scheduled
 *       ERROR         an attempt failed (connect, login, a refused command,
 *                     the slot belongs to someone else); retried
 *       SLOT_LOST     the slot was invalidated (wal_status lost, "cannot read
 *                     from" / "can no longer get changes from replication
 *                     slot") or has disappeared (dropped) while the caller
 *                     has state (start_lsn != 0, or this HdStream saw the
 *                     slot before): changes are gone. The caller must purge
 *                     what it derived from the stream. The consumer then drops
 *                     the slot if it still exists, creates it again and streams
 *                     from its new consistent point. Also reported (without
 *                     recreating the slot) when the slot's confirmed_flush_lsn
 *                     is past a nonzero applied LSN: someone else consumed or
 *                     advanced the slot, or start_lsn was older than what was
 *                     confirmed; streaming goes on from confirmed_flush_lsn.
 *                     Reported once per loss.
 *     Reconnects back off from 1 s, doubling to 30 s (each wait a random
 *     50-100 % of that: many configs' streams do not retry in step); the backoff resets once
 *     a stream has stayed up 10 s. The first failure is logged as a WARNING,
 *     then once a minute while failures go on (the rest at DEBUG).
 *   - A missing slot with no caller state (start_lsn 0 and never seen) is
 *     created silently (logged). A slot of the same name that is physical,
 *     of another plugin or of another database is never touched: ERROR.
 *   - Callbacks may call hd_stream_stop() or hd_stream_free() on their own
 *     stream. hd_stream_stop() inside on_record() takes effect after the
 *     record: if on_record() returns 0 the record is applied and included
 *     in the final confirmation.
 *   - hd_stream_stop(): a final Standby Status Update with the applied LSN,
 *     CopyDone, and the connection is closed (nothing blocks; no callback is
 *     called). A stopped stream stays stopped. hd_stream_free() stops it and
 *     releases it (deferred to the end of the current callback if called in
 *     one).
 *   - Freshness (params.probe_interval_ms > 0): while streaming, a second,
 *     plain connection reads pg_current_wal_insert_lsn() every interval, one
 *     probe at a time. When the applied LSN reaches a probe's answer,
 *     fresh_as_of becomes the probe's send time (hd_clock_now(), base/clock.h,
 *     taken before it is sent): every transaction the origin acknowledged
 *     before it has been applied; on_fresh() is then called (deferring what
 *     it does: it must not re-enter the stream). hd_stream_want_fresh(as_of)
 *     asks for a probe sent at or after as_of: sent at once when none is
 *     out, else right after the answer of the one out, unless one sent at
 *     or after as_of is out, answered or applied already (counted in
 *     probes_on_demand). A failing probe connection is retried every second
 *     (WARNING once per streak); fresh_as_of then stops moving. The probe
 *     never affects the stream itself.
 *   - Watched columns (hd_stream_watch_column()): the probe's connection
 *     asks the origin, taking turns with its probes, to have the plugin carry
 *     the values of a column (hyperdrive.watch_column(), docs/stream.md
 *     "Watched columns"); one request per column and HdStream, at most
 *     HD_STREAM_WATCH_MAX of them; an unanswered request is sent again on
 *     the next probe connection, a refused one is logged (WARNING) and not
 *     retried. Nothing waits for it: the records carry the column's values
 *     from the request's commit on (in the stream's order), and a consumer
 *     must treat a record without them as "values unknown".
 *   - No global state; everything happens in the loop's callbacks.
 */
#ifndef HD_STREAM_H
#define HD_STREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config/configs.h"
#include "stream/stream_record.h"

/* Replication slot names: [a-z0-9_], 1..63 bytes. */
#define HD_SLOT_NAME_MAX 63

typedef struct HdStream HdStream;

typedef enum HdStreamState
{
	HD_STREAM_CONNECTED,
	HD_STREAM_DISCONNECTED,
	HD_STREAM_SLOT_LOST,
	HD_STREAM_ERROR
} HdStreamState;

typedef struct HdStreamCallbacks
{
	/* 0: applied (may be confirmed); -1: not applied (reconnect, resend) */
	int			(*on_record) (void *arg, const HdRecord *record);
	/* may be NULL */
	void		(*on_state) (void *arg, HdStreamState state, const char *why);
	/* may be NULL: fresh_as_of moved */
	void		(*on_fresh) (void *arg);
	void	   *arg;
} HdStreamCallbacks;

typedef struct HdStreamParams
{
	struct ev_loop *loop;
	const HdConfig *config;		/* copied */
	const char *state_dir;		/* the config store, for the password */
	const char *slot;			/* NULL or "": hd_stream_default_slot() */
	uint64_t	start_lsn;		/* the caller's applied LSN; 0: the slot's confirmed_flush_lsn */
	int64_t		connect_timeout_ms; /* connecting and logging in; 0: 5 s */
	int64_t		status_interval_ms; /* periodic confirmation; 0: 1 s */
	const char *application_name;	/* NULL: "hyperdrive stream" */
	/*
	 * Durability gate: confirm at most what the caller reported with
	 * hd_stream_set_durable_lsn() (initially start_lsn), e.g. after its own
	 * fsync. Without it, whatever on_record() applied is confirmed.
	 */
	bool		confirm_durable_only;
	/* set "reply requested" in each periodic status update, so that the
	 * server answers with a keepalive: an idle stream's applied LSN keeps up
	 * with the server's WAL (and reaches the freshness probe's positions) */
	bool		request_replies;
	/* tests of consumers only: the plugin leaves old values out of the
	 * watched columns ("values-test-drop-old", docs/stream.md): a wrong
	 * stream that a consumer's checks must catch */
	bool		test_drop_old_values;
	/*
	 * Freshness probe: every probe_interval_ms while streaming, a plain
	 * connection (same user and settings, application_name "hyperdrive
	 * freshness probe") reads pg_current_wal_insert_lsn(); once the applied
	 * LSN reaches it, fresh_as_of becomes the probe's send time. 0: no probe.
	 */
	int64_t		probe_interval_ms;
} HdStreamParams;

typedef struct HdStreamStatus
{
	bool		connected;		/* streaming now */
	char		slot[HD_SLOT_NAME_MAX + 1];
	uint64_t	received_lsn;	/* highest end LSN of a record or keepalive WAL position read */
	uint64_t	applied_lsn;	/* what the caller applied (see the contract) */
	uint64_t	confirmed_lsn;	/* the flush LSN last sent to the server */
	uint64_t	server_wal_end; /* WAL position of the latest keepalive */
	uint64_t	lag_bytes;		/* max(server_wal_end, received_lsn) - applied_lsn */
	uint64_t	records;		/* applied by the caller */
	uint64_t	skipped;		/* resent records at or below applied_lsn */
	uint64_t	malformed;		/* delivered as "invalidate all" */
	uint64_t	reconnects;		/* failed attempts and lost connections */
	uint64_t	slots_lost;
	const char *last_error;		/* "" if none */
	uint64_t	connect_wal_lsn;	/* origin's pg_current_wal_lsn() just before the
									 * current streaming connection started */
	double		fresh_as_of;	/* with the probe: hd_clock_now() before which
								 * every transaction the origin acknowledged has
								 * been applied; 0: not known */
	uint64_t	probes_on_demand;	/* sent for hd_stream_want_fresh() */
} HdStreamStatus;

/* The stream starts connecting from the loop (no callback runs in here).
 * NULL with why in err if the parameters are invalid or out of memory. */
extern HdStream *hd_stream_start(const HdStreamParams *params, const HdStreamCallbacks *callbacks,
								 char *err, size_t errlen);
extern void hd_stream_stop(HdStream *stream);
extern void hd_stream_free(HdStream *stream);

extern bool hd_stream_connected(const HdStream *stream);
/* With confirm_durable_only: the caller has made everything up to lsn durable. */
extern void hd_stream_set_durable_lsn(HdStream *stream, uint64_t lsn);
/* pg_current_snapshot() text taken with connect_wal_lsn ("" if none). */
extern const char *hd_stream_connect_snapshot(const HdStream *stream);
/*
 * Inside on_record(): when the server sent the record, from its XLogData
 * header (the walsender's clock, microseconds since 2000-01-01 00:00 UTC);
 * 0 outside on_record() or for a record the stream made up (malformed).
 */
extern int64_t hd_stream_record_sent_at(const HdStream *stream);
extern void hd_stream_status(const HdStream *stream, HdStreamStatus *out);
/* A probe sent at or after as_of (hd_clock_now()) is wanted (see the contract). */
extern void hd_stream_want_fresh(HdStream *stream, double as_of);

#define HD_STREAM_WATCH_MAX 4096

/* Ask for a column's values in the records: 0, or -1 (refused by the origin, or no room). */
extern int	hd_stream_watch_column(HdStream *stream, uint32_t relid, uint16_t attnum);

extern const char *hd_stream_state_name(HdStreamState state);

/* "hyperdrive_<config name>", lowercased, other characters than [a-z0-9_] as
 * '_', cut to HD_SLOT_NAME_MAX. */
extern void hd_stream_default_slot(const char *config_name, char out[HD_SLOT_NAME_MAX + 1]);
/* 0 if name is a valid slot name, else -1 with why. */
extern int	hd_stream_check_slot_name(const char *name, char *err, size_t errlen);

/* "X/Y" as PostgreSQL prints an LSN; out holds at least 20 bytes. */
extern void hd_lsn_format(uint64_t lsn, char *out, size_t outlen);
/* 0 and *lsn, or -1 if text is not X/Y (hex, each part at most 8 digits). */
extern int	hd_lsn_parse(const char *text, uint64_t *lsn);

/* hyperdrive stream-watch NAME [-c FILE] [--slot S] [--from-lsn X/Y]
 * [--count N] [--text] [--status-interval SECS], argv[0] = "stream-watch".
 * Returns 0 (count reached, or SIGINT/SIGTERM), 1 with a message on err. */
extern int	hd_stream_watch_main(int argc, char **argv, FILE *out, FILE *err);
extern void hd_stream_watch_usage(FILE *out);

#endif							/* HD_STREAM_H */
