"""Sealing and verifying a log sharded by company: each worker seals its companies at its own horizon."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from audit_py.cli import main as audit_py

from ..helpers import RECORD_SQL
from .cluster import CitusCluster
from .conftest import OWNER, READER, WRITER, ConnectTo, node_of, rewrite_shard, spread, system_identifier
from .test_immutability import MANUAL


def _record(writer: psycopg.Connection[Any], company: uuid.UUID, count: int = 1) -> list[uuid.UUID]:
    return [writer.execute(RECORD_SQL, (company, "CREATE_INVOICE", "invoice", uuid.uuid4(), "{}", None, None))
            .fetchone()[0] for _ in range(count)]  # type: ignore[index]


def _seal(connect_to: ConnectTo) -> dict[uuid.UUID, tuple[int, int]]:
    """audit.seal() on the coordinator, as the installing login (audit_admin): {company: (block, entries)}."""
    sealer = connect_to(role=OWNER, autocommit=True)
    return {row[0]: (row[1], row[2]) for row in sealer.execute("SELECT * FROM audit.seal()").fetchall()}


def test_seal_takes_every_finished_entry_once_on_each_worker(cluster: CitusCluster, connect_to: ConnectTo) -> None:
    coordinator = connect_to()
    companies = spread(coordinator, cluster, 4)
    writer = connect_to(role=WRITER, autocommit=True)
    for n, company in enumerate(companies):
        _record(writer, company, n + 1)
    open_writer = connect_to(role=WRITER)
    waiting = _record(open_writer, companies[0])  # its transaction is still open: it waits
    sealed = _seal(connect_to)
    for n, company in enumerate(companies):
        assert sealed[company] == (1, n + 1)
    reader = connect_to(role=READER)
    blocks = reader.execute("SELECT company_id, origin, entry_ids FROM audit.blocks WHERE company_id = ANY(%s)",
                            (companies,)).fetchall()
    for company, origin, entry_ids in blocks:
        assert origin == system_identifier(connect_to(node_of(coordinator, cluster, company)))
        assert waiting[0] not in entry_ids
    # Nothing twice: a second seal finds only what the open transaction committed since.
    open_writer.commit()
    again = _seal(connect_to)
    assert {company: again[company] for company in companies if company in again} == {companies[0]: (2, 1)}


def _verify(cluster: CitusCluster, company: uuid.UUID, capsys: Any) -> tuple[int, str]:
    status = audit_py(["verify", "--dsn", cluster.conninfo(user=READER), "--company", str(company)])
    return status, capsys.readouterr().out


def test_python_verifier_verifies_a_distributed_company(cluster: CitusCluster, connect_to: ConnectTo,
                                                        capsys: Any) -> None:
    company = spread(connect_to(), cluster, 1)[0]
    _record(connect_to(role=WRITER, autocommit=True), company, 3)
    _seal(connect_to)
    _record(connect_to(role=WRITER, autocommit=True), company, 1)
    status, out = _verify(cluster, company, capsys)
    assert status == 0, out
    assert "Protections in place" in out
    assert f"Company {company}: 1 blocks and 3 sealed entries verified; 1 entries not sealed yet." in out


TAMPERING = {
    "changed": ("UPDATE {shard} SET details = '{{\"amount\": 1000000}}' WHERE id = %s",
                "was changed after it was sealed"),
    "deleted": ("DELETE FROM {shard} WHERE id = %s", "was deleted"),
}


@pytest.mark.parametrize("how", TAMPERING.keys())
def test_a_superuser_rewriting_a_workers_shard_is_detected(cluster: CitusCluster, connect_to: ConnectTo,
                                                           capsys: Any, how: str) -> None:
    """A superuser on the worker lifts every guard of the shard (Citus's and the triggers) and rewrites
    a sealed entry: the Python verifier, run on the coordinator, names it."""
    coordinator = connect_to()
    company = spread(coordinator, cluster, 1)[0]
    entries = _record(connect_to(role=WRITER, autocommit=True), company, 3)
    _seal(connect_to)
    assert _verify(cluster, company, capsys)[0] == 0
    shard = "audit.audit_logs_{}".format(coordinator.execute(
        "SELECT pg_catalog.get_shard_id_for_distribution_column('audit.audit_logs', %s)", (company,)
    ).fetchone()[0])  # type: ignore[index]
    worker = connect_to(node_of(coordinator, cluster, company), options=MANUAL)
    statement, finding = TAMPERING[how]
    rewrite_shard(worker, shard, statement.format(shard=shard), (entries[1],))
    status, out = _verify(cluster, company, capsys)
    assert status == 1, out
    assert "TAMPERED" in out and finding in out, out
