CREATE OR REPLACE FUNCTION wlsync._columns_signature(p_table regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._columns_signature(p_table)
--   The live columns of a table (names, types, order) as one text, to tell
--   whether a generated reader (wlsync._install_reader) still matches the
--   table: any added, dropped, renamed or retyped column changes it.
-- Parameters: p_table  any table
-- Returns:    text
-- Touches:    reads pg_attribute.
-- ---------------------------------------------------------------------------
SELECT string_agg(format('%s:%s', a.attname, a.atttypid), ',' ORDER BY a.attnum)
FROM pg_attribute AS a
WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;
$function$;

COMMENT ON FUNCTION wlsync._columns_signature(regclass) IS
    'Internal: a table''s live columns as text, to tell when its generated reader is out of date';
