CREATE OR REPLACE FUNCTION wlsync.discard_dead_letters(p_table regclass DEFAULT NULL, p_pk jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.discard_dead_letters([p_table [, p_pk]])
--   Gives up on dead letters: removes them and their keys' pending events.
--   WL keeps whatever it had for those keys (verify names them); the next
--   change of such a key in MDB is synced as usual.
-- Parameters: p_table  only this table's (NULL: every table)
--             p_pk     only this key (either spelling; needs p_table)
-- Returns:    how many dead letters were discarded
-- Raises:     22023 when p_table is not tracked, or p_pk without p_table.
-- Touches:    deletes from wlsync.dead_letter and wlsync.queue_0..2 (scans
--             them; waits for a
--             driver holding one of those events).
-- ---------------------------------------------------------------------------
DECLARE
    v_count bigint;
BEGIN
    IF p_pk IS NOT NULL AND p_table IS NULL THEN
        RAISE EXCEPTION 'wlsync.discard_dead_letters: give the table of key %', p_pk
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH gone AS (
        DELETE FROM wlsync.dead_letter AS d
        WHERE (p_table IS NULL OR d.table_id = wlsync._tracked_table_id(p_table))
          AND (p_pk IS NULL OR d.pk = wlsync._queue_key(p_table, p_pk))
        RETURNING d.table_id, d.pk
    ), events_0 AS (
        DELETE FROM wlsync.queue_0 AS q USING gone AS g WHERE q.table_id = g.table_id AND q.pk = g.pk
    ), events_1 AS (
        DELETE FROM wlsync.queue_1 AS q USING gone AS g WHERE q.table_id = g.table_id AND q.pk = g.pk
    ), events_2 AS (
        DELETE FROM wlsync.queue_2 AS q USING gone AS g WHERE q.table_id = g.table_id AND q.pk = g.pk
    )
    SELECT count(*) INTO v_count FROM gone;
    RETURN v_count;
END
$function$;

COMMENT ON FUNCTION wlsync.discard_dead_letters(regclass, jsonb) IS
    'Give up on dead letters (all, a table''s, or one key) and drop their pending events; returns how many';
