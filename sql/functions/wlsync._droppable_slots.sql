CREATE OR REPLACE FUNCTION wlsync._droppable_slots(p_ring integer, p_writers_sealed boolean)
RETURNS TABLE (ring integer, slot smallint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._droppable_slots(p_ring, p_writers_sealed)
--   The slots that hold a backlog wlsync._drop_overflow may drop: every slot
--   of a consumer's ring (p_ring > 0) and, with p_writers_sealed, the
--   writers' sealed slots (their current and retired slots still receive
--   writers' rows). What wlsync._backlog counts and wlsync._drop_slots drops.
-- Parameters: p_ring            a consumer_id, or 0 (none)
--             p_writers_sealed  also the writers' sealed slots
-- Returns:    (ring, slot), in ring and slot order
-- Touches:    reads wlsync.queue_slot.
-- ---------------------------------------------------------------------------
SELECT s.ring, s.slot FROM wlsync.queue_slot AS s
WHERE (p_ring > 0 AND s.ring = p_ring) OR (p_writers_sealed AND s.ring = 0 AND s.state = 'sealed')
ORDER BY s.ring, s.slot;
$function$;

COMMENT ON FUNCTION wlsync._droppable_slots(integer, boolean) IS
    'Internal: the slots a consumer''s backlog past max_pending is counted in and dropped from';
