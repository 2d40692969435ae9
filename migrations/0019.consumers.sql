-- Named consumers (README, "Consumers"): several WLs, each with its own
-- pending events, backfill passes, dead letters and fencing, fed from one
-- capture path whose cost does not grow with them.
--   * Writers keep inserting one row per change into the ring wlsync.queue_0..2
--     (ring 0), unchanged. With one consumer, its claims take ring 0's events
--     directly, as before. With several, wlsync.fan_out (drivers call it before
--     claiming) moves ring 0's events in bulk into each interested consumer's
--     own ring, wlsync.pending_<id>_0..2, off the writers' path.
--   * A consumer's ring rotates and is TRUNCATEd like ring 0 (no vacuum); only
--     wlsync's functions insert into it.
--   * What is tracked today belongs to the consumer 'default' (id 1); pending
--     events stay where they are (ring 0), dead letters and backfill passes
--     become the default consumer's.
-- depends: 0018.consistent-mode
-- squawk (make lint): every table changed here is wlsync's own and small
-- (queue_slot: 3 rows; dead_letter, backfill_state: a row per rejected key or
-- table), so rewriting their keys and checking their foreign keys under an
-- exclusive lock takes milliseconds and blocks no writer of a tracked table;
-- the dropped constraints and defaults are replaced in the same transaction;
-- integer ids follow table_id's.
-- squawk-ignore-file adding-serial-primary-key-field, adding-foreign-key-constraint, constraint-missing-not-valid, ban-drop-constraint, ban-drop-default, prefer-bigint-over-int

-- Waits for a maintenance in flight, no longer than this (then re-run it).
SET LOCAL lock_timeout = '10s';
-- No maintenance (or rotation) may run while the ring table changes shape.
LOCK TABLE wlsync.queue_slot IN EXCLUSIVE MODE;

CREATE TABLE wlsync.consumer (
    consumer_id          integer PRIMARY KEY CHECK (consumer_id > 0),
    name                 text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    max_pending          bigint NOT NULL DEFAULT 10000000 CHECK (max_pending > 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    resync_requested_at  timestamptz,
    dropped_events       bigint NOT NULL DEFAULT 0,
    overflows            integer NOT NULL DEFAULT 0,
    pending_checked_at   timestamptz
);
COMMENT ON TABLE wlsync.consumer IS
    'Named consumers (one WL each); consumer_id is also the number of its ring in wlsync.queue_slot';
COMMENT ON COLUMN wlsync.consumer.max_pending IS
    'events its ring may hold; past it they are dropped and the consumer is marked for resync (wlsync.maintain_queue)';
COMMENT ON COLUMN wlsync.consumer.resync_requested_at IS
    'when its pending events were last dropped; its driver rebuilds WL (verify --repair) and clears it';
CREATE SEQUENCE wlsync.consumer_id_seq AS integer START 2 OWNED BY wlsync.consumer.consumer_id;

CREATE TABLE wlsync.consumer_table (
    consumer_id  integer NOT NULL REFERENCES wlsync.consumer ON DELETE CASCADE,
    table_id     integer NOT NULL REFERENCES wlsync.tracked_table ON DELETE CASCADE,
    PRIMARY KEY (consumer_id, table_id)
);
COMMENT ON TABLE wlsync.consumer_table IS 'Which tracked tables each consumer receives';

INSERT INTO wlsync.consumer (consumer_id, name) VALUES (1, 'default');
INSERT INTO wlsync.consumer_table (consumer_id, table_id) SELECT 1, t.table_id FROM wlsync.tracked_table AS t;

-- Rings: 0 is the writers' ring (wlsync.queue_0..2), n > 0 consumer n's.
ALTER TABLE wlsync.queue_slot ADD COLUMN ring integer NOT NULL DEFAULT 0;
ALTER TABLE wlsync.queue_slot DROP CONSTRAINT queue_slot_pkey;
ALTER TABLE wlsync.queue_slot ADD CONSTRAINT queue_slot_pkey PRIMARY KEY (ring, slot);
ALTER TABLE wlsync.queue_slot ALTER COLUMN ring DROP DEFAULT;
COMMENT ON COLUMN wlsync.queue_slot.ring IS '0: the writers'' ring (wlsync.queue_0..2); n: consumer n''s (wlsync.pending_n_0..2)';

-- The default consumer's ring (wlsync.add_consumer makes the others').
CREATE TABLE wlsync.pending_1_0 (LIKE wlsync.queue_0 INCLUDING DEFAULTS);
CREATE TABLE wlsync.pending_1_1 (LIKE wlsync.queue_0 INCLUDING DEFAULTS);
CREATE TABLE wlsync.pending_1_2 (LIKE wlsync.queue_0 INCLUDING DEFAULTS);
ALTER TABLE wlsync.pending_1_0 SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE wlsync.pending_1_1 SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE wlsync.pending_1_2 SET (autovacuum_enabled = false, toast.autovacuum_enabled = false);
CREATE SEQUENCE wlsync.pending_1_0_resume AS bigint MINVALUE 0 START 0;
CREATE SEQUENCE wlsync.pending_1_1_resume AS bigint MINVALUE 0 START 0;
CREATE SEQUENCE wlsync.pending_1_2_resume AS bigint MINVALUE 0 START 0;
INSERT INTO wlsync.queue_slot (ring, slot, state) VALUES (1, 0, 'current'), (1, 1, 'free'), (1, 2, 'free');

-- Dead letters and backfill passes belong to a consumer.
ALTER TABLE wlsync.dead_letter ADD COLUMN consumer_id integer NOT NULL DEFAULT 1
    REFERENCES wlsync.consumer ON DELETE CASCADE;
ALTER TABLE wlsync.dead_letter ALTER COLUMN consumer_id DROP DEFAULT;
ALTER TABLE wlsync.dead_letter DROP CONSTRAINT dead_letter_pkey;
ALTER TABLE wlsync.dead_letter ADD CONSTRAINT dead_letter_pkey PRIMARY KEY (consumer_id, table_id, pk);
ALTER TABLE wlsync.backfill_state ADD COLUMN consumer_id integer NOT NULL DEFAULT 1
    REFERENCES wlsync.consumer ON DELETE CASCADE;
ALTER TABLE wlsync.backfill_state ALTER COLUMN consumer_id DROP DEFAULT;
ALTER TABLE wlsync.backfill_state DROP CONSTRAINT backfill_state_pkey;
ALTER TABLE wlsync.backfill_state ADD CONSTRAINT backfill_state_pkey PRIMARY KEY (consumer_id, table_id);

CREATE OR REPLACE VIEW wlsync.dead_letters AS
SELECT n.nspname AS table_schema, c.relname AS table_name, d.pk,
       CASE WHEN d.parked_at IS NOT NULL THEN 'parked' ELSE 'retrying' END AS state,
       d.attempts, d.last_error, d.first_failed_at, d.last_failed_at, d.retry_at, d.parked_at,
       k.name AS consumer
FROM wlsync.dead_letter AS d
JOIN wlsync.consumer AS k USING (consumer_id)
JOIN wlsync.tracked_table AS t USING (table_id)
JOIN pg_class AS c ON c.oid = t.relid
JOIN pg_namespace AS n ON n.oid = c.relnamespace;

-- Signature changes: every function that acts for one consumer takes it
-- (defaulting to 'default'); the post-apply step installs the new ones.
DROP FUNCTION IF EXISTS wlsync.claim_sync_events(integer);
DROP FUNCTION IF EXISTS wlsync.track(regclass);
DROP FUNCTION IF EXISTS wlsync.backfill(regclass, bigint);
DROP FUNCTION IF EXISTS wlsync.enqueue_keys(regclass, jsonb[]);
DROP FUNCTION IF EXISTS wlsync.record_failure(regclass, jsonb, text, integer, integer);
DROP FUNCTION IF EXISTS wlsync.retry_dead_letters(regclass, jsonb);
DROP FUNCTION IF EXISTS wlsync.discard_dead_letters(regclass, jsonb);
DROP FUNCTION IF EXISTS wlsync.queue_status();
DROP FUNCTION IF EXISTS wlsync.tracked_columns();
DROP FUNCTION IF EXISTS wlsync.metrics(integer);
DROP FUNCTION IF EXISTS wlsync.lock_consistent_drain();
DROP FUNCTION IF EXISTS wlsync.start_consistent_batch();
DROP FUNCTION IF EXISTS wlsync._drain_lock(text);
DROP FUNCTION IF EXISTS wlsync._current_queue();
