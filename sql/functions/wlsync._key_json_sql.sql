CREATE OR REPLACE FUNCTION wlsync._key_json_sql(p_table regclass, p_pk_columns name[], p_row_alias text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._key_json_sql(p_table, p_pk_columns, p_row_alias)
--   SQL text of the expression that turns a row of p_table into its queue key,
--   e.g. pg_catalog.jsonb_build_object('id', NEW."id"). Every producer of
--   queue rows (capture trigger, truncate trigger, backfill) uses it, so one key
--   has one spelling whoever enqueued it: the claim's per-key rule relies on it.
--   timestamptz columns are keyed in UTC, so the session TimeZone of the writer
--   cannot change the spelling.
-- Parameters: p_table       the tracked table
--             p_pk_columns  its primary key columns, in key order
--             p_row_alias   how the row is named where the text is used (NEW, t, ...)
-- Returns:    text, an SQL expression of type jsonb
-- Touches:    reads pg_attribute.
-- ---------------------------------------------------------------------------
BEGIN
    RETURN 'pg_catalog.jsonb_build_object(' || string_agg(
        format('%L, %s', c.col,
               CASE WHEN a.atttypid = 'timestamptz'::regtype
                    THEN format('(%s.%I AT TIME ZONE ''UTC'')', p_row_alias, c.col)
                    ELSE format('%s.%I', p_row_alias, c.col) END),
        ', ' ORDER BY c.ord) || ')'
    FROM unnest(p_pk_columns) WITH ORDINALITY AS c(col, ord)
    JOIN pg_attribute AS a ON a.attrelid = p_table AND a.attname = c.col;
END
$function$;

COMMENT ON FUNCTION wlsync._key_json_sql(regclass, name[], text) IS
    'Internal: SQL expression building the jsonb queue key of a row (one spelling per key)';
