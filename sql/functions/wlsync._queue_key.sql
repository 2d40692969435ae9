CREATE OR REPLACE FUNCTION wlsync._queue_key(p_table regclass, p_pk jsonb)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._queue_key(p_table, p_pk)
--   A key as the queue spells it (wlsync._key_json_sql), from either spelling
--   (the queue's, or the text form the claim and verify return).
-- Parameters: p_table  a tracked table; p_pk  a key of it
-- Returns:    jsonb
-- Raises:     22023 when p_table is not tracked; 22P02 for a value that does
--             not fit its key column.
-- ---------------------------------------------------------------------------
DECLARE
    v_pk_columns name[];
    v_key jsonb;
BEGIN
    SELECT t.pk_columns INTO v_pk_columns
    FROM wlsync.tracked_table AS t WHERE t.table_id = wlsync._tracked_table_id(p_table);
    EXECUTE format('SELECT %s FROM (SELECT %s) AS t', wlsync._key_json_sql(p_table, v_pk_columns, 't'),
                   wlsync._key_values_sql(p_table, v_pk_columns, '$1', true))
    INTO v_key USING p_pk;
    RETURN v_key;
END
$function$;

COMMENT ON FUNCTION wlsync._queue_key(regclass, jsonb) IS
    'Internal: a key in the queue''s spelling, from either spelling';
