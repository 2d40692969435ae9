-- The claim's fencing version (wlsync.claim_sync_events returns it; WL applies a
-- key's write only when its version is newer than the last one applied).
-- Records the function changes: claim_sync_events gains the version column and
-- a window-based verdict; keys are spelled and parsed through their base types
-- (_key_base_type, _key_values_sql) and rendered by output functions
-- (_text_object_sql); generated capture bodies are quoted; triggers are ALWAYS.
-- depends: 0003.backfill-state
CREATE SEQUENCE wlsync.claim_version_seq AS bigint CACHE 1;
COMMENT ON SEQUENCE wlsync.claim_version_seq IS 'Fencing versions of claimed batches (CACHE 1: monotonic across sessions)';
DROP FUNCTION IF EXISTS wlsync.claim_sync_events(integer);
