CREATE OR REPLACE FUNCTION wlsync._key_json_sql(p_table regclass, p_pk_columns name[], p_row_alias text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._key_json_sql(p_table, p_pk_columns, p_row_alias)
--   SQL text of the expression that turns a row of p_table into its queue key,
--   e.g. pg_catalog.jsonb_build_object('id', NEW."id"::int4). Every producer
--   of queue rows (capture trigger, truncate trigger, backfill, enqueue_keys)
--   uses it, so one key has one spelling whoever enqueued it, whatever their
--   session settings: the claim's per-key rule relies on it. Key columns are
--   converted to their base type (domains add nothing to a key), timestamptz
--   is spelled in UTC and bytea in hex; the other allowed key types
--   (wlsync._key_base_type) have a JSON form that no setting changes.
--   Every function, type and operator is schema-qualified: capture functions
--   run as the writer, with the writer's search_path.
-- Parameters: p_table       the tracked table
--             p_pk_columns  its primary key columns, in key order
--             p_row_alias   how the row is named where the text is used (NEW, t, ...)
-- Returns:    text, an SQL expression of type jsonb
-- Touches:    reads pg_attribute, pg_type.
-- ---------------------------------------------------------------------------
BEGIN
    RETURN 'pg_catalog.jsonb_build_object(' || string_agg(
        format('%L::pg_catalog.text, %s', c.col,
               CASE b.base
                    WHEN 'timestamptz'::regtype
                        THEN format('pg_catalog.timezone(''UTC''::pg_catalog.text, %s.%I::pg_catalog.timestamptz)',
                                    p_row_alias, c.col)
                    WHEN 'bytea'::regtype
                        THEN format('pg_catalog.concat(''\x''::pg_catalog.text, pg_catalog.encode(%s.%I::pg_catalog.bytea, ''hex''::pg_catalog.text))',
                                    p_row_alias, c.col)
                    ELSE format('%s.%I::%s', p_row_alias, c.col, wlsync._qualified_type(b.base))
               END),
        ', ' ORDER BY c.ord) || ')'
    FROM unnest(p_pk_columns) WITH ORDINALITY AS c(col, ord)
    CROSS JOIN LATERAL (SELECT wlsync._key_base_type(p_table, c.col) AS base) AS b;
END
$function$;

COMMENT ON FUNCTION wlsync._key_json_sql(regclass, name[], text) IS
    'Internal: SQL expression building the jsonb queue key of a row (one spelling per key)';
