"""The SQL the Python layer sends: one source for the sync and async services."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from .errors import InvalidEntry
from .models import AuditEntry

# Binary parameters (%b): uuids and arrays travel as bytes, not text to parse.
RECORD = (
    "SELECT audit.record_audit(company_id => %b, action => %b, entity => %b, entity_id => %b,"
    " details => %b, user_id => %b, franchise_id => %b)"
)

RECORD_MANY = (
    "SELECT audit.record_audit_many(company_ids => %b::uuid[], actions => %b::text[], entities => %b::text[],"
    " entity_ids => %b::uuid[], details => %b::jsonb[], user_ids => %b::uuid[], franchise_ids => %b::uuid[])"
)

GET = """
SELECT id, company_id, franchise_id, user_id, action, entity, entity_id, details, created_at
FROM audit.audit_logs
WHERE id = %s
"""


def _json_default(value: Any) -> Any:
    """Values an ERP puts in details that json cannot write by itself."""
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _already_json(text: str) -> str:
    return text


def details_param(details: Mapping[str, Any] | None) -> Jsonb:
    """details as jsonb; what JSON cannot hold is refused here, as the database never sees it."""
    try:
        text = json.dumps({} if details is None else details, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidEntry(f"details: {error}", parameter="details") from error
    return Jsonb(text, dumps=_already_json)


def record_params(entry: AuditEntry) -> tuple[Any, ...]:
    return (entry.company_id, entry.action, entry.entity, entry.entity_id,
            details_param(entry.details), entry.user_id, entry.franchise_id)


def record_many_params(entries: Iterable[AuditEntry]) -> tuple[list[Any], ...]:
    """The batch as one array per parameter of audit.record_audit()."""
    batch = list(entries)
    return ([e.company_id for e in batch], [e.action for e in batch], [e.entity for e in batch],
            [e.entity_id for e in batch], [details_param(e.details) for e in batch],
            [e.user_id for e in batch], [e.franchise_id for e in batch])
