"""Mistakes a user makes with `audit-py` end in one line naming what to do, with exit status 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
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


@pytest.fixture
def password_login(pg_server: ThrowawayServer, postgresql: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    """A reader login that must give its password (the test server trusts everyone else)."""
    superuser = psycopg.connect(pg_server.conninfo_for(postgresql.info.dbname), autocommit=True)
    hba = str(superuser.execute("SHOW hba_file").fetchone()[0])  # type: ignore[index]
    trusting = str(superuser.execute("SELECT pg_read_file(%s)", (hba,)).fetchone()[0])  # type: ignore[index]

    def write_hba(text: str) -> None:
        oid = superuser.execute("SELECT lo_from_bytea(0, convert_to(%s, 'UTF8'))", (text,)).fetchone()[0]  # type: ignore[index]
        superuser.execute("SELECT lo_export(%s, %s), lo_unlink(%s), pg_reload_conf()", (oid, hba, oid))

    superuser.execute("DROP ROLE IF EXISTS app_password; CREATE ROLE app_password LOGIN PASSWORD 'right';"
                      " GRANT audit_reader TO app_password")
    write_hba(f"host all app_password 127.0.0.1/32 scram-sha-256\n{trusting}")
    try:
        yield pg_server.conninfo_for(postgresql.info.dbname, user="app_password")
    finally:
        write_hba(trusting)
        superuser.execute("DROP ROLE app_password")
        superuser.close()


@pytest.mark.parametrize("command", [["verify"], ["digest"], ["seal"], ["log", "--company", str(COMPANY)],
                                     ["tail", "--follow"], ["migrate"], ["uninstall"]])
def test_a_wrong_password_ends_at_once(command: list[str], password_login: str, tmp_path: Path) -> None:
    _one_line(audit_py(*command, "--dsn", f"{password_login} password=wrong"),
              "could not connect", 'password authentication failed for user "app_password"')


def test_the_right_password_from_pgpass(password_login: str, pg_server: ThrowawayServer,
                                        postgresql: psycopg.Connection[tuple[object, ...]], tmp_path: Path) -> None:
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg_server.port}:*:app_password:right\n")
    pgpass.chmod(0o600)
    environment = {"PGHOST": "127.0.0.1", "PGPORT": str(pg_server.port), "PGUSER": "app_password",
                   "PGDATABASE": postgresql.info.dbname, "PGPASSFILE": str(pgpass)}
    result = audit_py("verify", env=environment)
    assert result.returncode == 0 and "nothing to verify" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(("dsn", "words"), [
    ("host=no-such-host.invalid dbname=erp connect_timeout=3", ("could not connect", "no-such-host.invalid")),
    ("nonsense", ("not a connection string", "nonsense")),
    ("postgresql://[::1", ("IPv6 host address",)),
])
@pytest.mark.parametrize("command", [["verify"], ["log", "--company", str(COMPANY)], ["migrate"]])
def test_a_host_or_dsn_that_cannot_work(command: list[str], dsn: str, words: tuple[str, ...]) -> None:
    _one_line(audit_py(*command, "--dsn", dsn), *words)


@pytest.mark.parametrize("command", [["verify"], ["digest"], ["seal"], ["tail"], ["uninstall"]])
def test_a_database_that_does_not_exist(command: list[str], pg_server: ThrowawayServer) -> None:
    _one_line(audit_py(*command, "--dsn", pg_server.conninfo_for("no_such_database")),
              "could not connect", 'database "no_such_database" does not exist')


def test_verify_and_digest_as_a_login_without_the_role_could_not_verify(
        pg_server: ThrowawayServer, postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    for command in ("verify", "digest"):
        result = audit_py(command, "--dsn", _dsn(pg_server, postgresql, OUTSIDER))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result
        assert "is not an audit_reader" in result.stdout + result.stderr, result


@pytest.mark.parametrize("command", [["digest", "--out"], ["export", "--company", str(COMPANY), "--out"],
                                     ["keygen", "--out"]])
def test_an_output_directory_that_does_not_exist(command: list[str], pg_server: ThrowawayServer,
                                                 postgresql: psycopg.Connection[tuple[object, ...]],
                                                 tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    dsn = [] if command[0] == "keygen" else ["--dsn", _dsn(pg_server, postgresql, READER)]
    _one_line(audit_py(*command, str(missing / "file"), *dsn), f"{missing}: no such directory")
    assert list(tmp_path.iterdir()) == []


def test_a_bad_key_or_digest_file(pg_server: ThrowawayServer, postgresql: psycopg.Connection[tuple[object, ...]],
                                  tmp_path: Path) -> None:
    dsn = _dsn(pg_server, postgresql, READER)
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("hello\n")
    _one_line(audit_py("digest", "--key", str(not_a_key), "--dsn", dsn), "not a key")
    _one_line(audit_py("digest", "--key", str(tmp_path / "absent.pem"), "--dsn", dsn), "No such file or directory")
    _one_line(audit_py("verify", "--digest", str(not_a_key), "--dsn", dsn), "not a digest file")
    _one_line(audit_py("verify", "--export", str(tmp_path / "absent.jsonl")), "absent.jsonl: no such file")


@pytest.mark.parametrize(("command", "words"), [
    (["seal", "--watch", "-1"], ("--watch", "above 0")),
    (["seal", "--watch", "nan"], ("--watch", "above 0")),
    (["seal", "--watch", "inf"], ("--watch", "up to a day")),
    (["seal", "--watch", "1e300"], ("--watch", "up to a day")),
    (["tail", "--poll", "inf"], ("--poll", "up to a day")),
    (["tail", "-n", "-1"], ("--lines", "0 or more")),
    (["tail", "--poll", "0"], ("--poll", "above 0")),
    (["tail", "--from-position", "-5"], ("--from-position", "0 or more")),
    (["log", "--company", "not-a-uuid"], ("--company", "invalid UUID")),
])
def test_arguments_refused_before_connecting(command: list[str], words: tuple[str, ...]) -> None:
    result = audit_py(*command, "--dsn", DOWN)  # the server is down: nothing may reach it
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"audit-py {command[0]}: error: argument")
    assert all(word in result.stderr for word in words), result.stderr


def test_ctrl_c_in_seal_watch_ends_quietly(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                          postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    record(connect_as(WRITER), COMPANY)
    watcher = subprocess.Popen([sys.executable, "-m", "audit_py", "seal", "--watch", "0.2", "--dsn",
                                _dsn(pg_server, postgresql, OWNER)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert watcher.stdout is not None
    first = watcher.stdout.readline()  # it is watching now
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=20)
    assert watcher.returncode == 130 and err == "", err
    assert first == f"sealed block 1 of company {COMPANY}: 1 entries\n" and out == "", (first, out)


def test_a_closed_pipe_ends_quietly(pg_server: ThrowawayServer, empty_database: Callable[..., str]) -> None:
    """`audit-py demo --dsn ... | head -3`: the reader goes away long before the demo is done."""
    dsn = pg_server.conninfo_for(empty_database(), user=OWNER)
    demo = subprocess.Popen([sys.executable, "-m", "audit_py", "demo", "--dsn", dsn], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert demo.stdout is not None and demo.stderr is not None
    first = [demo.stdout.readline() for _ in range(3)]
    demo.stdout.close()
    err = demo.stderr.read().decode()
    assert demo.wait(timeout=120) == 0, err
    assert all(first) and err == "", err
