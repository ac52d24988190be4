"""Every SQL and Python example of the README runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from audit_py.server import ThrowawayServer

from .conftest import READER, WRITER, ConnectAs

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_the_readme_has_examples() -> None:
    assert len(_blocks("sql")) >= 3 and len(_blocks("python")) >= 1


def test_sql_examples_run(connect_as: ConnectAs) -> None:
    superuser = connect_as(autocommit=True)
    roles = ("erp_app", "erp_auditor", "erp_company_admin", "erp_sealer")
    superuser.execute("; ".join(f"CREATE ROLE {role}" for role in roles))
    try:
        for block in _blocks("sql"):
            superuser.execute(block)  # type: ignore[call-overload]
        # Three recorded, and two tracked changes of invoices.
        assert superuser.execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (5,)
    finally:
        superuser.execute("; ".join(f"DROP ROLE {role}" for role in roles))


def test_python_examples_run(postgresql: psycopg.Connection[tuple[object, ...]], pg_server: ThrowawayServer,
                             connect_as: ConnectAs) -> None:
    printed = []
    for block in _blocks("python"):
        role = READER if "a login granted audit_reader" in block else WRITER  # as each example says
        env = {**os.environ, "DATABASE_URL": pg_server.conninfo_for(postgresql.info.dbname, user=role)}
        result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        printed.append(result.stdout.strip())
    assert "AU002 action record_audit: action must not be blank" in printed
    rows = connect_as().execute("SELECT user_id IS NOT NULL, context FROM audit.audit_logs").fetchall()
    # Three recorded; two through SQLAlchemy; then one recorded and one tracked, in a context.
    assert len(rows) == 7
    assert rows.count((True, {"request_id": "req-43", "client_addr": "203.0.113.9"})) == 2


@pytest.mark.parametrize("script", ["scripts/test", "scripts/demo", "scripts/bench"])
def test_readme_names_the_scripts_that_exist(script: str) -> None:
    assert script in README and (Path(__file__).resolve().parent.parent / script).stat().st_mode & 0o111
