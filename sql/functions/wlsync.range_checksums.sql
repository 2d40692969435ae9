CREATE OR REPLACE FUNCTION wlsync.range_checksums(p_table regclass, p_scheme text, p_bits integer,
                                                  p_parent_bits integer DEFAULT 0, p_parents bigint[] DEFAULT NULL)
RETURNS TABLE (bucket bigint, row_count bigint, checksum numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET bytea_output = 'hex'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.range_checksums(p_table, p_scheme, p_bits, p_parent_bits, p_parents)
--   verify's checksums of a tracked table, one per hash bucket: rows are
--   grouped by the top p_bits bits of their key's hash
--   (wlsync._verify_bucket_sql; 0 bits: the whole table is bucket 0), and a
--   bucket's checksum is the exact sum of its rows' 64-bit hashes
--   (wlsync._verify_row_hash_sql): it does not depend on row order, so WL
--   computes the same in its own engine. With p_parents, only the rows of
--   those buckets at p_parent_bits (a coarser level) are counted: how verify
--   splits the buckets that differ. One sequential scan; values are rendered
--   with the output settings of wlsync.current_rows.
-- Parameters: p_table        a tracked table
--             p_scheme       'md5' or 'hashtextextended' (wlsync._verify_hash_sql)
--             p_bits         0 to 48
--             p_parent_bits  0 to p_bits; p_parents  buckets at p_parent_bits,
--                            or NULL for every row
-- Returns:    bucket, row_count, checksum per non-empty bucket, by bucket
-- Raises:     22023 when p_table is not tracked, for an unknown scheme, or
--             bits out of range.
-- Touches:    reads p_table (ACCESS SHARE), a sequential scan.
-- ---------------------------------------------------------------------------
BEGIN
    IF p_bits IS NULL OR p_bits NOT BETWEEN 0 AND 48 OR p_parent_bits IS NULL
       OR p_parent_bits NOT BETWEEN 0 AND p_bits THEN
        RAISE EXCEPTION 'wlsync.range_checksums: need 0 <= p_parent_bits <= p_bits <= 48, got % and %',
                        p_parent_bits, p_bits
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The bucket is computed again in the select list for the rows that pass
    -- the filter only; the row hash only for those.
    RETURN QUERY EXECUTE format($sql$
        SELECT %1$s, count(*), sum(%2$s)::numeric
        FROM %3$s AS t
        WHERE $1 IS NULL OR %4$s = ANY($1)
        GROUP BY 1
        ORDER BY 1$sql$,
        wlsync._verify_bucket_sql(p_table, p_scheme, p_bits),
        wlsync._verify_row_hash_sql(p_table, p_scheme),
        p_table,
        wlsync._verify_bucket_sql(p_table, p_scheme, p_parent_bits))
    USING p_parents;
END
$function$;

COMMENT ON FUNCTION wlsync.range_checksums(regclass, text, integer, integer, bigint[]) IS
    'verify: row count and checksum of a tracked table per bucket of its keys'' hashes (optionally within coarser buckets)';
