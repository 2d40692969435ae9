CREATE OR REPLACE FUNCTION wlsync.discard_dead_letters(p_table regclass DEFAULT NULL, p_pk jsonb DEFAULT NULL,
                                                       p_consumer text DEFAULT 'default')
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.discard_dead_letters([p_table [, p_pk [, p_consumer]]])
--   Gives up on dead letters: removes them and their keys' pending events in
--   the consumer's queue (its ring, and the writers' ring while it is the
--   only consumer: with several, those events are every consumer's).
--   WL keeps whatever it had for those keys (verify names them); the next
--   change of such a key in MDB is synced as usual.
-- Parameters: p_table  only this table's (NULL: every table)
--             p_pk     only this key (either spelling; needs p_table)
--             p_consumer  whose dead letters; default 'default'
-- Returns:    how many dead letters were discarded
-- Raises:     22023 when p_table is not tracked, there is no such consumer,
--             or p_pk without p_table.
-- Touches:    deletes from wlsync.dead_letter and the rings' slot tables
--             (scans them; waits for a driver holding one of those events).
-- ---------------------------------------------------------------------------
DECLARE
    v_consumer integer := wlsync._consumer_id(p_consumer);
    v_gone record;
    v_slot record;
    v_count bigint;
BEGIN
    IF p_pk IS NOT NULL AND p_table IS NULL THEN
        RAISE EXCEPTION 'wlsync.discard_dead_letters: give the table of key %', p_pk
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH gone AS (
        DELETE FROM wlsync.dead_letter AS d
        WHERE d.consumer_id = v_consumer
          AND (p_table IS NULL OR d.table_id = wlsync._tracked_table_id(p_table))
          AND (p_pk IS NULL OR d.pk = wlsync._queue_key(p_table, p_pk))
        RETURNING d.table_id, d.pk
    )
    SELECT array_agg(g.table_id) AS table_ids, array_agg(g.pk) AS pks INTO v_gone FROM gone AS g;
    v_count := coalesce(cardinality(v_gone.pks), 0)::bigint;
    IF v_count > 0 THEN
        FOR v_slot IN SELECT s.ring, s.slot FROM wlsync.queue_slot AS s
                      WHERE s.ring = v_consumer
                         OR (s.ring = 0 AND (SELECT count(*) FROM wlsync.consumer) = 1) LOOP
            EXECUTE format('DELETE FROM wlsync.%I AS q USING unnest($1, $2) AS g(table_id, pk)
                            WHERE q.table_id = g.table_id AND q.pk = g.pk',
                           wlsync._slot_table(v_slot.ring, v_slot.slot))
            USING v_gone.table_ids, v_gone.pks;
        END LOOP;
    END IF;
    RETURN v_count;
END
$function$;

COMMENT ON FUNCTION wlsync.discard_dead_letters(regclass, jsonb, text) IS
    'Give up on dead letters (all, a table''s, or one key) and drop their pending events; returns how many';
