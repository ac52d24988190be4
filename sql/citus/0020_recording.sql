-- Recording on Citus: every entry is written by a call that Citus sends to
-- the worker holding its company, never by the coordinator.
--
-- Why not simply distribute audit.record_audit() by company_id:
--
-- 1. A write the coordinator makes into a distributed table reaches the
--    worker through a connection as current_user. Inside a SECURITY DEFINER
--    function that is audit_definer, a role no one may log in as: every
--    call Citus does not delegate (a company taken from the context, a
--    batch, a call nested in a function) fails. So each write must run, as a
--    whole call, on the worker: delegated, with force_delegation inside
--    transaction blocks too.
-- 2. Citus 13.0.5 crashes the coordinator (signal 11, every session lost)
--    when it plans the delegation of a call whose distribution argument is a
--    NULL constant of a by-reference type such as uuid: `SELECT
--    audit.record_audit(NULL, ...)`, a documented call (the company from the
--    context), or a parameter bound to NULL. Any writer could do it. So the
--    function Citus delegates is STRICT: PostgreSQL folds a strict call with
--    a NULL constant argument to NULL while planning, before Citus looks at
--    it. Its other arguments travel in arrays, never NULL themselves, so that
--    a NULL action or details is still refused (AU002) rather than folded.
--
-- audit.record_audit() keeps its signature and behaviour, as a SQL wrapper
-- that PostgreSQL inlines into the caller's statement: with a company_id
-- given, COALESCE(company_id, ...) folds to that constant and Citus sends
-- the call to the company's worker. Without one, the call cannot be routed:
-- it runs on the coordinator and is refused (AU006) with what to do.

-- The entry itself, on the company's worker. The body is audit.record_audit()'s
-- (sql/0040_record_audit.sql) with its arguments unpacked.
CREATE FUNCTION audit._record_audit_at(company_id uuid, texts text[], ids uuid[], details jsonb[])
RETURNS uuid
LANGUAGE plpgsql
STRICT
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    acting_action    pg_catalog.text := _record_audit_at.texts[1];
    acting_entity    pg_catalog.text := _record_audit_at.texts[2];
    acting_entity_id pg_catalog.uuid := _record_audit_at.ids[1];
    acting_details   pg_catalog.jsonb := _record_audit_at.details[1];
    acting_user      pg_catalog.uuid := COALESCE(_record_audit_at.ids[2], audit._context_uuid('audit.user_id'));
    acting_franchise pg_catalog.uuid := COALESCE(_record_audit_at.ids[3], audit._context_uuid('audit.franchise_id'));
    problem pg_catalog.text := audit._entry_problem(_record_audit_at.company_id, acting_action, acting_entity,
                                                    acting_entity_id, acting_details);
    new_id  pg_catalog.uuid;
BEGIN
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION 'record_audit: %', problem
            USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(problem, ' ', 1);
    END IF;
    IF pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'record_audit: the log is sharded by company (Citus), and this call was not sent to the company''s node'
            USING ERRCODE = 'AU006', COLUMN = 'company_id',
                  HINT = 'Pass company_id as an argument, a constant or a parameter: a company taken from the context cannot be routed.';
    END IF;
    IF acting_user IS NULL THEN
        PERFORM audit._require_user('record_audit');
    END IF;

    INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
    VALUES (_record_audit_at.company_id, acting_franchise, acting_user, acting_action, acting_entity,
            acting_entity_id, acting_details,
            CASE WHEN COALESCE(pg_catalog.current_setting('audit.context', true), '') OPERATOR(pg_catalog.=) ''
                 THEN '{}' ELSE audit._context_extra() END)
    RETURNING audit_logs.id INTO new_id;
    RETURN new_id;
END;
$$;

COMMENT ON FUNCTION audit._record_audit_at(uuid, text[], uuid[], jsonb[]) IS
$$Citus: records one entry on the node that holds company_id, for audit.record_audit(), which is the one
to call. texts = {action, entity}, ids = {entity_id, user_id, franchise_id}, details = {details}.
STRICT, so that a NULL company_id constant is folded away before Citus plans the call (Citus 13.0.5
crashes on it).$$;

-- Raises what audit._entry_problem() says of a missing company: the last
-- COALESCE argument of audit.record_audit(), reached only when there is none.
CREATE FUNCTION audit._no_company()
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'record_audit: company_id must not be null: pass it, or set audit.company_id in the context'
        USING ERRCODE = 'AU002', COLUMN = 'company_id';
END;
$$;

COMMENT ON FUNCTION audit._no_company() IS
    'Citus: refuses (AU002) an entry of no company; called by audit.record_audit() only when there is none.';

-- No SET clause, no SECURITY DEFINER: either would keep PostgreSQL from
-- inlining the body into the caller's statement, and then Citus would see
-- a call of this function, which is not the one it may delegate. Every name
-- is qualified; it runs as the caller, with no right of its own.
CREATE OR REPLACE FUNCTION audit.record_audit(
    company_id   uuid,
    action       text,
    entity       text,
    entity_id    uuid,
    details      jsonb DEFAULT '{}',
    user_id      uuid  DEFAULT NULL,
    franchise_id uuid  DEFAULT NULL
)
RETURNS uuid
LANGUAGE sql
VOLATILE
SECURITY INVOKER
AS $$
SELECT audit._record_audit_at(
    COALESCE(company_id, audit._context_uuid('audit.company_id'), audit._no_company()),
    ARRAY[action, entity]::pg_catalog.text[],
    ARRAY[entity_id, user_id, franchise_id]::pg_catalog.uuid[],
    ARRAY[details]::pg_catalog.jsonb[])
$$;

-- A batch of one company's entries, on its worker, ids in the entries'
-- order: audit.record_audit_many() writes from wherever it runs, which on
-- Citus is the coordinator (its company_ids are an array Citus cannot
-- route by). One call per company; AuditService.record_many() splits a
-- batch so. Every array is required (STRICT, as above): user_ids and
-- franchise_ids hold NULL elements where there is none.
CREATE FUNCTION audit.record_audit_many_of(
    company_id    uuid,
    actions       text[],
    entities      text[],
    entity_ids    uuid[],
    details       jsonb[],
    user_ids      uuid[],
    franchise_ids uuid[]
)
RETURNS uuid[]
LANGUAGE plpgsql
STRICT
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry_count pg_catalog.int4 := pg_catalog.cardinality(actions);
    context_user      pg_catalog.uuid := audit._context_uuid('audit.user_id');
    context_franchise pg_catalog.uuid := audit._context_uuid('audit.franchise_id');
    context_extra     pg_catalog.jsonb := audit._context_extra();
    problem pg_catalog.text;
    new_id  pg_catalog.uuid;
    new_ids pg_catalog.uuid[] := '{}';
BEGIN
    IF pg_catalog.cardinality(entities) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(entity_ids) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(record_audit_many_of.details) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(user_ids) IS DISTINCT FROM entry_count
       OR pg_catalog.cardinality(franchise_ids) IS DISTINCT FROM entry_count THEN
        RAISE EXCEPTION 'record_audit_many: the arrays must all have one element per entry (actions has %, entities %, entity_ids %, details %, user_ids %, franchise_ids %)',
                entry_count, pg_catalog.cardinality(entities), pg_catalog.cardinality(entity_ids),
                pg_catalog.cardinality(record_audit_many_of.details), pg_catalog.cardinality(user_ids),
                pg_catalog.cardinality(franchise_ids)
            USING ERRCODE = 'AU002';
    END IF;
    FOR i IN 1 .. entry_count LOOP
        problem := audit._entry_problem(record_audit_many_of.company_id, actions[i], entities[i], entity_ids[i],
                                        record_audit_many_of.details[i]);
        IF problem IS NOT NULL THEN
            RAISE EXCEPTION 'record_audit_many: entry % (counting from 1): %', i, problem
                USING ERRCODE = 'AU002', COLUMN = pg_catalog.split_part(problem, ' ', 1);
        END IF;
    END LOOP;
    IF pg_catalog.citus_is_coordinator() THEN
        RAISE EXCEPTION 'record_audit_many: the log is sharded by company (Citus), and this call was not sent to the company''s node'
            USING ERRCODE = 'AU006', COLUMN = 'company_id',
                  HINT = 'Call it with company_id as a constant or a parameter, not nested in another function.';
    END IF;
    IF context_user IS NULL AND pg_catalog.array_position(user_ids, NULL) IS NOT NULL THEN
        PERFORM audit._require_user('record_audit_many');
    END IF;
    -- One row at a time: the ids come back in the entries' order by construction.
    FOR i IN 1 .. entry_count LOOP
        INSERT INTO audit.audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details, context)
        VALUES (record_audit_many_of.company_id, COALESCE(franchise_ids[i], context_franchise),
                COALESCE(user_ids[i], context_user), actions[i], entities[i], entity_ids[i],
                record_audit_many_of.details[i], context_extra)
        RETURNING audit_logs.id INTO new_id;
        new_ids := new_ids OPERATOR(pg_catalog.||) new_id;
    END LOOP;
    RETURN new_ids;
END;
$$;

COMMENT ON FUNCTION audit.record_audit_many_of(uuid, text[], text[], uuid[], jsonb[], uuid[], uuid[]) IS
$$Citus: records a batch of one company's entries on the node that holds it, all or nothing, and
returns their ids in order. Element i of each array makes entry i; every array is required
(NULL elements in user_ids and franchise_ids come from the context). Bad input raises AU002.$$;

ALTER FUNCTION audit._record_audit_at(uuid, text[], uuid[], jsonb[]) OWNER TO audit_definer;
ALTER FUNCTION audit.record_audit_many_of(uuid, text[], text[], uuid[], jsonb[], uuid[], uuid[]) OWNER TO audit_definer;
ALTER FUNCTION audit._no_company() OWNER TO audit_owner;

REVOKE ALL ON FUNCTION audit._record_audit_at(uuid, text[], uuid[], jsonb[]),
                       audit.record_audit_many_of(uuid, text[], text[], uuid[], jsonb[], uuid[], uuid[]),
                       audit._no_company()
    FROM PUBLIC;
-- record_audit() runs as its caller now: its caller needs what it calls.
GRANT EXECUTE ON FUNCTION audit._record_audit_at(uuid, text[], uuid[], jsonb[]),
                          audit.record_audit_many_of(uuid, text[], text[], uuid[], jsonb[], uuid[], uuid[]),
                          audit._no_company(), audit._context_uuid(text)
    TO audit_writer;

SELECT pg_catalog.create_distributed_function(
    'audit._record_audit_at(uuid, text[], uuid[], jsonb[])'::pg_catalog.regprocedure,
    distribution_arg_name => 'company_id', colocate_with => 'audit.audit_logs', force_delegation => true);
SELECT pg_catalog.create_distributed_function(
    'audit.record_audit_many_of(uuid, text[], text[], uuid[], jsonb[], uuid[], uuid[])'::pg_catalog.regprocedure,
    distribution_arg_name => 'company_id', colocate_with => 'audit.audit_logs', force_delegation => true);
SELECT pg_catalog.create_distributed_function('audit._no_company()'::pg_catalog.regprocedure);
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
