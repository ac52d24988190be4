"""audit-py seal, verify, digest and keygen, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OWNER, READER, WRITER, ConnectAs
from .helpers import record
from .test_cli import audit_py
from .test_tamper_evidence import as_superuser_without_triggers

COMPANY = uuid.uuid4()


def _dsn(pg_server: ThrowawayServer, postgresql: psycopg.Connection[tuple[object, ...]], role: str) -> str:
    return pg_server.conninfo_for(postgresql.info.dbname, user=role)


def test_seal_verify_digest_round_trip(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                       postgresql: psycopg.Connection[tuple[object, ...]], tmp_path: Path) -> None:
    record(connect_as(WRITER), COMPANY)
    owner, reader = _dsn(pg_server, postgresql, OWNER), _dsn(pg_server, postgresql, READER)

    sealed = audit_py("seal", "--dsn", owner)
    assert (sealed.returncode, sealed.stdout.strip()) == (0, f"sealed block 1 of company {COMPANY}: 1 entries")
    assert audit_py("seal", "--dsn", owner).stdout.strip() == "nothing to seal"

    keygen = audit_py("keygen", "--out", str(tmp_path / "key"))
    assert keygen.returncode == 0 and (tmp_path / "key.pub").exists()
    taken = audit_py("digest", "--dsn", reader, "--key", str(tmp_path / "key"), "--out", str(tmp_path / "d.json"))
    assert taken.returncode == 0, taken.stderr
    assert json.loads((tmp_path / "d.json").read_text())["signature"]["algorithm"] == "ed25519"

    verified = audit_py("verify", "--dsn", reader, "--digest", str(tmp_path / "d.json"),
                        "--public-key", str(tmp_path / "key.pub"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    lines = verified.stdout.splitlines()
    assert lines[0].endswith("signed by the trusted key")
    assert lines[1].startswith("OK         Protections in place")
    assert lines[2].startswith(f"OK         Company {COMPANY}: 1 blocks and 1 sealed entries verified")
    assert lines[3].startswith(f"OK         Company {COMPANY}: the digest of ")

    as_superuser_without_triggers(connect_as, "UPDATE audit.audit_logs SET action = 'X'")
    tampered = audit_py("verify", "--dsn", reader, "--company", str(COMPANY))
    assert tampered.returncode == 1
    assert tampered.stdout.splitlines()[1].startswith(f"TAMPERED   Block 1 of company {COMPANY}: entry ")


def test_digest_to_standard_output_and_a_forged_digest_file(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                                            postgresql: psycopg.Connection[tuple[object, ...]],
                                                            tmp_path: Path) -> None:
    record(connect_as(WRITER), COMPANY)
    audit_py("seal", "--dsn", _dsn(pg_server, postgresql, OWNER))
    reader = _dsn(pg_server, postgresql, READER)
    printed = audit_py("digest", "--dsn", reader)
    assert json.loads(printed.stdout)["digest"]["chains"][str(COMPANY)]["block_no"] == 1
    audit_py("keygen", "--out", str(tmp_path / "key"))
    audit_py("digest", "--dsn", reader, "--key", str(tmp_path / "key"), "--out", str(tmp_path / "d.json"))
    forged = json.loads((tmp_path / "d.json").read_text())
    forged["digest"]["chains"][str(COMPANY)]["block_hash"] = "00" * 32
    (tmp_path / "d.json").write_text(json.dumps(forged))
    result = audit_py("verify", "--dsn", reader, "--digest", str(tmp_path / "d.json"))
    assert result.returncode == 2 and "the file was altered" in result.stderr


def test_seal_watch_keeps_sealing(connect_as: ConnectAs, pg_server: ThrowawayServer,
                                  postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    watcher = subprocess.Popen([sys.executable, "-m", "audit_py", "seal", "--watch", "0.2", "--dsn",
                                _dsn(pg_server, postgresql, OWNER)], stdout=subprocess.PIPE, text=True)
    try:
        writer = connect_as(WRITER)
        for _ in range(2):
            record(writer, COMPANY)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not connect_as(READER).execute(
                    "SELECT count(*) = (SELECT count(*) FROM audit.audit_logs) FROM audit.audit_logs e"
                    " JOIN audit.blocks b ON e.id = ANY (b.entry_ids)").fetchone()[0]:  # type: ignore[index]
                time.sleep(0.1)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    assert out.splitlines() == [f"sealed block 1 of company {COMPANY}: 1 entries",
                                f"sealed block 2 of company {COMPANY}: 1 entries"]


def test_verify_of_an_empty_log(pg_server: ThrowawayServer, postgresql: psycopg.Connection[tuple[object, ...]]) -> None:
    result = audit_py("verify", "--dsn", _dsn(pg_server, postgresql, SUPERUSER))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "nothing to verify: the log is empty"


def test_commands_without_a_database_say_what_they_need() -> None:
    for command in ("seal", "verify", "digest"):
        result = audit_py(command)
        assert result.returncode == 2 and "--dsn" in result.stderr
