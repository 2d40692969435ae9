CREATE OR REPLACE FUNCTION wlsync._qualified_type(p_type regtype)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $function$
-- ---------------------------------------------------------------------------
-- wlsync._qualified_type(p_type)
--   A type's schema-qualified name for generated SQL ('pg_catalog.int4'):
--   capture functions run with the writer's search_path, which must not be
--   able to put a type of its own in the place of a key column's type.
-- Parameters: p_type  any type
-- Returns:    text, e.g. pg_catalog.timestamptz
-- Touches:    reads pg_type, pg_namespace.
-- ---------------------------------------------------------------------------
SELECT format('%I.%I', n.nspname, t.typname)
FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
WHERE t.oid = p_type;
$function$;

COMMENT ON FUNCTION wlsync._qualified_type(regtype) IS
    'Internal: schema-qualified type name for generated SQL';
