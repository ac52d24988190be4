"""The audit-py command, run as a user runs it: as a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import psycopg

from audit_py import migrate
from audit_py.server import ThrowawayServer

from .conftest import OWNER
from .helpers import migration_ids


def audit_py(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "audit_py", *args], capture_output=True, text=True,
                          env={**environment, **(env or {})}, timeout=120)


def _has_audit_schema(server: ThrowawayServer, dbname: str) -> bool:
    with psycopg.connect(server.conninfo_for(dbname)) as conn:
        return conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'").fetchone() == (1,)


def test_migrate_with_dsn_then_again(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    dbname = empty_database()
    uri = f"postgresql://{OWNER}@127.0.0.1:{pg_server.port}/{dbname}"
    first = audit_py("migrate", "--dsn", uri)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "applied: " + ", ".join(migration_ids())
    again = audit_py("migrate", "--dsn", uri)
    assert (again.returncode, again.stdout.strip()) == (0, "already up to date")
    assert _has_audit_schema(pg_server, dbname)


def test_migrate_reads_database_url(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    dbname = empty_database()
    result = audit_py("migrate", env={"DATABASE_URL": pg_server.conninfo_for(dbname, user=OWNER)})
    assert result.returncode == 0, result.stderr
    assert _has_audit_schema(pg_server, dbname)


def test_migrate_without_a_database_says_what_it_needs() -> None:
    result = audit_py("migrate")
    assert result.returncode == 2
    assert "--dsn" in result.stderr and "DATABASE_URL" in result.stderr


def test_migrate_to_an_unreachable_server_fails_clearly(pg_server: ThrowawayServer) -> None:
    result = audit_py("migrate", "--dsn", f"host=127.0.0.1 port={pg_server.port} dbname=no_such_database user={OWNER}")
    assert result.returncode != 0
    assert "no_such_database" in result.stderr


def _check_demo_output(stdout: str) -> None:
    assert stdout.count("refused [AU001] ImmutableViolation") == 3
    for operation in ("UPDATE", "DELETE", "TRUNCATE"):
        assert f"{operation} on audit.audit_logs is not allowed" in stdout
    assert stdout.count("refused [AU002] InvalidEntry") == 2
    assert "refused [AU005] UntrackableChange: TRUNCATE on pg_temp" in stdout
    assert '-> UPDATE_INVOICE  details={"amount": {"new": 80.00, "old": 100.00}}  context={"request_id": "req-7"}' \
        in stdout and "4111 1111" not in stdout
    for action in ("LOGIN", "CREATE_INVOICE", "APPROVE_INVOICE"):
        assert f"  {action}  " in stdout


def test_demo_on_its_own_throwaway_server() -> None:
    result = audit_py("demo")
    assert result.returncode == 0, result.stderr
    assert "Started a throwaway PostgreSQL" in result.stdout
    _check_demo_output(result.stdout)
    assert "refused [42501]" in result.stdout and "as audit_writer: recorded" in result.stdout
    assert "1 blocks and 8 sealed entries verified" in result.stdout
    assert "refused [AU003] ProtectedSchema" in result.stdout
    assert "was changed after it was sealed" in result.stdout


def test_demo_against_a_given_database_leaves_no_entry(pg_server: ThrowawayServer,
                                                       empty_database: Callable[..., str]) -> None:
    dbname = empty_database()
    migrate(pg_server.conninfo_for(dbname))
    with psycopg.connect(pg_server.conninfo_for(dbname)) as conn:  # an invoice of the database's own
        conn.execute("SELECT audit.set_context(user_id => gen_random_uuid(), extra => '{\"request_id\": \"r\"}');"
                     " SELECT audit.record_audit(gen_random_uuid(), 'UPDATE_INVOICE', 'invoice', gen_random_uuid(),"
                     " '{\"theirs\": true}')")
    result = audit_py("demo", "--dsn", pg_server.conninfo_for(dbname))
    assert result.returncode == 0, result.stderr
    _check_demo_output(result.stdout)
    assert "throwaway" not in result.stdout and "theirs" not in result.stdout, "only the demo's own entries"
    assert "left no entry in your database" in result.stdout
    with psycopg.connect(pg_server.conninfo_for(dbname)) as conn:
        assert conn.execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (1,)


def test_demo_as_a_non_superuser_owner(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    result = audit_py("demo", "--dsn", pg_server.conninfo_for(empty_database(), user=OWNER))
    assert result.returncode == 0, result.stderr
    _check_demo_output(result.stdout)
    assert f"{OWNER}, the login that installed the log, owns none of it" in result.stdout
    assert result.stdout.count("refused [42501] InsufficientPrivilege: permission denied for table audit_logs") >= 5


def test_demo_ignores_database_url(empty_database: Callable[..., str], pg_server: ThrowawayServer) -> None:
    dbname = empty_database()
    result = audit_py("demo", env={"DATABASE_URL": pg_server.conninfo_for(dbname)})
    assert result.returncode == 0, result.stderr
    assert "Started a throwaway PostgreSQL" in result.stdout
    assert not _has_audit_schema(pg_server, dbname)
