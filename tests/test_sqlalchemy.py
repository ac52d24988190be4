"""The ERP's Python services on SQLAlchemy 2 and Alembic: one transaction with the session, refusals
mapped through SQLAlchemy's wrapper, and autogenerate kept away from the log (the README's filter)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, Numeric, Table, create_engine, func, literal, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from audit_py import AuditService, InvalidEntry
from audit_py.errors import translate_errors
from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OWNER, WRITER, ConnectAs

COMPANY = uuid.uuid4()
README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _engine(pg_server: ThrowawayServer, dbname: str, role: str) -> Engine:
    conninfo = pg_server.conninfo_for(dbname, user=role)
    return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo))


@pytest.fixture
def writer_engine(pg_server: ThrowawayServer, postgresql: psycopg.Connection[Any],
                  connect_as: ConnectAs) -> Iterator[Engine]:
    connect_as(SUPERUSER, autocommit=True).execute(
        f"CREATE TABLE public.orders (id uuid PRIMARY KEY, total numeric); GRANT ALL ON public.orders TO {WRITER}")
    engine = _engine(pg_server, postgresql.info.dbname, WRITER)
    yield engine
    engine.dispose()


def _counts(connect_as: ConnectAs, order: uuid.UUID) -> tuple[Any, ...]:
    row = connect_as(SUPERUSER).execute(
        "SELECT (SELECT count(*) FROM public.orders WHERE id = %(o)s),"
        " (SELECT count(*) FROM audit.audit_logs WHERE entity_id = %(o)s)", {"o": order}).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_audit_service_on_a_session_commits_and_rolls_back_with_it(writer_engine: Engine, connect_as: ConnectAs,
                                                                   outcome: str) -> None:
    order = uuid.uuid4()
    with Session(writer_engine) as session:
        session.execute(text("INSERT INTO public.orders VALUES (:id, 10)"), {"id": order})
        session.scalar(select(func.audit.record_audit(COMPANY, "CREATE_ORDER", "order", order,
                                                      literal({"total": "10"}, JSONB))))
        audit = AuditService(session.connection().connection.driver_connection)  # type: ignore[arg-type]
        audit.record(COMPANY, "CONFIRM_ORDER", "order", order)
        with audit.context(user_id=uuid.uuid4()):  # a savepoint inside the session's transaction
            audit.record(COMPANY, "SHIP_ORDER", "order", order)
        getattr(session, outcome)()
    assert _counts(connect_as, order) == ((1, 3) if outcome == "commit" else (0, 0))


def test_refusals_are_mapped_through_sqlalchemys_wrapper(writer_engine: Engine) -> None:
    with Session(writer_engine) as session:
        with pytest.raises(InvalidEntry) as refused, translate_errors():
            session.scalar(select(func.audit.record_audit(COMPANY, "  ", "order", uuid.uuid4(),
                                                          literal({}, JSONB))))
    assert refused.value.sqlstate == "AU002" and refused.value.parameter == "action"
    assert isinstance(refused.value.__cause__, DBAPIError)


def _readme_include_name() -> Callable[..., bool]:
    block = re.search(r"```python alembic-env\n(.*?)```", README, re.S)
    assert block, "the README's Alembic filter is gone"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)  # noqa: S102 - the README's own snippet, tested as written
    include_name: Callable[..., bool] = namespace["include_name"]
    return include_name


# Unfiltered, it reflects the log's configuration tables too, whose regrole columns it does not know.
@pytest.mark.filterwarnings("ignore:Did not recognize type 'regrole'")
def test_alembic_autogenerate_with_the_readmes_filter_leaves_the_log_alone(
        pg_server: ThrowawayServer, postgresql: psycopg.Connection[Any], connect_as: ConnectAs) -> None:
    connect_as(SUPERUSER, autocommit=True).execute(
        f"CREATE TABLE public.orders (id uuid PRIMARY KEY, total numeric); GRANT ALL ON public.orders TO {OWNER}")
    erp = MetaData()
    Table("orders", erp, Column("id", UUID, primary_key=True), Column("total", Numeric))
    engine = _engine(pg_server, postgresql.info.dbname, OWNER)  # the login that would run the ERP's migrations
    try:
        with engine.connect() as conn:
            unfiltered = compare_metadata(MigrationContext.configure(conn, opts={"include_schemas": True}), erp)
            filtered = compare_metadata(MigrationContext.configure(
                conn, opts={"include_schemas": True, "include_name": _readme_include_name()}), erp)
    finally:
        engine.dispose()
    dropped = {(diff[1].schema, diff[1].name) for diff in unfiltered if diff[0] == "remove_table"}
    assert {("audit", "audit_logs"), ("audit", "blocks"), (None, "_yoyo_migration")} <= dropped, unfiltered
    assert filtered == []
