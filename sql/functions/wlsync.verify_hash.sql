CREATE OR REPLACE FUNCTION wlsync.verify_hash(p_scheme text, p_text text)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.verify_hash(p_scheme, p_text)
--   The 64-bit hash verify computes of a text in the given scheme
--   (wlsync._verify_hash_sql). verify hashes a probe text here and in WL
--   and uses the first scheme of the sink's on which both agree: they would
--   not on a database whose encoding is not UTF8 (md5 hashes the bytes), or
--   with hashtextextended between machines of another byte order.
-- Parameters: p_scheme  'md5' or 'hashtextextended'; p_text  any text
-- Returns:    bigint
-- Raises:     22023 for an unknown scheme.
-- Touches:    nothing.
-- ---------------------------------------------------------------------------
DECLARE
    v_hash bigint;
BEGIN
    EXECUTE 'SELECT ' || wlsync._verify_hash_sql(p_scheme, '$1') INTO v_hash USING p_text;
    RETURN v_hash;
END
$function$;

COMMENT ON FUNCTION wlsync.verify_hash(text, text) IS
    'The 64-bit hash verify computes of a text in a scheme (md5 or hashtextextended), to check WL agrees';
