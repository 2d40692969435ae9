CREATE OR REPLACE FUNCTION wlsync.metrics(p_sample_blocks integer DEFAULT 1024, p_consumer text DEFAULT 'default')
RETURNS TABLE (table_schema name, table_name name, queued_events bigint, queued_exact boolean,
               oldest_enqueued_at timestamptz, oldest_age_seconds double precision,
               retrying_keys bigint, dead_letters bigint, table_rows_estimate bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.metrics(p_sample_blocks DEFAULT 1024, p_consumer DEFAULT 'default')
--   A consumer's queue figures per table it receives, cheap enough to scrape every few
--   seconds whatever the queue holds (a dashboard, postgres_exporter, the
--   driver's /metrics). Unlike wlsync.queue_status it never counts a large
--   queue: it reads at most about p_sample_blocks blocks (8 MB by default)
--   of each slot of its ring and of the writers' ring (events not yet fanned
--   out), plus its dead letters.
--   How each figure is got, and how exact it is:
--     queued_events  a slot of at most p_sample_blocks blocks (its size is
--        read from the file, pg_relation_size) is counted row by row: exact.
--        A larger slot is sampled: TABLESAMPLE SYSTEM keeps each block with
--        probability p_sample_blocks / blocks, and the visible rows found are
--        divided by that probability. Drained blocks (dead rows of committed
--        claims) count as empty, so the estimate follows the live rows only.
--        Its error is a few percent of the slot's rows, more for a table
--        whose events come in rare bursts. queued_exact says which: false
--        when any slot was sampled. Not from pg_stat's n_live_tup: it has
--        no per-table split, and a crash recovery resets it to zero.
--        Events of a driver's open batch count until that batch commits.
--     oldest_enqueued_at / oldest_age_seconds  exact when queued_exact;
--        otherwise the oldest event among the rows read: the sample, and the
--        first 10,000 rows from each sampled slot's head (the block its next
--        claim starts at, a TID range scan): claims take a slot in the order
--        its rows were written, so the queue's oldest event is found there.
--        A table's older straggler elsewhere in a sampled slot can be
--        missed: the age shown is then too young, never too old.
--        NULL when no event of the table was seen.
--     retrying_keys, dead_letters  exact counts of wlsync.dead_letter.
--     table_rows_estimate  rows of the tracked table itself, from pg_stat
--        (n_live_tup) or else pg_class.reltuples: what a backfill or a verify
--        will walk, for progress bars. 0 when never counted.
-- Parameters: p_sample_blocks  blocks read per slot at most (>= 1); default
--             1024 (8 MB, a few tens of milliseconds)
--             p_consumer  whose figures (wlsync.consumers); default 'default'
-- Returns:    one row per tracked table: table_schema, table_name,
--             queued_events, queued_exact, oldest_enqueued_at,
--             oldest_age_seconds (now() - oldest_enqueued_at),
--             retrying_keys, dead_letters (parked keys), table_rows_estimate
-- Raises:     22023 when p_sample_blocks < 1 or there is no such consumer.
-- Touches:    reads wlsync.queue_0..2 (ACCESS SHARE: a TRUNCATE by
--             wlsync.maintain_queue during the scrape is postponed to its next
--             call), their resume sequences, wlsync.queue_slot,
--             wlsync.dead_letter, wlsync.tracked_table, pg_class, pg_stat;
--             takes no row locks and writes nothing.
-- ---------------------------------------------------------------------------
DECLARE
    v_slot record;
    v_queue text;
    v_blocks bigint;
    v_resume bigint;
    v_fraction double precision;
    v_ids integer[];
    v_counts double precision[];
    v_oldest timestamptz[];
    v_all_ids integer[] := '{}'::integer[];
    v_all_counts double precision[] := '{}'::double precision[];
    v_all_oldest timestamptz[] := '{}'::timestamptz[];
    v_exact boolean := true;
    v_consumer integer := wlsync._consumer_id(p_consumer);
BEGIN
    IF p_sample_blocks IS NULL OR p_sample_blocks < 1 THEN
        RAISE EXCEPTION 'wlsync.metrics: p_sample_blocks must be at least 1, got %', p_sample_blocks
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    FOR v_slot IN SELECT s.ring, s.slot FROM wlsync.queue_slot AS s
                  WHERE s.ring IN (0, v_consumer) ORDER BY s.ring, s.slot LOOP
        v_queue := format('wlsync.%I', wlsync._slot_table(v_slot.ring, v_slot.slot));
        v_blocks := pg_relation_size(v_queue::regclass) / current_setting('block_size')::bigint;
        CONTINUE WHEN v_blocks = 0;
        IF v_blocks <= p_sample_blocks THEN
            EXECUTE format($sql$
                SELECT array_agg(g.table_id), array_agg(g.events), array_agg(g.oldest)
                FROM (SELECT q.table_id, count(*)::double precision AS events, min(q.enqueued_at) AS oldest
                      FROM %s AS q GROUP BY q.table_id) AS g$sql$, v_queue)
            INTO v_ids, v_counts, v_oldest;
        ELSE
            v_exact := false;
            v_fraction := p_sample_blocks::double precision / v_blocks;
            EXECUTE format('SELECT last_value FROM wlsync.%I', wlsync._slot_table(v_slot.ring, v_slot.slot) || '_resume')
            INTO v_resume;
            EXECUTE format($sql$
                WITH sampled AS (
                    SELECT q.table_id, count(*) / $1 AS events, min(q.enqueued_at) AS oldest
                    FROM %1$s AS q TABLESAMPLE SYSTEM (100 * $1)
                    GROUP BY q.table_id
                ), head AS (
                    SELECT h.table_id, 0::double precision AS events, min(h.enqueued_at) AS oldest
                    FROM (SELECT q.table_id, q.enqueued_at FROM %1$s AS q WHERE q.ctid >= $2 LIMIT 10000) AS h
                    GROUP BY h.table_id
                )
                SELECT array_agg(g.table_id), array_agg(g.events), array_agg(g.oldest)
                FROM (SELECT u.table_id, sum(u.events) AS events, min(u.oldest) AS oldest
                      FROM (SELECT * FROM sampled UNION ALL SELECT * FROM head) AS u
                      GROUP BY u.table_id) AS g$sql$, v_queue)
            INTO v_ids, v_counts, v_oldest
            USING v_fraction, format('(%s,0)', least(v_resume, v_blocks))::tid;
        END IF;
        v_all_ids := v_all_ids || coalesce(v_ids, '{}');
        v_all_counts := v_all_counts || coalesce(v_counts, '{}');
        v_all_oldest := v_all_oldest || coalesce(v_oldest, '{}');
    END LOOP;

    RETURN QUERY
    WITH queued AS (
        SELECT e.table_id, round(sum(e.events))::bigint AS events, min(e.oldest) AS oldest
        FROM unnest(v_all_ids, v_all_counts, v_all_oldest) AS e(table_id, events, oldest)
        GROUP BY e.table_id
    ), dead AS (
        SELECT d.table_id, count(*) FILTER (WHERE d.parked_at IS NULL) AS retrying,
               count(*) FILTER (WHERE d.parked_at IS NOT NULL) AS parked
        FROM wlsync.dead_letter AS d WHERE d.consumer_id = v_consumer GROUP BY d.table_id
    )
    SELECT n.nspname, c.relname, coalesce(q.events, 0), v_exact, q.oldest,
           extract(epoch FROM now() - q.oldest)::double precision,
           coalesce(d.retrying, 0), coalesce(d.parked, 0),
           coalesce(nullif(pg_stat_get_live_tuples(c.oid), 0), greatest(c.reltuples, 0)::bigint)
    FROM wlsync.tracked_table AS t
    JOIN wlsync.consumer_table AS ct ON ct.table_id = t.table_id AND ct.consumer_id = v_consumer
    JOIN pg_class AS c ON c.oid = t.relid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    LEFT JOIN queued AS q ON q.table_id = t.table_id
    LEFT JOIN dead AS d ON d.table_id = t.table_id
    ORDER BY n.nspname, c.relname;
END
$function$;

COMMENT ON FUNCTION wlsync.metrics(integer, text) IS
    'Monitoring: queued events (exact, or sampled on a large queue), oldest age, retrying and parked keys per tracked table; cheap to scrape';
