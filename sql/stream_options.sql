-- Plugin options: formats, switches, and clear errors for bad values.
CREATE TABLE opt_t (id int PRIMARY KEY, v text);

SELECT 'init' FROM pg_create_logical_replication_slot('opt_slot', 'hyperdrive');

INSERT INTO opt_t VALUES (1, 'a');

-- with every field shown (masked here, as they vary between runs)
SELECT regexp_replace(regexp_replace(regexp_replace(regexp_replace(data,
           ' xid \d+', ' xid XID'),
           '[0-9A-F]+/[0-9A-F]+', 'LSN', 'g'),
           'commit_time [^\n]+', 'commit_time TIME'),
           ' oid \d+', ' oid OID', 'g') AS record
FROM pg_logical_slot_peek_changes('opt_slot', NULL, NULL);

-- the compact format is binary: 'H', version 2, flags, ...
SELECT get_byte(data, 0) = ascii('H') AS magic, get_byte(data, 1) AS version,
       get_byte(data, 2) * 256 + get_byte(data, 3) AS flags, length(data) > 40 AS has_body
FROM pg_logical_slot_peek_binary_changes('opt_slot', NULL, NULL, 'format', 'compact');
-- and cannot be read as text
SELECT * FROM pg_logical_slot_peek_changes('opt_slot', NULL, NULL, 'format', 'compact');
-- the text format can be read as bytes too
SELECT convert_from(data, 'UTF8') LIKE 'hyperdrive 2%' AS text_as_bytes
FROM pg_logical_slot_peek_binary_changes('opt_slot', NULL, NULL, 'format', 'text');

-- bad options are errors that name the option
SELECT * FROM hd_changes('opt_slot', 'format', 'json');
SELECT * FROM hd_changes('opt_slot', 'key-cap', '-1');
SELECT * FROM hd_changes('opt_slot', 'key-cap', 'lots');
SELECT * FROM hd_changes('opt_slot', 'value-cap', '1000001');
SELECT * FROM hd_changes('opt_slot', 'heartbeat', 'sometimes');
SELECT * FROM hd_changes('opt_slot', 'no-such-option', '1');
-- nothing was consumed by the failed calls
SELECT * FROM hd_changes('opt_slot', 'format', 'text');

-- logical messages: other prefixes and non-transactional ones are ignored; a
-- malformed message with our prefix (anyone may write one) cannot wedge the
-- slot: it warns and makes the record say "invalidate all"
SELECT 'msg' FROM pg_logical_emit_message(true, 'someone-else', 'hello');
SELECT 'msg' FROM pg_logical_emit_message(false, 'hyperdrive', 'not ours');
SELECT * FROM hd_changes('opt_slot');
\set VERBOSITY terse
BEGIN;
INSERT INTO opt_t VALUES (2, 'b');
SELECT 'msg' FROM pg_logical_emit_message(true, 'hyperdrive', 'garbage');
COMMIT;
SELECT * FROM hd_changes('opt_slot');
-- truncated inside an entry
SELECT 'msg' FROM pg_logical_emit_message(true, 'hyperdrive', '\x4801450000ff'::bytea);
SELECT * FROM hd_changes('opt_slot');
\set VERBOSITY default

SELECT pg_drop_replication_slot('opt_slot');

-- the extension can be dropped and created again; its event triggers go with it
DROP EXTENSION hyperdrive;
SELECT count(*) AS hyperdrive_event_triggers FROM pg_event_trigger WHERE evtname LIKE 'hyperdrive%';
CREATE EXTENSION hyperdrive;
SELECT count(*) AS hyperdrive_event_triggers FROM pg_event_trigger WHERE evtname LIKE 'hyperdrive%';
