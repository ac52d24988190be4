-- Undoes 0004.hardening. The event triggers belong to the superuser who
-- installed them: where they exist, only a superuser can roll this back.
-- squawk-ignore-file ban-drop-function, ban-drop-schema

SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

DROP EVENT TRIGGER IF EXISTS audit_refuse_drop;
DROP EVENT TRIGGER IF EXISTS audit_refuse_ddl;
DROP FUNCTION IF EXISTS audit_guard.refuse_ddl();
DROP SCHEMA IF EXISTS audit_guard;
