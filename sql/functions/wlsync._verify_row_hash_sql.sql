CREATE OR REPLACE FUNCTION wlsync._verify_row_hash_sql(p_table regclass, p_scheme text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._verify_row_hash_sql(p_table, p_scheme)
--   SQL text of the 64-bit hash (wlsync._verify_hash_sql) of a whole row's
--   record text ROW(t.c1, t.c2, ...)::text, every live column in table order:
--   the columns and values WL stores (wlsync.tracked_columns, rendered as
--   wlsync.current_rows renders them when the caller pins the same output
--   settings), quoted as record_out does (NULL empty, "" for an empty string,
--   quotes around values holding "\(), or white space, " and \ doubled).
-- Parameters: p_table  a table (row alias t); p_scheme  a hash scheme
-- Returns:    text, an SQL expression of type bigint
-- Touches:    reads pg_attribute.
-- ---------------------------------------------------------------------------
BEGIN
    RETURN wlsync._verify_hash_sql(p_scheme, format('ROW(%s)::pg_catalog.text',
        (SELECT string_agg(format('t.%I', a.attname), ', ' ORDER BY a.attnum)
         FROM pg_attribute AS a
         WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped)));
END
$function$;

COMMENT ON FUNCTION wlsync._verify_row_hash_sql(regclass, text) IS
    'Internal: SQL expression of the 64-bit hash of a row''s record text, for verify';
