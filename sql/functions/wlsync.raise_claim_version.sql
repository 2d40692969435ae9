CREATE OR REPLACE FUNCTION wlsync.raise_claim_version(p_at_least bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.raise_claim_version(p_at_least)
--   Lifts the fencing versions (snapshot clock + version_offset, see
--   wlsync.claim_sync_events) so that every later one is above p_at_least. A
--   driver calls it at start with the highest version its WL has recorded:
--   if MDB was restored from a backup, moved to another cluster or wlsync
--   reinstalled while WL was kept, the clock would start below WL's versions
--   and WL would refuse every write as stale. Never lowers the versions.
-- Parameters: p_at_least  a version WL has seen (NULL or 0: nothing to do)
-- Returns:    the version a claim would hand out now
-- Touches:    updates wlsync.capture_state (row lock until commit).
-- ---------------------------------------------------------------------------
DECLARE
    v_clock bigint;
    v_offset bigint;
BEGIN
    -- The same clock as wlsync.claim_sync_events, of this statement's snapshot;
    -- every later snapshot reads at least as much.
    v_clock := wlsync._snapshot_clock();
    UPDATE wlsync.capture_state
    SET version_offset = greatest(version_offset, coalesce(p_at_least, 0) + 1 - v_clock)
    RETURNING version_offset INTO v_offset;
    RETURN v_offset + v_clock;
END
$function$;

COMMENT ON FUNCTION wlsync.raise_claim_version(bigint) IS
    'Driver: keep fencing versions above what WL has recorded (after a restore or reinstall of MDB)';
