CREATE OR REPLACE FUNCTION wlsync._verify_hash_sql(p_scheme text, p_text_sql text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._verify_hash_sql(p_scheme, p_text_sql)
--   SQL text of the signed 64-bit hash verify computes of a text, in one of
--   the schemes WL can compute the same way (the README's "Verify by hash
--   buckets"):
--     md5               the first 8 bytes of md5(text) as a big-endian
--                       signed bigint: any store computes it (SQL, or Python's
--                       hashlib); about 2 us a row here;
--     hashtextextended  hashtextextended(text, 0): about ten times cheaper,
--                       for a PostgreSQL WL on a machine of the same byte
--                       order (verify checks with wlsync.verify_hash first).
-- Parameters: p_scheme    'md5' or 'hashtextextended'
--             p_text_sql  an SQL expression of type text
-- Returns:    text, an SQL expression of type bigint
-- Raises:     22023 for another scheme.
-- ---------------------------------------------------------------------------
BEGIN
    IF p_scheme = 'md5' THEN
        RETURN format('(''x''::pg_catalog.text OPERATOR(pg_catalog.||) pg_catalog.left(pg_catalog.md5(%s), 16))'
                      '::pg_catalog.bit(64)::pg_catalog.int8', p_text_sql);
    ELSIF p_scheme = 'hashtextextended' THEN
        RETURN format('pg_catalog.hashtextextended(%s, 0)', p_text_sql);
    END IF;
    RAISE EXCEPTION 'wlsync: unknown verify hash scheme %', quote_nullable(p_scheme)
        USING ERRCODE = 'invalid_parameter_value',
              HINT = 'Use ''md5'' or ''hashtextextended''.';
END
$function$;

COMMENT ON FUNCTION wlsync._verify_hash_sql(text, text) IS
    'Internal: SQL expression of the 64-bit hash of a text that verify compares, per scheme';
