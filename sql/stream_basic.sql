-- Row changes: one record per committed transaction, in commit order.
CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
CREATE TABLE orders (order_id int, line int, item_id int, PRIMARY KEY (order_id, line));

SELECT 'init' FROM pg_create_logical_replication_slot('basic_slot', 'hyperdrive');

-- each change kind, one transaction each
INSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear', 2.00);
UPDATE items SET price = 1.75 WHERE id = 1;
DELETE FROM items WHERE id = 2;
SELECT * FROM hd_changes('basic_slot');

-- an UPDATE that changes the key reports the old and the new key
UPDATE items SET id = 10 WHERE id = 1;
-- an UPDATE touching no row is no change at all
UPDATE items SET price = 0 WHERE id = 999;
SELECT * FROM hd_changes('basic_slot');

-- a multi-table transaction is one record; relations in first-touched order;
-- each key is listed once however often the row changed
BEGIN;
INSERT INTO orders VALUES (100, 1, 10), (100, 2, 10);
INSERT INTO items VALUES (3, 'plum', 0.5);
UPDATE items SET price = price + 1 WHERE id = 3;
UPDATE items SET price = price + 1 WHERE id = 3;
DELETE FROM orders WHERE order_id = 100 AND line = 2;
COMMIT;
SELECT * FROM hd_changes('basic_slot');

-- composite keys and values that need quoting
INSERT INTO items VALUES (4, 'it''s', 1);
INSERT INTO orders VALUES (-1, 0, NULL);
SELECT * FROM hd_changes('basic_slot');

-- a transaction that changes nothing the stream reports produces no record,
-- unless heartbeats are asked for
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL AS has_xid;
CREATE TEMP TABLE scratch (a int);
INSERT INTO scratch VALUES (1);
COMMIT;
SELECT * FROM hd_changes('basic_slot');
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL AS has_xid;
CREATE TEMP TABLE scratch2 (a int);
COMMIT;
SELECT * FROM hd_changes('basic_slot', 'heartbeat', 'on');

-- unlogged tables never reach the WAL stream
CREATE UNLOGGED TABLE unlogged_t (id int PRIMARY KEY);
SELECT * FROM hd_changes('basic_slot');
INSERT INTO unlogged_t VALUES (1);
SELECT * FROM hd_changes('basic_slot');

-- writes made by triggers and functions are reported like any other
CREATE TABLE audit (id serial PRIMARY KEY, item_id int);
CREATE FUNCTION audit_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit (item_id) VALUES (NEW.id);
    RETURN NEW;
END $$;
CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION audit_item();
SELECT * FROM hd_changes('basic_slot');
INSERT INTO items VALUES (5, 'fig', 3);
SELECT * FROM hd_changes('basic_slot');

SELECT pg_drop_replication_slot('basic_slot');
