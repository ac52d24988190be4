"""AsyncAuditService: the same behaviour as AuditService, over an AsyncConnection."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from audit_py import AsyncAuditService, AuditEntry, InvalidEntry
from audit_py.server import SUPERUSER

from .conftest import READER, WRITER, ConnectAs
from .helpers import count_entries

COMPANY = uuid.uuid4()
AsyncConnectAs = Callable[..., Any]


async def test_record_and_get(aconnect_as: AsyncConnectAs) -> None:
    writer = await aconnect_as(WRITER)
    invoice, user = uuid.uuid4(), uuid.uuid4()
    entry_id = await AsyncAuditService(writer).record(COMPANY, "CREATE_INVOICE", "invoice", invoice,
                                                      {"amount": 5}, user_id=user)
    await writer.commit()
    stored = await AsyncAuditService(await aconnect_as(READER)).get(entry_id)
    assert stored is not None
    assert (stored.id, stored.entity_id, stored.user_id, stored.details) == (entry_id, invoice, user, {"amount": 5})


async def test_rollback_takes_the_entries_with_it(aconnect_as: AsyncConnectAs, connect_as: ConnectAs) -> None:
    writer = await aconnect_as(WRITER)
    service = AsyncAuditService(writer)
    await service.record(COMPANY, "A", "e", uuid.uuid4())
    await service.record_many([AuditEntry(COMPANY, "B", "e", uuid.uuid4())])
    await writer.rollback()
    assert count_entries(connect_as(SUPERUSER)) == 0


async def test_record_many_in_order(aconnect_as: AsyncConnectAs) -> None:
    writer = await aconnect_as(WRITER, autocommit=True)
    entries = [AuditEntry(COMPANY, "A", "e", uuid.uuid4(), {"n": n}) for n in range(20)]
    ids = await AsyncAuditService(writer).record_many(entries)
    reader = AsyncAuditService(await aconnect_as(READER))
    stored = [await reader.get(entry_id) for entry_id in ids]
    assert [s.entity_id for s in stored if s] == [e.entity_id for e in entries]
    assert await AsyncAuditService(writer).record_many([]) == []


async def test_invalid_entries_raise_invalid_entry(aconnect_as: AsyncConnectAs, connect_as: ConnectAs) -> None:
    writer = await aconnect_as(WRITER)
    service = AsyncAuditService(writer)
    with pytest.raises(InvalidEntry) as single:
        await service.record(COMPANY, "A", "e", uuid.uuid4(), [1])  # type: ignore[arg-type]
    await writer.rollback()
    bad = [AuditEntry(COMPANY, "A", "e", uuid.uuid4()), dataclasses.replace(AuditEntry(COMPANY, "A", "e", uuid.uuid4()),
                                                                            action="")]
    with pytest.raises(InvalidEntry) as batch:
        await service.record_many(bad)
    await writer.rollback()
    assert (single.value.parameter, batch.value.parameter) == ("details", "action")
    assert count_entries(connect_as(SUPERUSER)) == 0


async def test_concurrent_async_writers_lose_nothing(aconnect_as: AsyncConnectAs, connect_as: ConnectAs) -> None:
    async def write(count: int) -> list[uuid.UUID]:
        service = AsyncAuditService(await aconnect_as(WRITER, autocommit=True))
        return [await service.record(COMPANY, "A", "e", uuid.uuid4()) for _ in range(count)]

    results = await asyncio.gather(*(write(25) for _ in range(8)))
    ids = {entry_id for result in results for entry_id in result}
    assert len(ids) == 200 and count_entries(connect_as(SUPERUSER)) == 200
