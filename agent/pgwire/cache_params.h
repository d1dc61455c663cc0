/*
 * cache_params.h
 *    Precise invalidation (issue 12) in PostgreSQL's words: an analysis's
 *    bindings and parameter types as hyperdrive.analyze_query() returns
 *    them, and the statement a fill runs to hash the client's parameters.
 *    Pure functions (cache_fill.c sends and reads; agent/tests/
 *    test_cache_params.c drives them without a server).
 *
 * Bindings (docs/cache-analysis.md, "bindings"): the text output of a
 * text[] whose elements are RELID:ATTNUM:VALUES, VALUES comma-separated,
 * each the decimal int64 hash of a constant or $n. PostgreSQL quotes an
 * element that holds a comma: {16390:1:-48,"16390:2:7,$1"}. The parser is
 * strict: an element that is not exactly that (a NULL, an escape, a zero
 * relation or column, a $0, a number out of range or with leading zeros,
 * an empty VALUES) makes the whole text malformed; the caller then drops
 * every binding of the analysis, which leaves its relations read whole,
 * as before bindings existed.
 *
 * A parameter's hashes (cache.h hd_cache_job_params(), dep.h
 * HdParamHashes): the fill sends, after the client's statement and in its
 * transaction, its own named statement (HD_PG_HASH_STMT, never the unnamed
 * one, which may be a client's)
 *
 *     SELECT hyperdrive.hash_value($1), hyperdrive.hash_values(ARRAY[$1]),
 *            hyperdrive.hash_value($2), hyperdrive.hash_values(ARRAY[$2]), ...
 *
 * with, per wanted parameter whose type is known ($k: the k-th chosen, of
 * the type the analysis found for it), two columns: the hash of the value
 * (an int8), and the hashes of its elements (an int8[]). The agent cannot
 * tell an array parameter of `col = ANY($n)` (its elements bind) from one
 * compared whole with an array column (`arr = $n`): both are "$n" in the
 * bindings, of an array type. So it asks for both and keeps their union:
 * a hash too many can only make a change look relevant when it is not (an
 * extra invalidation), never the reverse. The element column is
 * hash_values(ARRAY[$k]): for a scalar that is its own hash again, for an
 * array its elements (ARRAY[] of an array is that array one dimension up;
 * hash_values() reads every element, NULLs left out).
 * The parameters are bound with the very bytes and format codes the client
 * sent, so the origin converts them as it did for the client's statement.
 * A NULL parameter has a NULL hash (the functions are STRICT): not known.
 *
 * Contract: no I/O, no logging. A function that returns -1 leaves nothing
 * for the caller to free (parsers' outputs are zeroed, an HdIoBuf is left
 * as it was, hd_pg_hash_row()'s params are untouched).
 */
#ifndef HD_CACHE_PARAMS_H
#define HD_CACHE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/iobuf.h"
#include "cache/dep.h"

/* The fill's hashing statement's name (closed again before the fill ends). */
#define HD_PG_HASH_STMT "hd_param_hashes"

/* An analysis's bindings, parsed: items point into hashes and params. */
typedef struct HdPgBindings
{
	HdBinding  *items;
	size_t		n;
	uint64_t   *hashes;			/* every item's hashes, one after another */
	uint16_t   *params;			/* every item's parameter numbers, likewise */
} HdPgBindings;

/*
 * Parse analyze_query()'s bindings (a text[]'s text output). 0, or -1 when
 * malformed or out of memory (*bad then points at the offending text, or
 * is NULL for out of memory). "{}" is no bindings.
 */
extern int	hd_pg_bindings_parse(const char *text, HdPgBindings *out, const char **bad);
extern void hd_pg_bindings_free(HdPgBindings *b);

/* An oid[]'s text output ("{23,1007}"; 0 allowed) -> *n OIDs (NULL when none). */
extern int	hd_pg_oids_parse(const char *text, uint32_t **oids, size_t *n);

/* An int8's text output, exactly (no sign on 0, no leading zeros, in range). */
extern int	hd_pg_int8_parse(const char *text, size_t len, uint64_t *v);

/* An int8[]'s text output without NULLs ("{1,-2}", "{}") -> *n values (NULL when none). */
extern int	hd_pg_int8_array_parse(const char *text, uint64_t **v, size_t *n);

/*
 * Which parameters a fill hashes: those wanted (want[n - 1]) whose type is
 * known (types[n - 1] != 0) and that the client's Bind has (n <= nbound).
 * Their numbers go to chosen (room for nparams), ascending; returns how
 * many.
 */
extern size_t hd_pg_hash_choose(const bool *want, const uint32_t *types, size_t nparams,
								uint16_t nbound, uint16_t *chosen);

/*
 * The hashing statement's Parse (HD_PG_HASH_STMT, the chosen parameters'
 * types), and its Bind of the unnamed portal with the chosen parameters of
 * the client's Bind (bind_tail: ext_batch.h, after the names), as the
 * client sent their bytes and format codes; text results. Appended to out;
 * -1 (out as it was) when out of memory or the client's Bind is malformed.
 */
extern int	hd_pg_hash_parse(HdIoBuf *out, const uint16_t *chosen, size_t nchosen,
							 const uint32_t *types);
extern int	hd_pg_hash_bind(HdIoBuf *out, const uint16_t *chosen, size_t nchosen,
							const char *bind_tail, size_t bind_tail_len);

/*
 * The hashing statement's DataRow (body after the length word) -> params[n
 * - 1] for each chosen n (the others are left as they are): known with the
 * union of its two columns' hashes, or not known for a NULL parameter.
 * Each known entry's hashes are malloc'd (hd_pg_param_hashes_free()). -1
 * when the row is not what the statement returns (nothing is set then).
 */
extern int	hd_pg_hash_row(const char *body, size_t len, const uint16_t *chosen,
						   size_t nchosen, HdParamHashes *params, size_t nparams);
extern void hd_pg_param_hashes_free(HdParamHashes *params, size_t nparams);

#endif							/* HD_CACHE_PARAMS_H */
