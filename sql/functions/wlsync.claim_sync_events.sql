CREATE OR REPLACE FUNCTION wlsync.claim_sync_events(p_batch integer DEFAULT 1000, p_consumer text DEFAULT 'default')
RETURNS TABLE (table_schema name, table_name name, pk jsonb, action text, row_data jsonb,
               version bigint, events integer, enqueued_at timestamptz, attempts integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.claim_sync_events(p_batch DEFAULT 1000, p_consumer DEFAULT 'default')
--   The driver's one call per batch, in its own transaction:
--     BEGIN; SELECT * FROM wlsync.claim_sync_events(1000);
--     <write the rows to WL and commit WL>; COMMIT;
--   Deletes up to p_batch of the consumer's pending events (skipping rows
--   other drivers hold) and returns, per key, the row as it is now: the
--   events vanish only when the caller commits, after WL has the rows; a
--   rollback (or a crash) leaves them queued. Inside BEGIN ... ROLLBACK it
--   is a harmless peek. A bare SELECT wlsync.claim_sync_events(); in
--   autocommit consumes what it returns: WL gets those keys only at their
--   next change, or from `verify --repair`.
--   Consistent mode (wlsync.start_consistent_batch): in the REPEATABLE READ
--   transaction of the session holding wlsync.lock_consistent_drain(), every
--   call runs on the transaction's one snapshot; called until it returns no
--   row, the calls take every event that snapshot sees and read every key's
--   row as of it, with one version. A READ COMMITTED claim of the consumer
--   fails meanwhile.
--
--   Where events are taken (wlsync._take_events): the consumer's own ring
--   (wlsync.pending_<id>_0..2), and, while it is the only consumer, the
--   writers' ring (wlsync.queue_0..2) directly. With several consumers,
--   wlsync.fan_out moves the writers' events into every consumer's ring
--   (drivers call it before each claim); a consistent-mode batch takes them
--   from the writers' ring itself and passes the other consumers theirs.
--   Events of tables the consumer does not receive are dropped.
--
--   Per-key rule (WL never goes backwards), without any per-key lock: each
--   key's row is read by a later statement than the claim, and returned with
--   a version that is a clock of that statement's snapshot: the number of
--   transactions that snapshot sees as finished (wlsync._snapshot_clock),
--   plus wlsync.capture_state.version_offset. A snapshot taken
--   later sees every transaction an earlier one saw as finished, so a larger
--   version never comes with an older state of a row, and equal versions
--   mean equal views. WL keeps, per key, only a write whose version is newer
--   than the one it recorded, so two batches holding one key at once, a
--   redelivery after a crash, or a late write from a batch whose MDB session
--   died all leave WL with the newest state read, never an older one.
--
--   Keys held back by a dead letter (wlsync.record_failure) are not returned:
--   their events are taken off the queue, the dead letter already marks the
--   key dirty. Due dead letters are claimed (locked, deleted) and returned
--   with their attempts, with or without new events.
--   A queue row that names no tracked table is dropped; one whose key does
--   not fit its table's key columns is dropped with a WARNING (queue rows can
--   be inserted by any role, see the README's "Least privilege").
--
-- Parameters: p_batch     at most this many events are taken (and at most
--                        this many due dead letters); default 1000
--             p_consumer  whose events (wlsync.consumers); default 'default'
-- Returns:    one row per key: table_schema, table_name, pk (the key columns
--             as text, like row_data), action ('upsert' when the row exists,
--             'delete' when it is gone), row_data (jsonb: every column as its
--             PostgreSQL text output, JSON null for NULL; NULL for 'delete'),
--             version (fencing: WL applies a key's write only if it is newer
--             than the version WL last applied to that key), events (how many
--             were collapsed into this row), enqueued_at (oldest of them),
--             attempts (how often WL rejected the key before: a due retry of
--             wlsync.record_failure; 0 otherwise).
--             Rendering is wlsync.current_rows': UTC, ISO dates, hex bytea,
--             exact floats.
-- Raises:     22023 when p_batch < 1 or there is no such consumer; 25001 in another isolation level than
--             READ COMMITTED or a consistent-mode batch's REPEATABLE READ;
--             55P03 in REPEATABLE READ without the consistent drain lock, or
--             in READ COMMITTED while a consistent driver holds it.
-- Touches:    deletes from the rings (row locks until the caller ends),
--             moves their resume sequences; deletes the consumer's due
--             wlsync.dead_letter rows; reads the tracked tables (ACCESS
--             SHARE); the consistent drain lock (shared, transaction
--             level, in READ COMMITTED). Writers are never blocked: they only insert.
-- SECURITY DEFINER: a driver role needs EXECUTE on this function, not rights
--             on the queue or the tables.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_ids integer[];
    v_pks jsonb[];
    v_enqueued_at timestamptz[];
    v_key_table_ids integer[];
    v_key_pks jsonb[];
    v_key_events integer[];
    v_key_enqueued_at timestamptz[];
    v_attempts integer[] := '{}'::integer[];  -- stays empty while no dead letter exists
    v_any_dead boolean;
    v_table record;
    v_first integer;
    v_last_key integer;
    v_key jsonb;
    v_round integer := 0;
    v_snapshot_batch boolean;
    v_consumer integer;
    v_sole boolean;
BEGIN
    IF p_batch IS NULL OR p_batch < 1 THEN
        RAISE EXCEPTION 'wlsync.claim_sync_events: batch must be a positive number of events, got %', p_batch
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_consumer := wlsync._consumer_id(p_consumer);
    v_sole := (SELECT count(*) FROM wlsync.consumer) = 1;
    v_snapshot_batch := current_setting('transaction_isolation') = 'repeatable read';
    IF v_snapshot_batch THEN
        IF NOT wlsync._drain_lock('held_exclusive', v_consumer) THEN
            RAISE EXCEPTION 'wlsync.claim_sync_events in REPEATABLE READ is a consistent-mode batch, and this session does not hold the consistent drain lock'
                USING ERRCODE = 'lock_not_available',
                      HINT = 'Claim in READ COMMITTED, or see wlsync.start_consistent_batch.';
        END IF;
    ELSIF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wlsync.claim_sync_events must run in a READ COMMITTED transaction (or a consistent-mode batch), not %',
                        current_setting('transaction_isolation')
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'The fencing version is read off the snapshot that reads each claimed row.';
    ELSIF NOT wlsync._drain_lock('try_shared', v_consumer) THEN
        RAISE EXCEPTION 'wlsync.claim_sync_events: a consistent-mode driver is draining the queue; a claim beside it would take events out of its snapshot batches'
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Stop the consistent driver (wlsync run --consistent), or run this driver with --consistent: it stands by.';
    END IF;

    v_any_dead := EXISTS (SELECT 1 FROM wlsync.dead_letter AS d WHERE d.consumer_id = v_consumer);
    -- Rounds: a round whose events all belong to held-back keys returns
    -- nothing, which a driver would take for an empty queue; claim again (a
    -- snapshot batch until the queue is empty: it must take every event).
    LOOP
        v_round := v_round + 1;
        -- With one consumer, its events are the writers' ring's (ring 0); with
        -- several, wlsync.fan_out moves them into each consumer's ring, except
        -- in a consistent-mode batch, which must take every event its snapshot
        -- sees: it takes ring 0's too, waiting for rows another transaction
        -- holds, and passes the other consumers their copies.
        IF v_sole THEN
            SELECT e.table_ids, e.pks, e.enqueued_at INTO v_table_ids, v_pks, v_enqueued_at
            FROM wlsync._take_events(0, p_batch) AS e;
        ELSIF v_snapshot_batch THEN
            SELECT e.table_ids, e.pks, e.enqueued_at INTO v_table_ids, v_pks, v_enqueued_at
            FROM wlsync._take_events(0, p_batch, false) AS e;
            PERFORM wlsync._fan_out_events(v_table_ids, v_pks, v_enqueued_at, v_consumer);
        ELSE
            v_table_ids := '{}'::integer[];
            v_pks := '{}'::jsonb[];
            v_enqueued_at := '{}'::timestamptz[];
        END IF;
        IF cardinality(v_pks) < p_batch THEN
            SELECT v_table_ids || e.table_ids, v_pks || e.pks, v_enqueued_at || e.enqueued_at
            INTO v_table_ids, v_pks, v_enqueued_at
            FROM wlsync._take_events(v_consumer, p_batch - cardinality(v_pks)) AS e;
        END IF;

        -- Per key: its events collapse into one read, ordered by table (each
        -- table's keys are then one slice of the arrays). A key that names no
        -- tracked table, or does not give every key column, is dropped here.
        IF NOT v_any_dead THEN
            -- One sort, in the subquery: array_agg takes its rows in that order.
            -- The key columns are cast to text[] once per table (MATERIALIZED),
            -- not once per key.
            WITH t AS MATERIALIZED (
                SELECT t.table_id, t.pk_columns::text[] AS pk_columns FROM wlsync.tracked_table AS t
                JOIN wlsync.consumer_table AS ct ON ct.table_id = t.table_id AND ct.consumer_id = v_consumer
            )
            SELECT array_agg(k.table_id), array_agg(k.pk), array_agg(k.events), array_agg(k.enqueued_at)
            INTO v_key_table_ids, v_key_pks, v_key_events, v_key_enqueued_at
            FROM (
                SELECT g.table_id, g.pk, g.events, g.enqueued_at
                FROM (SELECT e.table_id, e.pk, count(*)::integer AS events, min(e.enqueued_at) AS enqueued_at
                      FROM unnest(v_table_ids, v_pks, v_enqueued_at) AS e(table_id, pk, enqueued_at)
                      GROUP BY e.table_id, e.pk) AS g
                JOIN t ON t.table_id = g.table_id
                WHERE jsonb_strip_nulls(g.pk) ?& t.pk_columns
                ORDER BY g.table_id
            ) AS k;
        ELSE
            -- Keys a dead letter holds back stay out (their events are gone with this
            -- claim: the dead letter keeps the key dirty); due dead letters come
            -- along with their attempts.
            WITH per_key AS (
                SELECT e.table_id, e.pk, count(*)::integer AS events, min(e.enqueued_at) AS enqueued_at
                FROM unnest(v_table_ids, v_pks, v_enqueued_at) AS e(table_id, pk, enqueued_at)
                GROUP BY e.table_id, e.pk
            ), due AS MATERIALIZED (
                SELECT d.table_id, d.pk FROM wlsync.dead_letter AS d
                WHERE d.consumer_id = v_consumer AND v_round = 1 AND d.retry_at <= now()
                ORDER BY d.retry_at
                LIMIT p_batch
                FOR UPDATE SKIP LOCKED
            ), retried AS (
                DELETE FROM wlsync.dead_letter AS d USING due
                WHERE d.consumer_id = v_consumer AND d.table_id = due.table_id AND d.pk = due.pk
                RETURNING d.table_id, d.pk, d.attempts, d.last_failed_at
            ), held AS MATERIALIZED (
                -- Dead letters that hold their key back, locked so that none can be
                -- retried (and deleted) by another batch while this one takes the
                -- key's events off the queue; one being retried elsewhere is
                -- skipped, and its key's events are returned like any others.
                SELECT d.table_id, d.pk FROM wlsync.dead_letter AS d
                JOIN per_key AS p ON p.table_id = d.table_id AND p.pk = d.pk
                WHERE d.consumer_id = v_consumer AND (d.retry_at IS NULL OR d.retry_at > now())
                FOR SHARE OF d SKIP LOCKED
            ), claimed AS (
                SELECT coalesce(p.table_id, r.table_id) AS table_id, coalesce(p.pk, r.pk) AS pk,
                       coalesce(p.events, 0) AS events, coalesce(p.enqueued_at, r.last_failed_at) AS enqueued_at,
                       coalesce(r.attempts, 0) AS attempts
                FROM per_key AS p
                FULL JOIN retried AS r ON r.table_id = p.table_id AND r.pk = p.pk
                WHERE r.pk IS NOT NULL
                   OR NOT EXISTS (SELECT 1 FROM held AS h WHERE h.table_id = p.table_id AND h.pk = p.pk)
            ), kept AS (
                SELECT c.* FROM claimed AS c
                JOIN (SELECT t.table_id, t.pk_columns::text[] AS pk_columns FROM wlsync.tracked_table AS t
                      JOIN wlsync.consumer_table AS ct ON ct.table_id = t.table_id AND ct.consumer_id = v_consumer) AS t
                  ON t.table_id = c.table_id
                WHERE jsonb_strip_nulls(c.pk) ?& t.pk_columns
                ORDER BY c.table_id
            )
            SELECT array_agg(c.table_id), array_agg(c.pk), array_agg(c.events), array_agg(c.enqueued_at),
                   array_agg(c.attempts)
            INTO v_key_table_ids, v_key_pks, v_key_events, v_key_enqueued_at, v_attempts
            FROM kept AS c;
        END IF;
        EXIT WHEN coalesce(cardinality(v_key_pks), 0) > 0 OR cardinality(v_pks) = 0
               OR (v_round >= 10 AND NOT v_snapshot_batch);
    END LOOP;

    IF coalesce(cardinality(v_key_table_ids), 0) = 0 THEN
        RETURN;
    END IF;

    -- New statements, hence new snapshots: each table's rows are read after
    -- the claim above, and the version is read off the very snapshot that
    -- reads them (wlsync.current_rows is STABLE: it runs on its caller's
    -- snapshot). One statement per table, through its primary key index.
    v_first := 1;
    FOR v_table IN
        SELECT u.table_id, u.keys, t.relid, n.nspname, c.relname
        FROM (SELECT k.table_id, count(*)::integer AS keys FROM unnest(v_key_table_ids) AS k(table_id)
              GROUP BY k.table_id) AS u
        LEFT JOIN wlsync.tracked_table AS t ON t.table_id = u.table_id
        LEFT JOIN pg_class AS c ON c.oid = t.relid
        LEFT JOIN pg_namespace AS n ON n.oid = c.relnamespace
        ORDER BY u.table_id
    LOOP
        -- This table's keys: the slice of the arrays that holds its table_id.
        v_last_key := v_first + v_table.keys - 1;
        IF v_table.nspname IS NULL THEN  -- untracked since the keys were grouped: dropped
            v_first := v_last_key + 1;
            CONTINUE;
        END IF;
        BEGIN
            RETURN QUERY
            SELECT v_table.nspname, v_table.relname, r.pk,
                   CASE WHEN r.row_data IS NULL THEN 'delete' ELSE 'upsert' END,
                   r.row_data, (SELECT s.version_offset + wlsync._snapshot_clock() FROM wlsync.capture_state AS s),
                   r.events, r.enqueued_at, coalesce(r.attempts, 0)
            -- current_rows answers in the order asked: ROWS FROM zips its rows
            -- with the keys' figures by position (no join to plan).
            FROM ROWS FROM (wlsync.current_rows(v_table.relid, v_key_pks[v_first:v_last_key]),
                            unnest(v_key_events[v_first:v_last_key]),
                            unnest(v_key_enqueued_at[v_first:v_last_key]),
                            unnest(v_attempts[v_first:v_last_key]))
                 AS r(requested_pk, pk, row_data, events, enqueued_at, attempts);
        EXCEPTION WHEN data_exception THEN
            -- A key that does not fit its key columns' types (an injected queue
            -- row): read the table's keys one by one and drop those at fault
            -- (nothing was returned for the table yet: the statement failed whole).
            FOR v_i IN v_first..v_last_key LOOP
                v_key := v_key_pks[v_i];
                BEGIN
                    RETURN QUERY
                    SELECT v_table.nspname, v_table.relname, r.pk,
                           CASE WHEN r.row_data IS NULL THEN 'delete' ELSE 'upsert' END,
                           r.row_data, (SELECT s.version_offset + wlsync._snapshot_clock() FROM wlsync.capture_state AS s),
                           v_key_events[v_i], v_key_enqueued_at[v_i], coalesce(v_attempts[v_i], 0)
                    FROM wlsync.current_rows(v_table.relid, ARRAY[v_key]) AS r;
                EXCEPTION WHEN data_exception THEN
                    RAISE WARNING 'wlsync: dropped a queue row of % whose key % does not fit its key columns',
                                  v_table.relid, v_key;
                END;
            END LOOP;
        END;
        v_first := v_last_key + 1;
    END LOOP;
END
$function$;

COMMENT ON FUNCTION wlsync.claim_sync_events(integer, text) IS
    'Driver: take up to p_batch events off the queue ring (SKIP LOCKED) and return their keys'' current rows with a snapshot version; commit after WL has them';
