CREATE OR REPLACE FUNCTION wlsync.untrack(p_table regclass)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.untrack(p_table)
--   Stops capturing p_table: drops its wlsync_capture_* triggers (on the
--   table and its partitions) and its generated capture function, removes it
--   from wlsync.tracked_table, and discards its pending events: with capture
--   gone, WL's copy of the table stops following MDB anyway, and events of an
--   untracked table could never be applied. WL keeps the copy it has; to have
--   the last changes in it, let the driver empty the queue before untracking.
--   Waits for drivers holding a batch with events of p_table to commit.
-- Parameters: p_table  a tracked table
-- Returns:    the number of pending events discarded
-- Raises:     22023 when p_table is not tracked.
-- Touches:    drops triggers (ACCESS EXCLUSIVE on p_table until commit),
--             deletes from every ring's slot tables (scans them) and wlsync.tracked_table.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer := wlsync._tracked_table_id(p_table);
    v_part regclass;
    v_discarded bigint;
BEGIN
    -- Forget the table first: the wlsync_sql_drop event trigger refuses to
    -- drop capture triggers of a table that is still tracked.
    v_discarded := wlsync._discard_table_events(v_table_id);
    DELETE FROM wlsync.tracked_table WHERE table_id = v_table_id;
    EXECUTE format('DROP TRIGGER IF EXISTS wlsync_capture_insert ON %s', p_table);
    EXECUTE format('DROP TRIGGER IF EXISTS wlsync_capture_update ON %s', p_table);
    EXECUTE format('DROP TRIGGER IF EXISTS wlsync_capture_delete ON %s', p_table);
    -- pg_partition_tree lists nothing for a table that is not partitioned.
    FOR v_part IN SELECT p_table UNION SELECT t.relid FROM pg_partition_tree(p_table) AS t LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS wlsync_capture_truncate ON %s', v_part);
    END LOOP;
    EXECUTE format('DROP FUNCTION IF EXISTS wlsync.%I()', '_capture_row_' || v_table_id);
    EXECUTE format('DROP FUNCTION IF EXISTS wlsync.%I(jsonb[])', '_read_rows_' || v_table_id);
    RETURN v_discarded;
END
$function$;

COMMENT ON FUNCTION wlsync.untrack(regclass) IS
    'Admin: stop capturing a table; drops its triggers and discards its pending events (returns how many)';
