"""AuditService and AsyncAuditService: thin twins over the SQL in queries.py.

Both borrow the caller's connection and never commit: an entry commits or
rolls back with the caller's transaction (in autocommit mode, at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, Connection
from psycopg.rows import class_row

from . import queries
from .errors import translate_errors
from .models import AuditEntry, AuditRecord


class AuditService:
    """Records audit entries on a psycopg connection, in its current transaction."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn

    def record(
        self,
        company_id: UUID,
        action: str,
        entity: str,
        entity_id: UUID,
        details: Mapping[str, Any] | None = None,
        *,
        user_id: UUID | None = None,
        franchise_id: UUID | None = None,
    ) -> UUID:
        """Record one entry (see audit.record_audit); return its id."""
        entry = AuditEntry(company_id, action, entity, entity_id, {} if details is None else details,
                           user_id, franchise_id)
        return self.record_entry(entry)

    def record_entry(self, entry: AuditEntry) -> UUID:
        with translate_errors(), self.conn.cursor() as cur:
            cur.execute(queries.RECORD, queries.record_params(entry))
            row = cur.fetchone()
        assert row is not None
        entry_id: UUID = row[0]
        return entry_id

    def record_many(self, entries: Iterable[AuditEntry]) -> list[UUID]:
        """Record a batch in one round trip, all or nothing; return the ids in the entries' order."""
        with translate_errors(), self.conn.cursor() as cur:
            cur.execute(queries.RECORD_MANY, queries.record_many_params(entries))
            return [row[0] for row in cur.fetchall()]

    def get(self, entry_id: UUID) -> AuditRecord | None:
        """The stored entry with this id, or None (needs audit_reader)."""
        with translate_errors(), self.conn.cursor(row_factory=class_row(AuditRecord)) as cur:
            cur.execute(queries.GET, (entry_id,))
            return cur.fetchone()


class AsyncAuditService:
    """The async twin of AuditService, over an AsyncConnection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn

    async def record(
        self,
        company_id: UUID,
        action: str,
        entity: str,
        entity_id: UUID,
        details: Mapping[str, Any] | None = None,
        *,
        user_id: UUID | None = None,
        franchise_id: UUID | None = None,
    ) -> UUID:
        """Record one entry (see audit.record_audit); return its id."""
        entry = AuditEntry(company_id, action, entity, entity_id, {} if details is None else details,
                           user_id, franchise_id)
        return await self.record_entry(entry)

    async def record_entry(self, entry: AuditEntry) -> UUID:
        with translate_errors():
            async with self.conn.cursor() as cur:
                await cur.execute(queries.RECORD, queries.record_params(entry))
                row = await cur.fetchone()
        assert row is not None
        entry_id: UUID = row[0]
        return entry_id

    async def record_many(self, entries: Iterable[AuditEntry]) -> list[UUID]:
        """Record a batch in one round trip, all or nothing; return the ids in the entries' order."""
        with translate_errors():
            async with self.conn.cursor() as cur:
                await cur.execute(queries.RECORD_MANY, queries.record_many_params(entries))
                return [row[0] for row in await cur.fetchall()]

    async def get(self, entry_id: UUID) -> AuditRecord | None:
        """The stored entry with this id, or None (needs audit_reader)."""
        with translate_errors():
            async with self.conn.cursor(row_factory=class_row(AuditRecord)) as cur:
                await cur.execute(queries.GET, (entry_id,))
                return await cur.fetchone()
