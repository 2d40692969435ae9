CREATE OR REPLACE FUNCTION wlsync._consumer_id(p_consumer text)
RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._consumer_id(p_consumer)
--   The id (and ring number) of a named consumer.
-- Parameters: p_consumer  a consumer's name ('default' for what was tracked
--             before consumers existed)
-- Returns:    wlsync.consumer.consumer_id
-- Raises:     22023 when there is no such consumer, listing the ones there are.
-- Touches:    reads wlsync.consumer.
-- ---------------------------------------------------------------------------
DECLARE
    v_id integer;
BEGIN
    SELECT c.consumer_id INTO v_id FROM wlsync.consumer AS c WHERE c.name = p_consumer;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'wlsync: no consumer named % (consumers: %)', coalesce(quote_literal(p_consumer), 'NULL'),
                        coalesce((SELECT string_agg(c.name, ', ' ORDER BY c.name) FROM wlsync.consumer AS c), 'none')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'SELECT wlsync.add_consumer(''<name>'', ARRAY[''<table>'']::regclass[]); creates one.';
    END IF;
    RETURN v_id;
END
$function$;

COMMENT ON FUNCTION wlsync._consumer_id(text) IS
    'Internal: consumer_id of a named consumer, or a clear error listing the consumers';
