"""The SQL the Python layer sends: one source for the sync and async services."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from .errors import InvalidContext, InvalidEntry, InvalidQuery
from .models import AuditEntry, AuditRecord

# Binary parameters (%b): uuids and arrays travel as bytes, not text to parse.
RECORD = (
    "SELECT audit.record_audit(company_id => %b, action => %b, entity => %b, entity_id => %b,"
    " details => %b, user_id => %b, franchise_id => %b)"
)

RECORD_MANY = (
    "SELECT audit.record_audit_many(company_ids => %b::uuid[], actions => %b::text[], entities => %b::text[],"
    " entity_ids => %b::uuid[], details => %b::jsonb[], user_ids => %b::uuid[], franchise_ids => %b::uuid[])"
)

RECORD_COLUMNS = "id, company_id, franchise_id, user_id, action, entity, entity_id, details, created_at, context"
GET = f"SELECT {RECORD_COLUMNS} FROM audit.audit_logs WHERE id = %s"
# One row more than the page: whether it comes says whether a next page exists.
SEARCH = (
    f"SELECT {RECORD_COLUMNS} FROM audit.search(company_id => %(company_id)s, franchise_id => %(franchise_id)s,"
    " user_id => %(user_id)s, action => %(action)s, entity => %(entity)s, since => %(since)s, until => %(until)s,"
    " page_size => %(page_size)s, after_created_at => %(after_created_at)s, after_id => %(after_id)s)"
)
HISTORY = (
    f"SELECT {RECORD_COLUMNS} FROM audit.history(entity => %(entity)s, entity_id => %(entity_id)s,"
    " page_size => %(page_size)s, after_created_at => %(after_created_at)s, after_id => %(after_id)s)"
)
HISTORY_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000


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


def encode_cursor(record: AuditRecord) -> str:
    """An opaque cursor: the page's last (created_at, id), which the next page starts after."""
    text = f"{record.created_at.isoformat()}|{record.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime | None, UUID | None]:
    if cursor is None:
        return None, None
    try:
        created_at, entry_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        return datetime.fromisoformat(created_at), UUID(entry_id)
    except ValueError as error:
        raise InvalidQuery(f"after: {cursor!r} is not a cursor from a previous page", parameter="after") from error


def search_params(company_id: UUID, franchise_id: UUID | None, user_id: UUID | None, action: str | None,
                  entity: str | None, since: datetime | None, until: datetime | None, limit: int,
                  after: str | None) -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE_SIZE}", parameter="limit")
    after_created_at, after_id = decode_cursor(after)
    return {"company_id": company_id, "franchise_id": franchise_id, "user_id": user_id, "action": action,
            "entity": entity, "since": since, "until": until, "page_size": limit + 1,
            "after_created_at": after_created_at, "after_id": after_id}


def history_params(entity: str, entity_id: UUID, after: AuditRecord | None) -> dict[str, Any]:
    return {"entity": entity, "entity_id": entity_id, "page_size": HISTORY_PAGE_SIZE,
            "after_created_at": after.created_at if after else None, "after_id": after.id if after else None}


def page(rows: list[AuditRecord], limit: int) -> tuple[list[AuditRecord], str | None]:
    """The entries of a page fetched with one row more, and the next page's cursor if that row came."""
    entries = rows[:limit]
    return entries, encode_cursor(entries[-1]) if len(rows) > limit else None
