"""AuditService and AsyncAuditService: thin twins over the SQL in queries.py.

Both borrow the caller's connection. Recording never commits: an entry commits
or rolls back with the caller's transaction (in autocommit mode, at once).
context() is a transaction block of its own, as psycopg's transaction() is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, AsyncCursor, Connection, Cursor
from psycopg.pq import TransactionStatus
from psycopg.rows import RowMaker

from . import queries
from .errors import InvalidEntry, translate_errors
from .models import AuditEntry, AuditRecord, Page, read_record


def _records(cursor: Any) -> RowMaker[AuditRecord]:
    """The row factory of reading cursors: rows of queries.RECORD_COLUMNS, read by queries.binary_records()."""
    return read_record


class AuditService:
    """Records audit entries on a psycopg connection, in its current transaction."""

    def __init__(self, conn: Connection[Any]) -> None:
        self.conn = conn
        self._sharded: bool | None = None  # whether the log is sharded by company (Citus): asked once

    def _reading(self) -> Cursor[AuditRecord]:
        cursor = self.conn.cursor(row_factory=_records, binary=True)
        queries.binary_records(cursor)
        return cursor

    def record(
        self,
        company_id: UUID | None,
        action: str,
        entity: str,
        entity_id: UUID,
        details: Mapping[str, Any] | None = None,
        *,
        user_id: UUID | None = None,
        franchise_id: UUID | None = None,
    ) -> UUID:
        """Record one entry (see audit.record_audit); return its id. None values come from the context."""
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
        """Record a batch in one round trip (one per company on a sharded log), all or nothing; return the
        ids in the entries' order."""
        with translate_errors(), self.conn.cursor() as cur:
            if self._sharded is None:
                self._sharded = bool(cur.execute(queries.SHARDED).fetchone()[0])  # type: ignore[index]
            if not self._sharded:
                cur.execute(queries.RECORD_MANY, queries.record_many_params(entries))
                return [row[0] for row in cur.fetchall()]
            count, batches = queries.company_batches(entries)
            ids: list[UUID] = [None] * count  # type: ignore[list-item]
            with self.conn.transaction():
                for positions, params in batches:
                    try:
                        with translate_errors():
                            written = cur.execute(queries.RECORD_MANY_OF, params).fetchone()[0]  # type: ignore[index]
                    except InvalidEntry as error:
                        raise queries.renumbered(error, positions) from error
                    for position, entry_id in zip(positions, written, strict=True):
                        ids[position] = entry_id
            return ids

    def get(self, entry_id: UUID) -> AuditRecord | None:
        """The stored entry with this id, or None (needs audit_reader)."""
        with translate_errors(), self._reading() as cur:
            cur.execute(queries.GET, queries.get_params(entry_id))
            return cur.fetchone()

    def history(self, entity: str, entity_id: UUID) -> list[AuditRecord]:
        """Every entry of one entity, oldest first, as one snapshot held them (needs a reader role)."""
        with translate_errors(), self._reading() as cur:
            return cur.execute(queries.HISTORY, queries.history_params(entity, entity_id)).fetchall()

    def search(self, company_id: UUID, franchise_id: UUID | None = None, user_id: UUID | None = None,
               action: str | None = None, entity: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = 100, after: str | None = None) -> Page:
        """A page of a company's entries, newest first; pass page.next as `after` for the next one."""
        params = queries.search_params(company_id, franchise_id, user_id, action, entity, since, until, limit, after)
        with translate_errors(), self._reading() as cur:
            return Page(*queries.page(cur.execute(queries.SEARCH, params).fetchall(), limit))

    @contextmanager
    def context(self, user_id: UUID | None = None, company_id: UUID | None = None,
                franchise_id: UUID | None = None, **extra: Any) -> Iterator[None]:
        """Run the block in a transaction (a savepoint inside one) whose entries carry this context.

        Entries written in the block, by record() or by the triggers of tracked tables, take
        user_id, company_id and franchise_id from here where they have none of their own, and
        store the extra keys. Nested contexts add to the outer one; none outlives its block.
        """
        nested = self.conn.info.transaction_status != TransactionStatus.IDLE
        with self.conn.transaction():
            with translate_errors():
                row = self.conn.execute(queries.READ_CONTEXT).fetchone()
                assert row is not None
                previous, self._sharded = row[:4], bool(row[4])
                self._set_context(queries.context_settings(previous, user_id, company_id, franchise_id, extra))
            yield
            if nested:  # the savepoint's release would keep this context for the rest of the transaction
                self._set_context(tuple(value or "" for value in previous))

    def _set_context(self, settings: tuple[str, ...]) -> None:
        if self._sharded:
            self.conn.execute(queries.set_context_sharded(settings))
        else:
            self.conn.execute(queries.SET_CONTEXT, settings)


class AsyncAuditService:
    """The async twin of AuditService, over an AsyncConnection."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self.conn = conn
        self._sharded: bool | None = None  # whether the log is sharded by company (Citus): asked once

    def _reading(self) -> AsyncCursor[AuditRecord]:
        cursor = self.conn.cursor(row_factory=_records, binary=True)
        queries.binary_records(cursor)
        return cursor

    async def record(
        self,
        company_id: UUID | None,
        action: str,
        entity: str,
        entity_id: UUID,
        details: Mapping[str, Any] | None = None,
        *,
        user_id: UUID | None = None,
        franchise_id: UUID | None = None,
    ) -> UUID:
        """Record one entry (see audit.record_audit); return its id. None values come from the context."""
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
        """See AuditService.record_many."""
        with translate_errors():
            async with self.conn.cursor() as cur:
                if self._sharded is None:
                    self._sharded = bool((await (await cur.execute(queries.SHARDED)).fetchone())[0])  # type: ignore[index]
                if not self._sharded:
                    await cur.execute(queries.RECORD_MANY, queries.record_many_params(entries))
                    return [row[0] for row in await cur.fetchall()]
                count, batches = queries.company_batches(entries)
                ids: list[UUID] = [None] * count  # type: ignore[list-item]
                async with self.conn.transaction():
                    for positions, params in batches:
                        try:
                            with translate_errors():
                                row = await (await cur.execute(queries.RECORD_MANY_OF, params)).fetchone()
                        except InvalidEntry as error:
                            raise queries.renumbered(error, positions) from error
                        assert row is not None
                        for position, entry_id in zip(positions, row[0], strict=True):
                            ids[position] = entry_id
                return ids

    async def get(self, entry_id: UUID) -> AuditRecord | None:
        """The stored entry with this id, or None (needs audit_reader)."""
        with translate_errors():
            async with self._reading() as cur:
                await cur.execute(queries.GET, queries.get_params(entry_id))
                return await cur.fetchone()

    async def history(self, entity: str, entity_id: UUID) -> list[AuditRecord]:
        """Every entry of one entity, oldest first, as one snapshot held them (needs a reader role)."""
        with translate_errors():
            async with self._reading() as cur:
                await cur.execute(queries.HISTORY, queries.history_params(entity, entity_id))
                return await cur.fetchall()

    async def search(self, company_id: UUID, franchise_id: UUID | None = None, user_id: UUID | None = None,
                     action: str | None = None, entity: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, limit: int = 100, after: str | None = None) -> Page:
        """A page of a company's entries, newest first; pass page.next as `after` for the next one."""
        params = queries.search_params(company_id, franchise_id, user_id, action, entity, since, until, limit, after)
        with translate_errors():
            async with self._reading() as cur:
                await cur.execute(queries.SEARCH, params)
                return Page(*queries.page(await cur.fetchall(), limit))

    @asynccontextmanager
    async def context(self, user_id: UUID | None = None, company_id: UUID | None = None,
                      franchise_id: UUID | None = None, **extra: Any) -> AsyncIterator[None]:
        """Run the block in a transaction (a savepoint inside one) whose entries carry this context.

        See AuditService.context.
        """
        nested = self.conn.info.transaction_status != TransactionStatus.IDLE
        async with self.conn.transaction():
            with translate_errors():
                row = await (await self.conn.execute(queries.READ_CONTEXT)).fetchone()
                assert row is not None
                previous, self._sharded = row[:4], bool(row[4])
                await self._set_context(queries.context_settings(previous, user_id, company_id, franchise_id, extra))
            yield
            if nested:  # the savepoint's release would keep this context for the rest of the transaction
                await self._set_context(tuple(value or "" for value in previous))

    async def _set_context(self, settings: tuple[str, ...]) -> None:
        if self._sharded:
            await self.conn.execute(queries.set_context_sharded(settings))
        else:
            await self.conn.execute(queries.SET_CONTEXT, settings)
