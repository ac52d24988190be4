-- audit.record_audit(): the one way to write an entry.
--
-- SECURITY DEFINER: it runs as audit_definer, which may insert entries and
-- little else, so audit_writer needs EXECUTE on this function and no
-- privilege on the table. search_path is pinned to pg_catalog, pg_temp, with
-- pg_temp last: under search_path = '' PostgreSQL still looks up type names
-- in pg_temp first, where a caller's CREATE DOMAIN pg_temp.uuid ... CHECK
-- (its_own_function(VALUE)) would run its code with our rights. Every name
-- is qualified as well, types included.
-- company_id, user_id and franchise_id passed as NULL come from the
-- transaction's context (0036_context.sql), whose extra keys are stored with
-- the entry. Bad input raises SQLSTATE AU002 (invalid entry) naming the
-- parameter, in the COLUMN field too, before anything is written; a
-- malformed context, or no user under strict mode, raises AU006.

CREATE FUNCTION audit.record_audit(
    company_id   uuid,
    action       text,
    entity       text,
    entity_id    uuid,
    details      jsonb DEFAULT '{}',
    user_id      uuid  DEFAULT NULL,
    franchise_id uuid  DEFAULT NULL
)
RETURNS uuid
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- A NULL parameter takes its value from the transaction's context (0036_context.sql).
    acting_company   pg_catalog.uuid := COALESCE(record_audit.company_id, audit._context_uuid('audit.company_id'));
    acting_user      pg_catalog.uuid := COALESCE(record_audit.user_id, audit._context_uuid('audit.user_id'));
    acting_franchise pg_catalog.uuid := COALESCE(record_audit.franchise_id, audit._context_uuid('audit.franchise_id'));
    problem pg_catalog.text := audit._entry_problem(acting_company, record_audit.action, record_audit.entity,
                                         record_audit.entity_id, record_audit.details);
    new_id  pg_catalog.uuid;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_audit: %', problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    IF acting_user IS NULL THEN
        PERFORM audit._require_user('record_audit');
    END IF;

    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    VALUES (acting_company, acting_franchise, acting_user, record_audit.action, record_audit.entity,
            record_audit.entity_id, record_audit.details,
            CASE WHEN COALESCE(pg_catalog.current_setting('audit.context', true), '') OPERATOR(pg_catalog.=) ''
                 THEN '{}' ELSE audit._context_extra() END)
    RETURNING audit_logs.id INTO new_id;
    RETURN new_id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) IS
$$Records one audit entry and returns its id. Parameters (named notation welcome):
company_id the tenant (NULL: from the context); action (required, not blank) e.g. CREATE_INVOICE;
entity (required, not blank) e.g. invoice; entity_id (required) the thing acted on;
details (default '{}') a JSON object of metadata; user_id (default NULL) who acted;
franchise_id (default NULL) the franchise. A NULL company_id, user_id or franchise_id comes
from the transaction's context (audit.set_context), whose extra keys are stored with the entry.
Bad input raises SQLSTATE AU002, a bad context or strict mode AU006; either writes nothing.
The entry commits or rolls back with the calling transaction.$$;
