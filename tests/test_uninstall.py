"""Uninstalling: a log with entries goes only when asked to by name, and never half-way.

Each rollback checks, before it changes anything, what the whole uninstall needs (every rollback
may be the first step of one), so a refusal leaves every migration applied and every entry in place,
whether it comes through yoyo, audit_py.rollback() or `audit-py uninstall`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from audit_py import UninstallRefused, migrate, rollback
from audit_py.schema import migrations_dir
from audit_py.server import ThrowawayServer, throwaway_server

from .conftest import OWNER, READER, TENANT, WRITER
from .helpers import migration_ids
from .test_cli import audit_py
from .test_migrations import _connect

CHECK = re.compile(r"^-- BEGIN UNINSTALL CHECK.*?^-- END UNINSTALL CHECK$", re.S | re.M)
DESTROY = "-c audit.destroy_entries=on"


def _state(server: ThrowawayServer, dbname: str) -> tuple[object, ...]:
    """What an uninstall changes: the applied migrations, the entries, the log's objects."""
    with _connect(server, dbname) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM _yoyo_migration),"
            "       (SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'),"
            "       (SELECT CASE WHEN to_regclass('audit.audit_logs') IS NOT NULL"
            "               THEN (xpath('/row/c/text()', query_to_xml("
            "                     'SELECT count(*) AS c FROM audit.audit_logs', false, true, '')))[1]::text END),"
            "       (SELECT count(*) FROM pg_proc WHERE pronamespace::regnamespace::text = 'audit'),"
            "       (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal)").fetchone()
    assert row is not None
    return tuple(row)


def _yoyo(server: ThrowawayServer, dbname: str, *options: str) -> subprocess.CompletedProcess[str]:
    url = f"postgresql+psycopg://{OWNER}@127.0.0.1:{server.port}/{dbname}"
    environment = {**os.environ, "PGOPTIONS": " ".join(options)}
    return subprocess.run([str(Path(sys.executable).parent / "yoyo"), "rollback", "--all", "--batch", "--database",
                           url, str(migrations_dir())], capture_output=True, text=True, env=environment, timeout=120)


@pytest.fixture
def installed(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> str:
    """A database the installing login migrated, with a tracked table of its own."""
    dbname = empty_database()
    migrate(pg_server.conninfo_for(dbname, user=OWNER))
    with _connect(pg_server, dbname) as conn:
        conn.execute(f"GRANT audit_writer TO {OWNER}")
    with _connect(pg_server, dbname, OWNER) as owner:
        owner.execute("CREATE TABLE invoices (id uuid PRIMARY KEY, company_id uuid NOT NULL, amount int);"
                      " SELECT audit.enable_tracking('invoices')")
    return dbname


def _write_entries(server: ThrowawayServer, dbname: str) -> None:
    """Entries with a context too: 0005's rollback drops that column."""
    with _connect(server, dbname, OWNER) as owner:
        owner.execute("SELECT audit.set_context(gen_random_uuid(), NULL, gen_random_uuid(), '{\"ip\": \"10.0.0.1\"}');"
                      " INSERT INTO invoices VALUES (gen_random_uuid(), gen_random_uuid(), 1)")


def test_every_rollback_carries_the_same_check() -> None:
    rollbacks = sorted(migrations_dir().glob("*.rollback.sql"))
    assert [path.name.split(".")[0] for path in rollbacks] == [i.split(".")[0] for i in migration_ids()]
    checks = {path.name: CHECK.findall(path.read_text()) for path in rollbacks}
    assert all(len(found) == 1 for found in checks.values()), {name: len(found) for name, found in checks.items()}
    assert len({found[0] for found in checks.values()}) == 1, "the check differs between rollbacks"


def test_a_log_with_entries_is_refused_by_every_path_before_anything_changes(
        pg_server: ThrowawayServer, installed: str) -> None:
    _write_entries(pg_server, installed)
    before = _state(pg_server, installed)
    conninfo = pg_server.conninfo_for(installed, user=OWNER)

    with pytest.raises(UninstallRefused) as refused:
        rollback(conninfo)
    assert refused.value.sqlstate == "AU009" and "would destroy its entries" in str(refused.value)
    assert _state(pg_server, installed) == before

    by_yoyo = _yoyo(pg_server, installed)
    assert by_yoyo.returncode != 0 and "would destroy its entries" in by_yoyo.stderr, by_yoyo.stderr
    assert _state(pg_server, installed) == before

    by_command = audit_py("uninstall", "--dsn", conninfo)
    assert by_command.returncode == 2 and "Traceback" not in by_command.stderr, by_command.stderr
    assert len(by_command.stderr.strip().splitlines()) == 1, by_command.stderr
    assert "would destroy its entries" in by_command.stderr and "--destroy-entries" in by_command.stderr
    assert "audit-py export" in by_command.stderr
    assert _state(pg_server, installed) == before

    # Another value than on confirms nothing; the setting in the connection is the one asked for.
    with pytest.raises(UninstallRefused):
        rollback(conninfo + " options='-c audit.destroy_entries=yes'")
    assert _state(pg_server, installed) == before


def test_confirmed_it_removes_everything_through_the_command(pg_server: ThrowawayServer, installed: str) -> None:
    _write_entries(pg_server, installed)
    result = audit_py("uninstall", "--destroy-entries", "--dsn", pg_server.conninfo_for(installed, user=OWNER))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rolled back: {', '.join(migration_ids()[::-1])}\n"
    assert _state(pg_server, installed) == (0, 0, None, 0, 0)  # the tracked table's triggers went too
    again = audit_py("uninstall", "--dsn", pg_server.conninfo_for(installed, user=OWNER))
    assert again.returncode == 0 and "nothing to roll back" in again.stdout


def test_confirmed_through_yoyo(pg_server: ThrowawayServer, installed: str) -> None:
    _write_entries(pg_server, installed)
    result = _yoyo(pg_server, installed, DESTROY)
    assert result.returncode == 0, result.stderr
    assert _state(pg_server, installed) == (0, 0, None, 0, 0)


def test_an_empty_log_needs_no_confirmation(pg_server: ThrowawayServer, installed: str) -> None:
    assert rollback(pg_server.conninfo_for(installed, user=OWNER)) == migration_ids()[::-1]
    assert _state(pg_server, installed) == (0, 0, None, 0, 0)


def test_a_table_tracked_by_another_owner_is_refused_before_anything_changes(
        pg_server: ThrowawayServer, installed: str) -> None:
    """0005's rollback stops tracking, which only a table's owner may do: refused at the first step."""
    with _connect(pg_server, installed) as conn:
        conn.execute("DROP ROLE IF EXISTS erp_tables; CREATE ROLE erp_tables LOGIN; GRANT audit_writer TO erp_tables;"
                     " GRANT CREATE ON SCHEMA public TO erp_tables")
    try:
        with _connect(pg_server, installed, "erp_tables") as tables:
            tables.execute("CREATE TABLE orders (id uuid PRIMARY KEY, company_id uuid NOT NULL);"
                           " SELECT audit.enable_tracking('orders')")
        before = _state(pg_server, installed)
        with pytest.raises(UninstallRefused) as refused:
            rollback(pg_server.conninfo_for(installed, user=OWNER), destroy_entries=True)
        assert "stops tracking orders, which this login does not own" in str(refused.value)
        assert "audit.disable_tracking('orders')" in (refused.value.__cause__.diag.message_hint or "")  # type: ignore[union-attr]
        assert _state(pg_server, installed) == before
        with _connect(pg_server, installed, "erp_tables") as tables:
            tables.execute("SELECT audit.disable_tracking('orders')")
        rollback(pg_server.conninfo_for(installed, user=OWNER))
        assert _state(pg_server, installed)[:2] == (0, 0)
    finally:
        with _connect(pg_server, installed) as conn:
            conn.execute("DROP TABLE IF EXISTS orders; REVOKE ALL ON SCHEMA public FROM erp_tables;"
                         " DROP ROLE erp_tables")


def test_the_guard_of_a_superuser_install_is_refused_to_a_non_superuser_before_anything_changes(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    """0004's rollback drops event triggers, which only a superuser may: the installing login, which
    could undo the steps after it (CREATEROLE lets it take the log's roles), is refused at the first."""
    dbname = empty_database()
    migrate(pg_server.conninfo_for(dbname))
    with _connect(pg_server, dbname) as conn:  # yoyo's bookkeeping, which the superuser created
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {OWNER}")
    before = _state(pg_server, dbname)
    with pytest.raises(UninstallRefused) as refused:
        rollback(pg_server.conninfo_for(dbname, user=OWNER))
    assert "drops the DDL guard's event triggers, which needs a superuser" in str(refused.value)
    assert _state(pg_server, dbname) == before
    assert rollback(pg_server.conninfo_for(dbname)) == migration_ids()[::-1]


# ---- What stops a later step: refused up front, or (audit-py uninstall) nothing changes ----

GONE = (0, 0, None, 0, 0)


def _grant_logins(server: ThrowawayServer, dbname: str) -> None:
    with _connect(server, dbname) as conn:
        conn.execute(f"GRANT audit_writer TO {WRITER}; GRANT audit_reader TO {READER};"
                     f" GRANT audit_tenant_reader TO {TENANT}; GRANT CREATE ON SCHEMA public TO {WRITER}")


DEPENDENTS = {
    "a writer's function body": (WRITER, "CREATE FUNCTION public.note(c uuid, e uuid) RETURNS uuid LANGUAGE sql"
                                         " BEGIN ATOMIC SELECT audit.record_audit(c, 'NOTE', 'note', e, '{}'::jsonb,"
                                         " NULL::uuid, NULL::uuid); END", "function public.note("),
    "a tenant reader's temporary view": (TENANT, "CREATE TEMP VIEW peek AS SELECT origin FROM audit.audit_logs",
                                         ".peek"),
    "a writer's own trigger": (WRITER, "CREATE TABLE public.mine (id int); CREATE TRIGGER keep BEFORE TRUNCATE"
                                       " ON public.mine FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_truncate()",
                               "trigger keep on public.mine"),
}


@pytest.mark.parametrize(("login", "statement", "named"), DEPENDENTS.values(), ids=DEPENDENTS.keys())
def test_an_object_outside_the_log_that_depends_on_it_is_refused_before_anything_changes(
        pg_server: ThrowawayServer, installed: str, login: str, statement: str, named: str) -> None:
    _grant_logins(pg_server, installed)
    with _connect(pg_server, installed, login) as holder:  # open: a temporary view lives as long as it
        holder.execute(statement)
        before = _state(pg_server, installed)
        with pytest.raises(UninstallRefused) as refused:
            rollback(pg_server.conninfo_for(installed, user=OWNER), destroy_entries=True)
        assert named in str(refused.value) and "outside the log, which depends on it" in str(refused.value)
        assert _state(pg_server, installed) == before
        by_yoyo = _yoyo(pg_server, installed, DESTROY)
        assert by_yoyo.returncode != 0 and "outside the log" in by_yoyo.stderr, by_yoyo.stderr
        assert _state(pg_server, installed) == before


def test_a_lock_not_granted_in_time_leaves_everything_as_it_was(pg_server: ThrowawayServer, installed: str) -> None:
    """A reader's open transaction holds a lock a later step needs: yoyo would have committed the
    steps before it; audit-py uninstall runs them all in one transaction."""
    _grant_logins(pg_server, installed)
    before = _state(pg_server, installed)
    with _connect(pg_server, installed, READER) as reader:
        reader.autocommit = False
        reader.execute("SELECT count(*) FROM audit.audit_logs").fetchone()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            rollback(pg_server.conninfo_for(installed, user=OWNER))
        assert _state(pg_server, installed) == before
    assert rollback(pg_server.conninfo_for(installed, user=OWNER)) == migration_ids()[::-1]
    assert _state(pg_server, installed) == GONE


def test_only_the_argument_confirms_not_a_setting_left_in_the_environment(
        pg_server: ThrowawayServer, installed: str) -> None:
    _write_entries(pg_server, installed)
    before = _state(pg_server, installed)
    result = audit_py("uninstall", "--dsn", pg_server.conninfo_for(installed, user=OWNER),
                      env={"PGOPTIONS": DESTROY})
    assert result.returncode == 2 and "would destroy its entries" in result.stderr, result
    with pytest.raises(UninstallRefused):
        rollback(pg_server.conninfo_for(installed, user=OWNER) + f" options='{DESTROY}'")
    assert _state(pg_server, installed) == before


def test_a_superuser_session_acting_as_another_login_is_judged_as_that_login(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    """The DDL runs as the session's current role: the check judges that role, not the session user."""
    dbname = empty_database()
    migrate(pg_server.conninfo_for(dbname))
    with _connect(pg_server, dbname) as conn:
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {OWNER}")
    before = _state(pg_server, dbname)
    with pytest.raises(UninstallRefused) as refused:
        rollback(pg_server.conninfo_for(dbname) + f" options='-c role={OWNER}'")
    assert "needs a superuser" in str(refused.value)
    assert _state(pg_server, dbname) == before


def test_uninstalling_one_database_leaves_the_login_its_role_in_another(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    """Roles and their members are cluster-wide: the installing login keeps audit_admin for the log it
    installed in another database, and seals it still."""
    leaving, staying = empty_database(), empty_database()
    for dbname in (leaving, staying):
        migrate(pg_server.conninfo_for(dbname, user=OWNER))
    rollback(pg_server.conninfo_for(leaving, user=OWNER))
    with _connect(pg_server, staying) as conn:
        conn.execute("SELECT audit.record_audit(gen_random_uuid(), 'A', 'e', gen_random_uuid())")
    with _connect(pg_server, staying, OWNER) as owner:
        assert owner.execute("SELECT count(*) FROM audit.seal()").fetchone() == (1,)


def test_a_writers_trigger_named_like_trackings_is_refused_before_anything_changes(
        pg_server: ThrowawayServer, installed: str) -> None:
    """0005's rollback stops tracking every table with a trigger on a tracking function, whatever made
    it: a writer's own table with one is a table this login does not own."""
    _grant_logins(pg_server, installed)
    _write_entries(pg_server, installed)
    with _connect(pg_server, installed, WRITER) as writer:
        writer.execute("CREATE TABLE public.mine (id int); CREATE TRIGGER audit_refuse_truncate BEFORE TRUNCATE"
                       " ON public.mine FOR EACH STATEMENT EXECUTE FUNCTION audit._refuse_truncate()")
    before = _state(pg_server, installed)
    with pytest.raises(UninstallRefused) as refused:
        rollback(pg_server.conninfo_for(installed, user=OWNER), destroy_entries=True)
    assert "stops tracking mine, which this login does not own" in str(refused.value)
    by_yoyo = _yoyo(pg_server, installed, DESTROY)
    assert by_yoyo.returncode != 0 and "which this login does not own" in by_yoyo.stderr, by_yoyo.stderr
    assert _state(pg_server, installed) == before


def test_with_no_log_left_in_the_cluster_the_login_gives_audit_admin_back() -> None:
    """A server of its own (the session's holds the template's log). The role itself may stay, kept by
    a reference of someone else's: its members go."""
    with throwaway_server(fsync=False) as server:
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            conn.execute("CREATE ROLE owner LOGIN NOSUPERUSER CREATEROLE; CREATE ROLE tenant LOGIN")
            conn.execute("CREATE DATABASE erp OWNER owner")
        migrate(server.conninfo_for("erp", user="owner"))
        with psycopg.connect(server.conninfo_for("erp", user="tenant"), autocommit=True) as tenant:
            tenant.execute("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO audit_admin")
        rollback(server.conninfo_for("erp", user="owner"))
        with psycopg.connect(server.conninfo_for("erp"), autocommit=True) as conn:
            holders = conn.execute("SELECT member::regrole::text FROM pg_auth_members"
                                   " WHERE roleid = 'audit_admin'::regrole").fetchall()
        assert holders == [], holders
