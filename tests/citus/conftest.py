"""One real Citus cluster for the Citus tests: a coordinator and two workers, started once per session.

Only the tests of this folder use it, so the rest of the suite does not wait for it. The log is
installed as a user would, with `audit-py citus-install` (the installing login migrates, a superuser
distributes); tests share the one database and keep apart by company (fresh UUIDs each).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from audit_py.server import SUPERUSER, ThrowawayServer

from ..conftest import OUTSIDER, OWNER, READER, TENANT, WRITER
from .cluster import CitusCluster, citus_cluster, install_log

ConnectTo = Callable[..., psycopg.Connection[tuple[Any, ...]]]


@pytest.fixture(scope="session")
def cluster() -> Iterator[CitusCluster]:
    # fsync off: tests check behaviour, not durability.
    with citus_cluster(workers=2, fsync=False) as running:
        install_log(running)
        yield running


@pytest.fixture
def connect_to(cluster: CitusCluster) -> Iterator[ConnectTo]:
    """connect_to(node=None, role=SUPERUSER, **options): a connection to DATABASE on that node (coordinator)."""
    opened: list[psycopg.Connection[tuple[Any, ...]]] = []

    def connect(node: ThrowawayServer | None = None, role: str = SUPERUSER, **options: Any) -> psycopg.Connection[Any]:
        conn = psycopg.connect(cluster.conninfo(node, user=role), **options)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def company() -> uuid.UUID:
    return uuid.uuid4()


def node_of(conn: psycopg.Connection[Any], cluster: CitusCluster, company_id: uuid.UUID) -> ThrowawayServer:
    """The worker whose shard holds the company's entries (asked of the coordinator's metadata)."""
    row = conn.execute(
        "SELECT n.nodeport FROM pg_catalog.pg_dist_placement p JOIN pg_catalog.pg_dist_node n USING (groupid)"
        " WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column('audit.audit_logs', %s)",
        (company_id,)).fetchone()
    assert row is not None
    return cluster.node_at(row[0])


def spread(conn: psycopg.Connection[Any], cluster: CitusCluster, count: int) -> list[uuid.UUID]:
    """`count` new companies, alternating between the workers (the first on the first worker)."""
    by_worker: dict[int, list[uuid.UUID]] = {worker.port: [] for worker in cluster.workers}
    while min(len(companies) for companies in by_worker.values()) < count:
        company = uuid.uuid4()
        by_worker[node_of(conn, cluster, company).port].append(company)
    columns = [by_worker[worker.port] for worker in cluster.workers]
    return [columns[n % len(columns)][n // len(columns)] for n in range(count)]


def visible(conn: psycopg.Connection[Any], context_company: uuid.UUID | None, asked: uuid.UUID) -> int:
    """How many of `asked`'s entries the login of conn sees, its context naming `context_company` (SET
    LOCAL, which reaches the workers: sql/citus/0020_recording.sql, AuditService.context)."""
    with conn.transaction(force_rollback=True):
        if context_company is not None:
            conn.execute("SET LOCAL citus.propagate_set_commands = local")
            conn.execute(f"SET LOCAL audit.company_id = '{context_company}'")
        row = conn.execute("SELECT count(*) FROM audit.audit_logs WHERE company_id = %s", (asked,)).fetchone()
    assert row is not None
    return int(row[0])


# What a superuser's tampering on a worker does first: lift the DDL guard for its transaction.
LIFT = "SELECT pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true)"


def rewrite_shard(conn: psycopg.Connection[Any], shard: str, statement: str, params: tuple[Any, ...]) -> None:
    """As a superuser on the shard's worker (conn made with tests/citus/test_immutability.py's MANUAL): lift
    the guard, disable the shard's triggers, run `statement`, and put the triggers back as they were (the
    refusals ENABLE ALWAYS, the stamp ENABLE), in one transaction: the cluster is shared."""
    shard_id = shard.rsplit("_", 1)[1]
    with conn.transaction():
        conn.execute(LIFT)
        conn.execute(f"ALTER TABLE {shard} DISABLE TRIGGER USER".encode())
        conn.execute(statement.encode(), params)
        for refusal in ("update", "delete", "truncate"):
            conn.execute(f"ALTER TABLE {shard} ENABLE ALWAYS TRIGGER audit_logs_refuse_{refusal}_{shard_id}".encode())
        conn.execute(f"ALTER TABLE {shard} ENABLE TRIGGER audit_logs_stamp_{shard_id}".encode())


def system_identifier(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT system_identifier FROM pg_catalog.pg_control_system()").fetchone()
    assert row is not None
    return int(row[0])


__all__ = ["OUTSIDER", "READER", "TENANT", "WRITER", "OWNER"]
