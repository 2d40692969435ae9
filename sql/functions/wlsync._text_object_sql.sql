CREATE OR REPLACE FUNCTION wlsync._text_object_sql(p_table regclass, p_columns name[], p_row_alias text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._text_object_sql(p_table, p_columns, p_row_alias)
--   SQL text of a jsonb object holding the given columns of a row as their
--   PostgreSQL text output ({"id": "7", "title": "Alien", "note": null}).
--   Values go through each type's output function (concat(value)), never
--   through a cast, so no user-defined cast runs; callers pin the output
--   settings (TimeZone, DateStyle, IntervalStyle, extra_float_digits,
--   bytea_output) so a row always renders the same.
-- Parameters: p_table  the table; p_columns  columns, in the order wanted
--             (NULL: every live column in table order); p_row_alias  row alias
-- Returns:    text, an SQL expression of type jsonb
-- ---------------------------------------------------------------------------
BEGIN
    RETURN format('pg_catalog.jsonb_object(ARRAY[%s]::text[], ARRAY[%s]::text[])',
                  string_agg(quote_literal(a.attname), ', ' ORDER BY a.ord),
                  string_agg(format('CASE WHEN %1$s.%2$I IS NULL THEN NULL ELSE pg_catalog.concat(%1$s.%2$I) END',
                                    p_row_alias, a.attname), ', ' ORDER BY a.ord))
    FROM (SELECT c.col AS attname, c.ord
          FROM unnest(p_columns) WITH ORDINALITY AS c(col, ord)
          UNION ALL
          SELECT at.attname, at.attnum
          FROM pg_attribute AS at
          WHERE p_columns IS NULL AND at.attrelid = p_table AND at.attnum > 0 AND NOT at.attisdropped) AS a;
END
$function$;

COMMENT ON FUNCTION wlsync._text_object_sql(regclass, name[], text) IS
    'Internal: SQL expression rendering columns of a row as a jsonb object of text values';
