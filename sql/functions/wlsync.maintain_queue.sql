CREATE OR REPLACE FUNCTION wlsync.maintain_queue(p_rotate_blocks bigint DEFAULT 1024)
RETURNS text[]
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.maintain_queue(p_rotate_blocks DEFAULT 1024)
--   Keeps the queue rings (the writers', wlsync.queue_0..2, and each
--   consumer's, wlsync.pending_<id>_0..2; states in wlsync.queue_slot) small
--   without vacuum, as PgQ's maint_rotate_tables does, and a stopped
--   consumer's backlog bounded. Drivers call it
--   about once a second and whenever a claim comes back short; a DBA may call
--   it any time (SELECT wlsync.maintain_queue();). Each call, in one
--   transaction, takes every step that is due:
--     1. record writers: for a slot retired by an EARLIER transaction, the
--        virtual transaction ids open now. Capture functions are regenerated
--        by the rotation, and a backend reloads a function at the start of a
--        transaction (or at a new lock): only transactions already open once
--        the rotation had fully committed may still insert into the old slot.
--     2. seal: a retired slot none of whose recorded writers holds ROW
--        EXCLUSIVE on a tracked table (or one of its partitions) or on the
--        slot itself. A recorded transaction holding no such lock must take
--        one before it writes a tracked table, and so reloads the capture
--        function first: it inserts into the new current slot. Long readers
--        (REPEATABLE READ reports, pg_dump) never delay a seal. Sealing
--        records the slot's size: claims then walk it once, from a shared
--        resume point, instead of scanning it from its start each time.
--     3. TRUNCATE a sealed slot that claims have walked to its end: take its
--        lock with NOWAIT (no writer uses a sealed slot, so nobody ever waits
--        behind it; a claim in flight makes this step wait for a later call),
--        and only then check that it holds no row. Rows still there (a claim
--        rolled back after walking past them) send claims back to its start,
--        at most once a second.
--     4. rotate: when the writers' current slot holds p_rotate_blocks blocks
--        or more and another slot is free, that one becomes current and every
--        capture function is regenerated to insert there. Skipped while an SQL
--        enqueuer (TRUNCATE capture, ...) is in flight.
--     5. rotate a consumer's ring the same way, sealing the old slot at once:
--        only wlsync's functions insert there, each holding the ring's lock
--        (wlsync._ring_lock) until it commits, so once the rotation has that
--        lock nobody can still insert into the old slot. Skipped while one is
--        in flight.
--     6. bound each consumer's backlog, at most every 10 s per consumer: when
--        its ring (and, while it is the only consumer, the writers' sealed
--        slots) holds more than its max_pending events, they are dropped
--        (TRUNCATE, NOWAIT: slots a live claim holds wait for a later call)
--        and the consumer is marked for resync (resync_requested_at,
--        dropped_events, overflows): its driver rebuilds its WL when it runs
--        (wlsync.consumer_work). With several consumers, the writers' sealed
--        slots are dropped when they alone hold more than the smallest
--        max_pending (no driver fans out: every consumer is stopped), and
--        every consumer is marked. Events are never dropped otherwise.
--   One call at a time (an advisory lock; a concurrent call returns at once).
-- Parameters: p_rotate_blocks  size of the current slot (8 kB blocks) that
--             triggers a rotation; default 1024 (8 MB)
-- Returns:    what was done, e.g. {"sealed 1","truncated 1","rotated 2 -> 0",
--             "consumer search: dropped 1200000 events past max_pending"};
--             empty when nothing was due
-- Raises:     22023 when p_rotate_blocks < 1; 25001 outside READ COMMITTED.
-- Touches:    advisory lock 7749002 (this) and the capture lock (shared,
--             wlsync._capture_lock); wlsync.queue_slot; pg_locks (a snapshot of the lock table);
--             TRUNCATE (ACCESS EXCLUSIVE, NOWAIT) of a drained sealed slot
--             or of an overflowing consumer's slots; wlsync.consumer;
--             the capture lock and pg_proc when rotating.
-- ---------------------------------------------------------------------------
DECLARE
    v_done text[] := '{}'::text[];
    v_slot record;
    v_queue text;
    v_resume bigint;
    v_next smallint;
    v_rows_left boolean;
    v_truncated text[] := '{}'::text[];  -- 'ring.slot' of the slots TRUNCATEd by this call
    v_name text;
    v_label text;
BEGIN
    IF p_rotate_blocks IS NULL OR p_rotate_blocks < 1 THEN
        RAISE EXCEPTION 'wlsync.maintain_queue: p_rotate_blocks must be at least 1, got %', p_rotate_blocks
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'wlsync.maintain_queue must run in a READ COMMITTED transaction, not %',
                        current_setting('transaction_isolation')
            USING ERRCODE = 'active_sql_transaction',
                  HINT = 'Whether a slot is empty must be read after its lock is taken, with a new snapshot.';
    END IF;

    -- One maintenance at a time (two would decide on the same slots).
    IF NOT pg_try_advisory_xact_lock(7749002) THEN
        RETURN ARRAY['skipped: another maintenance is running'];
    END IF;

    -- 1. Record who may still write into slots retired by an earlier
    -- transaction, once that transaction has released the capture lock: it
    -- sends its invalidations (the new capture functions) before it releases
    -- its locks, so every transaction starting after this sees them.
    UPDATE wlsync.queue_slot AS s
    SET writers = (SELECT coalesce(array_agg(DISTINCT l.virtualtransaction), '{}')
                   FROM pg_locks AS l
                   WHERE l.locktype = 'virtualxid' AND l.pid IS DISTINCT FROM pg_backend_pid())
    WHERE s.ring = 0 AND s.state = 'retired' AND s.writers IS NULL
      AND s.retired_by IS DISTINCT FROM pg_current_xact_id_if_assigned()
      AND wlsync._capture_lock('try_shared');

    -- 2. Seal the slots no recorded writer can still insert into.
    FOR v_slot IN SELECT s.slot, s.writers FROM wlsync.queue_slot AS s
                  WHERE s.ring = 0 AND s.state = 'retired' AND s.writers IS NOT NULL LOOP
        v_queue := format('wlsync.%I', 'queue_' || v_slot.slot);
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM pg_locks AS l
            WHERE l.locktype = 'relation' AND l.mode = 'RowExclusiveLock'
              AND l.virtualtransaction = ANY (v_slot.writers)
              AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
              AND (l.relation = v_queue::regclass
                   -- tracked tables and their partitions, read from pg_inherits
                   -- (pg_partition_tree would lock them: a writer's TRUNCATE
                   -- or ALTER would wait for this)
                   OR l.relation IN (WITH RECURSIVE tree(relid) AS (
                                         SELECT t.relid::oid FROM wlsync.tracked_table AS t
                                         UNION
                                         SELECT i.inhrelid FROM pg_inherits AS i JOIN tree ON i.inhparent = tree.relid)
                                     SELECT tree.relid FROM tree)));
        UPDATE wlsync.queue_slot
        SET state = 'sealed', changed_at = now(), rescanned_at = now(),
            sealed_blocks = pg_relation_size(v_queue::regclass) / current_setting('block_size')::bigint
        WHERE ring = 0 AND slot = v_slot.slot;
        PERFORM setval(format('wlsync.%I', 'queue_' || v_slot.slot || '_resume'), 0);
        v_done := v_done || format('sealed %s', v_slot.slot);
    END LOOP;

    -- 3. TRUNCATE sealed slots that are walked and empty (every ring).
    FOR v_slot IN SELECT s.ring, s.slot, s.sealed_blocks, s.rescanned_at FROM wlsync.queue_slot AS s
                  WHERE s.state = 'sealed' ORDER BY s.ring, s.slot LOOP
        v_name := wlsync._slot_table(v_slot.ring, v_slot.slot);
        v_queue := format('wlsync.%I', v_name);
        v_label := CASE WHEN v_slot.ring = 0 THEN v_slot.slot::text ELSE v_name END;
        EXECUTE format('SELECT last_value FROM wlsync.%I', v_name || '_resume') INTO v_resume;
        CONTINUE WHEN v_resume < v_slot.sealed_blocks;
        BEGIN
            -- Lock first, then look: once the lock is ours, every transaction
            -- that inserted here has ended, and the next statement's snapshot
            -- sees its rows.
            EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', v_queue);
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', v_queue) INTO v_rows_left;
            IF v_rows_left THEN
                -- Rows a claim left behind when it rolled back (or written by
                -- an enqueuer with an old snapshot): walk the slot again.
                RAISE EXCEPTION USING ERRCODE = 'WLRSC';
            END IF;
            EXECUTE format('TRUNCATE %s', v_queue);
            PERFORM wlsync._free_slot(v_slot.ring, v_slot.slot);
            v_done := v_done || format('truncated %s', v_label);
            v_truncated := v_truncated || format('%s.%s', v_slot.ring, v_slot.slot);
        EXCEPTION
            WHEN lock_not_available THEN
                v_done := v_done || format('truncate %s postponed: in use', v_label);
            WHEN SQLSTATE 'WLRSC' THEN  -- (the lock goes with the subtransaction)
                IF v_slot.rescanned_at < now() - interval '1 second' THEN
                    UPDATE wlsync.queue_slot SET rescanned_at = now() WHERE ring = v_slot.ring AND slot = v_slot.slot;
                    PERFORM setval(format('wlsync.%I', v_name || '_resume'), 0);
                    v_done := v_done || format('rescan %s', v_label);
                END IF;
        END;
    END LOOP;

    -- 4. Rotate a full current slot into a free one.
    SELECT s.slot INTO v_slot FROM wlsync.queue_slot AS s WHERE s.ring = 0 AND s.state = 'current';
    v_queue := format('wlsync.%I', 'queue_' || v_slot.slot);
    -- Not a slot TRUNCATEd by this call: its ACCESS EXCLUSIVE lock lasts until
    -- this transaction ends, after the new capture functions are visible, and
    -- a writer would wait for it.
    SELECT s.slot INTO v_next FROM wlsync.queue_slot AS s
    WHERE s.ring = 0 AND s.state = 'free' AND format('0.%s', s.slot) <> ALL (v_truncated)
    ORDER BY (s.slot - v_slot.slot + 3) % 3 LIMIT 1;
    IF v_next IS NOT NULL
       AND pg_relation_size(v_queue::regclass) >= p_rotate_blocks * current_setting('block_size')::bigint
       AND wlsync._capture_lock('try_exclusive') THEN
        UPDATE wlsync.queue_slot
        SET state = 'retired', changed_at = now(), retired_at = now(), retired_by = pg_current_xact_id(),
            writers = NULL
        WHERE ring = 0 AND slot = v_slot.slot;
        UPDATE wlsync.queue_slot SET state = 'current', changed_at = now() WHERE ring = 0 AND slot = v_next;
        PERFORM wlsync._regenerate_captures();
        v_done := v_done || format('rotated %s -> %s', v_slot.slot, v_next);
    END IF;

    -- 5. Rotate consumers' full current slots (sealed at once).
    FOR v_slot IN SELECT s.ring, s.slot FROM wlsync.queue_slot AS s
                  WHERE s.ring > 0 AND s.state = 'current' ORDER BY s.ring LOOP
        v_name := wlsync._slot_table(v_slot.ring, v_slot.slot);
        SELECT s.slot INTO v_next FROM wlsync.queue_slot AS s
        WHERE s.ring = v_slot.ring AND s.state = 'free' AND format('%s.%s', s.ring, s.slot) <> ALL (v_truncated)
        ORDER BY (s.slot - v_slot.slot + 3) % 3 LIMIT 1;
        CONTINUE WHEN v_next IS NULL
            OR pg_relation_size(format('wlsync.%I', v_name)::regclass) < p_rotate_blocks * current_setting('block_size')::bigint
            OR NOT wlsync._ring_lock(v_slot.ring, 'try_exclusive');
        UPDATE wlsync.queue_slot
        SET state = 'sealed', changed_at = now(), retired_at = now(), rescanned_at = now(),
            sealed_blocks = pg_relation_size(format('wlsync.%I', v_name)::regclass) / current_setting('block_size')::bigint
        WHERE ring = v_slot.ring AND slot = v_slot.slot;
        PERFORM setval(format('wlsync.%I', v_name || '_resume'), 0);
        UPDATE wlsync.queue_slot SET state = 'current', changed_at = now() WHERE ring = v_slot.ring AND slot = v_next;
        v_done := v_done || format('rotated %s -> %s', v_name, wlsync._slot_table(v_slot.ring, v_next));
    END LOOP;

    -- 6. Bound the consumers' backlogs.
    v_done := v_done || wlsync._drop_overflow();
    RETURN v_done;
END
$function$;

COMMENT ON FUNCTION wlsync.maintain_queue(bigint) IS
    'Driver/DBA: rotate, seal and TRUNCATE the queue ring''s slots (no vacuum needed); returns what it did';
