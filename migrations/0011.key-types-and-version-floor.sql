-- The key columns' base types as tracked: wlsync.track refuses to change them
-- while events or dead letters of the table are queued in the old spelling
-- (a claim could not read those keys back). Records the function changes:
-- track stores and checks pk_types; _on_sql_drop forgets tables dropped by
-- cascade; new raise_claim_version (a driver lifts the fencing sequence above
-- the highest version its WL has seen, e.g. after MDB was restored from a
-- backup or wlsync reinstalled).
-- depends: 0010.has-claimable-events
ALTER TABLE wlsync.tracked_table ADD COLUMN pk_types regtype[];
