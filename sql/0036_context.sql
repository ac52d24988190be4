-- Who is acting, and on whose behalf: the context of the current transaction.
--
-- Every request of an application usually shares one database role behind a
-- connection pool, so the role cannot say who acted. The application says it
-- instead, in transaction-local settings, and every entry written in that
-- transaction (by audit.record_audit() or by change tracking) picks them up:
--
--     audit.user_id       the user acting (uuid)
--     audit.company_id    the company acted for (uuid)
--     audit.franchise_id  the franchise acted for (uuid)
--     audit.context       anything else worth keeping (request id, client
--                         address ...): a JSON object, stored with the entry
--
-- Set them with audit.set_context() or SET LOCAL, never with a plain SET: a
-- transaction-local setting ends with its transaction, so with a pool, or
-- PgBouncer in transaction mode, the next transaction on the connection
-- starts with no context at all.
--
-- A malformed setting raises SQLSTATE AU006 (invalid context) naming it.
-- These readers have no SET clause, so that callers that need them only now
-- and then pay no configuration change per call; they name only pg_catalog
-- objects, qualified.

CREATE FUNCTION audit._context_uuid(setting text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    value pg_catalog.text := pg_catalog.current_setting(setting, true);
BEGIN
    IF value IS NULL OR value OPERATOR(pg_catalog.=) '' THEN
        RETURN NULL;
    END IF;
    -- The forms uuid_in accepts: 32 hex digits, optionally in braces, with a
    -- hyphen allowed after any group of four.
    IF value OPERATOR(pg_catalog.!~) '^\{?[0-9a-fA-F]{4}(-?[0-9a-fA-F]{4}){7}\}?$' THEN
        RAISE EXCEPTION 'context setting % is not a uuid: %', setting, pg_catalog.quote_literal(value)
            USING ERRCODE = 'AU006', COLUMN = setting,
                  HINT = 'Set it with audit.set_context(), or SET LOCAL to a uuid.';
    END IF;
    RETURN value::pg_catalog.uuid;
END;
$$;

COMMENT ON FUNCTION audit._context_uuid(text) IS
    'The uuid in a context setting (audit.user_id, audit.company_id, audit.franchise_id); NULL when unset.';

CREATE FUNCTION audit._context_extra()
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    value pg_catalog.text := pg_catalog.current_setting('audit.context', true);
    extra pg_catalog.jsonb;
BEGIN
    IF value IS NULL OR value OPERATOR(pg_catalog.=) '' THEN
        RETURN '{}';
    END IF;
    BEGIN
        extra := value::pg_catalog.jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        extra := NULL;
    END;
    IF extra IS NULL OR pg_catalog.jsonb_typeof(extra) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'context setting audit.context is not a JSON object: %', pg_catalog.quote_literal(value)
            USING ERRCODE = 'AU006', COLUMN = 'audit.context',
                  HINT = 'Set it with audit.set_context(extra => ...), or SET LOCAL to a JSON object.';
    END IF;
    RETURN extra;
END;
$$;

COMMENT ON FUNCTION audit._context_extra() IS
    'The JSON object in the audit.context setting, ''{}'' when unset: stored with each entry as its context.';

-- Who acts, for an entry that names no user: the context's user_id, or NULL;
-- under strict mode (0037_strict_mode.sql) no user is refused instead.
CREATE FUNCTION audit._context_user(operation text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    acting_user pg_catalog.uuid := audit._context_uuid('audit.user_id');
BEGIN
    IF acting_user IS NULL THEN
        PERFORM audit._require_user(operation);
    END IF;
    RETURN acting_user;
END;
$$;

COMMENT ON FUNCTION audit._context_user(text) IS
    'The user_id in the context; NULL when unset, or AU006 when strict mode requires one.';

-- SECURITY INVOKER and open to every role: it sets the caller's own
-- settings, which any role may set with SET LOCAL anyway.
CREATE FUNCTION audit.set_context(
    user_id      uuid  DEFAULT NULL,
    company_id   uuid  DEFAULT NULL,
    franchise_id uuid  DEFAULT NULL,
    extra        jsonb DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF extra IS NOT NULL AND pg_catalog.jsonb_typeof(extra) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'set_context: extra must be a JSON object, not %', pg_catalog.jsonb_typeof(extra)
            USING ERRCODE = 'AU006', COLUMN = 'extra';
    END IF;
    IF set_context.user_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.user_id', set_context.user_id::pg_catalog.text, true);
    END IF;
    IF set_context.company_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.company_id', set_context.company_id::pg_catalog.text, true);
    END IF;
    IF set_context.franchise_id IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.franchise_id', set_context.franchise_id::pg_catalog.text, true);
    END IF;
    IF extra IS NOT NULL THEN
        PERFORM pg_catalog.set_config('audit.context', extra::pg_catalog.text, true);
    END IF;
END;
$$;

COMMENT ON FUNCTION audit.set_context(uuid, uuid, uuid, jsonb) IS
$$Sets the audit context until the end of the current transaction: who acts (user_id), for
which company and franchise, and extra keys stored with each entry (a JSON object, replacing
any earlier extra). Parameters left NULL keep their current value. Entries written later in
the transaction pick the context up wherever their own value is NULL.$$;
