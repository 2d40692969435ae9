CREATE OR REPLACE FUNCTION wlsync.backfill(p_table regclass, p_max_rows bigint DEFAULT NULL,
                                           p_consumer text DEFAULT 'default')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.backfill(p_table [, p_max_rows [, p_consumer]])
--   Enqueues the keys of the rows p_table holds for one consumer, so its WL
--   gets a complete copy of rows that existed before tracking began (or
--   before the consumer was added: wlsync.add_consumer starts its passes).
--   The other consumers are not concerned. Because the claim reads the
--   current row, a backfill is just "these keys are dirty": it is safe while
--   writers are busy (a row written meanwhile has its own event; one deleted
--   is read as gone) and safe to repeat.
--   Chunked and resumable: each call continues the table's current pass in
--   primary-key order from where the last call stopped (wlsync.backfill_state,
--   one pass per consumer and table),
--   enqueueing at most p_max_rows keys, and returns how many it enqueued; a
--   call that finds no key left returns 0 and completes the pass. With
--   p_max_rows NULL one call enqueues every remaining key and completes the
--   pass. The call after a completed pass starts a new one from the first key.
--   Commit between calls to keep each transaction small:
--       SELECT wlsync.backfill('movies', 50000);   -- repeat until it returns 0
--   (or: python wlsync_driver.py backfill --table movies, which shows progress).
--   An interrupted pass resumes where its last committed call stopped.
-- Parameters: p_table     a tracked table the consumer receives
--             p_max_rows  keys to enqueue in this call, >= 1, or NULL for all
--             p_consumer  whose pass (wlsync.consumers); default 'default'
-- Returns:    the number of keys enqueued by this call
-- Raises:     22023 when p_table is not tracked or not the consumer's, there
--             is no such consumer, or p_max_rows < 1.
-- Touches:    reads p_table by primary key range (ACCESS SHARE: writers are not
--             blocked), inserts into the consumer's ring, updates wlsync.backfill_state
--             (row lock: concurrent calls on one table run one after the other),
--             may NOTIFY wlsync_v1.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer := wlsync._tracked_table_id(p_table);
    v_pk_columns name[];
    v_state wlsync.backfill_state%ROWTYPE;
    v_key_list text;
    v_enqueued bigint;
    v_last_pk jsonb;
    v_consumer integer := wlsync._consumer_id(p_consumer);
BEGIN
    IF p_max_rows IS NOT NULL AND p_max_rows < 1 THEN
        RAISE EXCEPTION 'wlsync.backfill: p_max_rows must be at least 1 (or NULL for all), got %', p_max_rows
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.pk_columns INTO v_pk_columns FROM wlsync.tracked_table AS t WHERE t.table_id = v_table_id;
    IF NOT EXISTS (SELECT 1 FROM wlsync.consumer_table AS ct
                   WHERE ct.consumer_id = v_consumer AND ct.table_id = v_table_id) THEN
        RAISE EXCEPTION 'wlsync.backfill: consumer % does not receive table %', p_consumer, p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('SELECT wlsync.add_consumer(%L, ARRAY[%L]::regclass[]); adds it.', p_consumer, p_table::text);
    END IF;

    INSERT INTO wlsync.backfill_state (consumer_id, table_id) VALUES (v_consumer, v_table_id)
    ON CONFLICT (consumer_id, table_id) DO NOTHING;
    SELECT * INTO v_state FROM wlsync.backfill_state AS s
    WHERE s.consumer_id = v_consumer AND s.table_id = v_table_id FOR UPDATE;
    IF v_state.completed_at IS NOT NULL THEN  -- the last pass is done: start a new one
        UPDATE wlsync.backfill_state
        SET after_pk = NULL, enqueued = 0, started_at = now(), updated_at = now(), completed_at = NULL
        WHERE consumer_id = v_consumer AND table_id = v_table_id
        RETURNING * INTO v_state;
    END IF;

    SELECT string_agg(format('t.%I', c), ', ') INTO v_key_list FROM unnest(v_pk_columns) AS c;
    EXECUTE format($sql$
        WITH chunk AS MATERIALIZED (
            SELECT %1$s AS pk, row_number() OVER (ORDER BY %2$s) AS ord
            FROM %3$s AS t
            WHERE $1 IS NULL
               OR (%2$s) > (%4$s)
            ORDER BY %2$s
            LIMIT $2
        ), enqueued AS (
            INSERT INTO %6$s (table_id, pk)
            SELECT %5$s, c.pk FROM chunk AS c
        )
        SELECT count(*), (SELECT c.pk FROM chunk AS c ORDER BY c.ord DESC LIMIT 1) FROM chunk$sql$,
        wlsync._key_json_sql(p_table, v_pk_columns, 't'), v_key_list, p_table,
        wlsync._key_values_sql(p_table, v_pk_columns, '$1', false),
        v_table_id, wlsync._current_queue(v_consumer))
    INTO v_enqueued, v_last_pk
    USING v_state.after_pk, p_max_rows;

    UPDATE wlsync.backfill_state
    SET after_pk = coalesce(v_last_pk, after_pk),
        enqueued = enqueued + v_enqueued,
        updated_at = now(),
        completed_at = CASE WHEN p_max_rows IS NULL OR v_enqueued = 0 THEN now() END
    WHERE consumer_id = v_consumer AND table_id = v_table_id;

    -- Also when nothing was enqueued: the call completed the pass, which a
    -- consistent-mode driver waits for.
    PERFORM wlsync._wake_drivers();
    RETURN v_enqueued;
END
$function$;

COMMENT ON FUNCTION wlsync.backfill(regclass, bigint, text) IS
    'Admin: enqueue the next chunk (or all) of a tracked table''s existing rows for a consumer; resumable; returns how many, 0 when the pass is complete';
