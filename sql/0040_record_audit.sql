-- audit.record_audit(): the one way to write an entry.
--
-- SECURITY DEFINER: it runs as the owner of the log, so audit_writer needs
-- EXECUTE on this function and no privilege on the table. The empty
-- search_path and the qualified names keep a caller's search_path from
-- redirecting anything it calls.
-- Bad input raises SQLSTATE AU002 (invalid entry) naming the parameter, in
-- the COLUMN field too, before anything is written.

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
SET search_path = ''
AS $$
DECLARE
    problem text := audit._entry_problem(record_audit.company_id, record_audit.action, record_audit.entity,
                                         record_audit.entity_id, record_audit.details);
    new_id  uuid;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_audit: %', problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;

    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details)
    VALUES (record_audit.company_id, record_audit.franchise_id, record_audit.user_id,
            record_audit.action, record_audit.entity, record_audit.entity_id, record_audit.details)
    RETURNING audit_logs.id INTO new_id;
    RETURN new_id;
END;
$$;

COMMENT ON FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) IS
$$Records one audit entry and returns its id. Parameters (named notation welcome):
company_id (required) the tenant; action (required, not blank) e.g. CREATE_INVOICE;
entity (required, not blank) e.g. invoice; entity_id (required) the thing acted on;
details (default '{}') a JSON object of metadata; user_id (default NULL) who acted;
franchise_id (default NULL) the franchise. Bad input raises SQLSTATE AU002 and writes nothing.
The entry commits or rolls back with the calling transaction.$$;
