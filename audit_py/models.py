"""Entries to write and rows read back, as frozen dataclasses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class AuditEntry:
    """One action to record: the parameters of audit.record_audit().

    company_id, user_id and franchise_id left None come from the transaction's context.
    """

    company_id: UUID | None
    action: str
    entity: str
    entity_id: UUID
    details: Mapping[str, Any] = field(default_factory=dict)
    user_id: UUID | None = None
    franchise_id: UUID | None = None


@dataclass(frozen=True)
class AuditRecord:
    """One row of audit.audit_logs, as stored. Numbers in details and context are exact (a fraction is
    a Decimal). details or context nested deeper than Python can parse (its recursion limit, about a
    thousand levels, which PostgreSQL exceeds) come as queries.RawJson: the JSON text, a str."""

    id: UUID
    company_id: UUID
    franchise_id: UUID | None
    user_id: UUID | None
    action: str
    entity: str
    entity_id: UUID
    details: dict[str, Any]
    created_at: datetime
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of entries, and the cursor of the next one (None after the last page)."""

    entries: list[AuditRecord]
    next: str | None


_new_record = object.__new__


def read_record(row: Sequence[Any]) -> AuditRecord:
    """An AuditRecord from a row of queries.RECORD_COLUMNS: what the constructor builds, without its ten
    frozen setattr calls (a page of 101 rows pays them 1,010 times)."""
    record = _new_record(AuditRecord)
    record.__dict__.update(id=row[0], company_id=row[1], franchise_id=row[2], user_id=row[3], action=row[4],
                           entity=row[5], entity_id=row[6], details=row[7], created_at=row[8], context=row[9])
    return record
