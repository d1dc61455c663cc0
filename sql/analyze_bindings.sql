-- hyperdrive.analyze_query()'s bindings: the columns a cacheable SELECT's
-- result is restricted to by equality, with the values' hashes
-- (docs/cache-analysis.md, "Bindings"). Everything created here is dropped at
-- the end, before any stream test creates its slot.

-- ab(query, param_types): cacheable, and the bindings as
-- relation.column:VALUES, each hash shown as h (hash values differ between
-- little- and big-endian machines; the tests below compare them in SQL).
-- It also checks that every bound relation is one of relations.
CREATE FUNCTION ab(query text, param_types regtype[] DEFAULT '{}',
                   OUT cacheable boolean, OUT bindings text[])
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    SELECT * INTO STRICT r FROM hyperdrive.analyze_query(query, param_types);
    IF EXISTS (SELECT FROM unnest(r.bindings) b
               WHERE split_part(b, ':', 1)::oid <> ALL (r.relations)) THEN
        RAISE EXCEPTION 'bindings % name a relation not in relations %',
            r.bindings, r.relations;
    END IF;
    cacheable := r.cacheable;
    bindings := ARRAY(
        SELECT format('%s.%s:%s', c.relname, a.attname,
                      regexp_replace(split_part(b, ':', 3), '(^|,)-?[0-9]+', '\1h', 'g'))
        FROM unnest(r.bindings) WITH ORDINALITY AS u(b, i)
        JOIN pg_class c ON c.oid = split_part(b, ':', 1)::oid
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = split_part(b, ':', 2)::int2
        ORDER BY u.i);
END
$$;
-- hv(query, param_types): the VALUES of the query's only binding
CREATE FUNCTION hv(query text, param_types regtype[] DEFAULT '{}') RETURNS text
LANGUAGE sql AS $$
    SELECT split_part(b, ':', 3)
    FROM hyperdrive.analyze_query(query, param_types) r, unnest(r.bindings) b
$$;
-- the seed, HD_BINDING_SEED in extension/hyperdrive.h ("hdbind01")
CREATE FUNCTION seed() RETURNS bigint LANGUAGE sql IMMUTABLE AS 'SELECT x''686462696e643031''::bigint';

CREATE TYPE ab_mood AS ENUM ('ok', 'meh');
CREATE DOMAIN ab_dom AS int;
CREATE TABLE ab_t (id int PRIMARY KEY, k int8, n numeric, f float8, c char(5), v varchar,
                   s text, d date, arr int[], mood ab_mood, dm ab_dom, flag boolean, p point);
CREATE TABLE ab_u (id int, t_id int, name text);
CREATE TABLE ab_w (id int, name text);

-- the new column, and the function's properties unchanged
SELECT pg_get_function_result('hyperdrive.analyze_query(text, regtype[])'::regprocedure);
SELECT provolatile, proisstrict, prosecdef,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc p WHERE p.oid = 'hyperdrive.analyze_query(text, regtype[])'::regprocedure;
-- raw, once: RELID:ATTNUM:VALUES, sorted by relation and column
SELECT bindings = ARRAY['ab_t'::regclass::oid || ':1:' || hashint4extended(1, seed())]
FROM hyperdrive.analyze_query('SELECT * FROM ab_t WHERE id = 1');
SELECT bindings = ARRAY['ab_t'::regclass::oid || ':1:' || hashint4extended(1, seed()) || ',$1',
                        'ab_t'::regclass::oid || ':7:' || hashtextextended('x', seed())]
FROM hyperdrive.analyze_query('SELECT * FROM ab_t WHERE s = ''x'' AND id IN (1, $1)', '{int4}');

-- ---------------------------------------------------------------------------
-- The forms that bind

SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE 1 = id');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = $1', '{int4}');
SELECT * FROM ab('SELECT * FROM ab_t WHERE $1 = id', '{int4}');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id IN (1, 2, 3)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY (''{1,2}'')');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY (ARRAY[1, $1])', '{int4}');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY ($1)', '{int4[]}');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id IN ($1, $2)', '{int4,int4}');
-- several columns: one element each; the same column twice: the first
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 AND s = ''x'' AND k = 3');
SELECT * FROM ab('SELECT * FROM ab_t WHERE (id = 1 AND s = ''x'') AND (k = 3 AND true)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 AND id = ANY (''{1,2}'')');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 AND (s = ''x'' OR s = ''y'')');
SELECT * FROM ab('SELECT * FROM ab_t WHERE s = ANY (''{a,b}'')');
-- other types with a default hash opclass
SELECT * FROM ab('SELECT * FROM ab_t WHERE d = ''2024-01-01''');
SELECT * FROM ab('SELECT * FROM ab_t WHERE arr = ''{1,2}''');
SELECT * FROM ab('SELECT * FROM ab_t WHERE mood = ''ok''');
SELECT * FROM ab('SELECT * FROM ab_t WHERE flag = true');
SELECT * FROM ab('SELECT * FROM ab_t WHERE dm = 1');
-- whatever else the query does with the rows it reads
SELECT * FROM ab('SELECT count(*) FROM ab_t WHERE id = 1');
SELECT * FROM ab('SELECT s, count(*) FROM ab_t WHERE id = 1 GROUP BY GROUPING SETS ((s), ())');
SELECT * FROM ab('SELECT DISTINCT s FROM ab_t WHERE id = 1 ORDER BY s LIMIT 1');
SELECT * FROM ab('SELECT *, row_number() OVER () FROM ab_t WHERE id = 1');

-- ---------------------------------------------------------------------------
-- Casts: binary-compatible ones bind, conversions do not

SELECT * FROM ab('SELECT * FROM ab_t WHERE v = ''abc''');
SELECT * FROM ab('SELECT * FROM ab_t WHERE v = ''abc''::text');
SELECT * FROM ab('SELECT * FROM ab_t WHERE s = ''abc''::varchar');
SELECT * FROM ab('SELECT * FROM ab_t WHERE v = $1', '{varchar}');
-- cross-type members of the column's hash family
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 5::int8');
SELECT * FROM ab('SELECT * FROM ab_t WHERE k = 5');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = $1', '{int8}');
SELECT * FROM ab('SELECT * FROM ab_t WHERE k = ANY (''{5,6}''::int2[])');
-- the column converted: not bound
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1.0');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id::text = ''1''');
SELECT * FROM ab('SELECT * FROM ab_t WHERE c = ''ab''::text');
-- a constant converted is folded, as the planner does: bound
SELECT * FROM ab('SELECT * FROM ab_t WHERE n = 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE f = 0');
SELECT * FROM ab('SELECT * FROM ab_t WHERE f = 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = abs(-1)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id IN (1, 2::int8)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = NULL::int8');
-- ... and an error folding it is the one planning the query would raise
SELECT * FROM hyperdrive.analyze_query('SELECT * FROM ab_t WHERE id = 1 / 0');
-- a parameter converted: not bound (the agent would hash what the client sent)
SELECT * FROM ab('SELECT * FROM ab_t WHERE n = $1', '{int4}');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = $1::int4', '{text}');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY (ARRAY[1, $1::int4])', '{text}');

-- ---------------------------------------------------------------------------
-- Everything else: the relation stays bound to all of it

SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 OR id = 2');
SELECT * FROM ab('SELECT * FROM ab_t WHERE NOT (id = 1)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id <> 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE abs(id) = 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id + 0 = 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id < 3');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id BETWEEN 1 AND 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE s IS NULL');
SELECT * FROM ab('SELECT * FROM ab_t WHERE s LIKE ''a''');
SELECT * FROM ab('SELECT * FROM ab_t WHERE flag');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = k');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ALL (''{1}'')');
SELECT * FROM ab('SELECT * FROM ab_t WHERE s IS NOT DISTINCT FROM ''x''');
SELECT * FROM ab('SELECT * FROM ab_t WHERE p ~= ''(1,1)''');
SELECT * FROM ab('SELECT * FROM ab_t, generate_series(1, 2) g WHERE id = g');
SELECT * FROM ab('SELECT id FROM ab_t GROUP BY id HAVING id = 1');
-- a subquery as the value, even one of constants
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = (SELECT 1)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY (ARRAY(SELECT 1))');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY (ARRAY[1, (SELECT 2)])');
-- NULL: = NULL is never true, left alone
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = NULL');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id IN (1, NULL)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY (''{1,NULL}'')');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = ANY (''{}'')');
-- another collation than the column's
SELECT * FROM ab('SELECT * FROM ab_t WHERE s = ''x'' COLLATE "C"');
SELECT * FROM ab('SELECT * FROM ab_t WHERE s COLLATE "POSIX" = ''x''');
-- not cacheable: no bindings
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 AND random() > 0');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 FOR UPDATE');

-- ---------------------------------------------------------------------------
-- Equal values hash equally, by the type's own hash

-- the hashes are the type's extended hash function with the seed
SELECT hv('SELECT * FROM ab_t WHERE id = 7') = hashint4extended(7, seed())::text AS int4,
       hv('SELECT * FROM ab_t WHERE n = 2.5') = hash_numeric_extended(2.5, seed())::text AS numeric,
       hv('SELECT * FROM ab_t WHERE s = ''x''') = hashtextextended('x', seed())::text AS text,
       hv('SELECT * FROM ab_t WHERE id IN (1, 2)') =
           hashint4extended(1, seed()) || ',' || hashint4extended(2, seed()) AS list;
-- numeric scale
SELECT hv('SELECT * FROM ab_t WHERE n = 1.0') = hv('SELECT * FROM ab_t WHERE n = 1.00') AS numeric_scale,
       hv('SELECT * FROM ab_t WHERE n = 1') = hv('SELECT * FROM ab_t WHERE n = 1.000') AS numeric_int,
       hv('SELECT * FROM ab_t WHERE n = 1.0') <> hv('SELECT * FROM ab_t WHERE n = 1.01') AS numeric_differ;
-- int2, int4 and int8 5
SELECT hv('SELECT * FROM ab_t WHERE id = 5') = hv('SELECT * FROM ab_t WHERE id = 5::int8') AS int4_int8,
       hv('SELECT * FROM ab_t WHERE id = 5') = hv('SELECT * FROM ab_t WHERE k = 5') AS int4_col_int8_col,
       hv('SELECT * FROM ab_t WHERE k = 5::int2') = hv('SELECT * FROM ab_t WHERE k = 5') AS int2_int8,
       hv('SELECT * FROM ab_t WHERE k = 5') = hashint8extended(5, seed())::text AS int8_hash;
-- float8 -0 and 0
SELECT hv('SELECT * FROM ab_t WHERE f = ''-0''') = hv('SELECT * FROM ab_t WHERE f = 0') AS minus_zero,
       hv('SELECT * FROM ab_t WHERE f = 0.5') = hashfloat8extended(0.5, seed())::text AS float8_hash;
-- char(n) padding
SELECT hv('SELECT * FROM ab_t WHERE c = ''ab''') = hv('SELECT * FROM ab_t WHERE c = ''ab   ''') AS bpchar_padding,
       hv('SELECT * FROM ab_t WHERE c = ''ab''') <> hv('SELECT * FROM ab_t WHERE c = ''abc''') AS bpchar_differ;
-- varchar compared as text: text's hash
SELECT hv('SELECT * FROM ab_t WHERE v = ''abc''') = hv('SELECT * FROM ab_t WHERE s = ''abc''') AS varchar_text;
-- stable across calls
SELECT hv('SELECT * FROM ab_t WHERE s = ''stable''') = hv('SELECT * FROM ab_t WHERE s = ''stable''') AS stable;

-- a case-insensitive ICU collation (nondeterministic): equal strings hash
-- equally; a parameter is not bound (the agent hashes it without the
-- collation). Skipped without ICU.
SELECT EXISTS (SELECT FROM pg_collation WHERE collprovider = 'i') AS have_icu \gset
\if :have_icu
CREATE COLLATION ab_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE ab_ci_t (id int, s text COLLATE ab_ci);
SELECT * FROM ab('SELECT * FROM ab_ci_t WHERE s = ''ABC''');
SELECT * FROM ab('SELECT * FROM ab_ci_t WHERE s = $1', '{text}');
SELECT * FROM ab('SELECT * FROM ab_ci_t WHERE s = ''ABC'' COLLATE "C"');
SELECT hv('SELECT * FROM ab_ci_t WHERE s = ''ABC''') = hv('SELECT * FROM ab_ci_t WHERE s = ''abc''') AS ci_equal,
       hv('SELECT * FROM ab_ci_t WHERE s = ''ABC''') = hashtextextended('abc' COLLATE ab_ci, seed())::text AS ci_hash,
       hv('SELECT * FROM ab_ci_t WHERE s = ''ABC''') <> hv('SELECT * FROM ab_ci_t WHERE s = ''abd''') AS ci_differ;
DROP TABLE ab_ci_t;
DROP COLLATION ab_ci;
\else
-- (expected/analyze_bindings_1.out)
SELECT 'skipped: no ICU' AS icu;
\endif

-- ---------------------------------------------------------------------------
-- Joins

-- inner: WHERE and ON bind both sides
SELECT * FROM ab('SELECT * FROM ab_t t JOIN ab_u u ON u.t_id = t.id WHERE t.id = 1');
SELECT * FROM ab('SELECT * FROM ab_t t JOIN ab_u u ON u.t_id = t.id AND u.name = ''x'' WHERE t.id = 1');
SELECT * FROM ab('SELECT * FROM ab_t t, ab_u u WHERE t.id = 1 AND u.id = 2');
SELECT * FROM ab('SELECT * FROM ab_t t CROSS JOIN ab_u u WHERE u.id = $1', '{int4}');
-- outer: ON binds the nullable side only; WHERE the preserved side only
SELECT * FROM ab('SELECT * FROM ab_t t LEFT JOIN ab_u u ON u.t_id = t.id AND u.name = ''x'' AND t.s = ''y'' WHERE t.id = 1');
SELECT * FROM ab('SELECT * FROM ab_t t LEFT JOIN ab_u u ON u.t_id = t.id WHERE u.name = ''x''');
SELECT * FROM ab('SELECT * FROM ab_u u RIGHT JOIN ab_t t ON u.t_id = t.id AND u.name = ''x'' AND t.s = ''y'' WHERE t.id = 1');
SELECT * FROM ab('SELECT * FROM ab_t t FULL JOIN ab_u u ON u.t_id = t.id AND u.name = ''x'' AND t.s = ''y'' WHERE t.id = 1');
-- an inner join on a nullable side binds its own relations by its ON
SELECT * FROM ab('SELECT * FROM ab_t t LEFT JOIN (ab_u u JOIN ab_w w ON w.id = 3) ON u.t_id = t.id AND u.id = 2');
-- an outer join on a nullable side: its nullable side is not bound by the ON above
SELECT * FROM ab('SELECT * FROM ab_t t LEFT JOIN (ab_u u LEFT JOIN ab_w w ON w.id = u.id) ON u.t_id = t.id AND w.name = ''x'' AND u.id = 2');
-- an inner join's USING column is its left input's column; a full join's
-- is COALESCE() of both
SELECT * FROM ab('SELECT * FROM ab_u JOIN ab_w USING (id) WHERE id = 1');
SELECT * FROM ab('SELECT * FROM ab_u FULL JOIN ab_w USING (id) WHERE id = 1');
SELECT * FROM ab('SELECT * FROM ab_u u JOIN ab_w w USING (id) WHERE u.id = 1');

-- ---------------------------------------------------------------------------
-- Subqueries, CTEs, views, set operations: only the top level's relations

SELECT * FROM ab('SELECT * FROM (SELECT * FROM ab_t WHERE id = 1) s');
SELECT * FROM ab('SELECT * FROM (SELECT * FROM ab_t) s WHERE id = 1');
SELECT * FROM ab('SELECT * FROM ab_u WHERE t_id IN (SELECT id FROM ab_t WHERE id = 1) AND id = 2');
SELECT * FROM ab('SELECT * FROM ab_u WHERE EXISTS (SELECT FROM ab_t WHERE ab_t.id = ab_u.t_id AND ab_t.id = 1)');
SELECT * FROM ab('WITH c AS (SELECT * FROM ab_t WHERE id = 1) SELECT * FROM c');
SELECT * FROM ab('WITH c AS (SELECT 1 AS x) SELECT * FROM ab_t, c WHERE id = 1 AND x = 1');
SELECT * FROM ab('SELECT * FROM ab_t t, LATERAL (SELECT * FROM ab_u u WHERE u.t_id = t.id AND u.id = 2) s WHERE t.id = 1');
SELECT * FROM ab('SELECT id FROM ab_t WHERE id = 1 UNION SELECT id FROM ab_u WHERE id = 2');
CREATE VIEW ab_v AS SELECT * FROM ab_t;
SELECT * FROM ab('SELECT * FROM ab_v WHERE id = 1');
SELECT * FROM ab('SELECT * FROM ab_v v JOIN ab_u u ON u.t_id = v.id WHERE u.id = 2');
-- read twice: not bound, wherever the other occurrence is
SELECT * FROM ab('SELECT * FROM ab_t a JOIN ab_t b ON a.id = b.id WHERE a.id = 1 AND b.id = 1');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 AND k IN (SELECT k FROM ab_t)');
SELECT * FROM ab('SELECT * FROM ab_t WHERE id = 1 AND k IN (SELECT k FROM ab_v)');
SELECT * FROM ab('SELECT *, (SELECT count(*) FROM ab_t) FROM ab_t WHERE id = 1');

-- ---------------------------------------------------------------------------
-- Partitions and inheritance: the relation as written, its own attnum

CREATE TABLE ab_p (region text, id int) PARTITION BY LIST (region);
CREATE TABLE ab_p_eu (id int, region text);
ALTER TABLE ab_p ATTACH PARTITION ab_p_eu FOR VALUES IN ('eu');
SELECT * FROM ab('SELECT * FROM ab_p WHERE id = 1');
SELECT * FROM ab('SELECT * FROM ab_p_eu WHERE id = 1');
SELECT bindings[1] LIKE 'ab_p'::regclass::oid || ':2:%' AS parent_attnum
FROM hyperdrive.analyze_query('SELECT * FROM ab_p WHERE id = 1');
SELECT bindings[1] LIKE 'ab_p_eu'::regclass::oid || ':1:%' AS partition_attnum
FROM hyperdrive.analyze_query('SELECT * FROM ab_p_eu WHERE id = 1');
CREATE TABLE ab_parent (id int);
CREATE TABLE ab_child () INHERITS (ab_parent);
SELECT * FROM ab('SELECT * FROM ab_parent WHERE id = 1');
SELECT * FROM ab('SELECT * FROM ONLY ab_parent WHERE id = 1');

-- row-level security: not cacheable, so not bound
CREATE TABLE ab_rls (id int);
ALTER TABLE ab_rls ENABLE ROW LEVEL SECURITY;
SELECT * FROM ab('SELECT * FROM ab_rls WHERE id = 1');

-- ---------------------------------------------------------------------------
-- param_types: each parameter's type as parse analysis resolved it, as a
-- Describe reports it (the agent hashes a client's parameters as these)
SELECT param_types FROM hyperdrive.analyze_query('SELECT * FROM ab_t WHERE id = $1 AND s = $2', '{0,0}');
SELECT param_types FROM hyperdrive.analyze_query('SELECT * FROM ab_t WHERE k = $1 OR n = ANY($2)', '{unknown,0}');
-- given types are kept, used or not; inference extends the list to the highest $n
SELECT param_types FROM hyperdrive.analyze_query('SELECT $1::int8', '{text,int4}');
SELECT param_types FROM hyperdrive.analyze_query('SELECT * FROM ab_t WHERE id = $3', '{0}');
-- inferred as the parser resolves it: text in a target list
SELECT cacheable, reason, param_types FROM hyperdrive.analyze_query('SELECT $1', '{0}');
-- one nothing types stays 0 (shown as -), and the query is not cacheable
SELECT cacheable, reason, param_types FROM hyperdrive.analyze_query('SELECT 1 WHERE $1 IS NULL', '{0}');
-- no parameters; not a SELECT; an error (empty)
SELECT param_types FROM hyperdrive.analyze_query('SELECT 1');
SELECT cacheable, param_types FROM hyperdrive.analyze_query('DELETE FROM ab_t WHERE id = $1', '{0}');
SELECT cacheable, param_types FROM hyperdrive.analyze_query('SELECT nosuch FROM ab_t WHERE id = $1', '{int4}');

-- ---------------------------------------------------------------------------
DROP VIEW ab_v;
DROP TABLE ab_t, ab_u, ab_w, ab_p, ab_parent, ab_child, ab_rls;
DROP DOMAIN ab_dom;
DROP TYPE ab_mood;
DROP FUNCTION ab(text, regtype[]), hv(text, regtype[]), seed();

-- ---------------------------------------------------------------------------
-- Upgrade: an installation at 0.2 updated to 0.3 has the same
-- analyze_query() as CREATE EXTENSION at the default version (which runs
-- 0.2's script and then the update, as contrib modules do), in a database of
-- its own (this one has the extension at the default version for the stream
-- tests).
\set regress_db :DBNAME
CREATE DATABASE regress_hd_upgrade;
\c regress_hd_upgrade
CREATE EXTENSION hyperdrive VERSION '0.2';
SELECT pg_get_function_result('hyperdrive.analyze_query(text, regtype[])'::regprocedure);
ALTER EXTENSION hyperdrive UPDATE TO '0.3';
CREATE TEMP TABLE updated AS
SELECT pg_get_function_result(p.oid) AS result, pg_get_function_arguments(p.oid) AS args,
       proargnames, proallargtypes::regtype[] AS types, proargmodes, provolatile, proisstrict,
       proparallel, prosecdef, prosrc, probin,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') AS member
FROM pg_proc p WHERE p.oid = 'hyperdrive.analyze_query(text, regtype[])'::regprocedure;
SELECT extversion FROM pg_extension WHERE extname = 'hyperdrive';
DROP EXTENSION hyperdrive;
CREATE EXTENSION hyperdrive;
SELECT extversion FROM pg_extension WHERE extname = 'hyperdrive';
CREATE TEMP TABLE fresh AS
SELECT pg_get_function_result(p.oid) AS result, pg_get_function_arguments(p.oid) AS args,
       proargnames, proallargtypes::regtype[] AS types, proargmodes, provolatile, proisstrict,
       proparallel, prosecdef, prosrc, probin,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') AS member
FROM pg_proc p WHERE p.oid = 'hyperdrive.analyze_query(text, regtype[])'::regprocedure;
SELECT result, proargnames, public_execute, member FROM fresh;
SELECT (SELECT count(*) FROM (SELECT * FROM updated EXCEPT SELECT * FROM fresh) x) AS updated_only,
       (SELECT count(*) FROM (SELECT * FROM fresh EXCEPT SELECT * FROM updated) x) AS fresh_only;
-- and it works after the update
SELECT cacheable, cardinality(bindings) FROM hyperdrive.analyze_query('SELECT 1');
\c :regress_db
DROP DATABASE regress_hd_upgrade;
