CREATE OR REPLACE FUNCTION wlsync._drop_overflow()
RETURNS text[]
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._drop_overflow()
--   Step 6 of wlsync.maintain_queue: a consumer whose backlog holds more than
--   its max_pending events loses them and is marked for resync. A consumer
--   never needs history (its driver reads current rows), so what WL-side
--   CDC users fear most, a stopped consumer filling MDB's disk, cannot
--   happen: the driver rebuilds WL when it returns (wlsync.consumer_work,
--   verify --repair) and ends equal to MDB.
--   Each consumer is looked at most every 10 s, by wlsync._backlog: a size
--   lookup, and a count only when the size could hold that many events.
--   Its backlog: its own ring, and, while it is the only consumer, the
--   writers' sealed slots (their current and retired slots still receive
--   writers' rows: never TRUNCATEd here). With several consumers the
--   writers' sealed slots fill only when no driver of any consumer fans out:
--   when they alone hold more than the smallest max_pending they are dropped
--   and every consumer is marked.
-- Returns:    what was dropped, e.g. {"consumer search: dropped 1200000
--             events past max_pending (1000000)"}
-- Touches:    TRUNCATE (ACCESS EXCLUSIVE, NOWAIT) of the slots dropped; a
--             slot in use stays for a later call; updates wlsync.consumer.
-- ---------------------------------------------------------------------------
DECLARE
    v_done text[] := '{}'::text[];
    v_consumer record;
    v_sole boolean := (SELECT count(*) FROM wlsync.consumer) = 1;
    v_checked boolean := false;
    v_dropped bigint;
    v_limit bigint;
BEGIN
    FOR v_consumer IN SELECT c.consumer_id, c.name, c.max_pending FROM wlsync.consumer AS c
                      WHERE c.pending_checked_at IS NULL OR c.pending_checked_at < now() - interval '10 seconds'
                      ORDER BY c.consumer_id LOOP
        UPDATE wlsync.consumer SET pending_checked_at = now() WHERE consumer_id = v_consumer.consumer_id;
        v_checked := true;
        CONTINUE WHEN wlsync._backlog(v_consumer.consumer_id, v_sole, v_consumer.max_pending)
                      <= v_consumer.max_pending;
        v_dropped := wlsync._drop_slots(v_consumer.consumer_id, v_sole);
        IF v_dropped > 0 THEN
            UPDATE wlsync.consumer
            SET resync_requested_at = now(), dropped_events = dropped_events + v_dropped, overflows = overflows + 1
            WHERE consumer_id = v_consumer.consumer_id;
            v_done := v_done || format('consumer %s: dropped %s events past max_pending (%s)',
                                       v_consumer.name, v_dropped, v_consumer.max_pending);
        END IF;
    END LOOP;

    -- Several consumers, none fanning out: the writers' sealed slots.
    IF v_checked AND NOT v_sole THEN
        SELECT min(c.max_pending) INTO v_limit FROM wlsync.consumer AS c;
        IF wlsync._backlog(0, true, v_limit) > v_limit THEN
            v_dropped := wlsync._drop_slots(0, true);
            IF v_dropped > 0 THEN
                UPDATE wlsync.consumer
                SET resync_requested_at = now(), dropped_events = dropped_events + v_dropped, overflows = overflows + 1;
                v_done := v_done || format('every consumer: dropped %s events of the writers'' ring past max_pending (%s)',
                                           v_dropped, v_limit);
            END IF;
        END IF;
    END IF;
    RETURN v_done;
END
$function$;

COMMENT ON FUNCTION wlsync._drop_overflow() IS
    'Internal: drop the backlog of consumers past their max_pending and mark them for resync (wlsync.maintain_queue)';
