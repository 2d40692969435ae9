CREATE OR REPLACE FUNCTION wlsync.current_rows(p_table regclass, p_pks jsonb[])
RETURNS TABLE (requested_pk jsonb, pk jsonb, row_data jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.current_rows(p_table, p_pks)
--   The rows of a tracked table for the given keys, as WL should have them:
--   the claim reads claimed keys through it, verify checks WL's keys with it.
--   Every value is rendered as its PostgreSQL text output with the output
--   settings pinned (UTC, ISO dates, hex bytea, exact floats), so the same row
--   always reads the same, whoever asks (wlsync._text_object_sql). Keys are
--   cast to their columns' base types (wlsync._key_values_sql). Runs the
--   table's generated reader (wlsync._install_reader, a cached plan) while
--   it matches the table's columns; builds the same query otherwise.
-- Parameters: p_table  a tracked table
--             p_pks    keys as jsonb objects {"column": value, ...}; a queue
--                      key or a returned pk, both spellings work
-- Returns:    one row per requested key: requested_pk (as given), pk (the
--             key's columns as text), row_data (every column as text, JSON null
--             for NULL; NULL when no such row exists)
-- Raises:     22023 when p_table is not tracked; 22P02 for a key value that
--             does not fit its column's type.
-- Touches:    reads p_table by its primary key (ACCESS SHARE).
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer := wlsync._tracked_table_id(p_table);
    v_reader_columns text;
BEGIN
    SELECT t.reader_columns INTO v_reader_columns
    FROM wlsync.tracked_table AS t WHERE t.table_id = v_table_id;
    -- The table's generated reader, while it matches the table's columns.
    IF v_reader_columns = wlsync._columns_signature(p_table) THEN
        RETURN QUERY EXECUTE format('SELECT * FROM wlsync.%I($1)', '_read_rows_' || v_table_id) USING p_pks;
        RETURN;
    END IF;

    RETURN QUERY EXECUTE wlsync._current_rows_sql(p_table, '$1')
    USING p_pks;
END
$function$;

COMMENT ON FUNCTION wlsync.current_rows(regclass, jsonb[]) IS
    'The current rows (all values as text) of a tracked table for the given keys; NULL row_data when gone';
