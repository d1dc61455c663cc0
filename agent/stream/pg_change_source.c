/*
 * pg_change_source.c
 *    PostgreSQL's side of the cache's change source (pg_change_source.h).
 */
#include "stream/pg_change_source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
