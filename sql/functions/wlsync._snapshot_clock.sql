CREATE OR REPLACE FUNCTION wlsync._snapshot_clock()
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._snapshot_clock()
--   A clock of the calling statement's snapshot (STABLE: it runs on its
--   caller's snapshot): how many transaction ids below the snapshot's xmax
--   belong to transactions that snapshot sees as finished. A snapshot taken
--   later sees every transaction an earlier one saw as finished, and more
--   only if some finished in between, so the clock never goes down from one
--   snapshot to a later one, and two snapshots with the same clock see the
--   same committed data. Fencing versions are this plus
--   wlsync.capture_state.version_offset (wlsync.claim_sync_events).
--   A snapshot leaves its own transaction out of its in-progress list while
--   every other session's snapshot has it in; it is counted as running here
--   too, or the clock of a claim that holds an xid would run one ahead of a
--   later snapshot of another session.
-- Returns:    bigint
-- Touches:    nothing (reads the active snapshot).
-- ---------------------------------------------------------------------------
SELECT pg_snapshot_xmax(cs.snap)::text::bigint
       - (SELECT count(*) FROM pg_snapshot_xip(cs.snap))
       - CASE WHEN pg_current_xact_id_if_assigned() < pg_snapshot_xmax(cs.snap) THEN 1 ELSE 0 END
FROM pg_current_snapshot() AS cs(snap);
$function$;

COMMENT ON FUNCTION wlsync._snapshot_clock() IS
    'Internal: a clock of the calling statement''s snapshot (finished transactions it sees), for fencing versions';
