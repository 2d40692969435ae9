CREATE OR REPLACE FUNCTION wlsync.retry_dead_letters(p_table regclass DEFAULT NULL, p_pk jsonb DEFAULT NULL,
                                                     p_consumer text DEFAULT 'default')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.retry_dead_letters([p_table [, p_pk [, p_consumer]]])
--   Re-drives dead letters (parked or waiting for their retry): they become
--   due now with their attempts reset, so the next claim takes each
--   key and the drain writes its current row to WL. Use after fixing what WL
--   rejected.   SELECT wlsync.retry_dead_letters();                 -- all
--                SELECT wlsync.retry_dead_letters('movies');         -- a table's
--                SELECT wlsync.retry_dead_letters('movies', '{"id": "7"}');  -- one
-- Parameters: p_table  only this table's (NULL: every table)
--             p_pk     only this key (either spelling; needs p_table)
--             p_consumer  whose dead letters; default 'default'
-- Returns:    how many dead letters were re-driven
-- Raises:     22023 when p_table is not tracked, there is no such consumer,
--             or p_pk without p_table.
-- Touches:    updates wlsync.dead_letter, may
--             NOTIFY wlsync_v1.
-- ---------------------------------------------------------------------------
DECLARE
    v_count bigint;
BEGIN
    IF p_pk IS NOT NULL AND p_table IS NULL THEN
        RAISE EXCEPTION 'wlsync.retry_dead_letters: give the table of key %', p_pk
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Due now: the next claim takes the key (wlsync.claim_sync_events).
    UPDATE wlsync.dead_letter AS d
    SET attempts = 0, retry_at = now(), parked_at = NULL
    WHERE d.consumer_id = wlsync._consumer_id(p_consumer)
      AND (p_table IS NULL OR d.table_id = wlsync._tracked_table_id(p_table))
      AND (p_pk IS NULL OR d.pk = wlsync._queue_key(p_table, p_pk));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM wlsync._wake_drivers();
    END IF;
    RETURN v_count;
END
$function$;

COMMENT ON FUNCTION wlsync.retry_dead_letters(regclass, jsonb, text) IS
    'Re-drive dead letters (all, a table''s, or one key) after fixing WL; returns how many';
