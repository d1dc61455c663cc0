/*
 * pg_origin.h
 *    PostgreSQL as an origin: its origin driver (cache/origin.h).
 */
#ifndef HD_PG_ORIGIN_H
#define HD_PG_ORIGIN_H

#include "cache/origin.h"

extern const HdOriginDriver hd_pg_origin;

#endif							/* HD_PG_ORIGIN_H */
