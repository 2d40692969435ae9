CREATE OR REPLACE FUNCTION wlsync._regenerate_captures()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._regenerate_captures()
--   Regenerates the capture function of every tracked table
--   (wlsync._install_capture), after the ring rotated or the wake-up changed.
-- Returns:    how many functions were regenerated
-- Touches:    pg_proc; the caller holds the capture lock exclusively.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer;
    v_count integer := 0;
BEGIN
    FOR v_table_id IN
        SELECT t.table_id FROM wlsync.tracked_table AS t
        WHERE EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.relid)
        ORDER BY t.table_id
    LOOP
        PERFORM wlsync._install_capture(v_table_id);
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$function$;

COMMENT ON FUNCTION wlsync._regenerate_captures() IS
    'Internal: regenerate every tracked table''s capture function';
