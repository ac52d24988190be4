-- audit._entry_problem(): the one statement of what makes an entry invalid,
-- shared by audit.record_audit() and audit.record_audit_many().
--
-- It returns NULL for a valid entry, else a message that starts with the name
-- of the offending parameter. It is a plain SQL function without a SET clause
-- so that PostgreSQL inlines it into its callers (a SET clause would prevent
-- that, and cost a call per entry in a batch); its callers run with
-- search_path = pg_catalog, pg_temp, and it qualifies its operators anyway.

CREATE FUNCTION audit._entry_problem(
    company_id uuid,
    action     text,
    entity     text,
    entity_id  uuid,
    details    jsonb
)
RETURNS text
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
AS $$
SELECT CASE
    WHEN company_id IS NULL THEN 'company_id must not be null: pass it, or set audit.company_id in the context'
    WHEN action IS NULL OR action OPERATOR(pg_catalog.!~) '[^[:space:]]' THEN 'action must not be blank'
    WHEN entity IS NULL OR entity OPERATOR(pg_catalog.!~) '[^[:space:]]' THEN 'entity must not be blank'
    WHEN entity_id IS NULL THEN 'entity_id must not be null'
    WHEN details IS NULL THEN 'details must not be null (pass ''{}'' for no details)'
    WHEN pg_catalog.jsonb_typeof(details) OPERATOR(pg_catalog.<>) 'object'
        THEN 'details must be a JSON object, not ' OPERATOR(pg_catalog.||) pg_catalog.jsonb_typeof(details)
END
$$;

COMMENT ON FUNCTION audit._entry_problem(uuid, text, text, uuid, jsonb) IS
    'NULL when an entry is valid, else what is wrong with it, starting with the parameter''s name.';
