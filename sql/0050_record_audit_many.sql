-- audit.record_audit_many(): a batch of entries in one call, all or nothing.
--
-- One array per parameter of audit.record_audit(), element i of each array
-- making entry i. The batch is checked as a whole before anything is
-- written, then inserted by one set-based INSERT: a call per entry would
-- cost several times as much. Returns the new ids in the entries' order.

CREATE FUNCTION audit.record_audit_many(
    company_ids   uuid[],
    actions       text[],
    entities      text[],
    entity_ids    uuid[],
    details       jsonb[],
    user_ids      uuid[] DEFAULT NULL,
    franchise_ids uuid[] DEFAULT NULL
)
RETURNS SETOF uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry_count integer := pg_catalog.cardinality(company_ids);
    -- NULL elements take their value from the transaction's context (0036_context.sql).
    context_company   pg_catalog.uuid := audit._context_uuid('audit.company_id');
    context_user      pg_catalog.uuid := audit._context_uuid('audit.user_id');
    context_franchise pg_catalog.uuid := audit._context_uuid('audit.franchise_id');
    context_extra     pg_catalog.jsonb := audit._context_extra();
    bad pg_catalog.record;
BEGIN
    IF company_ids IS NULL THEN
        RAISE EXCEPTION 'record_audit_many: company_ids must not be null'
            USING ERRCODE = 'AU002', COLUMN = 'company_ids';
    END IF;
    -- ROWS FROM pads short arrays with NULLs: a missing optional value must be
    -- said, not guessed.
    IF pg_catalog.cardinality(actions) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(entities) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(entity_ids) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(record_audit_many.details) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(user_ids) <> entry_count
       OR pg_catalog.cardinality(franchise_ids) <> entry_count THEN
        RAISE EXCEPTION 'record_audit_many: the arrays must all have one element per entry (company_ids has %, actions %, entities %, entity_ids %, details %, user_ids %, franchise_ids %)',
                entry_count, pg_catalog.cardinality(actions), pg_catalog.cardinality(entities),
                pg_catalog.cardinality(entity_ids), pg_catalog.cardinality(record_audit_many.details),
                pg_catalog.cardinality(user_ids), pg_catalog.cardinality(franchise_ids)
            USING ERRCODE = 'AU002';
    END IF;

    SELECT e.position, audit._entry_problem(COALESCE(e.company_id, context_company), e.action, e.entity,
                                            e.entity_id, e.details) AS problem
    INTO bad
    FROM ROWS FROM (pg_catalog.unnest(company_ids), pg_catalog.unnest(actions), pg_catalog.unnest(entities),
                    pg_catalog.unnest(entity_ids), pg_catalog.unnest(record_audit_many.details))
         WITH ORDINALITY AS e(company_id, action, entity, entity_id, details, position)
    WHERE audit._entry_problem(COALESCE(e.company_id, context_company), e.action, e.entity, e.entity_id,
                               e.details) IS NOT NULL
    ORDER BY e.position
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'record_audit_many: entry % (counting from 1): %', bad.position, bad.problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(bad.problem, ' ', 1);
    END IF;
    IF context_user IS NULL AND entry_count OPERATOR(pg_catalog.>) 0
       AND (user_ids IS NULL OR pg_catalog.array_position(user_ids, NULL) IS NOT NULL) THEN
        PERFORM audit._require_user('record_audit_many');
    END IF;

    RETURN QUERY
    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    SELECT COALESCE(e.company_id, context_company), COALESCE(e.franchise_id, context_franchise),
           COALESCE(e.user_id, context_user), e.action, e.entity, e.entity_id, e.details, context_extra
    FROM ROWS FROM (pg_catalog.unnest(company_ids), pg_catalog.unnest(franchise_ids), pg_catalog.unnest(user_ids),
                    pg_catalog.unnest(actions), pg_catalog.unnest(entities), pg_catalog.unnest(entity_ids),
                    pg_catalog.unnest(record_audit_many.details))
         WITH ORDINALITY AS e(company_id, franchise_id, user_id, action, entity, entity_id, details, position)
    ORDER BY e.position
    RETURNING audit_logs.id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit_many(uuid[], text[], text[], uuid[], jsonb[], uuid[], uuid[]) IS
$$Records a batch of audit entries, all or nothing, and returns their ids in order.
Element i of each array makes entry i, as the parameters of audit.record_audit() do;
user_ids and franchise_ids may be NULL (none for any entry). NULL elements come from the
transaction's context, as in audit.record_audit(). Bad input raises SQLSTATE AU002,
naming the entry and the parameter, a bad context or strict mode AU006; either writes nothing.$$;
