CREATE OR REPLACE FUNCTION wlsync._tracked_table_id(p_table regclass)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._tracked_table_id(p_table)
--   The registry id of a tracked table.
-- Parameters: p_table  the table (regclass)
-- Returns:    wlsync.tracked_table.table_id
-- Raises:     22023 when p_table is not tracked, saying how to track it.
-- Touches:    reads wlsync.tracked_table.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer;
BEGIN
    SELECT t.table_id INTO v_table_id
    FROM wlsync.tracked_table AS t
    WHERE t.relid = p_table;
    IF v_table_id IS NULL THEN
        RAISE EXCEPTION 'table % is not tracked by wlsync', p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Run SELECT wlsync.track(%L); first.', p_table::text);
    END IF;
    RETURN v_table_id;
END
$function$;

COMMENT ON FUNCTION wlsync._tracked_table_id(regclass) IS
    'Internal: table_id of a tracked table, or a clear error naming the untracked table';
