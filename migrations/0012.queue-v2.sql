-- Queue v2: a ring of three unindexed queue tables that rotate and are
-- TRUNCATEd, capture functions that run as the writer with nothing but one
-- INSERT on their path, and fencing versions read off the claim's snapshot.
-- Why (the README's "Queue" section has the whole argument):
--   * the writer's cost: no identity, no index, no SECURITY DEFINER, no SET,
--     no table read per row (the current queue table and the wake-up state are
--     constants of the generated capture function, rewritten when they change);
--   * long transactions: a drained queue table is emptied by TRUNCATE, which
--     needs no vacuum and does not wait for old snapshots to end;
--   * the per-key rule no longer needs a per-key index: WL keeps of each key
--     the row read by the newest snapshot (the version is a clock of that
--     snapshot), whatever order the batches commit in.
-- Pending events of the previous queue are carried over into queue_0.
-- Upgrading while writers are busy: the old queue is locked first; a writer
-- whose INSERT into it waits behind that lock gets an error once it is
-- dropped (its transaction rolls back: nothing is lost or invented). Stop
-- the old drivers first: the claim's result columns change.
-- depends: 0011.key-types-and-version-floor

-- First: no writer (or old driver) may touch the old queue until it is gone,
-- or an event committed between the copy below and the DROP would be lost.
LOCK TABLE wlsync.queue IN ACCESS EXCLUSIVE MODE;

CREATE TABLE wlsync.queue_0 (
    table_id     integer NOT NULL,
    pk           jsonb NOT NULL,
    enqueued_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE wlsync.queue_1 (LIKE wlsync.queue_0 INCLUDING DEFAULTS);
CREATE TABLE wlsync.queue_2 (LIKE wlsync.queue_0 INCLUDING DEFAULTS);
COMMENT ON TABLE wlsync.queue_0 IS 'Queue ring slot 0: (table, primary key) pairs whose current row WL must pick up (see wlsync.queue_slot)';
COMMENT ON TABLE wlsync.queue_1 IS 'Queue ring slot 1: (table, primary key) pairs whose current row WL must pick up (see wlsync.queue_slot)';
COMMENT ON TABLE wlsync.queue_2 IS 'Queue ring slot 2: (table, primary key) pairs whose current row WL must pick up (see wlsync.queue_slot)';
-- TRUNCATE (wlsync.maintain_queue) replaces vacuum on these tables; a vacuum
-- would only hold up the TRUNCATE's lock.
ALTER TABLE wlsync.queue_0 SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE wlsync.queue_1 SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE wlsync.queue_2 SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);

-- Capture functions run as the writer (no SECURITY DEFINER on the hot path),
-- so writers may INSERT queue rows and nothing else: they cannot read, delete
-- or claim them. An injected row only makes a driver re-read a key's current
-- row (README, "Least privilege").
GRANT USAGE ON SCHEMA wlsync TO PUBLIC;
-- Only the key columns: enqueued_at is the server's own now().
GRANT INSERT (table_id, pk) ON wlsync.queue_0, wlsync.queue_1, wlsync.queue_2 TO PUBLIC;

-- The ring: exactly one slot is current (writers insert there); a full current
-- slot is retired, sealed once no transaction can still insert into it,
-- drained, TRUNCATEd and free again (wlsync.maintain_queue).
CREATE TABLE wlsync.queue_slot (
    slot         smallint PRIMARY KEY CHECK (slot BETWEEN 0 AND 2),
    state        text NOT NULL CHECK (state IN ('current', 'retired', 'sealed', 'free')),
    changed_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    retired_by   xid8,
    writers      text[],
    sealed_blocks bigint,
    rescanned_at timestamptz
);
COMMENT ON TABLE wlsync.queue_slot IS 'The queue ring (wlsync.queue_0..2): which slot writers insert into and where each stands';
COMMENT ON COLUMN wlsync.queue_slot.retired_by IS 'the rotation''s transaction: writers are recorded by a later one';
COMMENT ON COLUMN wlsync.queue_slot.writers IS 'virtual transaction ids open after the rotation committed: only they may still insert here';
COMMENT ON COLUMN wlsync.queue_slot.sealed_blocks IS 'size in blocks when sealed: no row is added after that';
COMMENT ON COLUMN wlsync.queue_slot.rescanned_at IS 'last time claims were sent back to the start of this sealed slot';
INSERT INTO wlsync.queue_slot (slot, state) VALUES (0, 'current'), (1, 'free'), (2, 'free');

-- Where claims of a sealed slot resume: a block number (sequences are not
-- transactional, so concurrent claims share it without waiting on each other).
CREATE SEQUENCE wlsync.queue_0_resume AS bigint MINVALUE 0 START 0;
CREATE SEQUENCE wlsync.queue_1_resume AS bigint MINVALUE 0 START 0;
CREATE SEQUENCE wlsync.queue_2_resume AS bigint MINVALUE 0 START 0;

-- What the generated capture functions are built from, and the fencing floor.
CREATE TABLE wlsync.capture_state (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    notify_until    timestamptz,
    version_offset  bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE wlsync.capture_state IS
    'Single row: capture functions NOTIFY wlsync_v1 until notify_until (a constant of their generated body); fencing versions are snapshot clock + version_offset';
-- Versions handed out by the previous release came from claim_version_seq:
-- start the snapshot clock above them, so WL keeps accepting writes.
INSERT INTO wlsync.capture_state (version_offset)
SELECT greatest(0, s.last_value + 1
                   - (pg_snapshot_xmax(pg_current_snapshot())::text::bigint
                      - (SELECT count(*) FROM pg_snapshot_xip(pg_current_snapshot()))))
FROM wlsync.claim_version_seq AS s;

-- Carry pending events over; then point every capture function at queue_0 in
-- this same transaction (a frozen, minimal form of what wlsync.track
-- generates; the post-apply step regenerates them in full right after).
INSERT INTO wlsync.queue_0 (table_id, pk, enqueued_at)
SELECT q.table_id, q.pk, q.enqueued_at FROM wlsync.queue AS q;

DO $upgrade$
DECLARE
    v_table record;
BEGIN
    FOR v_table IN
        SELECT t.table_id, t.relid, t.pk_columns FROM wlsync.tracked_table AS t
        WHERE EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.relid)
    LOOP
        EXECUTE format($sql$
CREATE OR REPLACE FUNCTION wlsync.%I() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L$sql$,
            '_capture_row_' || v_table.table_id, format($body$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO wlsync.queue_0 (table_id, pk) VALUES (%1$s, %2$s);
    ELSE
        INSERT INTO wlsync.queue_0 (table_id, pk) VALUES (%1$s, %3$s);
        IF TG_OP = 'UPDATE' AND (%2$s) <> (%3$s) THEN
            INSERT INTO wlsync.queue_0 (table_id, pk) VALUES (%1$s, %2$s);
        END IF;
    END IF;
    RETURN NULL;
END
$body$, v_table.table_id,
            wlsync._key_json_sql(v_table.relid, v_table.pk_columns, 'OLD'),
            wlsync._key_json_sql(v_table.relid, v_table.pk_columns, 'NEW')));
    END LOOP;
END
$upgrade$;

CREATE OR REPLACE FUNCTION wlsync._capture_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    EXECUTE format('INSERT INTO wlsync.queue_0 (table_id, pk) SELECT %s, %s FROM %s AS t', TG_ARGV[0],
                   (SELECT wlsync._key_json_sql(TG_RELID::regclass, t.pk_columns, 't')
                    FROM wlsync.tracked_table AS t WHERE t.table_id = TG_ARGV[0]::integer),
                   TG_RELID::regclass);
    RETURN NULL;
END
$body$;

-- Signature changes (the post-apply step installs the new ones).
DROP FUNCTION IF EXISTS wlsync.claim_sync_events(integer);
DROP FUNCTION IF EXISTS wlsync.arm_wakeup(interval);
-- An empty claim now means that nothing is left to take.
DROP FUNCTION IF EXISTS wlsync.has_claimable_events();
DROP TABLE wlsync.queue;
DROP TABLE wlsync.wakeup;
DROP SEQUENCE wlsync.claim_version_seq;

-- The columns each table's generated reader (wlsync._install_reader) was
-- built for; NULL until wlsync.track generates it.
ALTER TABLE wlsync.tracked_table ADD COLUMN reader_columns text;

-- For DBAs and tests: every pending event, whichever slot holds it.
CREATE VIEW wlsync.queue AS
SELECT 0::smallint AS slot, q.table_id, q.pk, q.enqueued_at FROM wlsync.queue_0 AS q
UNION ALL
SELECT 1::smallint, q.table_id, q.pk, q.enqueued_at FROM wlsync.queue_1 AS q
UNION ALL
SELECT 2::smallint, q.table_id, q.pk, q.enqueued_at FROM wlsync.queue_2 AS q;
COMMENT ON VIEW wlsync.queue IS 'Every pending event (table, key, when), whichever ring slot holds it';
