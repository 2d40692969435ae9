CREATE OR REPLACE FUNCTION wlsync._discard_table_events(p_table_id integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._discard_table_events(p_table_id)
--   Deletes a table's pending events from every ring (the writers' and each
--   consumer's): untrack, and the DROP TABLE event trigger.
-- Parameters: p_table_id  wlsync.tracked_table.table_id
-- Returns:    how many events were deleted
-- Touches:    deletes from every ring slot table (scans them; waits for a
--             driver holding one of those events).
-- ---------------------------------------------------------------------------
DECLARE
    v_slot record;
    v_deleted bigint;
    v_total bigint := 0::bigint;
BEGIN
    FOR v_slot IN SELECT s.ring, s.slot FROM wlsync.queue_slot AS s ORDER BY s.ring, s.slot LOOP
        EXECUTE format('DELETE FROM wlsync.%I AS q WHERE q.table_id = $1', wlsync._slot_table(v_slot.ring, v_slot.slot))
        USING p_table_id;
        GET DIAGNOSTICS v_deleted = ROW_COUNT;
        v_total := v_total + v_deleted;
    END LOOP;
    RETURN v_total;
END
$function$;

COMMENT ON FUNCTION wlsync._discard_table_events(integer) IS
    'Internal: delete a table''s pending events from every ring';
