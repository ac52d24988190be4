"""The migrations: as a DBA applies them, as a non-superuser, down and up again, and linted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from yoyo.connections import parse_uri

from audit_py import ledger, migrate, rollback
from audit_py.schema import migrations_dir, yoyo_url
from audit_py.server import SUPERUSER, ThrowawayServer, throwaway_server

from .catalog import USER_OBJECT_QUERIES, snapshot
from .conftest import OWNER
from .helpers import migration_ids

MIGRATION_NAME = re.compile(r"^(?P<id>\d{4}\.[a-z0-9-]+)(?P<rollback>\.rollback)?\.sql$")


def test_migration_files_are_named_and_paired() -> None:
    # post-apply.sql is yoyo's hook after every run that applied one: not a migration.
    files = sorted(p.name for p in migrations_dir().iterdir() if p.suffix == ".sql" and p.name != "post-apply.sql")
    assert files, "no migrations found"
    names = [MIGRATION_NAME.match(name) for name in files]
    assert all(names), [f for f, m in zip(files, names, strict=True) if not m]
    forward = {m.group("id") for m in names if m and not m.group("rollback")}
    backward = {m.group("id") for m in names if m and m.group("rollback")}
    assert forward == backward, "every migration needs its .rollback.sql, and nothing else"
    for migration_id in forward:
        header = (migrations_dir() / f"{migration_id}.sql").read_text().split("\n\n")[0]
        for depends in re.findall(r"^-- depends:(.*)$", header, re.M):
            assert set(depends.split()) <= forward, f"{migration_id} depends on an unknown migration"


def test_squawk_finds_nothing_to_fix() -> None:
    squawk = shutil.which("squawk", path=str(Path(sys.executable).parent)) or shutil.which("squawk")
    assert squawk, "squawk-cli is a test dependency"
    result = subprocess.run([squawk, "--assume-in-transaction", *map(str, sorted(migrations_dir().glob("*.sql")))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _connect(server: ThrowawayServer, dbname: str, user: str = SUPERUSER) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.conninfo_for(dbname, user=user), autocommit=True)


def _works(server: ThrowawayServer, dbname: str) -> None:
    """The log takes an entry and refuses to change it."""
    with _connect(server, dbname) as conn:
        conn.execute("SELECT audit.record_audit(gen_random_uuid(), 'A', 'e', gen_random_uuid())")
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("DELETE FROM audit.audit_logs")
        assert refused.value.sqlstate == "AU001"


def test_a_non_superuser_owner_applies_them_and_again_in_a_second_database(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    for dbname in (empty_database(), empty_database()):
        assert migrate(pg_server.conninfo_for(dbname, user=OWNER)) == migration_ids()
        assert migrate(pg_server.conninfo_for(dbname, user=OWNER)) == []
        _works(pg_server, dbname)


def test_another_owner_in_the_same_cluster_reuses_the_roles(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    with _connect(pg_server, "postgres") as conn:
        conn.execute("CREATE ROLE other_owner LOGIN NOSUPERUSER CREATEROLE")
    try:
        dbname = empty_database(owner="other_owner")
        migrate(pg_server.conninfo_for(dbname, user="other_owner"))
        _works(pg_server, dbname)
        rollback(pg_server.conninfo_for(dbname, user="other_owner"), destroy_entries=True)
    finally:
        with _connect(pg_server, "postgres") as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
            conn.execute("DROP ROLE other_owner")


def test_yoyo_command_line_applies_and_rolls_back(pg_server: ThrowawayServer,
                                                  empty_database: Callable[..., str]) -> None:
    dbname = empty_database()
    url = f"postgresql+psycopg://{OWNER}@127.0.0.1:{pg_server.port}/{dbname}"
    yoyo = str(Path(sys.executable).parent / "yoyo")
    applied = subprocess.run([yoyo, "apply", "--batch", "--database", url, str(migrations_dir())],
                             capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    _works(pg_server, dbname)
    rolled_back = subprocess.run([yoyo, "rollback", "--all", "--batch", "--database", url, str(migrations_dir())],
                                 capture_output=True, text=True,
                                 env={**os.environ, "PGOPTIONS": "-c audit.destroy_entries=on"})
    assert rolled_back.returncode == 0, rolled_back.stderr
    with _connect(pg_server, dbname) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'").fetchone() == (0,)


def test_down_and_up_again_in_a_shared_cluster_keeps_the_roles_others_use(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    leaving, staying = empty_database(), empty_database()
    for dbname in (leaving, staying):
        migrate(pg_server.conninfo_for(dbname, user=OWNER))
    conninfo = pg_server.conninfo_for(leaving, user=OWNER)
    assert rollback(conninfo) == migration_ids()[::-1]
    with _connect(pg_server, leaving) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'").fetchone() == (0,)
        roles = conn.execute("SELECT rolname FROM pg_roles WHERE rolname IN ('audit_writer', 'audit_reader')"
                             " ORDER BY 1").fetchall()
    assert roles == [("audit_reader",), ("audit_writer",)], "another database still uses them"
    _works(pg_server, staying)
    assert migrate(conninfo) == migration_ids()
    _works(pg_server, leaving)


def test_rolling_back_leaves_no_trace_in_a_cluster_of_its_own() -> None:
    with throwaway_server(fsync=False) as server:
        with _connect(server, "postgres") as conn:
            conn.execute(f"CREATE ROLE {OWNER} LOGIN NOSUPERUSER CREATEROLE")
            conn.execute(f"CREATE DATABASE shop OWNER {OWNER}")
        with _connect(server, "shop") as conn:
            before = snapshot(conn, USER_OBJECT_QUERIES)
        conninfo = server.conninfo_for("shop", user=OWNER)
        migrate(conninfo)
        _works(server, "shop")
        with _connect(server, "shop") as conn:
            assert snapshot(conn, USER_OBJECT_QUERIES) != before
        rollback(conninfo, destroy_entries=True)
        with _connect(server, "shop") as conn:
            assert snapshot(conn, USER_OBJECT_QUERIES) == before
        migrate(conninfo)
        _works(server, "shop")


def test_yoyo_url_carries_every_connection_parameter() -> None:
    url = yoyo_url("host=/var/run/postgresql port=6543 user=o'neil password=p@ss/w?rd dbname=my&db sslmode=disable")
    parsed = parse_uri(url)
    assert parsed.scheme == "postgresql+psycopg"
    assert parsed.args == {"host": "/var/run/postgresql", "port": "6543", "user": "o'neil",
                           "password": "p@ss/w?rd", "dbname": "my&db", "sslmode": "disable"}


def test_an_existing_log_moves_behind_the_trust_boundary_and_keeps_verifying(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    """A log of 0008 with entries, blocks and a tracked table, migrated to 0009 by its installing login."""
    from yoyo import read_migrations

    from audit_py import ledger
    from audit_py.schema import _backend

    dbname = empty_database()
    conninfo = pg_server.conninfo_for(dbname, user=OWNER)
    with _backend(conninfo) as backend:
        pending = backend.to_apply(read_migrations(str(migrations_dir())))
        backend.apply_migrations(type(pending)([m for m in pending if m.id < "0009"]))
    company = uuid.uuid4()
    with _connect(pg_server, dbname, OWNER) as owner:  # before 0009, the installing login owns the log
        owner.execute("CREATE TABLE public.invoices (id uuid PRIMARY KEY, company_id uuid, amount int);"
                      " SELECT audit.enable_tracking('public.invoices')")
        owner.execute("INSERT INTO public.invoices VALUES (gen_random_uuid(), %s, 1)", (company,))
        owner.execute("SELECT audit.record_audit(%s, 'A', 'e', gen_random_uuid())", (company,))
        assert [block[1:] for block in ledger.seal(owner)] == [(1, 2)]
    assert migrate(conninfo) == [m for m in migration_ids() if m >= "0009"]
    with _connect(pg_server, dbname, OWNER) as owner:
        owner.execute("UPDATE public.invoices SET amount = 2")  # still tracked
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            owner.execute("ALTER TABLE audit.audit_logs DISABLE TRIGGER ALL")
        assert [block[1:] for block in ledger.seal(owner)] == [(2, 1)]  # it seals as audit_admin
    with _connect(pg_server, dbname) as superuser:
        assert superuser.execute("SELECT ok, report FROM audit.verify(%s)", (company,)).fetchone()[0]  # type: ignore[index]
        verdict = ledger.verify(superuser, company)
        assert verdict.ok and "2 blocks and 3 sealed entries" in verdict.report, verdict.report
    assert rollback(conninfo, destroy_entries=True) == migration_ids()[::-1]


def test_an_index_left_invalid_by_a_failed_concurrent_build_is_rebuilt_by_the_next_run(
        pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    """A CREATE INDEX CONCURRENTLY that timed out waiting for an old snapshot leaves an invalid index,
    which the rerun's IF NOT EXISTS would keep: the post-apply hook rebuilds it."""
    from yoyo import read_migrations

    from audit_py.schema import _backend

    dbname = empty_database()
    conninfo = pg_server.conninfo_for(dbname, user=OWNER)
    with _backend(conninfo) as backend:
        pending = backend.to_apply(read_migrations(str(migrations_dir())))
        backend.apply_migrations(type(pending)([m for m in pending if m.id < "0008"]))
    with _connect(pg_server, dbname) as holder:  # a snapshot older than the build, held past its lock_timeout
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM pg_class")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            migrate(conninfo)
        holder.execute("ROLLBACK")
    with _connect(pg_server, dbname) as conn:
        invalid = conn.execute("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                               " WHERE c.relnamespace = 'audit'::regnamespace AND NOT i.indisvalid").fetchone()
    assert invalid == (1,), "the failed build left its index behind, invalid"
    assert "0008.reading-indexes" in migrate(conninfo)
    with _connect(pg_server, dbname) as conn:
        invalid = conn.execute("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                               " WHERE c.relnamespace = 'audit'::regnamespace AND NOT i.indisvalid").fetchone()
        assert invalid == (0,)
        assert ledger.verify_all(conn).exit_code == 0
