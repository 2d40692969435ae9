CREATE OR REPLACE FUNCTION wlsync._current_rows_sql(p_table regclass, p_keys text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._current_rows_sql(p_table, p_keys)
--   The query behind wlsync.current_rows for one table: the rows for the keys
--   in the jsonb[] expression p_keys, in the order given, as (requested_pk,
--   pk, row_data) with every value rendered as text. wlsync._install_reader
--   writes it into the table's generated reader; current_rows runs it as is
--   when that reader no longer matches the table's columns. LATERAL ...
--   OFFSET 0: one primary key probe per key (a plain join is planned as a
--   hash join over the whole table).
-- Parameters: p_table  a tracked table; p_keys  SQL text of a jsonb[] ($1, p_pks)
-- Returns:    text, a SELECT
-- Touches:    reads wlsync.tracked_table, pg_attribute, pg_type.
-- ---------------------------------------------------------------------------
DECLARE
    v_pk_columns name[];
BEGIN
    SELECT t.pk_columns INTO v_pk_columns
    FROM wlsync.tracked_table AS t WHERE t.table_id = wlsync._tracked_table_id(p_table);
    RETURN format($sql$
        SELECT k.pk, %1$s, r.row_data
        FROM unnest(%7$s) WITH ORDINALITY AS k(pk, ord)
        CROSS JOIN LATERAL (SELECT %2$s) AS t_key
        LEFT JOIN LATERAL (SELECT %3$s AS row_data FROM %4$s AS t WHERE (%5$s) = (%6$s) OFFSET 0) AS r ON true
        ORDER BY k.ord$sql$,
        wlsync._text_object_sql(p_table, v_pk_columns, 't_key'),
        wlsync._key_values_sql(p_table, v_pk_columns, 'k.pk', true),
        wlsync._text_object_sql(p_table, NULL, 't'),
        p_table,
        (SELECT string_agg(format('t.%I', c), ', ') FROM unnest(v_pk_columns) AS c),
        (SELECT string_agg(format('t_key.%I', c), ', ') FROM unnest(v_pk_columns) AS c),
        p_keys);
END
$function$;

COMMENT ON FUNCTION wlsync._current_rows_sql(regclass, text) IS
    'Internal: the query of wlsync.current_rows for one table (generated readers embed it)';
