CREATE OR REPLACE FUNCTION wlsync.backfill(p_table regclass)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.backfill(p_table)
--   Enqueues the key of every row p_table holds, so WL gets a complete copy
--   of rows that existed before tracking began. Because the claim reads the
--   current row, a backfill is just "these keys are dirty": it is safe while
--   writers are busy and safe to repeat. One statement, one transaction.
-- Parameters: p_table  a tracked table
-- Returns:    the number of keys enqueued
-- Raises:     22023 when p_table is not tracked.
-- Touches:    reads p_table (ACCESS SHARE: writers are not blocked), inserts
--             into wlsync.queue, may NOTIFY wlsync_v1.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer := wlsync._tracked_table_id(p_table);
    v_enqueued bigint;
BEGIN
    EXECUTE format('INSERT INTO wlsync.queue (table_id, pk, op) SELECT %s, %s, %L FROM %s AS t',
                   v_table_id,
                   wlsync._key_json_sql(p_table, (SELECT t.pk_columns FROM wlsync.tracked_table AS t
                                                  WHERE t.table_id = v_table_id), 't'),
                   'B', p_table);
    GET DIAGNOSTICS v_enqueued = ROW_COUNT;
    IF v_enqueued > 0 AND (SELECT w.armed_until > now() FROM wlsync.wakeup AS w) THEN
        PERFORM pg_notify('wlsync_v1', '');
    END IF;
    RETURN v_enqueued;
END
$function$;

COMMENT ON FUNCTION wlsync.backfill(regclass) IS
    'Admin: enqueue every existing row of a tracked table (returns how many keys)';
