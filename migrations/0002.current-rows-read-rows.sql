-- Records the function changes installed by post-apply.py:
--   wlsync.current_rows and wlsync.read_rows (new; claim reads rows through
--   current_rows, verify pages with read_rows), claim_sync_events returns pk as
--   text like row_data, tracked_columns gains builtin_type.
-- depends: 0001.wlsync-schema
DROP FUNCTION IF EXISTS wlsync.tracked_columns();
