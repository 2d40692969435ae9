CREATE OR REPLACE FUNCTION wlsync.raise_claim_version(p_at_least bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.raise_claim_version(p_at_least)
--   Lifts wlsync.claim_version_seq so the next batch's fencing version is
--   above p_at_least. A driver calls it at start with the highest version its
--   WL has recorded: if MDB was restored from a backup or wlsync reinstalled
--   while WL was kept, the sequence would start below WL's versions and WL
--   would refuse every write as stale. Never lowers the sequence.
-- Parameters: p_at_least  a version WL has seen (NULL or 0: nothing to do)
-- Returns:    the sequence's last value after the call
-- Touches:    wlsync.claim_version_seq (setval is not transactional).
-- ---------------------------------------------------------------------------
DECLARE
    v_last bigint;
BEGIN
    SELECT s.last_value INTO v_last FROM wlsync.claim_version_seq AS s;
    IF coalesce(p_at_least, 0) > 0 AND p_at_least >= v_last THEN  -- >=: last_value may not be used yet
        v_last := setval('wlsync.claim_version_seq', p_at_least);
    END IF;
    RETURN v_last;
END
$function$;

COMMENT ON FUNCTION wlsync.raise_claim_version(bigint) IS
    'Driver: keep fencing versions above what WL has recorded (after a restore or reinstall of MDB)';
