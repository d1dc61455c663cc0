/*
 * pg_change_source.c
 *    The cache's change source for a PostgreSQL origin: HdStream records as
 *    HdChange (pg_change_source.h, cache/change.h).
 */
#include "stream/pg_change_source.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "stream/record_deps.h"
#include "stream/stream.h"

#define PG_EPOCH_UNIX_US (INT64_C(946684800) * INT64_C(1000000))	/* 2000-01-01, Unix */

struct HdChangeSource
{
	HdStream   *stream;
	HdChangeCallbacks cb;
	HdPrecision precision;
	char		config_name[HD_CONFIG_NAME_MAX + 1];
};

/*
 * The first DDL object of a record that may change what a cached query
 * returns, or what a name in it resolves to, in ways the record's relations
 * do not cover: a table created ahead of another on a search_path, a type or
 * function changed (ALTER TYPE ... RENAME VALUE, CREATE OR REPLACE FUNCTION),
 * a schema renamed, ... Entries do not record the types, functions and
 * names they used, so such a record removes every entry of the config. NULL
 * when every object is on the short list of DDL that changes no result and
 * no name resolution (a REFRESH names its materialized view as a relation).
 * When in doubt, not on the list.
 */
static const HdDdlObject *
ddl_changing_results(const HdRecord *rec)
{
	static const char *const harmless[][2] = {
		/* command tag, object type ("": any) */
		{"CREATE INDEX", "index"},
		{"DROP INDEX", "index"},
		{"COMMENT", ""},
		{"REFRESH MATERIALIZED VIEW", "materialized view"},
	};

	for (uint32_t i = 0; i < rec->nddls; i++)
	{
		const HdDdlObject *d = &rec->ddls[i];
		bool		ok = false;

		for (size_t h = 0; h < sizeof(harmless) / sizeof(harmless[0]) && !ok; h++)
			ok = strcmp(d->tag, harmless[h][0]) == 0 &&
				(harmless[h][1][0] == '\0' || strcmp(d->object_type, harmless[h][1]) == 0);
		if (!ok)
			return d;
	}
	return NULL;
}

/* Say (at most once a minute per config) that DDL emptied the config's cache. */

static int
on_record(void *arg, const HdRecord *rec)
{
	HdChangeSource *src = arg;
	HdChange	c = {0};
	HdDep	   *deps = NULL;
	const HdDdlObject *ddl;
	char		reason[1024];
	char		text[32];
	int64_t		sent;
	int			rc;

	c.xid = rec->xid;
	c.end = rec->end_lsn;
	c.commit_time_us = rec->commit_time + PG_EPOCH_UNIX_US;
	sent = hd_stream_record_sent_at(src->stream);
	c.sent_time_us = sent != 0 ? sent + PG_EPOCH_UNIX_US : 0;
	c.heartbeat = (rec->flags & HD_FLAG_HEARTBEAT) != 0;
	c.all = (rec->flags & HD_FLAG_INVALIDATE_ALL) != 0;
	c.schema_changed = rec->nddls > 0;
	ddl = c.all ? NULL : ddl_changing_results(rec);
	if (ddl != NULL)
	{
		c.all = true;
		snprintf(reason, sizeof(reason), "DDL (%s %s %s)", ddl->tag, ddl->object_type,
				 ddl->identity);
		c.all_reason = reason;
	}
	if (!c.all && hd_pg_record_deps(rec, &src->precision, &deps, &c.ndeps, &c.nunknown) < 0)
		return -1;				/* not applied: delivered again */
	c.deps = deps;
	snprintf(text, sizeof(text), "xid %" PRIu64, rec->xid);
	c.text = text;
	rc = src->cb.on_change(src->cb.arg, &c);
	free(deps);
	return rc;
}

static void
on_state(void *arg, HdStreamState state, const char *why)
{
	HdChangeSource *src = arg;
	HdChangeState s = HD_CHANGE_ERROR;

	switch (state)
	{
		case HD_STREAM_CONNECTED:
			s = HD_CHANGE_CONNECTED;
			break;
		case HD_STREAM_DISCONNECTED:
			s = HD_CHANGE_DISCONNECTED;
			break;
		case HD_STREAM_SLOT_LOST:
			s = HD_CHANGE_LOST;
			break;
		case HD_STREAM_ERROR:
			s = HD_CHANGE_ERROR;
			break;
	}
	src->cb.on_state(src->cb.arg, s, why);
}

static void
on_fresh(void *arg)
{
	HdChangeSource *src = arg;

	if (src->cb.on_fresh)
		src->cb.on_fresh(src->cb.arg);
}

static HdChangeSource *
pg_start(const HdChangeParams *params, const HdChangeCallbacks *cb, char *err, size_t errlen)
{
	HdChangeSource *src = calloc(1, sizeof(HdChangeSource));
	HdStreamParams p = {0};
	HdStreamCallbacks scb = {on_record, on_state, on_fresh, NULL};
	char		slot[HD_SLOT_NAME_MAX + 1];

	if (src == NULL)
	{
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	src->cb = *cb;
	snprintf(src->config_name, sizeof(src->config_name), "%s", params->config->name);
	hd_stream_default_slot(params->config->name, slot);
	p.loop = params->loop;
	p.config = params->config;
	p.state_dir = params->state_dir;
	p.slot = slot;
	p.start_lsn = params->start;
	p.connect_timeout_ms = params->connect_timeout_ms;
	p.status_interval_ms = 200;
	p.confirm_durable_only = true;
	p.request_replies = true;
	/*
	 * The history test's planted error (t/072): a stream that leaves old
	 * values out, which its checker must catch. Never set in production.
	 */
	p.test_drop_old_values = getenv("HYPERDRIVE_TEST_DROP_OLD_VALUES") != NULL &&
		strcmp(getenv("HYPERDRIVE_TEST_DROP_OLD_VALUES"), "1") == 0;
	if (p.test_drop_old_values)
		hd_warning("cache of config \"%s\": HYPERDRIVE_TEST_DROP_OLD_VALUES=1: the change "
				   "stream leaves old values out, ON PURPOSE: cached results WILL be stale "
				   "(a test of the history checker; never set this otherwise)",
				   params->config->name);
	/* a few probes within max_lag, at most 10 a second */
	p.probe_interval_ms = params->max_lag_ms / 5;
	if (p.probe_interval_ms > 100)
		p.probe_interval_ms = 100;
	if (p.probe_interval_ms < 10)
		p.probe_interval_ms = 10;
	scb.arg = src;
	src->stream = hd_stream_start(&p, &scb, err, errlen);
	if (src->stream == NULL)
	{
		free(src);
		return NULL;
	}
	hd_info("cache of config \"%s\": consuming slot %s from %X/%X", params->config->name, slot,
			(unsigned) (params->start >> 32), (unsigned) params->start);
	return src;
}

static void
pg_free(HdChangeSource *src)
{
	if (src == NULL)
		return;
	hd_stream_free(src->stream);
	hd_precision_free(&src->precision);
	free(src);
}

static bool
pg_connected(const HdChangeSource *src)
{
	return src != NULL && hd_stream_connected(src->stream);
}

static void
pg_status(const HdChangeSource *src, HdChangeStatus *out)
{
	HdStreamStatus st;

	hd_stream_status(src->stream, &st);
	out->applied = st.applied_lsn;
	out->catchup = st.connect_wal_lsn;
	out->fresh_as_of = st.fresh_as_of;
	out->probes_on_demand = st.probes_on_demand;
}

static void
pg_want_fresh(HdChangeSource *src, double as_of)
{
	hd_stream_want_fresh(src->stream, as_of);
}

static void
pg_set_durable(HdChangeSource *src, HdPos pos)
{
	hd_stream_set_durable_lsn(src->stream, pos);
}

static int
pg_connect_snapshot(const HdChangeSource *src, HdRaceSnapshot *out)
{
	return hd_pg_snapshot_parse(hd_stream_connect_snapshot(src->stream), &out->xmin, &out->xmax,
								&out->xip, &out->nxip);
}

static void
pg_identity(const HdConfig *config, char *out, size_t outlen)
{
	char		slot[HD_SLOT_NAME_MAX + 1];

	hd_stream_default_slot(config->name, slot);
	snprintf(out, outlen, "%.80s:%d/%.60s/%s", config->host, config->port, config->database,
			 slot);
}

/*
 * Whether changes to relation name rows by values of column (the relation's
 * precision column): the first column asked about becomes it, and the
 * stream is asked to carry its values.
 */
static bool
pg_watch(HdChangeSource *src, uint64_t relation, uint32_t column)
{
	uint16_t	have;

	if (relation == 0 || relation > UINT32_MAX || column == 0 || column > INT16_MAX)
		return false;
	have = hd_precision_get(&src->precision, (uint32_t) relation);
	if (have != 0)
		return have == column;
	if (hd_stream_watch_column(src->stream, (uint32_t) relation, (uint16_t) column) < 0)
		return false;
	if (hd_precision_set(&src->precision, (uint32_t) relation, (uint16_t) column) < 0)
		return false;
	hd_debug("cache of config \"%s\": changes of relation %u name their rows by column %u",
			 src->config_name, (unsigned) relation, (unsigned) column);
	return true;
}

static const char *
pg_state_name(HdChangeState state)
{
	switch (state)
	{
		case HD_CHANGE_CONNECTED:
			return hd_stream_state_name(HD_STREAM_CONNECTED);
		case HD_CHANGE_DISCONNECTED:
			return hd_stream_state_name(HD_STREAM_DISCONNECTED);
		case HD_CHANGE_LOST:
			return hd_stream_state_name(HD_STREAM_SLOT_LOST);
		case HD_CHANGE_ERROR:
			return hd_stream_state_name(HD_STREAM_ERROR);
	}
	return "unknown";
}

const HdChangeSourceOps hd_pg_change_source = {
	pg_start, pg_free, pg_connected, pg_status, pg_set_durable, pg_connect_snapshot,
	pg_identity, hd_lsn_format, pg_state_name, pg_watch, pg_want_fresh
};

int
hd_pg_snapshot_parse(const char *text, uint64_t *xmin, uint64_t *xmax, uint64_t **xip,
					 size_t *nxip)
{
	char	   *end;
	size_t		cap = 0;

	*xmin = *xmax = 0;
	*xip = NULL;
	*nxip = 0;
	if (text == NULL)
		return -1;
	errno = 0;
	*xmin = strtoull(text, &end, 10);
	if (end == text || *end != ':')
		return -1;
	text = end + 1;
	*xmax = strtoull(text, &end, 10);
	if (end == text || *end != ':' || errno)
		return -1;
	text = end + 1;
	while (*text)
	{
		uint64_t	x = strtoull(text, &end, 10);

		if (end == text)
			return -1;
		if (*nxip == cap)
		{
			uint64_t   *grown;

			cap = cap ? cap * 2 : 8;
			grown = realloc(*xip, cap * sizeof(uint64_t));
			if (grown == NULL)
				return -1;
			*xip = grown;
		}
		(*xip)[(*nxip)++] = x;
		text = end;
		if (*text == ',')
			text++;
		else if (*text)
			return -1;
	}
	return 0;
}
