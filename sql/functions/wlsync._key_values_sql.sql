CREATE OR REPLACE FUNCTION wlsync._key_values_sql(p_table regclass, p_pk_columns name[], p_json text, p_aliased boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._key_values_sql(p_table, p_pk_columns, p_json, p_aliased)
--   SQL text of the list of key values held by a jsonb key, each cast to its
--   column's base type, e.g. (k.pk->>'a')::int4, (k.pk->>'b')::text, for
--   (t."a", t."b") = (...) or > (...), which keeps the table's primary key
--   index; or, aliased, (k.pk->>'a')::int4 AS "a", ... for a select list. Casting to the base type (not to a domain, not through a row
--   type) runs no user-defined code. Both spellings of a key work: the queue's
--   and the text form returned by the claim. timestamptz values spelled
--   without an offset are UTC: callers pin TimeZone = 'UTC'.
-- Parameters: p_table  the tracked table; p_pk_columns  its key columns;
--             p_json   an SQL expression of type jsonb holding the key
--             p_aliased  name each value after its column
-- Returns:    text
-- ---------------------------------------------------------------------------
BEGIN
    RETURN string_agg(format('(%s->>%L)::%s', p_json, c.col, wlsync._key_base_type(p_table, c.col)::regtype)
                      || CASE WHEN p_aliased THEN format(' AS %I', c.col) ELSE '' END,
                      ', ' ORDER BY c.ord)
    FROM unnest(p_pk_columns) WITH ORDINALITY AS c(col, ord);
END
$function$;

COMMENT ON FUNCTION wlsync._key_values_sql(regclass, name[], text, boolean) IS
    'Internal: SQL list of a jsonb key''s values cast to the key columns'' base types';
