-- Shared set-up for the stream_* tests, which run in this order in one database.
CREATE EXTENSION hyperdrive;

-- The event triggers and the plugin are installed by the extension.
SELECT evtname, evtevent, evtenabled FROM pg_event_trigger ORDER BY evtname;

-- hd_changes(slot, options...): consume a slot's records in the text format,
-- one output row per line, without the fields that vary between runs (xids,
-- LSNs, timestamps, OIDs). A record starts with its "hyperdrive 2" line.
CREATE FUNCTION hd_changes(slot name, VARIADIC options text[] DEFAULT '{}')
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT l.line
    FROM pg_logical_slot_get_changes(slot, NULL, NULL,
            VARIADIC array['include-xids', '0', 'include-lsn', '0',
                           'include-timestamp', '0', 'include-oids', '0'] || options)
            WITH ORDINALITY AS c(lsn, xid, data, n),
         regexp_split_to_table(c.data, E'\n') WITH ORDINALITY AS l(line, m)
    ORDER BY c.n, l.m
$$;
