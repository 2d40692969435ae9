CREATE OR REPLACE FUNCTION wlsync._free_slot(p_ring integer, p_slot smallint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._free_slot(p_ring, p_slot)
--   Marks a slot its caller has just TRUNCATEd free again (a current slot
--   stays current), with its resume point back at its start.
-- Parameters: p_ring  0 or a consumer_id; p_slot  0, 1 or 2
-- Touches:    updates wlsync.queue_slot; sets the slot's resume sequence.
-- ---------------------------------------------------------------------------
BEGIN
    UPDATE wlsync.queue_slot
    SET state = CASE WHEN state = 'current' THEN 'current' ELSE 'free' END, changed_at = now(),
        retired_at = NULL, retired_by = NULL, writers = NULL, sealed_blocks = NULL, rescanned_at = NULL
    WHERE ring = p_ring AND slot = p_slot;
    PERFORM setval(format('wlsync.%I', wlsync._slot_table(p_ring, p_slot) || '_resume'), 0);
END
$function$;

COMMENT ON FUNCTION wlsync._free_slot(integer, smallint) IS
    'Internal: a TRUNCATEd ring slot is free again (or stays current), resume point at its start';
