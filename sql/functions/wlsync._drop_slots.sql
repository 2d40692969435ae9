CREATE OR REPLACE FUNCTION wlsync._drop_slots(p_ring integer, p_writers_sealed boolean)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._drop_slots(p_ring, p_writers_sealed)
--   TRUNCATEs every slot of a consumer's ring (p_ring > 0) and, with
--   p_writers_sealed, the writers' sealed slots (p_ring 0: those alone),
--   each only if its lock is free at once (NOWAIT: a claim or fan-out in
--   flight keeps its slot for a later call). wlsync._drop_overflow's step.
-- Parameters: p_ring            a consumer_id, or 0
--             p_writers_sealed  also the writers' sealed slots
-- Returns:    how many events were dropped
-- Touches:    TRUNCATE (ACCESS EXCLUSIVE, NOWAIT); wlsync.queue_slot.
-- ---------------------------------------------------------------------------
DECLARE
    v_slot record;
    v_events bigint;
    v_dropped bigint := 0::bigint;
BEGIN
    FOR v_slot IN SELECT d.ring, d.slot FROM wlsync._droppable_slots(p_ring, p_writers_sealed) AS d LOOP
        BEGIN
            EXECUTE format('LOCK TABLE wlsync.%I IN ACCESS EXCLUSIVE MODE NOWAIT',
                           wlsync._slot_table(v_slot.ring, v_slot.slot));
            EXECUTE format('SELECT count(*) FROM wlsync.%I', wlsync._slot_table(v_slot.ring, v_slot.slot))
            INTO v_events;
            EXECUTE format('TRUNCATE wlsync.%I', wlsync._slot_table(v_slot.ring, v_slot.slot));
            PERFORM wlsync._free_slot(v_slot.ring, v_slot.slot);
            v_dropped := v_dropped + v_events;
        EXCEPTION WHEN lock_not_available THEN
            NULL;  -- in use: a later call drops it
        END;
    END LOOP;
    RETURN v_dropped;
END
$function$;

COMMENT ON FUNCTION wlsync._drop_slots(integer, boolean) IS
    'Internal: TRUNCATE (NOWAIT) a consumer''s ring slots and/or the writers'' sealed slots; returns the events dropped';
