CREATE OR REPLACE FUNCTION wlsync._key_base_type(p_table regclass, p_column name)
RETURNS oid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._key_base_type(p_table, p_column)
--   The base type (domains resolved) of a primary key column, if wlsync can
--   key rows by it: a built-in type whose key spelling no session setting
--   changes and whose equality is its text identity: smallint, integer,
--   bigint, numeric, boolean, text, varchar, char, name, uuid, date, time,
--   timestamp, timestamptz, bytea, oid. Others are refused: floats (no exact
--   text form), interval, money, ranges, arrays, reg* types (spelled by
--   session settings or equal under several spellings), and user-defined
--   types (their casts and operators would run inside wlsync's SECURITY
--   DEFINER functions).
-- Parameters: p_table   a table; p_column  one of its primary key columns
-- Returns:    the base type's oid
-- Raises:     22023 naming the table, the column and its type when refused.
-- Touches:    reads pg_attribute, pg_type.
-- ---------------------------------------------------------------------------
DECLARE
    v_type oid;
    v_base oid;
BEGIN
    SELECT a.atttypid INTO STRICT v_type
    FROM pg_attribute AS a WHERE a.attrelid = p_table AND a.attname = p_column;
    v_base := v_type;
    WHILE (SELECT t.typtype FROM pg_type AS t WHERE t.oid = v_base) = 'd' LOOP
        SELECT t.typbasetype INTO v_base FROM pg_type AS t WHERE t.oid = v_base;
    END LOOP;
    IF v_base NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype, 'bool'::regtype,
                      'text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype, 'uuid'::regtype,
                      'date'::regtype, 'time'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype,
                      'bytea'::regtype, 'oid'::regtype) THEN
        RAISE EXCEPTION 'cannot track %: primary key column % has type %, which wlsync cannot key rows by',
                        p_table, quote_ident(p_column), format_type(v_type, NULL)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Key columns must be integers, numeric, boolean, text types, uuid, date/time types, '
                         'bytea or oid (or domains over them); add such a key (e.g. a bigint identity).';
    END IF;
    RETURN v_base;
END
$function$;

COMMENT ON FUNCTION wlsync._key_base_type(regclass, name) IS
    'Internal: base type of a key column, or a clear error when wlsync cannot key rows by it';
