CREATE OR REPLACE FUNCTION wlsync._take_events(p_ring integer, p_limit integer, p_skip_locked boolean DEFAULT true,
                                               OUT table_ids integer[], OUT pks jsonb[], OUT enqueued_at timestamptz[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._take_events(p_ring, p_limit [, p_skip_locked])
--   Deletes up to p_limit events from one ring (0: the writers' ring; n:
--   consumer n's) and returns them: the first half of a claim
--   (wlsync.claim_sync_events) and of a fan-out (wlsync.fan_out). The rows
--   are gone when the caller commits; a rollback leaves them queued.
--   Where events are taken (see wlsync.maintain_queue): sealed slots first,
--   oldest first, each from the block where the previous take of it stopped
--   (a shared, non-transactional resume point, so a drained prefix is never
--   scanned again, however many dead rows an old snapshot keeps there); then
--   a retired slot; then the current slot (then free slots, normally empty).
--   Those may still receive rows anywhere, so their scan starts at the first
--   row the previous take found and wraps around to the start when that is
--   not enough. Rows are locked FOR UPDATE SKIP LOCKED in a MATERIALIZED CTE
--   (a plain subquery with LIMIT may be run again and lock rows it does not
--   return) and deleted by ctid.
-- Parameters: p_ring         the ring
--             p_limit        at most this many events, >= 1
--             p_skip_locked  false: wait for rows another transaction holds
--                            instead of passing them by (a consistent-mode
--                            batch must take every event its snapshot sees)
-- Returns:    three arrays of equal length, in no particular order (empty
--             when nothing was taken)
-- Touches:    deletes from the ring's slot tables (row locks until the caller
--             ends); moves their resume sequences.
-- ---------------------------------------------------------------------------
DECLARE
    v_slot record;
    v_table text;
    v_room integer;
    v_resume bigint;
    v_last tid;
    v_ids integer[];
    v_keys jsonb[];
    v_times timestamptz[];
    v_lock text := CASE WHEN p_skip_locked THEN 'FOR UPDATE SKIP LOCKED' ELSE 'FOR UPDATE' END;
BEGIN
    table_ids := '{}'::integer[];
    pks := '{}'::jsonb[];
    enqueued_at := '{}'::timestamptz[];
    FOR v_slot IN
        SELECT s.slot, s.state, s.sealed_blocks FROM wlsync.queue_slot AS s
        WHERE s.ring = p_ring
        ORDER BY s.state = 'free', s.state = 'current', s.state = 'retired', s.retired_at
    LOOP
        v_room := p_limit - cardinality(pks);
        EXIT WHEN v_room <= 0;
        v_table := wlsync._slot_table(p_ring, v_slot.slot);
        -- A slot with no block holds no row, not even an uncommitted one (a
        -- TRUNCATEd slot not written since: the free ones, and every slot of a
        -- sole consumer's own ring): no scan to plan. Half the cost of a claim
        -- that finds little, which is every claim of a driver that keeps up.
        -- Not a sealed slot: the take that finds nothing there marks it walked,
        -- which wlsync.maintain_queue waits for before its TRUNCATE (a sealed
        -- slot emptied to no block otherwise, by VACUUM's truncation of empty
        -- pages or a TRUNCATE by hand, would stay sealed, and rotation with it).
        CONTINUE WHEN v_slot.state <> 'sealed'
                  AND pg_relation_size(format('wlsync.%I', v_table)::regclass) = 0;
        EXECUTE format('SELECT last_value FROM wlsync.%I', v_table || '_resume') INTO v_resume;
        IF v_slot.state = 'sealed' THEN
            CONTINUE WHEN v_resume >= v_slot.sealed_blocks;
            EXECUTE format($sql$
                WITH head AS MATERIALIZED (
                    SELECT q.ctid FROM wlsync.%1$I AS q WHERE q.ctid >= $1 LIMIT $2 %2$s
                ), claimed AS (
                    DELETE FROM wlsync.%1$I AS q WHERE q.ctid = ANY (ARRAY(SELECT h.ctid FROM head AS h))
                    RETURNING q.table_id, q.pk, q.enqueued_at
                )
                SELECT array_agg(c.table_id), array_agg(c.pk), array_agg(c.enqueued_at),
                       (SELECT max(h.ctid) FROM head AS h)
                FROM claimed AS c$sql$, v_table, v_lock)
            INTO v_ids, v_keys, v_times, v_last
            USING format('(%s,0)', v_resume)::tid, v_room;
            -- The next take resumes at this one's last block (what is left
            -- there is found again); having found nothing, at the end: the
            -- slot is then left to wlsync.maintain_queue to rescan or TRUNCATE.
            PERFORM setval(format('wlsync.%I', v_table || '_resume'),
                           coalesce((v_last::text::point)[0]::bigint, v_slot.sealed_blocks));
        ELSE
            -- Rows still arrive here, possibly behind any point (a writer's
            -- half-filled page, a long transaction committing late): scan
            -- from the block where the first row of the previous take
            -- was, then wrap around to the start if that is not enough.
            EXECUTE format($sql$
                WITH ahead AS MATERIALIZED (
                    SELECT q.ctid FROM wlsync.%1$I AS q WHERE q.ctid >= $1 LIMIT $2 %2$s
                ), behind AS MATERIALIZED (
                    SELECT q.ctid FROM wlsync.%1$I AS q WHERE q.ctid < $1
                    LIMIT $2 - (SELECT count(*) FROM ahead) %2$s
                ), head AS (
                    SELECT a.ctid FROM ahead AS a UNION ALL SELECT b.ctid FROM behind AS b
                ), claimed AS (
                    DELETE FROM wlsync.%1$I AS q WHERE q.ctid = ANY (ARRAY(SELECT h.ctid FROM head AS h))
                    RETURNING q.table_id, q.pk, q.enqueued_at
                )
                SELECT array_agg(c.table_id), array_agg(c.pk), array_agg(c.enqueued_at),
                       (SELECT min(h.ctid) FROM head AS h)
                FROM claimed AS c$sql$, v_table, v_lock)
            INTO v_ids, v_keys, v_times, v_last
            USING format('(%s,0)', v_resume)::tid, v_room;
            IF v_last IS NOT NULL THEN
                PERFORM setval(format('wlsync.%I', v_table || '_resume'), (v_last::text::point)[0]::bigint);
            END IF;
        END IF;
        table_ids := table_ids || v_ids;
        pks := pks || v_keys;
        enqueued_at := enqueued_at || v_times;
    END LOOP;
END
$function$;

COMMENT ON FUNCTION wlsync._take_events(integer, integer, boolean) IS
    'Internal: delete up to p_limit events from a ring (SKIP LOCKED unless told otherwise) and return them';
