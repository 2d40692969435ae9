CREATE OR REPLACE FUNCTION wlsync._rebuild_ring_views()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._rebuild_ring_views()
--   (Re)creates the views over every ring slot table, the writers' ring and
--   each consumer's (wlsync.add_consumer and remove_consumer call this, and
--   so does the post-apply step of every migration):
--   wlsync.queue      every pending event: slot, table_id, pk, enqueued_at,
--                     ring (0: the writers' ring, not yet fanned out; n:
--                     consumer n's), consumer (its name; NULL for ring 0);
--   wlsync.consumers  one row per consumer: name, tables (regclass[], in
--                     the order they were tracked),
--                     pending_events (its ring, plus the writers' ring's
--                     events of its tables: they are its backlog too),
--                     oldest_enqueued_at, dead_letters (parked),
--                     retrying_keys, backfills_running (tables whose
--                     backfill pass is incomplete), max_pending,
--                     resync_requested_at, dropped_events, overflows,
--                     created_at. It counts every pending event: a DBA's
--                     view, not a metric (wlsync.metrics samples).
-- Touches:    CREATE OR REPLACE VIEW wlsync.queue and wlsync.consumers;
--             reads wlsync.queue_slot.
-- ---------------------------------------------------------------------------
DECLARE
    v_select text;
BEGIN
    SELECT string_agg(format('SELECT %s::smallint AS slot, q.table_id, q.pk, q.enqueued_at, %s AS ring, '
                             '%L::text AS consumer FROM wlsync.%I AS q',
                             s.slot, s.ring, k.name, wlsync._slot_table(s.ring, s.slot)),
                      E'\nUNION ALL\n' ORDER BY s.ring, s.slot)
    INTO v_select
    FROM wlsync.queue_slot AS s
    LEFT JOIN wlsync.consumer AS k ON k.consumer_id = s.ring;
    EXECUTE 'CREATE OR REPLACE VIEW wlsync.queue AS ' || v_select;
    COMMENT ON VIEW wlsync.queue IS
        'Every pending event (table, key, when), whichever ring slot holds it: ring 0 is the writers'' (not yet fanned out), ring n consumer n''s';

    CREATE OR REPLACE VIEW wlsync.consumers AS
    SELECT k.name,
           ARRAY(SELECT t.relid::regclass FROM wlsync.consumer_table AS ct
                 JOIN wlsync.tracked_table AS t ON t.table_id = ct.table_id
                 WHERE ct.consumer_id = k.consumer_id ORDER BY t.table_id) AS tables,
           coalesce(p.events, 0) AS pending_events, p.oldest AS oldest_enqueued_at,
           (SELECT count(*) FROM wlsync.dead_letter AS d
            WHERE d.consumer_id = k.consumer_id AND d.parked_at IS NOT NULL) AS dead_letters,
           (SELECT count(*) FROM wlsync.dead_letter AS d
            WHERE d.consumer_id = k.consumer_id AND d.parked_at IS NULL) AS retrying_keys,
           ARRAY(SELECT t.relid::regclass FROM wlsync.backfill_state AS b
                 JOIN wlsync.tracked_table AS t ON t.table_id = b.table_id
                 WHERE b.consumer_id = k.consumer_id AND b.completed_at IS NULL
                 ORDER BY t.table_id) AS backfills_running,
           k.max_pending, k.resync_requested_at, k.dropped_events, k.overflows, k.created_at
    FROM wlsync.consumer AS k
    LEFT JOIN LATERAL (
        SELECT count(*) AS events, min(q.enqueued_at) AS oldest FROM wlsync.queue AS q
        WHERE q.ring = k.consumer_id
           OR (q.ring = 0 AND q.table_id IN (SELECT ct.table_id FROM wlsync.consumer_table AS ct
                                             WHERE ct.consumer_id = k.consumer_id))
    ) AS p ON true;
    COMMENT ON VIEW wlsync.consumers IS
        'Consumers (one WL each): their tables, pending events (counted), dead letters, backfills, overflow state';
END
$function$;

COMMENT ON FUNCTION wlsync._rebuild_ring_views() IS
    'Internal: recreate the views wlsync.queue and wlsync.consumers over every ring';
