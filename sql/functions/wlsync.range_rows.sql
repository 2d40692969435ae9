CREATE OR REPLACE FUNCTION wlsync.range_rows(p_table regclass, p_scheme text, p_bits integer, p_buckets bigint[])
RETURNS TABLE (bucket bigint, pk jsonb, row_hash bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.range_rows(p_table, p_scheme, p_bits, p_buckets)
--   The keys of a tracked table in the given buckets (as in
--   wlsync.range_checksums) with each row's hash: verify lists the buckets
--   whose checksums differ with it and compares them key by key. One
--   sequential scan; the result is kept in a tuplestore (spilled to disk past
--   work_mem), so read it through a cursor.
-- Parameters: p_table    a tracked table
--             p_scheme   'md5' or 'hashtextextended'
--             p_bits     1 to 48; p_buckets  buckets at p_bits
-- Returns:    bucket, pk (key columns as text, as wlsync.read_rows), row_hash;
--             ordered by bucket
-- Raises:     22023 when p_table is not tracked, for an unknown scheme, or
--             p_bits out of range.
-- Touches:    reads p_table (ACCESS SHARE), a sequential scan.
-- ---------------------------------------------------------------------------
DECLARE
    v_pk_columns name[];
BEGIN
    IF p_bits IS NULL OR p_bits NOT BETWEEN 1 AND 48 THEN
        RAISE EXCEPTION 'wlsync.range_rows: p_bits must be between 1 and 48, got %', p_bits
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT t.pk_columns INTO v_pk_columns
    FROM wlsync.tracked_table AS t WHERE t.table_id = wlsync._tracked_table_id(p_table);
    RETURN QUERY EXECUTE format($sql$
        SELECT %1$s, %2$s, %3$s
        FROM %4$s AS t
        WHERE %1$s = ANY($1)
        ORDER BY 1$sql$,
        wlsync._verify_bucket_sql(p_table, p_scheme, p_bits),
        wlsync._text_object_sql(p_table, v_pk_columns, 't'),
        wlsync._verify_row_hash_sql(p_table, p_scheme),
        p_table)
    USING p_buckets;
END
$function$;

COMMENT ON FUNCTION wlsync.range_rows(regclass, text, integer, bigint[]) IS
    'verify: the keys and row hashes of a tracked table in some buckets of its keys'' hashes';
