CREATE OR REPLACE FUNCTION wlsync.add_consumer(p_name text, p_tables regclass[], p_max_pending bigint DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.add_consumer(p_name, p_tables [, p_max_pending])
--   Creates a consumer (a WL of its own, fed by `wlsync run --consumer
--   p_name`), or adds tables to an existing one:
--       SELECT wlsync.add_consumer('search', ARRAY['movies', 'people']::regclass[]);
--   A consumer gets its own ring (wlsync.pending_<id>_0..2), into which
--   wlsync.fan_out copies the writers' events of its tables; its own dead
--   letters, backfill passes, fencing (its WL) and wake-ups. Tables not yet
--   tracked are tracked (wlsync.track) for it alone.
--   Starts complete: for every table new to the consumer a backfill pass is
--   started (wlsync.backfill_state), which the consumer's driver runs, in
--   chunks and resumably, before it drains (or `wlsync backfill --consumer
--   p_name`); the other consumers go on meanwhile. Every change committed
--   after this call reaches the consumer as an event; the pass covers the
--   rows that were there before.
-- Parameters: p_name    letters a-z, digits and _, starting with a letter, at
--                       most 40 characters
--             p_tables  tables with a primary key (may be empty)
--             p_max_pending  events its backlog may hold before they are
--                       dropped and its WL is rebuilt (wlsync.maintain_queue);
--                       NULL: 10,000,000 for a new consumer, unchanged for an
--                       existing one
-- Returns:    the consumer's id (its ring's number)
-- Raises:     22023 for a malformed name, a p_max_pending below 1, or a table
--             wlsync.track refuses.
-- Touches:    wlsync.consumer (locked against other consumer changes), the
--             consumer set's lock (exclusive: waits for fan-outs in flight),
--             consumer_table, queue_slot, backfill_state;
--             creates three tables and three sequences; the views
--             wlsync.queue and wlsync.consumers; wlsync.track for new tables.
-- ---------------------------------------------------------------------------
DECLARE
    v_id integer;
    v_table regclass;
    v_table_id integer;
BEGIN
    IF p_name IS NULL OR p_name !~ '^[a-z][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'wlsync.add_consumer: % is not a consumer name', coalesce(quote_literal(p_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use lowercase letters, digits and _, starting with a letter, at most 40 characters (e.g. search_index).';
    END IF;
    IF p_max_pending < 1 THEN
        RAISE EXCEPTION 'wlsync.add_consumer: p_max_pending must be at least 1 (or NULL), got %', p_max_pending
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One consumer change at a time: two calls naming the same new consumer
    -- would both create it.
    LOCK TABLE wlsync.consumer IN SHARE ROW EXCLUSIVE MODE;
    PERFORM wlsync._ring_lock(0, 'exclusive');  -- waits for fan-outs in flight (wlsync._ring_lock)
    SELECT c.consumer_id INTO v_id FROM wlsync.consumer AS c WHERE c.name = p_name;
    IF v_id IS NULL THEN
        v_id := nextval('wlsync.consumer_id_seq')::integer;
        INSERT INTO wlsync.consumer (consumer_id, name) VALUES (v_id, p_name);
        FOR v_slot IN 0..2 LOOP
            EXECUTE format('CREATE TABLE wlsync.%I (LIKE wlsync.queue_0 INCLUDING DEFAULTS) '
                           'WITH (autovacuum_enabled = false, toast.autovacuum_enabled = false)',
                           wlsync._slot_table(v_id, v_slot::smallint));
            EXECUTE format('CREATE SEQUENCE wlsync.%I AS bigint MINVALUE 0 START 0',
                           wlsync._slot_table(v_id, v_slot::smallint) || '_resume');
            INSERT INTO wlsync.queue_slot (ring, slot, state)
            VALUES (v_id, v_slot, CASE WHEN v_slot = 0 THEN 'current' ELSE 'free' END);
        END LOOP;
        PERFORM wlsync._rebuild_ring_views();
    END IF;
    UPDATE wlsync.consumer SET max_pending = coalesce(p_max_pending, max_pending) WHERE consumer_id = v_id;

    FOREACH v_table IN ARRAY coalesce(p_tables, '{}'::regclass[]) LOOP
        SELECT t.table_id INTO v_table_id FROM wlsync.tracked_table AS t WHERE t.relid = v_table;
        IF v_table_id IS NULL THEN
            v_table_id := wlsync.track(v_table, p_name);
        ELSIF EXISTS (SELECT 1 FROM wlsync.consumer_table AS ct
                      WHERE ct.consumer_id = v_id AND ct.table_id = v_table_id) THEN
            CONTINUE;  -- already the consumer's: its pass (if any) goes on as it is
        ELSE
            INSERT INTO wlsync.consumer_table (consumer_id, table_id) VALUES (v_id, v_table_id);
        END IF;
        INSERT INTO wlsync.backfill_state (consumer_id, table_id) VALUES (v_id, v_table_id)
        ON CONFLICT (consumer_id, table_id) DO UPDATE
        SET after_pk = NULL, enqueued = 0, started_at = now(), updated_at = now(), completed_at = NULL;
    END LOOP;
    PERFORM wlsync._wake_drivers();
    RETURN v_id;
END
$function$;

COMMENT ON FUNCTION wlsync.add_consumer(text, regclass[], bigint) IS
    'Admin: create a consumer (its own ring, dead letters, backfill) or add tables to one; starts their backfill passes';
