/*
 * race.c
 *    The race rule: retained changes, snapshot visibility, fills in flight
 *    (race.h).
 */
#include "cache/race.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

#define RETAINED_INITIAL 64

int
hd_race_init(HdRace *race, const char *name)
{
	memset(race, 0, sizeof(*race));
	race->name = name;

	/*
	 * Room for retained changes from the start: when growing it fails,
	 * hd_race_retain() marks the newest entry "everything, never visible",
	 * which needs one to exist.
	 */
	race->capret = RETAINED_INITIAL;
	race->ret = malloc(race->capret * sizeof(HdRetained));
	return race->ret == NULL ? -1 : 0;
}

static void
retained_free(HdRetained *r)
{
	free(r->deps);
	r->deps = NULL;
}

void
hd_race_free(HdRace *race)
{
	for (size_t i = 0; i < race->nret; i++)
		retained_free(&race->ret[i]);
	free(race->ret);
	free(race->inflight);
	memset(race, 0, sizeof(*race));
}

bool
hd_race_xid_visible(const HdRaceSnapshot *s, uint64_t xid, bool xmin_rule)
{
	if (xid == 0)
		return false;
	if (xid < s->xmin)
		return true;
	if (xmin_rule || xid >= s->xmax)
		return false;
	for (size_t i = 0; i < s->nxip; i++)
		if (s->xip[i] == xid)
			return false;
	return true;
}

static bool
retained_touches(const HdRetained *r, const HdDep *deps, size_t n)
{
	if (r->all)
		return true;
	for (size_t i = 0; i < r->ndeps; i++)
		for (size_t j = 0; j < n; j++)
			if (hd_dep_overlaps(&deps[j], &r->deps[i]))
				return true;
	return false;
}

void
hd_race_prune(HdRace *race)
{
	uint64_t	min_inflight = UINT64_MAX;
	size_t		kept = 0;

	for (size_t i = 0; i < race->ninflight; i++)
		if (race->inflight[i] < min_inflight)
			min_inflight = race->inflight[i];
	for (size_t i = 0; i < race->nret; i++)
	{
		HdRetained *r = &race->ret[i];

		if (r->visible_from_seq != 0 && min_inflight >= r->visible_from_seq)
			retained_free(r);
		else
			race->ret[kept++] = *r;
	}
	race->nret = kept;
}

/* Too many retained: fold them all into one; stores wait until all of it is old. */
static void
retained_fold(HdRace *race, uint64_t xid)
{
	uint64_t	maxxid = xid == 0 ? UINT64_MAX - 1 : xid;
	uint64_t	first_order = race->ret[0].applied_order;

	for (size_t i = 0; i < race->nret; i++)
	{
		if (race->ret[i].xid == 0)
			maxxid = UINT64_MAX - 1;
		else if (race->ret[i].xid > maxxid)
			maxxid = race->ret[i].xid;
		if (race->ret[i].applied_order < first_order)
			first_order = race->ret[i].applied_order;
		retained_free(&race->ret[i]);
	}
	race->nret = 0;
	race->order++;
	race->ret[race->nret++] = (HdRetained) {
		.xid = maxxid, .all = true, .xmin_rule = true, .applied_order = first_order
	};
	hd_warning("cache of config \"%s\": more than %d invalidations retained for the race "
			   "check; results are stored again once the origin's snapshots see all of them",
			   race->name, HD_RACE_MAX_RETAINED);
}

/* Room for one more retained change; false (and the rule made strict) when out of memory. */
static bool
retained_grow(HdRace *race)
{
	size_t		cap = race->capret ? race->capret * 2 : RETAINED_INITIAL;
	HdRetained *grown;

	if (race->nret < race->capret)
		return true;
	grown = realloc(race->ret, cap * sizeof(HdRetained));
	if (grown == NULL)
	{
		/*
		 * Cannot remember it: the newest entry (there is one: the array is
		 * full) stands for it, as "everything, never visible": no fill of
		 * this config is stored again until the agent restarts. Loud.
		 */
		hd_error("cache of config \"%s\": out of memory for the race check; results "
				 "of this config are no longer stored (restart the agent)", race->name);
		race->ret[race->nret - 1].all = true;
		race->ret[race->nret - 1].xid = 0;
		race->order++;
		return false;
	}
	race->ret = grown;
	race->capret = cap;
	return true;
}

/*
 * A copy of a change's dependencies in one allocation (the deps, then their
 * value hashes): the caller's values are its own memory. A dependency with
 * more than HD_RACE_MAX_VALUES values is kept as its relation only (every
 * row): more races, never fewer. false: out of memory.
 */
static bool
retained_copy_deps(HdRetained *r, const HdDep *deps, size_t ndeps)
{
	size_t		nvalues = 0;
	uint64_t   *values;

	for (size_t i = 0; i < ndeps; i++)
		if (deps[i].nvalues <= HD_RACE_MAX_VALUES)
			nvalues += deps[i].nvalues;
	r->deps = malloc(ndeps * sizeof(HdDep) + nvalues * sizeof(uint64_t));
	if (r->deps == NULL)
		return false;
	values = (uint64_t *) (r->deps + ndeps);
	for (size_t i = 0; i < ndeps; i++)
	{
		if (deps[i].nvalues == 0 || deps[i].nvalues > HD_RACE_MAX_VALUES)
		{
			r->deps[i] = hd_dep_relation(deps[i].relation);
			continue;
		}
		memcpy(values, deps[i].values, deps[i].nvalues * sizeof(uint64_t));
		r->deps[i] = deps[i];
		r->deps[i].values = values;
		values += deps[i].nvalues;
	}
	r->ndeps = ndeps;
	return true;
}

void
hd_race_retain(HdRace *race, uint64_t xid, bool all, const HdDep *deps, size_t ndeps)
{
	HdRetained *r;

	if (race->nret >= HD_RACE_MAX_RETAINED)
	{
		retained_fold(race, xid);
		return;
	}
	if (!retained_grow(race))
		return;
	r = &race->ret[race->nret++];
	memset(r, 0, sizeof(*r));
	r->xid = xid;
	r->all = all;
	r->applied_order = ++race->order;
	if (!all && ndeps > 0 && !retained_copy_deps(r, deps, ndeps))
		r->all = true;			/* out of memory: it touches everything */
}

uint64_t
hd_race_fill_begin(HdRace *race)
{
	uint64_t	seq = ++race->next_fill_seq;

	if (race->ninflight == race->capinflight)
	{
		size_t		cap = race->capinflight ? race->capinflight * 2 : 16;
		uint64_t   *grown = realloc(race->inflight, cap * sizeof(uint64_t));

		if (grown == NULL)
			return seq;			/* not protected (race.h) */
		race->inflight = grown;
		race->capinflight = cap;
	}
	race->inflight[race->ninflight++] = seq;
	return seq;
}

bool
hd_race_fill_done(HdRace *race, uint64_t seq)
{
	for (size_t i = 0; i < race->ninflight; i++)
		if (race->inflight[i] == seq)
		{
			race->inflight[i] = race->inflight[--race->ninflight];
			return true;
		}
	return false;
}

/* A fill ended with snapshot s: note which changes any later fill sees. */
static void
observe_snapshot(HdRace *race, const HdRaceSnapshot *s)
{
	for (size_t i = 0; i < race->nret; i++)
		if (race->ret[i].visible_from_seq == 0 &&
			hd_race_xid_visible(s, race->ret[i].xid, race->ret[i].xmin_rule))
			race->ret[i].visible_from_seq = race->next_fill_seq + 1;
}

bool
hd_race_check(HdRace *race, const HdRaceSnapshot *s, const HdDep *deps, size_t ndeps,
			  uint64_t *joined_before)
{
	bool		raced = false;

	*joined_before = UINT64_MAX;
	for (size_t i = 0; i < race->nret; i++)
		if (retained_touches(&race->ret[i], deps, ndeps) &&
			!hd_race_xid_visible(s, race->ret[i].xid, race->ret[i].xmin_rule))
		{
			raced = true;
			if (race->ret[i].applied_order < *joined_before)
				*joined_before = race->ret[i].applied_order;
		}
	observe_snapshot(race, s);
	return raced;
}
