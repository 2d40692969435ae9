CREATE OR REPLACE FUNCTION wlsync._slot_table(p_ring integer, p_slot smallint)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._slot_table(p_ring, p_slot)
--   The name (in schema wlsync, unquoted) of a ring slot's table: ring 0 is
--   the writers' ring, wlsync.queue_0..2; ring n is consumer n's,
--   wlsync.pending_n_0..2. Its resume sequence is the name plus '_resume'.
-- Parameters: p_ring  0 or a consumer_id; p_slot  0, 1 or 2
-- Returns:    'queue_1', 'pending_3_0', ...
-- Touches:    nothing.
-- ---------------------------------------------------------------------------
SELECT CASE WHEN p_ring = 0 THEN 'queue_' || p_slot ELSE 'pending_' || p_ring || '_' || p_slot END;
$function$;

COMMENT ON FUNCTION wlsync._slot_table(integer, smallint) IS
    'Internal: table name of a ring slot (queue_<slot> for the writers'' ring, pending_<consumer>_<slot>)';
