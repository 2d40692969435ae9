CREATE OR REPLACE FUNCTION wlsync._fan_out_events(p_table_ids integer[], p_pks jsonb[], p_enqueued_at timestamptz[],
                                                  p_except integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._fan_out_events(p_table_ids, p_pks, p_enqueued_at, p_except)
--   Copies events taken from the writers' ring into the rings of every
--   consumer that receives their table, one INSERT per consumer (their
--   capture time kept): the set-based step that keeps a writer's cost the
--   same however many consumers there are.
-- Parameters: three arrays of equal length (wlsync._take_events' answer);
--             p_except  a consumer_id left out (the caller keeps its own), or
--             NULL
-- Returns:    the number of copies made
-- Touches:    inserts into the consumers' current slots (their ring locks,
--             and the consumer set's, shared, until the caller ends); reads
--             wlsync.consumer and consumer_table.
-- ---------------------------------------------------------------------------
DECLARE
    v_consumer integer;
    v_copied bigint;
    v_total bigint := 0::bigint;
BEGIN
    IF coalesce(cardinality(p_pks), 0) = 0 THEN
        RETURN 0::bigint;
    END IF;
    PERFORM wlsync._ring_lock(0, 'shared');  -- the set of consumers stays as it is until commit
    FOR v_consumer IN SELECT c.consumer_id FROM wlsync.consumer AS c
                      WHERE c.consumer_id IS DISTINCT FROM p_except ORDER BY c.consumer_id LOOP
        EXECUTE format($sql$
            INSERT INTO %s (table_id, pk, enqueued_at)
            SELECT e.table_id, e.pk, e.enqueued_at
            FROM unnest($1, $2, $3) AS e(table_id, pk, enqueued_at)
            WHERE e.table_id IN (SELECT ct.table_id FROM wlsync.consumer_table AS ct WHERE ct.consumer_id = $4)$sql$,
            wlsync._current_queue(v_consumer))
        USING p_table_ids, p_pks, p_enqueued_at, v_consumer;
        GET DIAGNOSTICS v_copied = ROW_COUNT;
        v_total := v_total + v_copied;
    END LOOP;
    RETURN v_total;
END
$function$;

COMMENT ON FUNCTION wlsync._fan_out_events(integer[], jsonb[], timestamptz[], integer) IS
    'Internal: copy events of the writers'' ring into every interested consumer''s ring';
