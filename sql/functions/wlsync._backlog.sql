CREATE OR REPLACE FUNCTION wlsync._backlog(p_ring integer, p_writers_sealed boolean, p_limit bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._backlog(p_ring, p_writers_sealed, p_limit)
--   How many events the slots wlsync._drop_slots would drop hold
--   (wlsync._droppable_slots), counted only as far as it matters: 0 when
--   their size cannot hold more than p_limit events (a queue row takes at
--   least 40 bytes), else a count that stops past p_limit.
--   wlsync._drop_overflow's measure.
-- Parameters: p_ring            a consumer_id (its ring), or 0 (none)
--             p_writers_sealed  also the writers' sealed slots
--             p_limit           the count that matters (max_pending)
-- Returns:    0, or the events counted (at most p_limit + 1)
-- Touches:    reads the slots' sizes, and counts their rows when needed.
-- ---------------------------------------------------------------------------
DECLARE
    v_slot record;
    v_events bigint;
    v_backlog bigint := 0::bigint;
BEGIN
    IF (SELECT coalesce(sum(pg_relation_size(format('wlsync.%I', wlsync._slot_table(d.ring, d.slot))::regclass)), 0)
        FROM wlsync._droppable_slots(p_ring, p_writers_sealed) AS d)
       < p_limit * 40 THEN
        RETURN 0::bigint;
    END IF;
    FOR v_slot IN SELECT d.ring, d.slot FROM wlsync._droppable_slots(p_ring, p_writers_sealed) AS d LOOP
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM wlsync.%I LIMIT $1) AS q',
                       wlsync._slot_table(v_slot.ring, v_slot.slot))
        INTO v_events USING p_limit + 1 - v_backlog;
        v_backlog := v_backlog + v_events;
        EXIT WHEN v_backlog > p_limit;
    END LOOP;
    RETURN v_backlog;
END
$function$;

COMMENT ON FUNCTION wlsync._backlog(integer, boolean, bigint) IS
    'Internal: events in a consumer''s droppable slots, counted only as far as max_pending matters';
