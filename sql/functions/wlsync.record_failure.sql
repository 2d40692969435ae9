CREATE OR REPLACE FUNCTION wlsync.record_failure(p_table regclass, p_pk jsonb, p_error text,
                                                 p_attempts integer, p_max_attempts integer,
                                                 p_consumer text DEFAULT 'default')
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync.record_failure(p_table, p_pk, p_error, p_attempts, p_max_attempts [, p_consumer])
--   Called by a driver, in its claim transaction, for a key WL rejected on its
--   own (the driver splits a failing batch until the failing keys stand
--   alone, and writes the rest). The key is held back: its dead letter keeps
--   it dirty, and a claim takes it again once due, after a capped exponential
--   backoff (1 s, 2 s, 4 s ... 5 min); it is parked once it has failed
--   p_max_attempts times. While held, claims take the key's new events off
--   the queue without returning them (the dead letter stands for them), so
--   its later changes reach WL with the retry, as the row is then; nothing is
--   lost, the rest of the queue flows.
-- Parameters: p_table         the tracked table
--             p_pk            the key, as the claim returned it
--             p_error         WL's error, one line
--             p_attempts      failures before this one (the claim's attempts)
--             p_max_attempts  failures after which the key is parked, >= 1
--             p_consumer      whose WL rejected it; default 'default'
-- Returns:    'retrying' or 'parked'
-- Raises:     22023 when p_table is not tracked, there is no such consumer,
--             or p_max_attempts < 1.
-- Touches:    upserts wlsync.dead_letter.
-- ---------------------------------------------------------------------------
DECLARE
    v_table_id integer := wlsync._tracked_table_id(p_table);
    v_attempts integer := coalesce(p_attempts, 0) + 1;
    v_parked boolean;
BEGIN
    IF p_max_attempts IS NULL OR p_max_attempts < 1 THEN
        RAISE EXCEPTION 'wlsync.record_failure: p_max_attempts must be at least 1, got %', p_max_attempts
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_parked := v_attempts >= p_max_attempts;
    INSERT INTO wlsync.dead_letter AS d (consumer_id, table_id, pk, attempts, last_error, retry_at, parked_at)
    VALUES (wlsync._consumer_id(p_consumer), v_table_id, wlsync._queue_key(p_table, p_pk), v_attempts, p_error,
            CASE WHEN NOT v_parked THEN now() + least(interval '5 minutes', interval '1 second' * 2 ^ (v_attempts - 1)) END,
            CASE WHEN v_parked THEN now() END)
    ON CONFLICT (consumer_id, table_id, pk) DO UPDATE
    SET attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, last_failed_at = now(),
        retry_at = EXCLUDED.retry_at, parked_at = EXCLUDED.parked_at;
    RETURN CASE WHEN v_parked THEN 'parked' ELSE 'retrying' END;
END
$function$;

COMMENT ON FUNCTION wlsync.record_failure(regclass, jsonb, text, integer, integer, text) IS
    'Driver: hold back a key WL rejected; retried with backoff, parked after p_max_attempts';
