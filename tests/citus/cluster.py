"""A throwaway Citus cluster: a coordinator and two workers, each a PostgreSQL 15 on 127.0.0.1.

Citus is built and installed into the PostgreSQL 15 tree by scripts/setup-citus (scripts/setup
runs it for the test extra). Used by tests/citus/conftest.py and by bench/citus.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from audit_py.server import ServerError, ThrowawayServer, throwaway_server

BINDIR = Path("/usr/lib/postgresql/15/bin")
DATABASE = "audit_citus"

SETTINGS = {
    "shared_preload_libraries": "citus",
    "max_connections": "200",
    # pg_stat_user_functions counts calls: where record_audit() ran.
    "track_functions": "pl",
    # Citus commits a transaction that wrote on several nodes in two phases.
    "max_prepared_transactions": "100",
    # Shard moves by logical replication (citus_move_shard_placement(..., 'force_logical')).
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
}


@dataclass(frozen=True)
class CitusCluster:
    coordinator: ThrowawayServer
    workers: tuple[ThrowawayServer, ...]

    def conninfo(self, node: ThrowawayServer | None = None, user: str = "postgres") -> str:
        return (node or self.coordinator).conninfo_for(DATABASE, user=user)

    @property
    def nodes(self) -> tuple[ThrowawayServer, ...]:
        return (self.coordinator, *self.workers)

    def node_at(self, port: int) -> ThrowawayServer:
        return next(node for node in self.nodes if node.port == port)


def citus_available() -> bool:
    return (BINDIR / "postgres").exists() and Path(
        "/usr/lib/postgresql/15/lib/citus.so").exists()


@contextlib.contextmanager
def citus_node(*, fsync: bool = False) -> Iterator[ThrowawayServer]:
    """One PostgreSQL with Citus and database DATABASE, in no cluster yet; stopped on exit."""
    if not citus_available():
        raise ServerError("Citus is not installed into PostgreSQL 15: run scripts/setup-citus")
    with throwaway_server(fsync=fsync, bindir=BINDIR, settings=SETTINGS) as node:
        with psycopg.connect(node.conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(node.conninfo_for(DATABASE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
        yield node


@contextlib.contextmanager
def citus_cluster(*, workers: int = 2, fsync: bool = False) -> Iterator[CitusCluster]:
    """Start a coordinator and `workers` workers with Citus, database DATABASE on each; stop them on exit."""
    with contextlib.ExitStack() as stack:
        coordinator, *rest = [stack.enter_context(citus_node(fsync=fsync)) for _ in range(workers + 1)]
        with psycopg.connect(coordinator.conninfo_for(DATABASE), autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (coordinator.port,))
            for worker in rest:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (worker.port,))
        yield CitusCluster(coordinator=coordinator, workers=tuple(rest))


def install_log(cluster: CitusCluster) -> None:
    """The test logins (tests/conftest.py), then the log as a user installs it: `audit-py citus-install`,
    the installing login migrating and a superuser distributing; then the logins' roles."""
    from psycopg import sql

    from audit_py.cli import main as audit_py

    from ..conftest import LOGIN_ROLES, OWNER, READER, TENANT, WRITER

    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        # Citus creates each role on every node, in the same statement.
        for role, options in LOGIN_ROLES.items():
            conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role)))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(DATABASE), sql.Identifier(OWNER)))
    if audit_py(["citus-install", "--dsn", cluster.conninfo(user=OWNER), "--superuser-dsn", cluster.conninfo()]):
        raise ServerError("audit-py citus-install failed: see its output above")
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute(f"GRANT audit_writer TO {WRITER}")
        conn.execute(f"GRANT audit_writer TO {OWNER}")
        conn.execute(f"GRANT audit_reader TO {READER}")
        conn.execute(f"GRANT audit_tenant_reader TO {TENANT}")
