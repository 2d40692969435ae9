-- Poison does not block: keys WL keeps rejecting are retried with backoff, then
-- parked. A row here holds its key back (later events of the key wait in the
-- queue, so they never overtake it) until it is due for retry, re-driven
-- (wlsync.retry_dead_letters) or discarded (wlsync.discard_dead_letters).
-- Records the function changes: claim_sync_events skips held keys and returns
-- attempts; new record_failure, retry_dead_letters, discard_dead_letters;
-- queue_status counts dead letters.
-- depends: 0004.claim-version
CREATE TABLE wlsync.dead_letter (
    table_id         integer NOT NULL REFERENCES wlsync.tracked_table ON DELETE CASCADE,
    pk               jsonb NOT NULL,
    attempts         integer NOT NULL,
    last_error       text NOT NULL,
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    retry_at         timestamptz,
    parked_at        timestamptz,
    PRIMARY KEY (table_id, pk),
    CHECK ((retry_at IS NULL) <> (parked_at IS NULL))
);
COMMENT ON TABLE wlsync.dead_letter IS
    'Keys WL rejected: retrying (retry_at set) or parked (parked_at set); each holds its key''s later events back';

CREATE VIEW wlsync.dead_letters AS
SELECT n.nspname AS table_schema, c.relname AS table_name, d.pk,
       CASE WHEN d.parked_at IS NOT NULL THEN 'parked' ELSE 'retrying' END AS state,
       d.attempts, d.last_error, d.first_failed_at, d.last_failed_at, d.retry_at, d.parked_at
FROM wlsync.dead_letter AS d
JOIN wlsync.tracked_table AS t USING (table_id)
JOIN pg_class AS c ON c.oid = t.relid
JOIN pg_namespace AS n ON n.oid = c.relnamespace;
COMMENT ON VIEW wlsync.dead_letters IS 'Keys WL rejected, by table: retrying or parked, with the last error';

DROP FUNCTION IF EXISTS wlsync.claim_sync_events(integer);
DROP FUNCTION IF EXISTS wlsync.queue_status();
