CREATE OR REPLACE FUNCTION wlsync._on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._on_sql_drop()  event trigger wlsync_sql_drop
--   DROP TABLE of a tracked table: forgets it (registry, pending events,
--   dead letters, its generated capture function); WL keeps its copy.
--   Dropping one of wlsync's capture triggers from a table that stays
--   tracked is refused: capture would stop silently. Use wlsync.untrack.
-- Raises:     55000 for a dropped capture trigger of a tracked table.
-- Touches:    wlsync.tracked_table, wlsync.queue, wlsync.dead_letter.
-- ---------------------------------------------------------------------------
DECLARE
    v_dropped record;
BEGIN
    FOR v_dropped IN
        SELECT t.table_id
        FROM pg_event_trigger_dropped_objects() AS d
        JOIN wlsync.tracked_table AS t ON t.relid = d.objid
        WHERE d.object_type IN ('table', 'partitioned table')   -- named, or dropped by CASCADE
    LOOP
        PERFORM wlsync._discard_table_events(v_dropped.table_id);
        DELETE FROM wlsync.tracked_table WHERE table_id = v_dropped.table_id;  -- cascades
        EXECUTE format('DROP FUNCTION IF EXISTS wlsync.%I()', '_capture_row_' || v_dropped.table_id);
        EXECUTE format('DROP FUNCTION IF EXISTS wlsync.%I(jsonb[])', '_read_rows_' || v_dropped.table_id);
    END LOOP;

    IF EXISTS (
        SELECT 1
        FROM pg_event_trigger_dropped_objects() AS d
        JOIN wlsync.tracked_table AS t
          ON t.relid = to_regclass(format('%I.%I', d.address_names[1], d.address_names[2]))
        WHERE d.object_type = 'trigger' AND d.original AND d.address_names[3] LIKE 'wlsync\_capture\_%'
    ) THEN
        RAISE EXCEPTION 'wlsync capture triggers of a tracked table cannot be dropped one by one'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'To stop capturing the table, SELECT wlsync.untrack(''<table>'');';
    END IF;
END
$function$;

COMMENT ON FUNCTION wlsync._on_sql_drop() IS
    'Internal event trigger: forgets dropped tracked tables, refuses dropping a capture trigger alone';
