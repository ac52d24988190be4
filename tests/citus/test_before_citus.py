"""A log that lived on a plain PostgreSQL before the server became a Citus coordinator: installed,
recorded into and sealed there, then `audit-py citus-install`. Its own database on the folder's
cluster (audit_late on every node), so that whole-log commands (verify of every company, digest, tail)
see only what these tests wrote, whatever the folder's other tests leave tampered in theirs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from audit_py.cli import main as audit_py
from audit_py.server import SUPERUSER

from ..helpers import RECORD_SQL
from .cluster import CitusCluster
from .conftest import OWNER, READER, TENANT, WRITER, spread, system_identifier

LATE = "audit_late"


def _conninfo(cluster: CitusCluster, node: Any = None, user: str = SUPERUSER) -> str:
    return (node or cluster.coordinator).conninfo_for(LATE, user=user)


def _record(cluster: CitusCluster, company: uuid.UUID, count: int) -> list[uuid.UUID]:
    with psycopg.connect(_conninfo(cluster, user=WRITER), autocommit=True) as writer:
        return [writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), '{"n": 1}', None,
                                            None)).fetchone()[0] for _ in range(count)]  # type: ignore[index]


def _seal(cluster: CitusCluster) -> dict[uuid.UUID, list[tuple[int, int]]]:
    sealed: dict[uuid.UUID, list[tuple[int, int]]] = {}
    with psycopg.connect(_conninfo(cluster, user=OWNER), autocommit=True) as conn:
        for company_id, block_no, count in conn.execute("SELECT * FROM audit.seal()").fetchall():
            sealed.setdefault(company_id, []).append((block_no, count))
    return sealed


@pytest.fixture(scope="module")
def late(cluster: CitusCluster) -> Iterator[dict[str, Any]]:
    """Companies a and b: 3 and 2 entries sealed on the plain PostgreSQL, a's 2 more left unsealed there;
    then the server made a coordinator of the cluster's workers and the log distributed."""
    for node in cluster.nodes:
        with psycopg.connect(node.conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {LATE} OWNER {OWNER}")
    # Installed as on any PostgreSQL: Citus's library is loaded, its extension not yet created here.
    assert audit_py(["migrate", "--dsn", _conninfo(cluster, user=OWNER)]) == 0
    a, b = uuid.uuid4(), uuid.uuid4()
    before = {a: _record(cluster, a, 3), b: _record(cluster, b, 2)}
    assert _seal(cluster) == {a: [(1, 3)], b: [(1, 2)]}
    before[a] += _record(cluster, a, 2)
    for node in cluster.workers:
        with psycopg.connect(_conninfo(cluster, node), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
    with psycopg.connect(_conninfo(cluster), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citus")
        conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (cluster.coordinator.port,))
        for worker in cluster.workers:
            conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
    assert audit_py(["citus-install", "--dsn", _conninfo(cluster, user=OWNER),
                     "--superuser-dsn", _conninfo(cluster)]) == 0
    with psycopg.connect(_conninfo(cluster)) as conn:
        coordinator = system_identifier(conn)
    yield {"a": a, "b": b, "entries": before, "coordinator": coordinator}


def _verify(cluster: CitusCluster, capsys: Any, *extra: str) -> tuple[int, str]:
    status = audit_py(["verify", "--dsn", _conninfo(cluster, user=READER), *extra])
    return status, capsys.readouterr().out


def test_entries_from_before_citus_keep_their_stamps_and_verify(cluster: CitusCluster, late: dict[str, Any],
                                                                capsys: Any) -> None:
    """Distributing copies the entries into the shards without stamping them again: the same ids, and
    the coordinator's origin, whose counter gave out their txids; the blocks sealed before still hold."""
    with psycopg.connect(_conninfo(cluster, user=READER)) as reader:
        rows = reader.execute("SELECT company_id, id, origin FROM audit.audit_logs").fetchall()
    assert {(company, entry) for company, entry, _ in rows} == {
        (company, entry) for company, entries in late["entries"].items() for entry in entries}
    assert {origin for _, _, origin in rows} == {late["coordinator"]}
    status, out = _verify(cluster, capsys)
    assert status == 0, out
    assert f"Company {late['a']}: 1 blocks and 3 sealed entries verified; 2 entries not sealed yet." in out, out
    assert f"Company {late['b']}: 1 blocks and 2 sealed entries verified; 0 entries not sealed yet." in out, out


def test_entries_from_before_citus_seal_on_their_worker_then_its_own(cluster: CitusCluster, late: dict[str, Any],
                                                                     capsys: Any) -> None:
    """The first seal on the company's worker takes the coordinator's entries left unsealed, from where
    the company's blocks of that origin end; entries recorded since are the worker's own."""
    a = late["a"]
    since = _record(cluster, a, 1)
    sealed = _seal(cluster)
    assert sealed[a] == [(2, 2), (3, 1)], sealed
    with psycopg.connect(_conninfo(cluster, user=READER)) as reader:
        blocks = reader.execute("SELECT origin, xid_from, entry_ids FROM audit.blocks WHERE company_id = %s"
                                " ORDER BY block_no", (a,)).fetchall()
    assert [origin for origin, _, _ in blocks[:2]] == [late["coordinator"]] * 2
    assert blocks[2][0] != late["coordinator"] and blocks[2][2] == since
    status, out = _verify(cluster, capsys)
    assert status == 0, out
    assert f"Company {a}: 3 blocks and 6 sealed entries verified; 0 entries not sealed yet." in out, out


def test_digest_of_a_distributed_log(cluster: CitusCluster, late: dict[str, Any], tmp_path: Path,
                                     capsys: Any) -> None:
    """`audit-py digest` on the coordinator: every company's verified head, whichever worker holds it;
    verify --digest then proves the chains extend it."""
    _seal(cluster)
    key, digest = tmp_path / "signing.key", tmp_path / "digest.json"
    assert audit_py(["keygen", "--out", str(key)]) == 0
    assert audit_py(["digest", "--dsn", _conninfo(cluster, user=READER), "--out", str(digest),
                     "--key", str(key)]) == 0, capsys.readouterr()
    chains = json.loads(digest.read_text())["digest"]["chains"]
    assert {late["a"], late["b"]} <= {uuid.UUID(company) for company in chains}
    capsys.readouterr()
    _record(cluster, late["b"], 1)
    _seal(cluster)
    status, out = _verify(cluster, capsys, "--digest", str(digest), "--public-key", f"{key}.pub")
    assert status == 0, out
    assert f"Company {late['b']}: the digest of " in out and "the verified chain still holds it" in out, out


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_of_a_distributed_company(cluster: CitusCluster, late: dict[str, Any], tmp_path: Path,
                                         capsys: Any, fmt: str) -> None:
    """`audit-py export` on the coordinator: the company's entries from its worker, oldest first, with its
    chain; the JSON lines verify offline against it."""
    company = late["a"]
    _seal(cluster)
    out = tmp_path / f"a.{fmt}"
    assert audit_py(["export", "--dsn", _conninfo(cluster, user=READER), "--company", str(company),
                     "--format", fmt, "--out", str(out)]) == 0
    with psycopg.connect(_conninfo(cluster, user=READER)) as reader:
        expected = [str(row[0]) for row in reader.execute(
            "SELECT id FROM audit.audit_logs WHERE company_id = %s ORDER BY created_at, id", (company,))]
    lines = out.read_text().splitlines()
    if fmt == "csv":
        assert [line.split(",")[0] for line in lines[1:]] == expected
        return
    assert [json.loads(line)["id"] for line in lines] == expected
    capsys.readouterr()
    status, printed = audit_py(["verify", "--export", str(out)]), capsys.readouterr().out
    assert f"Company {company}: " in printed and "verified offline, from a complete export" in printed, printed
    assert status == 2, printed  # no --digest: the chain file is unauthenticated, as on one PostgreSQL


def test_log_of_a_distributed_company(cluster: CitusCluster, late: dict[str, Any], capsys: Any) -> None:
    """`audit-py log --company` on the coordinator: the company's entries from its worker, newest first."""
    company = late["a"]
    capsys.readouterr()
    assert audit_py(["log", "--dsn", _conninfo(cluster, user=READER), "--company", str(company), "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    with psycopg.connect(_conninfo(cluster, user=READER)) as reader:
        expected = [str(row[0]) for row in reader.execute(
            "SELECT id FROM audit.audit_logs WHERE company_id = %s ORDER BY created_at DESC, id DESC", (company,))]
    assert [entry["id"] for entry in printed] == expected and len(expected) >= 5


def _tail(cluster: CitusCluster, capsys: Any, *options: str, user: str = READER) -> tuple[list[str], str]:
    """One poll of `audit-py tail`: the ids it printed, and the position it says to resume from."""
    capsys.readouterr()
    status = audit_py(["tail", "--dsn", _conninfo(cluster, user=user), *options])
    out, err = capsys.readouterr()
    assert status == 0, err
    return [json.loads(line)["id"] for line in out.splitlines()], err.split("--from-position ")[1].strip()


def test_tail_follows_every_worker_from_a_position_of_each(cluster: CitusCluster, late: dict[str, Any],
                                                           capsys: Any) -> None:
    """The position holds a transaction id for each worker's origin: each entry comes once, as its
    transaction ends; a transaction open on one worker holds back that worker's later entries only."""
    with psycopg.connect(_conninfo(cluster)) as conn:
        first, second = spread(conn, cluster, 2)
        origins = {system_identifier(psycopg.connect(_conninfo(cluster, node), autocommit=True))
                   for node in cluster.workers}
    _, position = _tail(cluster, capsys, "-n", "0")
    assert {int(pair.split(":")[0]) for pair in position.split(",")} == origins

    written = _record(cluster, first, 2) + _record(cluster, second, 2)
    with psycopg.connect(_conninfo(cluster, user=WRITER)) as open_writer:
        held = open_writer.execute(RECORD_SQL, (first, "HELD", "invoice", uuid.uuid4(), "{}", None,
                                                None)).fetchone()[0]  # type: ignore[index]
        after_held = _record(cluster, first, 1) + _record(cluster, second, 1)
        printed, position = _tail(cluster, capsys, "--from-position", position)
        assert sorted(printed) == sorted(map(str, written + after_held[1:]))
        open_writer.commit()
    printed, position = _tail(cluster, capsys, "--from-position", position)
    assert printed == [str(held), str(after_held[0])]
    assert _tail(cluster, capsys, "--from-position", position) == ([], position)


def test_tail_of_a_tenant_on_citus_reads_its_company(cluster: CitusCluster, late: dict[str, Any],
                                                     capsys: Any) -> None:
    """The company reaches the workers' policies (SET LOCAL, which Citus passes on): a tenant reader's
    tail, log and export read that company's entries, and no other's."""
    with psycopg.connect(_conninfo(cluster)) as conn:
        mine, other = spread(conn, cluster, 2)
    _, position = _tail(cluster, capsys, "-n", "0", user=TENANT)
    written = _record(cluster, mine, 2)
    _record(cluster, other, 1)
    printed, _ = _tail(cluster, capsys, "--company", str(mine), "--from-position", position, user=TENANT)
    assert printed == list(map(str, written))
    assert audit_py(["log", "--dsn", _conninfo(cluster, user=TENANT), "--company", str(mine), "--json"]) == 0
    assert sorted(json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()) == sorted(map(str, written))
    assert audit_py(["export", "--dsn", _conninfo(cluster, user=TENANT), "--company", str(mine), "--out", "-"]) == 0
    assert sorted(json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()) == sorted(map(str, written))


def test_tail_refuses_a_position_of_one_postgresql(cluster: CitusCluster, late: dict[str, Any], capsys: Any) -> None:
    status = audit_py(["tail", "--dsn", _conninfo(cluster, user=READER), "--from-position", "1234"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "tail: --from-position 1234 is a position of a log on one PostgreSQL, and this one is sharded on Citus" \
        in err, err


def test_tail_starts_only_once_every_worker_is_reached(cluster: CitusCluster, late: dict[str, Any],
                                                       capsys: Any) -> None:
    """A worker out of reach when a tail starts: its origin would be missing from the first position and
    later read from its first entry. So tail gives no position until it reaches every worker."""
    worker = psycopg.connect(_conninfo(cluster, cluster.workers[0]), autocommit=True,
                             options="-c citus.enable_ddl_propagation=off")
    worker.execute(f"ALTER ROLE {READER} NOLOGIN")  # tail's connection to that worker is refused
    try:
        capsys.readouterr()
        assert audit_py(["tail", "--dsn", _conninfo(cluster, user=READER), "-n", "5"]) == 0
        out, err = capsys.readouterr()
        assert (out, "--from-position" in err) == ("", False), err
    finally:
        worker.execute(f"ALTER ROLE {READER} LOGIN")
        worker.close()
    assert _tail(cluster, capsys, "-n", "0")[1]
