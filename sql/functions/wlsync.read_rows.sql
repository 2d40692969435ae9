CREATE OR REPLACE FUNCTION wlsync.read_rows(p_table regclass, p_after jsonb, p_limit integer)
RETURNS TABLE (pk jsonb, row_data jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.read_rows(p_table, p_after, p_limit)
--   One page of a tracked table in primary-key order, rendered like
--   wlsync.current_rows: a table as WL should hold it, read page by page
--   (keyset pagination, each page an index range scan, so memory and time per
--   page stay bounded). verify compares checksums instead
--   (wlsync.range_checksums).
-- Parameters: p_table  a tracked table
--             p_after  the pk of the last row of the previous page (as
--                      returned), or NULL for the first page
--             p_limit  page size, at least 1
-- Returns:    pk (key columns as text), row_data (every column as text)
-- Raises:     22023 when p_table is not tracked or p_limit < 1.
-- Touches:    reads p_table (ACCESS SHARE).
-- ---------------------------------------------------------------------------
DECLARE
    v_pk_columns name[];
    v_key_list text;
BEGIN
    IF p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'wlsync.read_rows: p_limit must be at least 1, got %', p_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.pk_columns INTO v_pk_columns
    FROM wlsync.tracked_table AS t WHERE t.table_id = wlsync._tracked_table_id(p_table);
    SELECT string_agg(format('t.%I', c), ', ') INTO v_key_list FROM unnest(v_pk_columns) AS c;

    RETURN QUERY EXECUTE format($sql$
        SELECT %1$s, %2$s
        FROM %3$s AS t
        WHERE $1 IS NULL OR (%4$s) > (%5$s)
        ORDER BY %4$s
        LIMIT $2$sql$,
        wlsync._text_object_sql(p_table, v_pk_columns, 't'),
        wlsync._text_object_sql(p_table, NULL, 't'),
        p_table, v_key_list,
        wlsync._key_values_sql(p_table, v_pk_columns, '$1', false))
    USING p_after, p_limit;
END
$function$;

COMMENT ON FUNCTION wlsync.read_rows(regclass, jsonb, integer) IS
    'One page of a tracked table in primary-key order (all values as text), as WL should hold it';
