-- Watched columns under a nondeterministic ICU collation: equal strings
-- ('ABC' and 'abc' when case is ignored) hash equally, in the stream and in
-- hyperdrive.hash_value(). Skipped without ICU (expected/stream_values_icu_1.out).
SELECT EXISTS (SELECT FROM pg_collation WHERE collprovider = 'i') AS have_icu \gset
\if :have_icu
CREATE COLLATION val_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TABLE val_ci_t (id int PRIMARY KEY, s text COLLATE val_ci);
SELECT hyperdrive.hash_value('ABC'::text COLLATE val_ci) = hyperdrive.hash_value('abc'::text COLLATE val_ci) AS ci_equal,
       hyperdrive.hash_value('ABC'::text COLLATE val_ci) <> hyperdrive.hash_value('abd'::text COLLATE val_ci) AS ci_differ,
       hyperdrive.hash_value('ABC'::text COLLATE "C") <> hyperdrive.hash_value('abc'::text COLLATE "C") AS c_differ;
-- the same hash as analyze_query()'s constant for the column
SELECT split_part(bindings[1], ':', 3) = hyperdrive.hash_value('aBc'::text COLLATE val_ci)::text AS binding_equal
FROM hyperdrive.analyze_query('SELECT * FROM val_ci_t WHERE s = ''ABC''');
SELECT 'init' FROM pg_create_logical_replication_slot('val_ci_slot', 'hyperdrive');
SELECT hyperdrive.watch_column('val_ci_slot', 'val_ci_t', 2::int2);
INSERT INTO val_ci_t VALUES (1, 'ABC'), (2, 'abc');
-- one distinct value, hashed with the column's collation
SELECT regexp_replace(line, ' values \d+\.2 \((-?\d+)\)',
           CASE WHEN substring(line FROM ' values \d+\.2 \((-?\d+)\)')::int8
                     = hyperdrive.hash_value('abc'::text COLLATE val_ci)
                THEN ' values val_ci_t.s (abc)' ELSE ' values MISMATCH' END) AS line
FROM hd_changes('val_ci_slot') AS line
WHERE line NOT LIKE 'relation hyperdrive.watched_column %';
SELECT pg_drop_replication_slot('val_ci_slot');
DROP TABLE val_ci_t;
DROP COLLATION val_ci;
\else
-- (expected/stream_values_icu_1.out)
SELECT 'skipped: no ICU' AS icu;
\endif
