-- Resumable, chunked backfill: where each table's backfill pass stands.
-- Also records the function changes: wlsync.backfill(regclass, bigint) replaces
-- wlsync.backfill(regclass); new wlsync.enqueue_keys.
-- depends: 0002.current-rows-read-rows
CREATE TABLE wlsync.backfill_state (
    table_id      integer PRIMARY KEY REFERENCES wlsync.tracked_table ON DELETE CASCADE,
    after_pk      jsonb,
    enqueued      bigint NOT NULL DEFAULT 0,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz
);
COMMENT ON TABLE wlsync.backfill_state IS 'Per tracked table: the key the current backfill pass has reached (wlsync.backfill)';
DROP FUNCTION IF EXISTS wlsync.backfill(regclass);
