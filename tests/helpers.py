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
                  if not p.name.endswith(".rollback.sql"))
