"""Mistakes a user makes with `audit-py` end in one line naming what to do, with exit status 2."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OUTSIDER, OWNER, READER, WRITER, ConnectAs
from .helpers import record
from .test_cli import audit_py

COMPANY = uuid.uuid4()
DOWN = "host=127.0.0.1 port=1 dbname=erp user=erp connect_timeout=3"


def _dsn(pg_server: ThrowawayServer, postgresql: psycopg.Connection[tuple[object, ...]], role: str) -> str:
    return pg_server.conninfo_for(postgresql.info.dbname, user=role)


def _one_line(result: object, *words: str) -> None:
    code, stderr = result.returncode, result.stderr  # type: ignore[attr-defined]
    assert code == 2, (code, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert all(word in stderr for word in words), stderr


@pytest.mark.parametrize("command", [["seal"], ["digest"], ["log", "--company", str(COMPANY)],
                                     ["export", "--company", str(COMPANY), "--out", "x.jsonl"], ["tail"]])
def test_a_server_that_is_down(command: list[str], tmp_path: Path) -> None:
    _one_line(audit_py(*command, "--dsn", DOWN), "could not connect", "Connection refused")


def test_a_database_without_the_log(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    dsn = pg_server.conninfo_for(empty_database(), user=OWNER)
    _one_line(audit_py("log", "--company", str(COMPANY), "--dsn", dsn), "run `audit-py migrate` first")
    result = audit_py("verify", "--dsn", dsn)
    assert result.returncode == 2 and "no audit log in this database" in result.stdout


@pytest.mark.parametrize(("command", "role"), [(["seal"], "audit_admin"),
                                               (["log", "--company", str(COMPANY)], "audit_reader")])
def test_a_login_without_the_role(command: list[str], role: str, pg_server: ThrowawayServer,
                                  postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    _one_line(audit_py(*command, "--dsn", _dsn(pg_server, postgresql, OUTSIDER)), f"this login needs {role}")


def test_every_dsn_form(connect_as: ConnectAs, pg_server: ThrowawayServer,
                        postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    record(connect_as(WRITER), COMPANY)
    database = postgresql.info.dbname
    forms = [f"postgresql://{READER}@127.0.0.1:{pg_server.port}/{database}",
             f"postgres://{READER}@127.0.0.1:{pg_server.port}/{database}",
             f"postgresql+psycopg://{READER}@127.0.0.1:{pg_server.port}/{database}",
             _dsn(pg_server, postgresql, READER)]
    for dsn in forms:
        result = audit_py("log", "--company", str(COMPANY), "--json", "--dsn", dsn)
        assert result.returncode == 0 and json.loads(result.stdout)["company_id"] == str(COMPANY), (dsn, result)
    environment = {"PGHOST": "127.0.0.1", "PGPORT": str(pg_server.port), "PGUSER": READER, "PGDATABASE": database}
    result = audit_py("log", "--company", str(COMPANY), "--json", env=environment)
    assert result.returncode == 0 and json.loads(result.stdout)["company_id"] == str(COMPANY), result


def test_version_and_an_existing_key_file(tmp_path: Path) -> None:
    version = audit_py("--version")
    assert version.returncode == 0 and version.stdout.startswith("audit-py ")
    assert audit_py("keygen", "--out", str(tmp_path / "key")).returncode == 0
    _one_line(audit_py("keygen", "--out", str(tmp_path / "key")), "File exists")


def test_an_export_that_fails_leaves_no_file(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                             postgresql: psycopg.Connection[tuple[object, ...]],
                                             tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    _one_line(audit_py("export", "--company", str(COMPANY), "--out", str(out), "--dsn",
                       _dsn(pg_server, postgresql, OUTSIDER)), "this login needs")
    _one_line(audit_py("export", "--company", str(COMPANY), "--since", "2026-02-01", "--until", "2026-01-01",
                       "--out", str(out), "--dsn", _dsn(pg_server, postgresql, READER)), "--since must be before")
    assert list(tmp_path.iterdir()) == []


def test_an_export_to_standard_output(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                      postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    record(connect_as(WRITER), COMPANY)
    result = audit_py("export", "--company", str(COMPANY), "--out", "-", "--dsn", _dsn(pg_server, postgresql, READER))
    assert result.returncode == 0 and json.loads(result.stdout)["company_id"] == str(COMPANY)
    assert not Path("-").exists()


def test_tail_without_follow_does_not_retry(pg_server: ThrowawayServer,
                                            postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    _one_line(audit_py("tail", "--dsn", DOWN), "could not connect")
    wrong_database = pg_server.conninfo_for("no_such_database", user=SUPERUSER)
    _one_line(audit_py("tail", "--follow", "--dsn", wrong_database), "does not exist")


def test_migrate_says_what_it_skipped(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    result = audit_py("migrate", "--dsn", pg_server.conninfo_for(empty_database(), user=OWNER))
    assert result.returncode == 0 and result.stdout.startswith("applied: 0001.audit-foundation")
    assert "the DDL-refusing event triggers need a superuser to install; skipped" in result.stderr


def test_a_time_without_an_offset_is_utc(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                         postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    record(connect_as(WRITER), COMPANY)
    row = connect_as(SUPERUSER).execute("SELECT created_at AT TIME ZONE 'UTC' FROM audit.audit_logs").fetchone()
    assert row is not None
    just_after = (row[0] + timedelta(microseconds=1)).isoformat()  # no offset: read as UTC
    dsn = pg_server.conninfo_for(postgresql.info.dbname, user=READER)
    environment = {"PGTZ": "Pacific/Chatham"}  # a session time zone far from UTC changes nothing
    until = audit_py("log", "--company", str(COMPANY), "--json", "--until", just_after, "--dsn", dsn, env=environment)
    since = audit_py("log", "--company", str(COMPANY), "--json", "--since", just_after, "--dsn", dsn, env=environment)
    assert (len(until.stdout.splitlines()), len(since.stdout.splitlines())) == (1, 0), (until.stderr, since.stderr)


def test_pinning_a_login_that_is_not_a_tenant_reader_says_it_confines_nothing(connect_as: ConnectAs) -> None:
    owner = connect_as(OWNER, autocommit=True)
    warnings: list[str] = []
    owner.add_notice_handler(lambda notice: warnings.append(notice.message_primary))
    owner.execute("SELECT audit.pin_tenant(%s, gen_random_uuid())", (READER,))
    assert warnings and "is not an audit_tenant_reader: the pin confines nothing" in warnings[0], warnings
