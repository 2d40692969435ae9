CREATE OR REPLACE FUNCTION wlsync.remove_consumer(p_name text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.remove_consumer(p_name)
--   Removes a consumer: its ring (and the events in it), its dead letters
--   and backfill passes. The other consumers are untouched. Its tables stay
--   tracked (other consumers may receive them; untrack those nobody needs).
--   Stop its drivers first: their next claim fails ("no consumer named").
--   While it is the only consumer left, the remaining one takes the
--   writers' events directly again.
-- Parameters: p_name  the consumer
-- Returns:    how many pending events of its ring were discarded
-- Raises:     22023 when there is no such consumer.
-- Touches:    drops its three ring tables and sequences (ACCESS EXCLUSIVE:
--             waits for its drivers' open claims); the consumer set's lock
--             (exclusive: waits for fan-outs in flight);
--             wlsync.consumer and what references it; the views wlsync.queue
--             and wlsync.consumers.
-- ---------------------------------------------------------------------------
DECLARE
    v_id integer := wlsync._consumer_id(p_name);
    v_slot record;
    v_events bigint;
    v_discarded bigint := 0::bigint;
BEGIN
    LOCK TABLE wlsync.consumer IN SHARE ROW EXCLUSIVE MODE;
    PERFORM wlsync._ring_lock(0, 'exclusive');  -- no fan-out copies into the ring being dropped
    FOR v_slot IN SELECT s.slot FROM wlsync.queue_slot AS s WHERE s.ring = v_id LOOP
        EXECUTE format('LOCK TABLE wlsync.%I IN ACCESS EXCLUSIVE MODE', wlsync._slot_table(v_id, v_slot.slot));
        EXECUTE format('SELECT count(*) FROM wlsync.%I', wlsync._slot_table(v_id, v_slot.slot)) INTO v_events;
        v_discarded := v_discarded + v_events;
    END LOOP;
    DELETE FROM wlsync.queue_slot WHERE ring = v_id;
    DELETE FROM wlsync.consumer WHERE consumer_id = v_id;  -- its tables, dead letters, passes with it
    PERFORM wlsync._rebuild_ring_views();  -- before the DROPs: the views name the tables
    FOR v_slot IN SELECT g.slot::smallint AS slot FROM generate_series(0, 2) AS g(slot) LOOP
        EXECUTE format('DROP TABLE wlsync.%I', wlsync._slot_table(v_id, v_slot.slot));
        EXECUTE format('DROP SEQUENCE wlsync.%I', wlsync._slot_table(v_id, v_slot.slot) || '_resume');
    END LOOP;
    RETURN v_discarded;
END
$function$;

COMMENT ON FUNCTION wlsync.remove_consumer(text) IS
    'Admin: remove a consumer with its ring, pending events, dead letters and backfill passes; returns the events discarded';
