"""Records as AuditService reads them (binary rows, made without the constructor, JSON parsed by one
decoder) are the records the constructor builds from the text rows read before: equal, and alike in their
attributes, repr, asdict, hashing, copying and pickling, with every number exact and JSON too deep for
Python kept as its text."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.rows import class_row

from audit_py import AsyncAuditService, AuditRecord, AuditService, queries, reading
from audit_py.queries import RawJson
from audit_py.server import SUPERUSER

from .conftest import READER, TENANT, WRITER, ConnectAs

COMPANY = uuid.uuid4()
DEEP = '{"v": ' + "[" * 1200 + "]" * 1200 + "}"
STORED = [
    '{"big": 12345678901234567.89, "tiny": 1e-30, "huge": 1e300, "int": 123456789012345678901234567890,'
    ' "nested": [0.1, {"x": 2.50}], "neg": -0.0, "t": true, "f": false, "n": null}',
    '{"amount": 1e5000}',
    '{"digits": ' + "9" * 4299 + ', "more": -' + "9" * 4299 + ', "most": ' + "9" * 4300 + "}",
    DEEP,
    '{"v": ' + "[" * 450 + "]" * 450 + "}",
    '{"path": "C:\\\\temp", "quote": "\\"", "ctl": "\\u0001\\t\\n", "é": "✓ 𝄞", "": {}}',
    "{}",
]


def _old_records(conn: psycopg.Connection[Any], sql: str, params: Any) -> list[AuditRecord]:
    """How AuditService read before: text rows, the constructor, exact JSON through psycopg's loaders."""
    with conn.cursor(row_factory=class_row(AuditRecord)) as cur:
        queries.exact_json(cur)
        return cur.execute(sql, params).fetchall()


@pytest.fixture
def stored(connect_as: ConnectAs) -> uuid.UUID:
    """One entity whose entries hold every awkward details, some with a context, one without a user."""
    entity_id = uuid.uuid4()
    writer = connect_as(WRITER)
    writer.execute("""SELECT audit.set_context(extra => '{"request": "r-1", "cost": 0.10}')""")
    for n, details in enumerate(STORED):
        writer.execute("SELECT audit.record_audit(%s, 'A', 'invoice', %s, %s::jsonb, %s, %s)",
                       (COMPANY, entity_id, details, uuid.uuid4() if n % 2 else None, uuid.uuid4() if n % 3 else None))
    writer.commit()
    return entity_id


def _asdict(record: AuditRecord) -> Any:
    try:
        return dataclasses.asdict(record)
    except RecursionError:  # it copies details recursively: 450 levels are too many for it
        return RecursionError


def _alike(new: list[AuditRecord], old: list[AuditRecord]) -> None:
    assert len(new) == len(old) == len(STORED)
    for fresh, before in zip(new, old, strict=True):
        assert vars(fresh) == vars(before) and list(vars(fresh)) == list(vars(before))
        assert pickle.dumps(fresh) == pickle.dumps(before)
        assert fresh == before and repr(fresh) == repr(before)
        assert _asdict(fresh) == _asdict(before)
        assert type(fresh.details) is type(before.details) and type(fresh.context) is type(before.context)
        assert reading.as_json(fresh) == reading.as_json(before)
        with pytest.raises(TypeError, match="unhashable"):
            hash(fresh)
        assert pickle.loads(pickle.dumps(fresh)) == before == copy.deepcopy(fresh) == copy.copy(fresh)
        assert dataclasses.replace(fresh, action="B") == dataclasses.replace(before, action="B")
        with pytest.raises(dataclasses.FrozenInstanceError):
            fresh.details = {}  # type: ignore[misc]
        with pytest.raises(AttributeError, match="no attribute 'nothing'"):
            fresh.nothing  # type: ignore[attr-defined]  # noqa: B018


@pytest.mark.parametrize("settings", [{}, {"TimeZone": "Asia/Kolkata"}, {"TimeZone": "America/St_Johns"}],
                         ids=["UTC", "Kolkata", "St Johns"])
def test_records_are_those_the_constructor_builds(connect_as: ConnectAs, stored: uuid.UUID,
                                                  settings: dict[str, str]) -> None:
    reader = connect_as(READER)
    for name, value in settings.items():
        reader.execute("SELECT set_config(%s, %s, false)", (name, value))
    audit = AuditService(reader)
    old = _old_records(reader, queries.HISTORY, queries.history_params("invoice", stored))
    _alike(audit.history("invoice", stored), old)
    page = audit.search(COMPANY, limit=len(STORED))
    _alike(list(reversed(page.entries)), old)
    assert audit.get(old[0].id) == old[0]
    assert str(old[0].created_at.tzinfo) == str(page.entries[-1].created_at.tzinfo)
    details = [record.details for record in audit.history("invoice", stored)]
    read = {key: found for key in ("big", "amount", "digits", "path")
            for found in details if isinstance(found, dict) and key in found}
    read["deep"] = next(found for found in details if isinstance(found, RawJson))
    assert read["big"]["big"] == Decimal("12345678901234567.89") and str(read["big"]["big"]) == "12345678901234567.89"
    assert read["big"]["int"] == 123456789012345678901234567890 and str(read["big"]["tiny"]) == "1E-30"
    assert read["amount"] == {"amount": Decimal("1E+5000")}
    assert [type(read["digits"][key]) for key in ("digits", "more", "most")] == [int, Decimal, Decimal]
    assert isinstance(read["deep"], RawJson) and read["deep"].count("[") == 1200  # as the database prints it
    assert read["path"]["ctl"] == "\x01\t\n" and read["path"]["é"] == "✓ 𝄞"

async def test_the_async_twin_reads_the_same_records(connect_as: ConnectAs, aconnect_as: Any,
                                                     stored: uuid.UUID) -> None:
    old = _old_records(connect_as(READER), queries.HISTORY, queries.history_params("invoice", stored))
    audit = AsyncAuditService(await aconnect_as(READER))
    _alike(await audit.history("invoice", stored), old)
    _alike(list(reversed((await audit.search(COMPANY, limit=len(STORED))).entries)), old)
    assert await audit.get(old[-1].id) == old[-1]


def test_a_tenant_reader_reads_the_same_records(connect_as: ConnectAs, stored: uuid.UUID) -> None:
    tenant = AuditService(connect_as(TENANT))
    with tenant.context(company_id=COMPANY):
        records = tenant.history("invoice", stored)
    _alike(records, _old_records(connect_as(SUPERUSER), queries.HISTORY, queries.history_params("invoice", stored)))
