CREATE OR REPLACE FUNCTION wlsync.lock_consistent_drain(p_consumer text DEFAULT 'default')
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.lock_consistent_drain(p_consumer DEFAULT 'default')
--   A consistent-mode driver (wlsync run --consistent) calls this once on its
--   claim connection, in autocommit, before its first batch: it takes a
--   session-level advisory lock (wlsync._drain_lock) that it keeps until the
--   connection ends, so that its snapshot batches are the consumer's only
--   claims: while it holds the lock, the consumer's READ COMMITTED claims
--   fail (they would take events out from under a snapshot batch), and a
--   second consistent driver of the consumer stands by until the first one's
--   session ends (it died, or MDB ended its session).
--   The lock is taken only when no claim of either kind is in progress.
-- Parameters: p_consumer  whose drain (wlsync.consumers); default 'default'
-- Returns:    NULL when this session holds the lock (now or already);
--             otherwise who holds it, for the driver's log: the consistent
--             driver's backend pid and application_name, or the pids of the
--             READ COMMITTED claims in progress.
-- Raises:     22023 when there is no such consumer.
-- Touches:    pg_advisory_lock on one key of this database; reads pg_locks
--             and pg_stat_activity.
-- ---------------------------------------------------------------------------
DECLARE
    v_holders text;
    v_consumer integer := wlsync._consumer_id(p_consumer);
BEGIN
    IF wlsync._drain_lock('take_exclusive', v_consumer) THEN
        RETURN NULL;
    END IF;
    SELECT string_agg(CASE WHEN l.mode = 'ExclusiveLock'
                           THEN format('a consistent driver (backend pid %s, %s)', l.pid,
                                       coalesce(nullif(a.application_name, ''), 'no application_name'))
                           ELSE format('a READ COMMITTED claim (backend pid %s)', l.pid) END,
                      ', ' ORDER BY l.mode DESC, l.pid)
    INTO v_holders
    FROM pg_locks AS l
    LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
      AND l.classid = 7749003::oid AND l.objid = v_consumer::oid AND l.objsubid = 2;  -- wlsync._drain_lock's key
    -- The holder may have let go in between: say so rather than nothing.
    RETURN coalesce(v_holders, 'a claim that has just ended (try again)');
END
$function$;

COMMENT ON FUNCTION wlsync.lock_consistent_drain(text) IS
    'Driver: take the consistent-mode drain lock for this session (NULL) or say who holds it';
