-- Stream version 2: the hashes of watched columns' values (docs/stream.md,
-- "Watched columns"), hyperdrive.watch_column() and the hash functions.

-- Hashes are shown by label: hv holds the hash of each value the tests use,
-- computed with hyperdrive.hash_value() (so the stream's hashes are checked
-- to be exactly the SQL function's; the numbers themselves differ between
-- little- and big-endian machines). A hash without a label is shown as is.
CREATE TABLE hv (label text, h int8);
INSERT INTO hv SELECT g::text, hyperdrive.hash_value(g) FROM generate_series(0, 20) g;
INSERT INTO hv SELECT quote_literal(t), hyperdrive.hash_value(t)
FROM unnest(ARRAY['a', 'b', 'c', 'd', 'x1', 'x2', 'eu']) t;
INSERT INTO hv VALUES ('big', hyperdrive.hash_value(repeat('x', 5000)));
INSERT INTO hv VALUES ('1.0', hyperdrive.hash_value(1.0));

CREATE FUNCTION hv_label(h text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce((SELECT string_agg(label, '|' ORDER BY label) FROM hv WHERE hv.h = $1::int8), $1)
$$;

-- hd_values(slot, options...): hd_changes() with each " values OID.ATTNUM ..."
-- shown as " values RELATION.COLUMN ..." and its hashes by label; the keys
-- of watched_column's own rows hold OIDs, shown as OID.
CREATE FUNCTION hd_values(slot name, VARIADIC options text[] DEFAULT '{}')
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
    part text;
    m text[];
    result text;
BEGIN
    FOR line IN SELECT * FROM hd_changes(slot, VARIADIC options) LOOP
        IF line LIKE 'relation hyperdrive.watched_column %' THEN
            line := regexp_replace(line, $r$'\d{5,}'$r$, $r$'OID'$r$, 'g');
        END IF;
        result := split_part(line, ' values ', 1);
        FOR part IN SELECT p FROM unnest(string_to_array(line, ' values ')) WITH ORDINALITY AS u(p, i)
                    WHERE i > 1 ORDER BY i LOOP
            m := regexp_match(part, '^(\d+)\.(\d+) (.*)$');
            result := result || ' values ' || m[1]::oid::regclass::text || '.' ||
                coalesce((SELECT attname FROM pg_attribute
                          WHERE attrelid = m[1]::oid AND attnum = m[2]::int2), m[2]) || ' ';
            IF m[3] LIKE '(%' THEN
                result := result || '(' || coalesce((SELECT string_agg(hv_label(x), ',' ORDER BY i)
                    FROM unnest(string_to_array(trim(both '()' FROM m[3]), ',')) WITH ORDINALITY AS v(x, i)), '') || ')';
            ELSE
                result := result || m[3];
            END IF;
        END LOOP;
        RETURN NEXT result;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- The hash functions

-- equal values hash equally, across the types of one hash family
SELECT hyperdrive.hash_value(1.0::numeric) = hyperdrive.hash_value(1.00::numeric) AS numeric_scale,
       hyperdrive.hash_value(2::int4) = hyperdrive.hash_value(2::int8) AS int4_int8,
       hyperdrive.hash_value(2::int2) = hyperdrive.hash_value(2::int8) AS int2_int8,
       hyperdrive.hash_value('x'::varchar) = hyperdrive.hash_value('x'::text) AS varchar_text,
       hyperdrive.hash_value(1) <> hyperdrive.hash_value(2) AS differ;
-- the seed is HD_BINDING_SEED ("hdbind01")
SELECT hyperdrive.hash_value(7) = hashint4extended(7, x'686462696e643031'::bigint) AS seeded;
-- hash_values: each element, NULLs left out
SELECT hyperdrive.hash_values(ARRAY[1, NULL, 2]) = ARRAY[hyperdrive.hash_value(1), hyperdrive.hash_value(2)] AS elements,
       hyperdrive.hash_values('{}'::int[]) AS empty, hyperdrive.hash_values(ARRAY[NULL::int]) AS only_null,
       hyperdrive.hash_value(NULL::int) IS NULL AS strict;
-- arrays, enums, domains: their default hash class
CREATE TYPE val_mood AS ENUM ('sad', 'happy');
CREATE DOMAIN val_dom AS int;
SELECT hyperdrive.hash_value(ARRAY[1, 2]) IS NOT NULL AS array_hash,
       hyperdrive.hash_value('happy'::val_mood) IS NOT NULL AS enum_hash,
       hyperdrive.hash_value(3::val_dom) = hyperdrive.hash_value(3) AS domain_is_base;
-- a type without a default hash class is an error
SELECT hyperdrive.hash_value(point '(1,2)');
SELECT hyperdrive.hash_values(ARRAY[point '(1,2)']);
-- the same hashes as analyze_query()'s constants
CREATE TABLE val_def (id int PRIMARY KEY, v text, n int);
SELECT split_part(b[1], ':', 3) = hyperdrive.hash_value(5)::text AS int_binding,
       split_part(b[2], ':', 3) = hyperdrive.hash_value('a'::text)::text AS text_binding
FROM (SELECT bindings FROM hyperdrive.analyze_query('SELECT * FROM val_def WHERE id = 5 AND v = ''a''')) a(b);
SELECT split_part(bindings[1], ':', 3) = hyperdrive.hash_value(5::int8)::text AS int8_constant
FROM hyperdrive.analyze_query('SELECT * FROM val_def WHERE id = 5::int8');

-- ---------------------------------------------------------------------------
-- The tables
CREATE TABLE val_full (id int PRIMARY KEY, v text, n int);
ALTER TABLE val_full REPLICA IDENTITY FULL;
CREATE TABLE val_idx (id int PRIMARY KEY, code text NOT NULL, v text);
CREATE UNIQUE INDEX val_idx_code ON val_idx (code);
ALTER TABLE val_idx REPLICA IDENTITY USING INDEX val_idx_code;
CREATE TABLE val_toast (id int PRIMARY KEY, big text, n int);
ALTER TABLE val_toast ALTER COLUMN big SET STORAGE EXTERNAL;
CREATE TABLE val_toast_full (id int PRIMARY KEY, big text, n int);
ALTER TABLE val_toast_full ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE val_toast_full REPLICA IDENTITY FULL;
CREATE TABLE val_num (id int PRIMARY KEY, x numeric, k int8);
-- a partition created on its own, its columns in another order, then attached
CREATE TABLE val_part (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE val_part_eu (v int, dropme int, region text NOT NULL, id int NOT NULL, PRIMARY KEY (id, region));
ALTER TABLE val_part_eu DROP COLUMN dropme;
ALTER TABLE val_part ATTACH PARTITION val_part_eu FOR VALUES IN ('eu');
-- an inheritance child with its own column first
CREATE TABLE val_parent (id int PRIMARY KEY, v int);
CREATE TABLE val_child (extra text, id int PRIMARY KEY, v int);
ALTER TABLE val_child INHERIT val_parent;
CREATE TABLE val_mid (id int PRIMARY KEY, v int);
CREATE VIEW val_view AS SELECT id FROM val_def;
CREATE ROLE regress_val_reader;

SELECT 'init' FROM pg_create_logical_replication_slot('val_slot', 'hyperdrive');

-- nothing watched: no values
INSERT INTO val_def VALUES (1, 'a', 1);
SELECT * FROM hd_values('val_slot');

-- ---------------------------------------------------------------------------
-- watch_column(): idempotent; the table is a user catalog table
SELECT hyperdrive.watch_column('val_slot', 'val_def', 2::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_def', 2::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_def', 1::int2);
SELECT slot, relid::regclass, attnum FROM hyperdrive.watched_column ORDER BY 1, 2, 3;
SELECT reloptions FROM pg_class WHERE oid = 'hyperdrive.watched_column'::regclass;
-- the watches are changes of the table in the stream, like any other
SELECT * FROM hd_values('val_slot');

-- DEFAULT identity: a non-key column's old value is not in the WAL
INSERT INTO val_def VALUES (2, 'b', 2), (3, NULL, 3);
UPDATE val_def SET v = 'c' WHERE id = 2;
-- the key changed: the old key is logged (the other columns are not)
UPDATE val_def SET id = 4 WHERE id = 3;
DELETE FROM val_def WHERE id = 4;
SELECT * FROM hd_values('val_slot');
-- in one transaction: an incomplete column stays incomplete
BEGIN;
INSERT INTO val_def VALUES (5, 'd', 5);
UPDATE val_def SET n = 6 WHERE id = 5;
INSERT INTO val_def VALUES (6, 'a', 6);
COMMIT;
SELECT * FROM hd_values('val_slot');

-- FULL: every old value is logged
SELECT hyperdrive.watch_column('val_slot', 'val_full', 2::int2);
INSERT INTO val_full VALUES (1, 'a', 1);
UPDATE val_full SET v = 'b' WHERE id = 1;
UPDATE val_full SET v = NULL WHERE id = 1;
DELETE FROM val_full;
SELECT * FROM hd_values('val_slot');

-- values-test-drop-old (tests of consumers only): old values left out, yet
-- "complete", with a warning
INSERT INTO val_full VALUES (1, 'a', 1);
UPDATE val_full SET v = 'b' WHERE id = 1;
DELETE FROM val_full;
SELECT * FROM hd_values('val_slot', 'values-test-drop-old', 'on');

-- USING INDEX: the index's column is known old and new, another is not
SELECT hyperdrive.watch_column('val_slot', 'val_idx', 2::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_idx', 3::int2);
INSERT INTO val_idx VALUES (1, 'x1', 'a');
UPDATE val_idx SET v = 'b' WHERE id = 1;
UPDATE val_idx SET code = 'x2' WHERE id = 1;
DELETE FROM val_idx;
SELECT * FROM hd_values('val_slot');

-- value-cap: distinct values count, repeats do not; 0 lists none
INSERT INTO val_full VALUES (1, 'a', 1), (2, 'a', 2), (3, 'b', 3);
INSERT INTO val_full VALUES (4, 'a', 4), (5, 'b', 5), (6, 'c', 6);
INSERT INTO val_full VALUES (7, NULL, 7);
SELECT * FROM hd_values('val_slot', 'value-cap', '2');
DELETE FROM val_full;
SELECT * FROM hd_values('val_slot', 'value-cap', '0');
SELECT * FROM hd_changes('val_slot', 'value-cap', '-1');
SELECT * FROM hd_changes('val_slot', 'value-cap', '1000001');

-- TOAST: an unchanged out-of-line value is never fetched (DEFAULT); under
-- FULL the old row carries it
SELECT hyperdrive.watch_column('val_slot', 'val_toast', 2::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_toast_full', 2::int2);
INSERT INTO val_toast VALUES (1, repeat('x', 5000), 1);
INSERT INTO val_toast_full VALUES (1, repeat('x', 5000), 1);
SELECT * FROM hd_values('val_slot');
UPDATE val_toast SET n = 2;
UPDATE val_toast_full SET n = 2;
SELECT * FROM hd_values('val_slot');

-- numeric 1.0 and 1.00 are one value; an int8 column hashes as int4 constants do
SELECT hyperdrive.watch_column('val_slot', 'val_num', 2::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_num', 3::int2);
INSERT INTO val_num VALUES (1, 1.0, 7), (2, 1.00, 8);
SELECT * FROM hd_values('val_slot');

-- a partition: the parent's column, found in the leaf by name
SELECT attname, attnum FROM pg_attribute WHERE attrelid IN ('val_part'::regclass, 'val_part_eu'::regclass)
  AND attname = 'v';
SELECT hyperdrive.watch_column('val_slot', 'val_part', 3::int2);
INSERT INTO val_part VALUES (1, 'eu', 7);
UPDATE val_part SET v = 8;
SELECT * FROM hd_values('val_slot');
-- and the leaf's own column too, by its own number
SELECT hyperdrive.watch_column('val_slot', 'val_part_eu', 3::int2);
INSERT INTO val_part VALUES (2, 'eu', 9);
SELECT * FROM hd_values('val_slot');

-- an inheritance child
SELECT hyperdrive.watch_column('val_slot', 'val_parent', 2::int2);
INSERT INTO val_child VALUES ('e', 1, 5);
INSERT INTO val_parent VALUES (2, 6);
SELECT * FROM hd_values('val_slot');

-- a watch takes effect at its commit, in the stream's order: before it no
-- values, after it values, within one read of the slot
INSERT INTO val_mid VALUES (1, 1);
SELECT hyperdrive.watch_column('val_slot', 'val_mid', 2::int2);
INSERT INTO val_mid VALUES (2, 2);
BEGIN;
SELECT hyperdrive.watch_column('val_slot', 'val_mid', 1::int2);
ROLLBACK;
INSERT INTO val_mid VALUES (3, 3);
SELECT * FROM hd_values('val_slot');

-- TRUNCATE and DDL entries carry no values; a dropped watched column has none
TRUNCATE val_mid;
ALTER TABLE val_def DROP COLUMN v;
INSERT INTO val_def VALUES (7, 7);
SELECT * FROM hd_values('val_slot');
-- also when the row changes share the transaction
BEGIN;
INSERT INTO val_mid VALUES (4, 4);
TRUNCATE val_mid;
INSERT INTO val_mid VALUES (5, 5);
COMMIT;
BEGIN;
INSERT INTO val_def VALUES (8, 8);
ALTER TABLE val_def ADD COLUMN w int;
INSERT INTO val_def VALUES (9, 9, 9);
COMMIT;
SELECT * FROM hd_values('val_slot');

-- ---------------------------------------------------------------------------
-- Refusals
\set VERBOSITY default
SELECT hyperdrive.watch_column('no_such_slot', 'val_def', 1::int2);
SELECT 'init' FROM pg_create_logical_replication_slot('val_pgoutput', 'pgoutput');
SELECT hyperdrive.watch_column('val_pgoutput', 'val_def', 1::int2);
SELECT pg_drop_replication_slot('val_pgoutput');
SELECT hyperdrive.watch_column('val_slot', 'val_def', 2::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_def', 9::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_def', 0::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_view', 1::int2);
ALTER TABLE val_num ADD COLUMN p point;
SELECT hyperdrive.watch_column('val_slot', 'val_num', 4::int2);
-- the caller's privilege counts, not the function owner's
SET ROLE regress_val_reader;
SELECT hyperdrive.watch_column('val_slot', 'val_num', 2::int2);
RESET ROLE;
GRANT SELECT (k) ON val_num TO regress_val_reader;
SET ROLE regress_val_reader;
SELECT hyperdrive.watch_column('val_slot', 'val_num', 2::int2);
SELECT hyperdrive.watch_column('val_slot', 'val_num', 3::int2);
SELECT hyperdrive.unwatch_slot('val_slot');
-- the table itself is not writable
INSERT INTO hyperdrive.watched_column VALUES ('val_slot', 'val_num'::regclass, 2);
RESET ROLE;
\set VERBOSITY terse

-- unwatch_slot(): the slot's records carry no values from its commit on
SELECT hyperdrive.unwatch_slot('val_slot');
SELECT count(*) FROM hyperdrive.watched_column;
INSERT INTO val_num VALUES (3, 3, 3);
SELECT * FROM hd_values('val_slot');

SELECT pg_drop_replication_slot('val_slot');
DROP VIEW val_view;
DROP TABLE val_def, val_full, val_idx, val_toast, val_toast_full, val_num, val_part,
    val_parent, val_child, val_mid, hv;
DROP TYPE val_mood;
DROP DOMAIN val_dom;
DROP FUNCTION hd_values(name, text[]), hv_label(text);
DROP ROLE regress_val_reader;
