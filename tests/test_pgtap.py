"""The pgTAP suite of tests/pgtap, run by pg_prove as a DBA runs it: on a freshly migrated database, in one run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from audit_py import migrate
from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OWNER

SUITE = Path(__file__).resolve().parent / "pgtap"
GUARD_SKIP = "ok 1 # SKIP no DDL guard: the log was installed by a login that is not a superuser (no event triggers)"


def _install_hint(server: ThrowawayServer) -> str:
    major = server.version.split(".")[0]
    return (f"install it: apt-get install postgresql-{major}-pgtap libtap-parser-sourcehandler-pgtap-perl"
            " (scripts/setup test does it when run as root)")


def _suite_database(server: ThrowawayServer, empty_database: Callable[..., str], installer: str) -> str:
    """A new database migrated by `installer`, with pgTAP created in it by the superuser."""
    dbname = empty_database(owner=installer)
    migrate(server.conninfo_for(dbname, user=installer))
    with psycopg.connect(server.conninfo_for(dbname), autocommit=True) as conn:
        if conn.execute("SELECT FROM pg_available_extensions WHERE name = 'pgtap'").fetchone() is None:
            pytest.fail(f"pgTAP is not installed for the PostgreSQL {server.version} the tests run"
                        f" ({server.bindir}): {_install_hint(server)}", pytrace=False)
        conn.execute("CREATE EXTENSION pgtap")
    return dbname


def _prove(server: ThrowawayServer, dbname: str) -> subprocess.CompletedProcess[str]:
    """One pg_prove run over every file of the suite, as the superuser, verbose (every assertion a line)."""
    pg_prove = shutil.which("pg_prove")
    if pg_prove is None:
        pytest.fail(f"pg_prove is not installed: {_install_hint(server)}", pytrace=False)
    files = sorted(str(path) for path in SUITE.glob("*.sql"))
    assert files, f"no pgTAP files in {SUITE}"
    # The connection is the arguments', whatever PG* variables the caller's environment holds.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return subprocess.run([pg_prove, "--host", "127.0.0.1", "--port", str(server.port), "--username", SUPERUSER,
                           "--dbname", dbname, "--verbose", "--nocolor", *files],
                          capture_output=True, text=True, env=env, timeout=600)


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"pg_prove exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"


def _skips(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if "# SKIP" in line]


def _assertions(result: subprocess.CompletedProcess[str]) -> int:
    tests = re.search(r"^Files=\d+, Tests=(\d+),", result.stdout, re.M)
    assert tests, _output(result)
    return int(tests.group(1))


def test_the_suite_passes_on_a_log_installed_by_the_installing_login(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    result = _prove(pg_server, _suite_database(pg_server, empty_database, OWNER))
    assert result.returncode == 0 and "All tests successful." in result.stdout, _output(result)
    # Everything ran, but the guard's file: no superuser installed this log, so it has no event triggers.
    assert _skips(result) == [GUARD_SKIP], _output(result)
    assert _assertions(result) > 600, _output(result)


def test_the_suite_passes_on_a_superuser_install_guard_included(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    result = _prove(pg_server, _suite_database(pg_server, empty_database, SUPERUSER))
    assert result.returncode == 0 and "All tests successful." in result.stdout, _output(result)
    assert _skips(result) == [], _output(result)
    assert re.search(r"^ok \d+ - a superuser: DROP TABLE audit.blocks is refused \(AU003\)$", result.stdout, re.M), \
        _output(result)


# What a careless DBA, a schema tool or an attacker with a superuser might do, and the assertions that
# must then fail (each a description, as pg_prove prints it after "not ok N - ").
BREAKAGES = {
    "trigger enabled, not always": (
        "ALTER TABLE audit.audit_logs ENABLE TRIGGER audit_logs_refuse_update",
        ["audit_logs_refuse_update is ENABLE ALWAYS (fires under session_replication_role = replica)",
         "a superuser, session_replication_role = replica: UPDATE audit.audit_logs SET details = "
         "'{\"changed\": true}' WHERE id = current_setting('pgtap.entry')::uuid is refused (AU001)"]),
    "INSERT granted to writers": (
        "GRANT INSERT ON audit.audit_logs TO audit_writer",
        ["Role audit_writer should be granted no privileges on table audit.audit_logs"]),
    "a function outside the list": (
        "CREATE FUNCTION audit.forged() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        ["schema audit has no function outside the list", "audit.forged() is owned by audit_owner"]),
    "a SECURITY DEFINER function's search_path": (
        "ALTER FUNCTION audit.record_audit(uuid, text, text, uuid, jsonb, uuid, uuid) RESET search_path",
        ["audit.record_audit(uuid,text,text,uuid,jsonb,uuid,uuid) is SECURITY DEFINER and sets search_path"
         " = pg_catalog, ..., pg_temp"]),
    "EXECUTE for PUBLIC": (
        "GRANT EXECUTE ON FUNCTION audit.seal() TO PUBLIC",
        ["Role public should be granted no privileges on function audit.seal()",
         "in schema audit, privileges go to the audit roles only: none to PUBLIC, none to a login"]),
    "TRUNCATE trigger dropped": (
        "DROP TRIGGER blocks_refuse_truncate ON audit.blocks",
        ["Table audit.blocks should have the correct triggers",
         "a superuser: TRUNCATE audit.blocks is refused (AU001)"]),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_the_suite_fails_when_a_protection_is_broken(
        breakage: str, pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    statement, failures = BREAKAGES[breakage]
    dbname = _suite_database(pg_server, empty_database, OWNER)
    with psycopg.connect(pg_server.conninfo_for(dbname), autocommit=True) as conn:
        conn.execute(statement)
    result = _prove(pg_server, dbname)
    assert result.returncode != 0 and "Result: FAIL" in result.stdout, _output(result)
    failed = re.findall(r"^not ok \d+ - (.*)$", result.stdout, re.M)
    for failure in failures:
        assert failure in failed, _output(result)
