CREATE OR REPLACE FUNCTION wlsync.fan_out(p_limit integer DEFAULT 10000, p_wait boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.fan_out(p_limit DEFAULT 10000, p_wait DEFAULT false)
--   With several consumers: moves up to p_limit events from the writers'
--   ring (wlsync.queue_0..2) into the ring of every consumer that receives
--   their table (wlsync._fan_out_events), in bulk and off the writers' path.
--   Drivers of every consumer call it in autocommit before they claim, so a
--   stopped consumer delays nobody: its events pile up in its own ring only
--   (bounded by its max_pending, see wlsync.maintain_queue). Run it in a
--   transaction of its own (as drivers do): the events it takes stay held
--   until it commits. A DBA may call it any time.
--   Events another transaction holds (another driver's fan-out in flight)
--   are passed by, unless p_wait: a driver whose claim came back empty fans
--   out once more with p_wait before it takes the queue for empty, since
--   its events may be in a fan-out that has not committed yet. Sleeping
--   drivers are woken when events were moved (they may be other consumers').
--   With one consumer it does nothing: that consumer's claims take the
--   writers' ring directly, as before consumers existed.
-- Parameters: p_limit  at most this many events, >= 1
--             p_wait   wait for events another transaction holds (then take
--                      those it leaves) instead of passing them by
-- Returns:    how many events it took off the writers' ring (each copied to
--             every interested consumer); NULL when there is only one
--             consumer (nothing to fan out, now or until a second one is added)
-- Raises:     22023 when p_limit < 1.
-- Touches:    deletes from wlsync.queue_0..2 (SKIP LOCKED unless p_wait),
--             inserts into the consumers' current slots; may NOTIFY wlsync_v1.
-- ---------------------------------------------------------------------------
DECLARE
    v_taken record;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'wlsync.fan_out: p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (SELECT count(*) FROM wlsync.consumer) < 2 THEN
        RETURN NULL;
    END IF;
    SELECT e.table_ids, e.pks, e.enqueued_at INTO v_taken
    FROM wlsync._take_events(0, p_limit, NOT coalesce(p_wait, false)) AS e;
    IF wlsync._fan_out_events(v_taken.table_ids, v_taken.pks, v_taken.enqueued_at, NULL) > 0 THEN
        PERFORM wlsync._wake_drivers();
    END IF;
    RETURN cardinality(v_taken.pks)::bigint;
END
$function$;

COMMENT ON FUNCTION wlsync.fan_out(integer, boolean) IS
    'Driver/DBA: with several consumers, move events of the writers'' ring into each consumer''s ring; NULL with one';
