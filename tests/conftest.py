"""One real PostgreSQL for the session; a fresh database per test, cloned from a migrated template.

pytest-postgresql cannot start its own server as root, so the server comes
from audit_py.server (run as the `postgres` account when we are root) and is
handed to pytest-postgresql as a no-process executor. The template database is
migrated by OWNER, a non-superuser with CREATEROLE, as on managed PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql import factories
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from audit_py import migrate
from audit_py.server import SUPERUSER, ThrowawayServer, throwaway_server

OWNER = "erp_owner"  # applies the migrations (the installing login), like neondb_owner on Neon
WRITER = "app_writer"  # an application login granted audit_writer
READER = "app_reader"  # an auditor's login granted audit_reader
OUTSIDER = "app_outsider"  # a login granted nothing: PUBLIC's view
TENANT = "app_tenant"  # a company admin's login granted audit_tenant_reader
# The NOLOGIN roles that own the log and its SECURITY DEFINER functions: no login holds them, so a
# test acts as one through a superuser's connection (SET ROLE), as a migration would.
OWNING_ROLE = "audit_owner"
FUNCTION_ROLE = "audit_definer"

LOGIN_ROLES = {
    OWNER: "LOGIN NOSUPERUSER CREATEROLE CREATEDB",
    WRITER: "LOGIN NOSUPERUSER",
    READER: "LOGIN NOSUPERUSER",
    OUTSIDER: "LOGIN NOSUPERUSER",
    TENANT: "LOGIN NOSUPERUSER",
}

ConnectAs = Callable[..., psycopg.Connection[tuple[object, ...]]]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ThrowawayServer]:
    # fsync off: tests check behaviour, not durability; benchmarks keep it on.
    with throwaway_server(fsync=False, settings={"max_connections": "200"}) as server:
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            for role, options in LOGIN_ROLES.items():
                conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role)))
        yield server


@pytest.fixture(scope="session")
def audit_proc(pg_server: ThrowawayServer) -> Iterator[NoopExecutor]:
    """The server as pytest-postgresql sees it, with the migrated template database."""
    executor = NoopExecutor(host="127.0.0.1", port=pg_server.port, user=SUPERUSER, options="", dbname="audit_test")
    template = DatabaseJanitor(user=SUPERUSER, host=executor.host, port=executor.port,
                               dbname=executor.template_dbname, as_template=True)
    with template:
        with template.cursor() as cur:
            cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(executor.template_dbname), sql.Identifier(OWNER)))
        migrate(pg_server.conninfo_for(executor.template_dbname, user=OWNER))
        # The application logins get the roles, as a DBA would grant them.
        with psycopg.connect(pg_server.conninfo, autocommit=True) as conn:
            conn.execute(f"GRANT audit_writer TO {WRITER}")
            # The ERP's own migrations track its tables as this login (README: tracking).
            conn.execute(f"GRANT audit_writer TO {OWNER}")
            conn.execute(f"GRANT audit_reader TO {READER}")
            conn.execute(f"GRANT audit_tenant_reader TO {TENANT}")
        yield executor


postgresql = factories.postgresql("audit_proc")


@pytest.fixture
def connect_as(postgresql: psycopg.Connection[tuple[object, ...]], pg_server: ThrowawayServer) -> Iterator[ConnectAs]:
    """connect_as(role, **options): a new connection to this test's database, as that login."""
    opened: list[psycopg.Connection[tuple[object, ...]]] = []

    def connect(role: str = SUPERUSER, **options: object) -> psycopg.Connection[tuple[object, ...]]:
        if role in (OWNING_ROLE, FUNCTION_ROLE):
            role, options = SUPERUSER, {**options, "options": f"-c role={role}"}
        conn = psycopg.connect(pg_server.conninfo_for(postgresql.info.dbname, user=role), **options)  # type: ignore[arg-type]
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
async def aconnect_as(
    postgresql: psycopg.Connection[tuple[object, ...]], pg_server: ThrowawayServer
) -> AsyncIterator[Callable[..., object]]:
    opened: list[psycopg.AsyncConnection[tuple[object, ...]]] = []

    async def connect(role: str = SUPERUSER, **options: object) -> psycopg.AsyncConnection[tuple[object, ...]]:
        conn = await psycopg.AsyncConnection.connect(
            pg_server.conninfo_for(postgresql.info.dbname, user=role), **options)  # type: ignore[arg-type]
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        await conn.close()


_database_numbers = itertools.count()


@pytest.fixture
def empty_database(pg_server: ThrowawayServer) -> Iterator[Callable[..., str]]:
    """empty_database(owner=OWNER) -> name of a new, unmigrated database; all are dropped after the test."""
    janitors: list[DatabaseJanitor] = []

    def create(owner: str = OWNER) -> str:
        name = f"audit_empty_{next(_database_numbers)}"
        janitor = DatabaseJanitor(user=SUPERUSER, host="127.0.0.1", port=pg_server.port, dbname=name)
        janitor.drop()
        janitor.init()
        janitors.append(janitor)
        with janitor.cursor() as cur:
            cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)))
        return name

    yield create
    for janitor in janitors:
        janitor.drop()
