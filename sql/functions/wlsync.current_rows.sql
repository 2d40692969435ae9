CREATE OR REPLACE FUNCTION wlsync.current_rows(p_table regclass, p_pks jsonb[])
RETURNS TABLE (requested_pk jsonb, pk jsonb, row_data jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.current_rows(p_table, p_pks)
--   The rows of a tracked table for the given keys, as WL should have them:
--   the claim reads claimed keys through it, verify checks WL's keys with it.
--   Every value is rendered as its PostgreSQL text output with the output
--   settings pinned (UTC, ISO dates, hex bytea, exact floats), so the same row
--   always reads the same, whoever asks.
-- Parameters: p_table  a tracked table
--             p_pks    keys as jsonb objects {"column": value, ...}; a queue
--                      key or a returned pk, both spellings work
-- Returns:    one row per requested key: requested_pk (as given), pk (the
--             key's columns as text), row_data (every column as text, JSON null
--             for NULL; NULL when no such row exists)
-- Raises:     22023 when p_table is not tracked; 22P02 for a key value that
--             does not fit its column's type.
-- Touches:    reads p_table by its primary key (ACCESS SHARE).
-- ---------------------------------------------------------------------------
DECLARE
    v_pk_columns name[];
    v_columns text;
    v_values text;
BEGIN
    SELECT t.pk_columns INTO v_pk_columns
    FROM wlsync.tracked_table AS t WHERE t.table_id = wlsync._tracked_table_id(p_table);

    SELECT string_agg(quote_literal(a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('t.%I::text', a.attname), ', ' ORDER BY a.attnum)
    INTO v_columns, v_values
    FROM pg_attribute AS a
    WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;

    RETURN QUERY EXECUTE format($sql$
        SELECT k.pk,
               pg_catalog.jsonb_object(ARRAY[%1$s]::text[], ARRAY[%2$s]::text[]),
               CASE WHEN t.%3$I IS NULL THEN NULL
                    ELSE pg_catalog.jsonb_object(ARRAY[%4$s]::text[], ARRAY[%5$s]::text[]) END
        FROM unnest($1) WITH ORDINALITY AS k(pk, ord)
        CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::%6$s, k.pk) AS key
        LEFT JOIN %6$s AS t ON %7$s
        ORDER BY k.ord$sql$,
        (SELECT string_agg(quote_literal(c), ', ') FROM unnest(v_pk_columns) AS c),
        (SELECT string_agg(format('key.%I::text', c), ', ') FROM unnest(v_pk_columns) AS c),
        v_pk_columns[1], v_columns, v_values, p_table,
        (SELECT string_agg(format('t.%1$I = key.%1$I', c), ' AND ') FROM unnest(v_pk_columns) AS c))
    USING p_pks;
END
$function$;

COMMENT ON FUNCTION wlsync.current_rows(regclass, jsonb[]) IS
    'The current rows (all values as text) of a tracked table for the given keys; NULL row_data when gone';
