CREATE OR REPLACE FUNCTION wlsync._on_ddl_command_end()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._on_ddl_command_end()  event trigger wlsync_ddl_command_end
--   After every ALTER TABLE of a tracked table (or of a partition's tracked
--   parent), re-runs wlsync.track on it: the capture function is regenerated
--   for the new column types, new partitions get the TRUNCATE trigger, and a
--   change of the primary key, a renamed key column or a key type wlsync
--   cannot use is refused with the error of wlsync.track, which says what to
--   do (untrack, alter, track, backfill). Disabling a capture trigger
--   (ALTER TABLE ... DISABLE TRIGGER) is refused too. The ALTER is then rolled
--   back, so a tracked table is never left with capture that is off or that
--   fails every write.
--   Skipped while wlsync.track itself runs (it alters the table).
-- Touches:    reads pg_event_trigger_ddl_commands(); see wlsync.track.
-- ---------------------------------------------------------------------------
DECLARE
    v_relid regclass;
BEGIN
    IF current_setting('wlsync.in_track', true) = 'on' THEN
        RETURN;
    END IF;
    FOR v_relid IN
        SELECT DISTINCT t.relid
        FROM pg_event_trigger_ddl_commands() AS c
        JOIN wlsync.tracked_table AS t
          ON t.relid = c.objid
          OR t.relid IN (SELECT a.relid FROM pg_partition_ancestors(c.objid) AS a)
        WHERE c.command_tag = 'ALTER TABLE' AND c.classid = 'pg_class'::regclass
    LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger AS tg
                   WHERE tg.tgrelid = v_relid AND tg.tgname LIKE 'wlsync\_capture\_%' AND tg.tgenabled <> 'A') THEN
            RAISE EXCEPTION 'wlsync capture triggers of % cannot be disabled: changes would be lost', v_relid
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = format('To stop capturing the table, SELECT wlsync.untrack(%L);', v_relid::text);
        END IF;
        PERFORM wlsync.track(v_relid, NULL);  -- regenerate: no consumer gains it
    END LOOP;
END
$function$;

COMMENT ON FUNCTION wlsync._on_ddl_command_end() IS
    'Internal event trigger: keeps capture in step with ALTER TABLE of tracked tables, refuses key changes';
