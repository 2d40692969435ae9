CREATE OR REPLACE FUNCTION wlsync._capture_truncate()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._capture_truncate()  BEFORE TRUNCATE ... FOR EACH STATEMENT trigger
--   Row triggers do not fire on TRUNCATE. Before the table is emptied, this
--   enqueues the key of every row it still holds, so the claim reads them as
--   gone and WL deletes them: a TRUNCATE is "all these keys changed", like any
--   other change. Cost: one queue row per truncated row, in the truncating
--   transaction (which already holds ACCESS EXCLUSIVE on the table, so these
--   events are ordered after every earlier writer of those keys).
-- Trigger arguments: TG_ARGV[0]  wlsync.tracked_table.table_id of the tracked
--   table (for a partition: of its tracked partitioned ancestor).
-- Touches: reads the truncated table, inserts into wlsync.queue, may NOTIFY.
-- SECURITY DEFINER with a pinned search_path: the truncating role needs no
--   privilege on wlsync.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer := TG_ARGV[0]::integer;
    v_pk_columns name[];
BEGIN
    SELECT t.pk_columns INTO STRICT v_pk_columns
    FROM wlsync.tracked_table AS t
    WHERE t.table_id = v_table_id;

    EXECUTE format('INSERT INTO %s (table_id, pk) SELECT %s, %s FROM %s AS t',
                   wlsync._current_queue(), v_table_id,
                   wlsync._key_json_sql(TG_RELID::regclass, v_pk_columns, 't'), TG_RELID::regclass);

    PERFORM wlsync._wake_drivers();
    RETURN NULL;
END
$function$;

COMMENT ON FUNCTION wlsync._capture_truncate() IS
    'Internal trigger: enqueues every key of a table about to be truncated';
