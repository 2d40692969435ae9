CREATE OR REPLACE FUNCTION wlsync.track(p_table regclass)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.track(p_table)
--   Starts capturing every change of p_table into wlsync.queue, inside the
--   writer's own transaction: a rollback leaves no event, a commit always does.
--   Installs on p_table:
--     wlsync_capture_insert  AFTER INSERT  FOR EACH ROW
--     wlsync_capture_update  AFTER UPDATE  FOR EACH ROW WHEN (OLD *<> NEW)
--                            (an UPDATE that changes no value makes no event)
--     wlsync_capture_delete  AFTER DELETE  FOR EACH ROW
--     wlsync_capture_truncate BEFORE TRUNCATE FOR EACH STATEMENT (also on every
--                            current partition, which can be truncated alone)
--   The row triggers call wlsync._capture_row_<table_id>(), generated here with
--   the key columns spelled out, so a write costs one plain INSERT of the key
--   (no dynamic SQL, no copy of the row: the claim reads the current row).
--   The triggers are ENABLE ALWAYS, so they fire under
--   session_replication_role = replica as well.
--   Partitioned tables: the row triggers are cloned to every partition, present
--   and future; partitions created later get the TRUNCATE trigger when track is
--   run again. Existing rows are not enqueued: call wlsync.backfill(p_table).
--   Idempotent: tracking a tracked table re-installs its triggers.
-- Parameters: p_table  a table with a primary key (regclass: 'movies',
--             'app."Movie Cast"', ...)
-- Returns:    the table's wlsync.tracked_table.table_id
-- Raises:     22023 for a view, temporary or other non-table relation, a table
--             without a primary key, a key column of a type wlsync cannot key
--             rows by (wlsync._key_base_type: floats, intervals, arrays,
--             user-defined types, ...), a partition of a tracked table, or a
--             tracked table whose primary key changed, or whose key types
--             changed while events or dead letters of it are queued.
-- Touches:    wlsync.tracked_table; CREATE TRIGGER takes SHARE ROW EXCLUSIVE on
--             p_table (and its partitions) until the caller commits.
-- ---------------------------------------------------------------------------
DECLARE
    v_rel pg_class%ROWTYPE;
    v_pk_columns name[];
    v_table_id integer;
    v_known_pk name[];
    v_pk_types regtype[];
    v_known_types regtype[];
    v_tracked_ancestor regclass;
    v_function text;
    v_part regclass;
BEGIN
    -- The ALTER TABLEs below must not re-enter track through the
    -- wlsync_ddl_command_end event trigger.
    PERFORM set_config('wlsync.in_track', 'on', true);
    SELECT * INTO STRICT v_rel FROM pg_class WHERE oid = p_table;
    IF v_rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'cannot track %: it is a %, not a table', p_table,
                        CASE v_rel.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                             WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence'
                             WHEN 'i' THEN 'index' WHEN 'I' THEN 'partitioned index'
                             ELSE 'relation of kind ' || v_rel.relkind::text END
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'wlsync tracks ordinary and partitioned tables; track the table(s) behind a view instead.';
    END IF;
    IF v_rel.relpersistence = 't' THEN
        RAISE EXCEPTION 'cannot track %: it is a temporary table', p_table
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT a.relid INTO v_tracked_ancestor
    FROM pg_partition_ancestors(p_table) AS a(relid)
    JOIN wlsync.tracked_table AS t ON t.relid = a.relid
    WHERE a.relid <> p_table;
    IF v_tracked_ancestor IS NOT NULL THEN
        RAISE EXCEPTION 'cannot track %: it is a partition of %, which is tracked', p_table, v_tracked_ancestor
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Its changes are already captured through the partitioned table.';
    END IF;

    SELECT array_agg(a.attname ORDER BY k.ord) INTO v_pk_columns
    FROM pg_index AS i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = p_table AND i.indisprimary;
    IF v_pk_columns IS NULL THEN
        RAISE EXCEPTION 'cannot track %: it has no primary key', p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('wlsync identifies rows by primary key: ALTER TABLE %s ADD PRIMARY KEY (...);', p_table);
    END IF;

    SELECT array_agg(wlsync._key_base_type(p_table, c.col)::regtype ORDER BY c.ord)  -- raises for unusable types
    INTO v_pk_types FROM unnest(v_pk_columns) WITH ORDINALITY AS c(col, ord);

    SELECT t.table_id, t.pk_columns, t.pk_types INTO v_table_id, v_known_pk, v_known_types
    FROM wlsync.tracked_table AS t WHERE t.relid = p_table;
    IF v_table_id IS NULL THEN
        INSERT INTO wlsync.tracked_table (relid, pk_columns, pk_types) VALUES (p_table, v_pk_columns, v_pk_types)
        RETURNING table_id INTO v_table_id;
    ELSIF v_known_pk <> v_pk_columns THEN
        RAISE EXCEPTION 'cannot re-track %: its primary key changed from (%) to (%) since it was tracked',
                        p_table, array_to_string(v_known_pk, ', '), array_to_string(v_pk_columns, ', ')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Drain the queue, then SELECT wlsync.untrack(%1$L); SELECT wlsync.track(%1$L); SELECT wlsync.backfill(%1$L);', p_table::text);
    ELSIF v_known_types IS DISTINCT FROM v_pk_types THEN
        -- Queued keys are spelled for the old types; a claim must be able to
        -- read them back, so the key type changes only on an empty queue.
        IF v_known_types IS NOT NULL  -- NULL: tracked before wlsync recorded key types
           AND (EXISTS (SELECT 1 FROM wlsync.queue AS q WHERE q.table_id = v_table_id)
                OR EXISTS (SELECT 1 FROM wlsync.dead_letter AS d WHERE d.table_id = v_table_id)) THEN
            RAISE EXCEPTION 'cannot change the type of the primary key of % while it has queued events or dead letters', p_table
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Let the driver drain the queue (and re-drive or discard its dead letters), then retry the ALTER.';
        END IF;
        UPDATE wlsync.tracked_table SET pk_types = v_pk_types WHERE table_id = v_table_id;
    END IF;

    -- The body is passed as a quoted literal (%L), so no table or column name
    -- can end it early; names appear in it only as %I identifiers.
    v_function := format('wlsync.%I', '_capture_row_' || v_table_id);
    EXECUTE format($sql$
CREATE OR REPLACE FUNCTION %s() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L$sql$,
        v_function, format($body$
-- Generated by wlsync.track for table_id %1$s (see wlsync.tracked_table): do
-- not edit; wlsync.track regenerates it and wlsync.untrack drops it. Enqueues
-- the key of the written row (both keys when an UPDATE changes the primary
-- key) and sends NOTIFY wlsync_v1 only while a driver sleeps (see
-- wlsync.arm_wakeup).
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO wlsync.queue (table_id, pk, op) VALUES (%1$s, %2$s, 'D');
    ELSE
        INSERT INTO wlsync.queue (table_id, pk, op) VALUES (%1$s, %3$s, left(TG_OP, 1)::"char");
        IF TG_OP = 'UPDATE' AND (%4$s) IS DISTINCT FROM (%5$s) THEN
            INSERT INTO wlsync.queue (table_id, pk, op) VALUES (%1$s, %2$s, 'D');
        END IF;
    END IF;
    IF (SELECT w.armed_until > now() FROM wlsync.wakeup AS w) THEN
        PERFORM pg_notify('wlsync_v1', '');
    END IF;
    RETURN NULL;
END
$body$,
        v_table_id,
        wlsync._key_json_sql(p_table, v_pk_columns, 'OLD'),
        wlsync._key_json_sql(p_table, v_pk_columns, 'NEW'),
        (SELECT string_agg(format('OLD.%I', c), ', ') FROM unnest(v_pk_columns) AS c),
        (SELECT string_agg(format('NEW.%I', c), ', ') FROM unnest(v_pk_columns) AS c)));
    EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
    EXECUTE format('COMMENT ON FUNCTION %s() IS %L', v_function,
                   format('wlsync capture trigger of %s (generated by wlsync.track)', p_table));

    EXECUTE format('CREATE OR REPLACE TRIGGER wlsync_capture_insert AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION %s()',
                   p_table, v_function);
    EXECUTE format('CREATE OR REPLACE TRIGGER wlsync_capture_update AFTER UPDATE ON %s FOR EACH ROW WHEN (OLD *<> NEW) EXECUTE FUNCTION %s()',
                   p_table, v_function);
    EXECUTE format('CREATE OR REPLACE TRIGGER wlsync_capture_delete AFTER DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()',
                   p_table, v_function);
    -- pg_partition_tree lists nothing for a table that is not partitioned.
    FOR v_part IN SELECT p_table UNION SELECT t.relid FROM pg_partition_tree(p_table) AS t LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER wlsync_capture_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION wlsync._capture_truncate(%L)',
                       v_part, v_table_id);
        -- ALWAYS: writes made with session_replication_role = replica (logical
        -- replication apply, some restore and bulk tools) are captured too.
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER wlsync_capture_truncate', v_part);
    END LOOP;
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER wlsync_capture_insert', p_table);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER wlsync_capture_update', p_table);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER wlsync_capture_delete', p_table);
    PERFORM set_config('wlsync.in_track', 'off', true);
    RETURN v_table_id;
END
$function$;

COMMENT ON FUNCTION wlsync.track(regclass) IS
    'Admin: capture every change of a table (with a primary key) into wlsync.queue; idempotent';
