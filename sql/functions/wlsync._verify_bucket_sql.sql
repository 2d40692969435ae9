CREATE OR REPLACE FUNCTION wlsync._verify_bucket_sql(p_table regclass, p_scheme text, p_bits integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._verify_bucket_sql(p_table, p_scheme, p_bits)
--   SQL text of a row's verify bucket at p_bits bits: the top p_bits bits of
--   the 64-bit hash (wlsync._verify_hash_sql) of the key columns' record text
--   ROW(t.k1, t.k2)::text, as an unsigned number below 2^p_bits; 0 when p_bits
--   is 0 (the whole table). The record text is the key columns' output text,
--   quoted as record_out does: any WL can spell it from the text it stores.
--   A row's bucket at p_bits - 1 is its bucket at p_bits shifted right by one.
-- Parameters: p_table  a tracked table (row alias t); p_scheme  a hash scheme;
--             p_bits   0 to 48
-- Returns:    text, an SQL expression of type bigint
-- Touches:    reads wlsync.tracked_table.
-- ---------------------------------------------------------------------------
DECLARE
    v_pk_columns name[];
BEGIN
    IF p_bits = 0 THEN
        RETURN '0::pg_catalog.int8';
    END IF;
    SELECT t.pk_columns INTO v_pk_columns
    FROM wlsync.tracked_table AS t WHERE t.table_id = wlsync._tracked_table_id(p_table);
    RETURN format('((%s OPERATOR(pg_catalog.>>) %s) OPERATOR(pg_catalog.&) %s::pg_catalog.int8)',
                  wlsync._verify_hash_sql(p_scheme, format('ROW(%s)::pg_catalog.text',
                      (SELECT string_agg(format('t.%I', c), ', ' ORDER BY o)
                       FROM unnest(v_pk_columns) WITH ORDINALITY AS k(c, o)))),
                  64 - p_bits, (1::bigint << p_bits) - 1);
END
$function$;

COMMENT ON FUNCTION wlsync._verify_bucket_sql(regclass, text, integer) IS
    'Internal: SQL expression of a row''s verify bucket (top bits of its key''s hash)';
