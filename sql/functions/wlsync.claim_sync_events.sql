CREATE OR REPLACE FUNCTION wlsync.claim_sync_events(p_batch integer)
RETURNS TABLE (table_schema name, table_name name, pk jsonb, action text, row_data jsonb,
               version bigint, last_event_id bigint, events integer, enqueued_at timestamptz,
               attempts integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.claim_sync_events(p_batch)
--   The driver's one call per batch, in its own transaction:
--     BEGIN; SELECT * FROM wlsync.claim_sync_events(1000);
--     <write the rows to WL and commit WL>; COMMIT;
--   Deletes the oldest pending events (skipping those other drivers hold) and
--   returns, per claimed key, the row as it is now: the events vanish only
--   when the caller commits, after WL has the rows; a rollback (or a crash)
--   leaves them queued. Inside BEGIN ... ROLLBACK it is a harmless peek.
--
--   Per-key rule (WL never goes backwards): a key is claimed only together
--   with every event of it that this statement's snapshot can see, all locked
--   here (FOR UPDATE SKIP LOCKED); if any of them is held by another batch,
--   the key is left for later. Of two batches open at once, the one with the
--   older snapshot sees a subset of the other's events of the key, so both
--   need a common row lock and at most one takes the key. The row is read by a
--   later statement, after the key's events are locked, so the holder's read
--   is newer than anything an earlier holder of the key wrote to WL (that one
--   committed before the locks could be had), and each WL write happens before
--   the key is released. Hence READ COMMITTED is required. When MDB ends a
--   batch's transaction itself (timeout, pg_terminate_backend, restart) the
--   key is released before that batch's WL write may land: the batch's
--   version (from wlsync.claim_version_seq, drawn after the locks) lets WL
--   refuse such a late write, as every later holder has a larger version.
--
--   Keys held back by a dead letter (wlsync.record_failure) are skipped, with
--   all their events, until the dead letter is due or re-driven.
--
--   The head is picked by a MATERIALIZED CTE (LIMIT ... FOR UPDATE SKIP LOCKED
--   in a subquery may be re-evaluated and lock more rows than it returns), and
--   rows are addressed by event_id = ANY(ARRAY(...)) so the plan stays an index
--   scan of the queue's primary key whatever the planner thinks of a CTE.
--
-- Parameters: p_batch  at most this many keys (events of the first p_batch
--             events' keys; later events of those keys are taken along)
-- Returns:    one row per key: table_schema, table_name, pk (the key columns
--             as text, like row_data), action ('upsert' when the row exists, 'delete' when it
--             is gone), row_data (jsonb: every column as its PostgreSQL text
--             output, JSON null for NULL; NULL for 'delete'), version (this
--             batch's fencing version: WL applies a key's write only if it is
--             newer than the version WL last applied to that key), last_event_id,
--             events (how many were collapsed), enqueued_at (oldest of them),
--             attempts (how often WL rejected the key before: a due retry of
--             wlsync.record_failure; 0 otherwise).
--             Rendering is wlsync.current_rows': UTC, ISO dates, hex bytea,
--             exact floats.
-- Raises:     22023 when p_batch < 1; 25001 outside READ COMMITTED.
-- Touches:    deletes from wlsync.queue (row locks until the caller ends)
--             and due wlsync.dead_letter rows of the claimed keys;
--             reads the tracked tables (ACCESS SHARE). Writers are never
--             blocked: they only insert into the queue.
-- SECURITY DEFINER: a driver role needs EXECUTE on this function, not rights
--             on the queue or the tables.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_ids integer[];
    v_pks jsonb[];
    v_last_event_ids bigint[];
    v_events integer[];
    v_enqueued_at timestamptz[];
    v_attempts integer[];
    v_table record;
    v_version bigint;
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'wlsync.claim_sync_events: batch must be a positive number of events, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wlsync.claim_sync_events must run in a READ COMMITTED transaction, not %',
                        current_setting('transaction_isolation')
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'The per-key rule reads each claimed row with a snapshot taken after the claim.';
    END IF;

    WITH head AS MATERIALIZED (
        SELECT q.table_id, q.pk
        FROM wlsync.queue AS q
        WHERE NOT EXISTS (  -- keys held back by a dead letter that is not due
            SELECT 1 FROM wlsync.dead_letter AS d
            WHERE d.table_id = q.table_id AND d.pk = q.pk AND (d.retry_at IS NULL OR d.retry_at > now()))
        ORDER BY q.event_id
        LIMIT p_batch
        FOR UPDATE SKIP LOCKED
    ), key_events AS MATERIALIZED (
        -- LATERAL: one probe of queue_table_id_pk_idx per key, whatever the plan.
        SELECT q.event_id, q.table_id, q.pk
        FROM (SELECT DISTINCT h.table_id, h.pk FROM head AS h) AS k
        CROSS JOIN LATERAL (SELECT e.event_id, e.table_id, e.pk FROM wlsync.queue AS e
                            WHERE e.table_id = k.table_id AND e.pk = k.pk) AS q
    ), locked AS MATERIALIZED (
        SELECT q.event_id, q.table_id, q.pk
        FROM wlsync.queue AS q
        WHERE q.event_id = ANY (ARRAY(SELECT ke.event_id FROM key_events AS ke))
        FOR UPDATE SKIP LOCKED
    ), verdict AS MATERIALIZED (
        -- Per key: did we lock every event we saw? Grouped by hashing (a join
        -- of two CTEs would be planned as a nested loop, a window would sort).
        SELECT array_agg(s.event_id) FILTER (WHERE s.got = 1) AS event_ids
        FROM (SELECT ke.event_id, ke.table_id, ke.pk, 1 AS seen, 0 AS got FROM key_events AS ke
              UNION ALL
              SELECT l.event_id, l.table_id, l.pk, 0, 1 FROM locked AS l) AS s
        GROUP BY s.table_id, s.pk
        HAVING sum(s.seen) = sum(s.got)
    ), claimed AS (
        DELETE FROM wlsync.queue AS q
        WHERE q.event_id = ANY (ARRAY(SELECT unnest(v.event_ids) FROM verdict AS v))
        RETURNING q.table_id, q.pk, q.event_id, q.enqueued_at
    ), per_key AS MATERIALIZED (
        SELECT c.table_id, c.pk, max(c.event_id) AS last_event_id,
               count(*)::integer AS events, min(c.enqueued_at) AS enqueued_at
        FROM claimed AS c
        GROUP BY c.table_id, c.pk
    ), retried AS (
        -- Due dead letters of claimed keys: the driver records a new failure
        -- (with these attempts) if WL rejects the key again.
        DELETE FROM wlsync.dead_letter AS d USING per_key AS p
        WHERE d.table_id = p.table_id AND d.pk = p.pk
        RETURNING d.table_id, d.pk, d.attempts
    )
    SELECT array_agg(p.table_id ORDER BY p.last_event_id), array_agg(p.pk ORDER BY p.last_event_id),
           array_agg(p.last_event_id ORDER BY p.last_event_id), array_agg(p.events ORDER BY p.last_event_id),
           array_agg(p.enqueued_at ORDER BY p.last_event_id),
           array_agg(coalesce(r.attempts, 0) ORDER BY p.last_event_id)
    INTO v_table_ids, v_pks, v_last_event_ids, v_events, v_enqueued_at, v_attempts
    FROM per_key AS p LEFT JOIN retried AS r ON r.table_id = p.table_id AND r.pk = p.pk;

    IF v_table_ids IS NULL THEN
        RETURN;
    END IF;
    -- The fencing version, drawn after the keys are locked: a later holder of
    -- a key draws a larger one, so WL can refuse a write that arrives late
    -- from a batch whose MDB session died (timeout, terminate, restart).
    v_version := nextval('wlsync.claim_version_seq');

    -- New statements, hence new snapshots: the rows are read after their keys
    -- were locked above. One query per table, through its primary key index.
    FOR v_table IN
        SELECT t.table_id, t.relid, n.nspname, c.relname
        FROM wlsync.tracked_table AS t
        JOIN pg_class AS c ON c.oid = t.relid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE t.table_id = ANY (v_table_ids)
    LOOP
        RETURN QUERY
        WITH k AS MATERIALIZED (
            SELECT k.pk, k.last_event_id, k.events, k.enqueued_at, k.attempts
            FROM unnest(v_table_ids, v_pks, v_last_event_ids, v_events, v_enqueued_at, v_attempts)
                 AS k(table_id, pk, last_event_id, events, enqueued_at, attempts)
            WHERE k.table_id = v_table.table_id
        )
        SELECT v_table.nspname, v_table.relname, r.pk,
               CASE WHEN r.row_data IS NULL THEN 'delete' ELSE 'upsert' END,
               r.row_data, v_version, k.last_event_id, k.events, k.enqueued_at, k.attempts
        FROM wlsync.current_rows(v_table.relid, ARRAY(SELECT k.pk FROM k)) AS r
        JOIN k ON k.pk = r.requested_pk
        ORDER BY k.last_event_id;
    END LOOP;
END
$function$;

COMMENT ON FUNCTION wlsync.claim_sync_events(integer) IS
    'Driver: take up to p_batch keys off the queue (SKIP LOCKED, per-key exclusive) and return their current rows; commit after WL has them';
