"""The SQL the Python layer sends: one source for the sync and async services."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from .errors import InvalidContext, InvalidEntry
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
SELECT id, company_id, franchise_id, user_id, action, entity, entity_id, details, created_at, context
FROM audit.audit_logs
WHERE id = %s
"""


# The transaction-local settings of sql/0036_context.sql, in this order throughout.
READ_CONTEXT = (
    "SELECT current_setting('audit.user_id', true), current_setting('audit.company_id', true),"
    " current_setting('audit.franchise_id', true), current_setting('audit.context', true)"
)
SET_CONTEXT = (
    "SELECT set_config('audit.user_id', %s, true), set_config('audit.company_id', %s, true),"
    " set_config('audit.franchise_id', %s, true), set_config('audit.context', %s, true)"
)


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


def context_settings(previous: tuple[str | None, ...], user_id: UUID | None, company_id: UUID | None,
                     franchise_id: UUID | None, extra: Mapping[str, Any]) -> tuple[str, ...]:
    """The settings for a nested context: what is given replaces, what is not stays; extra keys merge."""
    old_user, old_company, old_franchise, old_extra = (value or "" for value in previous)
    try:
        merged = {**(json.loads(old_extra) if old_extra else {}), **extra}
        extra_text = json.dumps(merged, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidContext(f"context: {error}", parameter="context") from error
    return (str(user_id) if user_id else old_user, str(company_id) if company_id else old_company,
            str(franchise_id) if franchise_id else old_franchise, extra_text if merged else "")
