"""Small helpers shared by the tests."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

RECORD_SQL = ("SELECT audit.record_audit(company_id => %s, action => %s, entity => %s, entity_id => %s,"
              " details => %s, user_id => %s, franchise_id => %s)")


def record(conn: psycopg.Connection[Any], company_id: uuid.UUID | None = None, action: str = "CREATE_INVOICE",
           entity: str = "invoice", entity_id: uuid.UUID | None = None, details: str = '{"amount": 10}',
           user_id: uuid.UUID | None = None, franchise_id: uuid.UUID | None = None) -> uuid.UUID:
    """Record one entry through SQL, committed; return its id."""
    row = conn.execute(RECORD_SQL, (company_id or uuid.uuid4(), action, entity, entity_id or uuid.uuid4(),
                                    details, user_id, franchise_id)).fetchone()
    conn.commit()
    assert row is not None
    entry_id: uuid.UUID = row[0]
    return entry_id


def count_entries(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM audit.audit_logs").fetchone()
    assert row is not None
    return int(row[0])


def migration_ids() -> list[str]:
    """The ids of the bundled migrations, in the order they apply."""
    from audit_py.schema import migrations_dir

    return sorted(p.name.removesuffix(".sql") for p in migrations_dir().glob("*.sql")
                  if not p.name.endswith(".rollback.sql") and p.name != "post-apply.sql")


# What drizzle-kit push and Alembic autogenerate proposed, and what else an owner could do: the
# login that installed the log (it owns none of it) is refused each, on every PostgreSQL version.
INSTALLING_LOGIN_REFUSED = [
    "ALTER TABLE audit.audit_logs ALTER COLUMN created_at SET DATA TYPE timestamp",
    "ALTER TABLE audit.audit_logs DROP COLUMN txid",
    "DROP TABLE audit.blocks CASCADE",
    "ALTER TABLE audit.audit_logs DISABLE ROW LEVEL SECURITY",
    "DROP INDEX audit.audit_idx",
    "ALTER TABLE audit.audit_logs DISABLE TRIGGER ALL",
    "CREATE TRIGGER sneaky BEFORE INSERT ON audit.audit_logs FOR EACH ROW EXECUTE FUNCTION audit._stamp_entry()",
    "CREATE POLICY sneaky ON audit.audit_logs USING (true)",
    "CREATE OR REPLACE FUNCTION audit.digest() RETURNS jsonb LANGUAGE sql AS $$SELECT '{}'::jsonb$$",
    "CREATE FUNCTION audit.sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "ALTER FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) STRICT",
    "CREATE TABLE public.forged () INHERITS (audit.audit_logs)",
    "GRANT INSERT ON audit.audit_logs TO CURRENT_USER",
    "DROP SCHEMA audit CASCADE",
    "ALTER SCHEMA audit RENAME TO audit_old",
    "INSERT INTO audit.audit_logs (company_id, action, entity, entity_id, details)"
    " VALUES (gen_random_uuid(), 'A', 'e', gen_random_uuid(), '{}')",
    "SELECT * FROM audit.audit_logs",
]


# Every type name the functions of schema audit use, and a few more a careless one could.
SHADOWED_TYPES = ["uuid", "text", "jsonb", "json", "bytea", "timestamptz", "int2", "int4", "int8", "integer",
                  "bigint", "oid", "name", "regclass", "regtype", "regrole", "regnamespace", "regprocedure",
                  "record", "bool", "boolean", "numeric", "trigger"]
BASE_TYPES = {"integer": "int4", "bigint": "int8", "boolean": "bool", "record": "int4", "trigger": "int4"}

# A caller's trap: any code the log's functions ran with it would raise, naming the role it ran as.
TRAP = """
CREATE FUNCTION pg_temp.hijack(anyelement) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> session_user THEN
        RAISE EXCEPTION 'HIJACKED: the caller''s code ran as %', current_user;
    END IF;
    RETURN true;
END $$;
""" + "".join(f"CREATE DOMAIN pg_temp.{name} AS pg_catalog.{BASE_TYPES.get(name, name)}"
              f" CHECK (pg_temp.hijack(VALUE));\n" for name in SHADOWED_TYPES)


def set_trap(conn: psycopg.Connection[Any]) -> None:
    conn.execute(TRAP)  # type: ignore[call-overload]
    conn.execute("SET search_path = pg_temp, public")
    conn.commit()
