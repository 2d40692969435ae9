CREATE OR REPLACE FUNCTION wlsync.start_consistent_batch(p_consumer text DEFAULT 'default')
RETURNS TABLE (version bigint, waiting_for text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.start_consistent_batch(p_consumer DEFAULT 'default')
--   Opens a consistent-mode batch (wlsync run --consistent; README,
--   "Consistent mode"). The driver's cycle, on the connection that holds
--   wlsync.lock_consistent_drain():
--     BEGIN ISOLATION LEVEL REPEATABLE READ;
--     SELECT * FROM wlsync.start_consistent_batch();
--     SELECT * FROM wlsync.claim_sync_events(1000, p_consumer);  -- until it
--         <write each chunk into one open WL transaction>  returns no row
--     <commit WL>; COMMIT;
--   Every claim of the transaction runs on its one snapshot: together they
--   take every event that snapshot sees, and read every key's row as of it,
--   so WL's commit leaves it equal to MDB as of that snapshot.
--   Sealed ring slots are walked from their start again (their shared resume
--   point may have passed rows that a rolled-back batch left behind, which
--   this batch must take).
--   While a backfill pass of the consumer is incomplete, WL would miss the
--   keys not yet enqueued: the batch must not start (waiting_for says why).
-- Parameters: p_consumer  whose batch (wlsync.consumers); default 'default'
-- Returns:    one row: version (the fencing version of every row this
--             transaction claims) and waiting_for (NULL, or why the driver
--             must not claim now: the caller then ends the transaction).
-- Raises:     25001 outside a REPEATABLE READ transaction; 55P03 when this
--             session does not hold the consumer's consistent drain lock;
--             22023 when there is no such consumer.
-- Touches:    reads wlsync.backfill_state and pg_locks; moves the resume
--             sequences of sealed slots.
-- ---------------------------------------------------------------------------
DECLARE
    v_slot record;
    v_consumer integer := wlsync._consumer_id(p_consumer);
BEGIN
    IF current_setting('transaction_isolation') <> 'repeatable read' THEN
        RAISE EXCEPTION 'wlsync.start_consistent_batch must run in a REPEATABLE READ transaction, not %',
                        current_setting('transaction_isolation')
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'BEGIN ISOLATION LEVEL REPEATABLE READ: every claim of the batch must share one snapshot.';
    END IF;
    IF NOT wlsync._drain_lock('held_exclusive', v_consumer) THEN
        RAISE EXCEPTION 'wlsync.start_consistent_batch: this session does not hold the consistent drain lock'
            USING ERRCODE = 'lock_not_available',
                  HINT = format('SELECT wlsync.lock_consistent_drain(%L); first, in autocommit, on this connection.',
                                p_consumer);
    END IF;

    SELECT string_agg(format('the backfill pass of %s to complete (%s keys enqueued so far; '
                             'run wlsync.backfill(%L, 50000, %L) until it returns 0)',
                             t.relid::regclass, b.enqueued, t.relid::regclass::text, p_consumer), '; '
                      ORDER BY t.table_id)
    INTO waiting_for
    FROM wlsync.backfill_state AS b
    JOIN wlsync.tracked_table AS t ON t.table_id = b.table_id
    WHERE b.consumer_id = v_consumer AND b.completed_at IS NULL;

    IF waiting_for IS NULL THEN
        FOR v_slot IN SELECT s.ring, s.slot FROM wlsync.queue_slot AS s
                      WHERE s.state = 'sealed' AND s.ring IN (0, v_consumer) LOOP
            PERFORM setval(format('wlsync.%I', wlsync._slot_table(v_slot.ring, v_slot.slot) || '_resume'), 0);
        END LOOP;
    END IF;
    SELECT s.version_offset + wlsync._snapshot_clock() INTO version FROM wlsync.capture_state AS s;
    RETURN NEXT;
END
$function$;

COMMENT ON FUNCTION wlsync.start_consistent_batch(text) IS
    'Driver: open a consistent-mode batch (REPEATABLE READ, drain lock held): its version, or what it waits for';
