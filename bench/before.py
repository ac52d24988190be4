"""The functions and the stamp 0014.cheaper-entries changed, as they were before it, swapped in for one side of a
comparison.

The definitions come from 0014's rollback, which restores them: a before and an after measured in the
same run, on the same server, interleaved round by round like any other pair of sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg

from audit_py.server import ThrowawayServer

MIGRATION = Path(__file__).parent.parent / "migrations" / "0014.cheaper-entries.sql"
ROLLBACK = MIGRATION.with_name("0014.cheaper-entries.rollback.sql")
# Each function 0014 changed, with the role that owns it.
T = TypeVar("T")
OWNERS = {"audit._stamp_entry()": "audit_owner", "audit._untrackable(regclass)": "audit_owner",
          "audit._track_changes()": "audit_definer"}


def _definitions_before() -> dict[str, str]:
    text = ROLLBACK.read_text()
    found = {}
    for signature in OWNERS:
        name = re.escape(signature.split("(")[0])
        match = re.search(rf"CREATE OR REPLACE FUNCTION {name}\(.*?\n\$\$;\n", text, re.S)
        assert match, f"0014's rollback no longer restores {signature}"
        found[signature] = match.group(0)
    return found


def _stamp(migration: Path) -> str:
    """How a migration leaves the stamp: the log's column defaults, and the stamp trigger (with or
    without 0014's condition that spares audit_definer's inserts)."""
    text = migration.read_text()
    defaults = re.search(r"ALTER TABLE audit\.audit_logs\n    ALTER COLUMN id .*?;\n", text, re.S)
    trigger = re.search(r"DROP TRIGGER audit_logs_stamp ON audit\.audit_logs;\nCREATE TRIGGER .*?;\n", text, re.S)
    assert defaults and trigger, f"{migration.name} no longer sets the stamp's defaults and trigger"
    return defaults.group(0) + trigger.group(0)


def as_before_0014(server: ThrowawayServer, database: str, run: Callable[[], T],
                   functions: tuple[str, ...] = tuple(OWNERS)) -> Callable[[], T]:
    """`run` with `functions` as they were before 0014, put back as they are once it returns."""
    before = _definitions_before()

    def side() -> T:
        with psycopg.connect(server.conninfo_for(database), autocommit=True) as conn:
            now = {}
            for signature in functions:
                row = conn.execute("SELECT pg_get_functiondef(%s::regprocedure)", (signature,)).fetchone()
                assert row is not None
                now[signature] = row[0]
            _define(conn, {signature: before[signature] for signature in functions}, _stamp(ROLLBACK))
        try:
            return run()
        finally:
            with psycopg.connect(server.conninfo_for(database), autocommit=True) as conn:
                _define(conn, now, _stamp(MIGRATION))

    return side


def _define(conn: psycopg.Connection[tuple[object, ...]], definitions: dict[str, str], stamp: str) -> None:
    """As the migrations do: each function replaced by its owner, and the stamp set, in one transaction."""
    with conn.transaction():
        # The guard of superuser installs lifts for one transaction, the one it names.
        conn.execute("SELECT set_config('audit.allow_ddl', pg_current_xact_id()::text, true)")
        conn.execute("GRANT CREATE ON SCHEMA audit TO audit_definer")
        for signature, definition in definitions.items():
            conn.execute(f"SET LOCAL ROLE {OWNERS[signature]}")
            conn.execute(definition)
            conn.execute("RESET ROLE")
        conn.execute("SET LOCAL ROLE audit_owner")
        conn.execute(stamp.encode())
        conn.execute("RESET ROLE")
        conn.execute("REVOKE CREATE ON SCHEMA audit FROM audit_definer")
