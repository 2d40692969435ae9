CREATE OR REPLACE FUNCTION wlsync.enqueue_keys(p_table regclass, p_pks jsonb[], p_consumer text DEFAULT 'default')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.enqueue_keys(p_table, p_pks [, p_consumer])
--   Marks the given keys dirty, so the next drain writes their current state
--   (or their absence) to the consumer's WL: verify --repair sends every
--   differing key here.
--   Keys are re-spelled through the table's key expression, so a key given in
--   text form ({"id": "7"}) queues exactly like one the trigger wrote.
-- Parameters: p_table  a tracked table
--             p_pks    keys as jsonb objects of the key columns
--             p_consumer  whose WL (wlsync.consumers); default 'default'
-- Returns:    the number of keys enqueued
-- Raises:     22023 when p_table is not tracked or there is no such
--             consumer; 22P02 for a value that does
--             not fit its key column.
-- Touches:    inserts into the consumer's ring, may NOTIFY wlsync_v1.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer := wlsync._tracked_table_id(p_table);
    v_pk_columns name[];
    v_enqueued bigint;
BEGIN
    SELECT t.pk_columns INTO v_pk_columns FROM wlsync.tracked_table AS t WHERE t.table_id = v_table_id;
    EXECUTE format('INSERT INTO %s (table_id, pk)
                    SELECT %s, %s FROM unnest($1) AS k(pk)
                    CROSS JOIN LATERAL (SELECT %s) AS t',
                   wlsync._current_queue(wlsync._consumer_id(p_consumer)), v_table_id, wlsync._key_json_sql(p_table, v_pk_columns, 't'),
                   wlsync._key_values_sql(p_table, v_pk_columns, 'k.pk', true))
    USING p_pks;
    GET DIAGNOSTICS v_enqueued = ROW_COUNT;
    IF v_enqueued > 0 THEN
        PERFORM wlsync._wake_drivers();
    END IF;
    RETURN v_enqueued;
END
$function$;

COMMENT ON FUNCTION wlsync.enqueue_keys(regclass, jsonb[], text) IS
    'Mark keys of a tracked table dirty so the next drain rewrites them in WL (verify --repair)';
