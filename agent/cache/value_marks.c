/*
 * value_marks.c
 *    The in-memory marks of changes with values (value_marks.h).
 */
#include "cache/value_marks.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS_INITIAL 64

uint64_t
hd_marks_config(const void *cfg, size_t len)
{
	const unsigned char *p = cfg;
	uint64_t	h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

void
hd_marks_init(HdMarks *m)
{
	memset(m, 0, sizeof(*m));
}

void
hd_marks_free(HdMarks *m)
{
	free(m->columns);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static uint64_t
slot_hash(uint64_t cfg, uint64_t relation, uint32_t column, uint64_t hash)
{
	uint64_t	h = cfg ^ (relation * 0x9E3779B97F4A7C15ULL) ^ ((uint64_t) column << 32) ^ hash;

	h ^= h >> 33;
	h *= 0xFF51AFD7ED558CCDULL;
	h ^= h >> 33;
	return h;
}

/* The slot of the mark, or the empty slot where it would go. */
static HdValueMark *
slot_find(HdValueMark *slots, size_t cap, uint64_t cfg, uint64_t relation, uint32_t column,
		  uint64_t hash)
{
	size_t		i = (size_t) slot_hash(cfg, relation, column, hash) & (cap - 1);

	for (;;)
	{
		HdValueMark *s = &slots[i];

		if (s->seq == 0 || (s->cfg == cfg && s->relation == relation && s->column == column &&
							s->hash == hash))
			return s;
		i = (i + 1) & (cap - 1);
	}
}

/* A table of cap slots (a power of two) with the marks above oldest. */
static bool
rebuild(HdMarks *m, size_t cap, uint64_t oldest)
{
	HdValueMark *slots = calloc(cap, sizeof(HdValueMark));
	size_t		n = 0;
	uint64_t	min_seq = UINT64_MAX;

	if (slots == NULL)
		return false;
	for (size_t i = 0; i < m->capslots; i++)
	{
		const HdValueMark *s = &m->slots[i];

		if (s->seq > oldest)
		{
			*slot_find(slots, cap, s->cfg, s->relation, s->column, s->hash) = *s;
			n++;
			if (s->seq < min_seq)
				min_seq = s->seq;
		}
	}
	free(m->slots);
	m->slots = slots;
	m->capslots = cap;
	m->nvalues = n;
	m->min_seq = min_seq;
	return true;
}

bool
hd_marks_reserve(HdMarks *m, size_t ndeps, size_t nvalues)
{
	size_t		need = m->nvalues + nvalues;
	size_t		cap = m->capslots ? m->capslots : SLOTS_INITIAL;

	if (nvalues > HD_MARKS_MAX || need > HD_MARKS_MAX)
		return false;
	while (cap < 2 * need)
		cap *= 2;				/* at most half full: probes stay short */
	if ((cap != m->capslots || m->slots == NULL) && !rebuild(m, cap, 0))
		return false;
	if (m->ncolumns + ndeps > m->capcolumns)
	{
		size_t		ccap = m->capcolumns ? m->capcolumns : 16;
		HdColumnMark *grown;

		while (ccap < m->ncolumns + ndeps)
			ccap *= 2;
		grown = realloc(m->columns, ccap * sizeof(HdColumnMark));
		if (grown == NULL)
			return false;
		m->columns = grown;
		m->capcolumns = ccap;
	}
	return true;
}

static void
note_column(HdMarks *m, uint64_t cfg, uint64_t relation, uint32_t column, uint64_t seq)
{
	for (size_t i = 0; i < m->ncolumns; i++)
	{
		HdColumnMark *c = &m->columns[i];

		if (c->cfg == cfg && c->relation == relation && c->column == column)
		{
			if (seq > c->seq)
				c->seq = seq;
			return;
		}
	}
	/* room was reserved (hd_marks_reserve()) */
	m->columns[m->ncolumns++] = (HdColumnMark) {cfg, relation, column, seq};
}

void
hd_marks_note(HdMarks *m, uint64_t cfg, const HdDep *dep, uint64_t seq)
{
	note_column(m, cfg, dep->relation, dep->column, seq);
	/* (the table has room: hd_marks_reserve() kept it at most half full) */
	for (uint32_t i = 0; i < dep->nvalues; i++)
	{
		HdValueMark *s = slot_find(m->slots, m->capslots, cfg, dep->relation, dep->column,
								   dep->values[i]);

		if (s->seq == 0)
		{
			*s = (HdValueMark) {cfg, dep->relation, dep->values[i], dep->column, seq};
			if (m->nvalues++ == 0 || seq < m->min_seq)
				m->min_seq = seq;
		}
		else if (seq > s->seq)
			s->seq = seq;
	}
}

bool
hd_marks_raced(const HdMarks *m, uint64_t cfg, const HdDep *dep, uint64_t token)
{
	for (size_t i = 0; i < m->ncolumns; i++)
	{
		const HdColumnMark *c = &m->columns[i];

		if (c->cfg == cfg && c->relation == dep->relation && c->seq > token &&
			(dep->nvalues == 0 || c->column != dep->column))
			return true;
	}
	if (dep->nvalues == 0 || m->slots == NULL)
		return false;
	for (uint32_t i = 0; i < dep->nvalues; i++)
	{
		const HdValueMark *s = slot_find(m->slots, m->capslots, cfg, dep->relation,
										 dep->column, dep->values[i]);

		if (s->seq > token)
			return true;
	}
	return false;
}

void
hd_marks_prune(HdMarks *m, uint64_t oldest_token)
{
	size_t		kept = 0;

	for (size_t i = 0; i < m->ncolumns; i++)
		if (m->columns[i].seq > oldest_token)
			m->columns[kept++] = m->columns[i];
	m->ncolumns = kept;
	/* (on every tick of the cache's timer: the table is rebuilt only when a mark goes) */
	if (m->slots != NULL && m->nvalues > 0 && m->min_seq <= oldest_token)
		(void) rebuild(m, m->capslots, oldest_token);	/* out of memory: kept as they are */
}
