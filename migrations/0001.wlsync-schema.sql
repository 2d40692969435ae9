-- wlsync schema: the registry of tracked tables, the event queue, the wake-up flag.
-- Functions live in sql/functions/ and are (re)installed by post-apply.py.

CREATE SCHEMA wlsync;
COMMENT ON SCHEMA wlsync IS 'wlsync: change capture into a queue table, drained to WL by wlsync_driver.py';

-- One row per tracked table. table_id is what the queue stores (stable across
-- dump/restore, unlike an oid); relid is a regclass, so it follows renames and
-- dumps as a name.
CREATE TABLE wlsync.tracked_table (
    table_id    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relid       regclass NOT NULL UNIQUE,
    pk_columns  name[] NOT NULL CHECK (cardinality(pk_columns) > 0),
    tracked_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE wlsync.tracked_table IS 'Tables whose changes wlsync captures (wlsync.track / wlsync.untrack)';

-- The queue: one row per captured change, holding the key only; the claim reads
-- the current row. event_id comes from a CACHE 1 identity: for one key, writers
-- are serialized by the row lock, so the later writer draws the larger id.
-- No foreign key to tracked_table: it would add a lookup and a KEY SHARE lock
-- to every captured write.
CREATE TABLE wlsync.queue (
    event_id     bigint GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    table_id     integer NOT NULL,
    pk           jsonb NOT NULL,
    op           "char" NOT NULL CHECK (op IN ('I', 'U', 'D', 'T', 'B', 'R')),
    enqueued_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE wlsync.queue IS 'Pending changes: (table, primary key) pairs whose current row WL must pick up';
COMMENT ON COLUMN wlsync.queue.op IS 'I insert, U update, D delete, T truncate, B backfill, R re-enqueued by verify (informational: the claim reads the current row)';
COMMENT ON COLUMN wlsync.queue.enqueued_at IS 'start of the writing transaction (now()), for lag reporting';

-- Finds every pending event of one key: the claim's per-key exclusivity rule.
CREATE INDEX queue_table_id_pk_idx ON wlsync.queue (table_id, pk);

-- The queue is drained by DELETE: vacuum it by absolute dead-tuple count, not by
-- a fraction of a table whose size swings between empty and large, and do not
-- throttle that vacuum.
ALTER TABLE wlsync.queue SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);

-- Wake-up flag: a driver that found the queue empty arms it before it sleeps;
-- capture triggers NOTIFY only while it is armed, so busy periods cost no NOTIFY
-- (a notifying transaction takes a global lock at commit).
-- The arming expires: a driver killed while asleep stops the NOTIFYs by itself
-- (a sleeping driver re-arms at every sweep).
CREATE TABLE wlsync.wakeup (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    armed_until  timestamptz
);
INSERT INTO wlsync.wakeup (armed_until) VALUES (NULL);
COMMENT ON TABLE wlsync.wakeup IS 'Single row: capture triggers NOTIFY wlsync_v1 while now() < armed_until';

-- Nothing in wlsync is for PUBLIC: writers reach the queue only through the
-- SECURITY DEFINER capture triggers (EXECUTE on every wlsync function is
-- revoked from PUBLIC when the functions are installed).
REVOKE ALL ON SCHEMA wlsync FROM PUBLIC;
