CREATE OR REPLACE FUNCTION wlsync.tracked_columns(p_consumer text DEFAULT NULL)
RETURNS TABLE (table_schema name, table_name name, column_name name, ordinal integer,
               data_type text, base_type name, builtin_type boolean, pk_position integer)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.tracked_columns([p_consumer])
--   The shape of every tracked table (or of those a consumer receives), for
--   a sink that creates and checks WL's tables: one row per column, in
--   column order.
-- Parameters: p_consumer  only this consumer's tables (NULL: every tracked table)
-- Returns:    table_schema, table_name, column_name, ordinal (1-based among
--             live columns), data_type (format_type, e.g. 'numeric(10,2)',
--             'text[]'), base_type (the type's name with domains resolved,
--             e.g. 'int4', '_text' for text[]), builtin_type (the column's type is
--             PostgreSQL's own, not a domain, enum or other user-defined type,
--             so a PostgreSQL WL can declare it as data_type), pk_position (1-based position
--             in the primary key, NULL for other columns)
-- Raises:     22023 when there is no such consumer.
-- Touches:    reads wlsync.tracked_table and the catalogs.
-- ---------------------------------------------------------------------------
BEGIN
    RETURN QUERY
    SELECT n.nspname, c.relname, a.attname,
           (row_number() OVER (PARTITION BY t.table_id ORDER BY a.attnum))::integer,
           format_type(a.atttypid, a.atttypmod),
           bt.typname,
           ty.typnamespace = 'pg_catalog'::regnamespace,
           array_position(t.pk_columns, a.attname)
    FROM wlsync.tracked_table AS t
    JOIN pg_class AS c ON c.oid = t.relid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_attribute AS a ON a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type AS ty ON ty.oid = a.atttypid
    JOIN pg_type AS bt ON bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
    WHERE p_consumer IS NULL
       OR t.table_id IN (SELECT ct.table_id FROM wlsync.consumer_table AS ct
                         WHERE ct.consumer_id = wlsync._consumer_id(p_consumer))
    ORDER BY n.nspname, c.relname, a.attnum;
END
$function$;

COMMENT ON FUNCTION wlsync.tracked_columns(text) IS
    'Columns of every tracked table (name, type, primary key position), for sinks and DBAs';
