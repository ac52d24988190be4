"""The SQL the Python layer sends: one source for the sync and async services."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import DataError, sql
from psycopg.abc import AdaptContext, Buffer
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.types.json import Jsonb, set_json_loads

from . import exactjson
from .errors import InvalidContext, InvalidEntry, InvalidQuery
from .exactjson import RawJson as RawJson  # where it has always been importable from
from .exactjson import exact_int
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

# A log sharded by company on Citus (sql/citus/, README: Scaling out). A batch goes one company at a
# time, each call sent to the company's node; the context travels as SET LOCAL, which Citus passes on
# to the workers with citus.propagate_set_commands = local (set_config() it does not).
SHARDED = ("SELECT EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
           " WHERE n.nspname = 'audit' AND p.proname = 'record_audit_many_of')")
RECORD_MANY_OF = (
    "SELECT audit.record_audit_many_of(company_id => %b, actions => %b::text[], entities => %b::text[],"
    " entity_ids => %b::uuid[], details => %b::jsonb[], user_ids => %b::uuid[], franchise_ids => %b::uuid[])"
)

RECORD_COLUMNS = "id, company_id, franchise_id, user_id, action, entity, entity_id, details, created_at, context"
GET = f"SELECT {RECORD_COLUMNS} FROM audit.audit_logs WHERE id = %s"
# One row more than the page: whether it comes says whether a next page exists.
SEARCH = (
    f"SELECT {RECORD_COLUMNS} FROM audit.search(company_id => %(company_id)s, franchise_id => %(franchise_id)s,"
    " user_id => %(user_id)s, action => %(action)s, entity => %(entity)s, since => %(since)s, until => %(until)s,"
    " page_size => %(page_size)s, after => %(after)s)"
)
# One statement, so one snapshot: paging through audit.history() would mix what
# different moments held when writers commit between pages. Row-level security
# confines a tenant reader here as in audit.history().
HISTORY = (
    f"SELECT {RECORD_COLUMNS} FROM audit.audit_logs WHERE entity = %(entity)s AND entity_id = %(entity_id)s"
    " ORDER BY created_at, id"
)
MAX_PAGE_SIZE = 10_000


# The transaction-local settings of sql/0036_context.sql, in this order throughout.
READ_CONTEXT = (
    "SELECT current_setting('audit.user_id', true), current_setting('audit.company_id', true),"
    f" current_setting('audit.franchise_id', true), current_setting('audit.context', true), ({SHARDED})"
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


def _plain(value: Any, parameter: str) -> Any:
    """value with every Mapping as a dict, refused where JSON or PostgreSQL would change or lose it."""
    if isinstance(value, str):
        return _text(value, parameter)
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                # json.dumps would write 1 as "1": {1: .., "1": ..} would lose an entry, and a
                # reader would get a string back.
                raise InvalidEntry(f"{parameter}: key {key!r} is not text; JSON keys are text, and it would become"
                                   f" {str(key)!r}", parameter=parameter)
            plain[_text(key, parameter)] = _plain(item, parameter)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, parameter) for item in value]
    return value


def _json_text(value: Any, parameter: str, refused: type[InvalidEntry | InvalidContext]) -> str:
    """value as JSON text; what JSON or PostgreSQL cannot hold is refused here as `refused`, naming the
    parameter, as the database never sees it."""
    try:
        return json.dumps(_plain(value, parameter), default=_json_default, allow_nan=False)
    except InvalidEntry as error:
        if refused is InvalidEntry:
            raise
        raise refused(str(error), parameter=parameter) from error
    except RecursionError as error:
        raise refused(f"{parameter}: nested too deeply, or holds itself", parameter=parameter) from error
    except (TypeError, ValueError) as error:
        raise refused(f"{parameter}: {error}", parameter=parameter) from error


def details_param(details: Mapping[str, Any] | None) -> Jsonb:
    """details as jsonb, refused (InvalidEntry) where JSON or PostgreSQL would change or lose it."""
    return Jsonb(_json_text({} if details is None else details, "details", InvalidEntry), dumps=_already_json)


def _uuid(value: Any, parameter: str) -> UUID | None:
    """A UUID as given, or parsed from its text; None stays None (the context fills it, or the database refuses)."""
    if value is None or isinstance(value, UUID):
        return value
    try:
        if isinstance(value, str):
            return UUID(value)
    except ValueError:
        pass
    raise InvalidEntry(f"{parameter}: {value!r} is not a UUID", parameter=parameter)


def _text(value: Any, parameter: str) -> Any:
    """Text PostgreSQL stores as given: no NUL character, nothing UTF-8 cannot encode (a lone surrogate)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidEntry(f"{parameter}: text may not hold a NUL character (\\u0000): PostgreSQL cannot store it",
                               parameter=parameter)
        try:
            value.encode()
        except UnicodeEncodeError as error:
            raise InvalidEntry(f"{parameter}: text that UTF-8 cannot encode ({error.reason})",
                               parameter=parameter) from error
    return value


def record_params(entry: AuditEntry) -> tuple[Any, ...]:
    return (_uuid(entry.company_id, "company_id"), _text(entry.action, "action"), _text(entry.entity, "entity"),
            _uuid(entry.entity_id, "entity_id"), details_param(entry.details), _uuid(entry.user_id, "user_id"),
            _uuid(entry.franchise_id, "franchise_id"))


class ExactJsonb(Loader):
    """jsonb in the binary format (a version byte, then the JSON text) read exactly, as exact_json() reads
    it from text: one decoder made once, and none of json.loads()'s work per value to find the encoding."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        if data[:1] != b"\x01":
            raise DataError(f"unknown jsonb binary format: {data[0]}")
        # json.loads() would take these bytes as UTF-8 too: jsonb's text never starts with a byte order
        # mark nor holds a NUL, which is all json.detect_encoding() looks at.
        return exactjson.loads(bytes(data[1:]).decode("utf-8", "surrogatepass"))


def binary_records(context: AdaptContext) -> None:
    """Rows read in the binary format as models.read_record() takes them: uuids and timestamps made from
    the wire's bytes (no text to parse), details and context exact."""
    context.adapters.register_loader("jsonb", ExactJsonb)


def exact_json(context: Any) -> None:
    """JSON read on this cursor keeps every number exact: a fraction comes back a Decimal, never a float."""
    set_json_loads(_exact_loads, context)


def _exact_loads(data: str | bytes) -> Any:
    try:
        return json.loads(data, parse_float=Decimal, parse_int=exact_int)
    except RecursionError:
        return RawJson(data if isinstance(data, str) else bytes(data).decode())


def as_json_text(value: Any) -> str:
    """JSON text of what exact_json() read: a Decimal written as the number it is, not as a string.
    Iterative, so that no depth the database accepts makes it fail."""
    out: list[str] = []
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Written):
            out.append(item)
        elif isinstance(item, RawJson):
            out.append(str(item))
        elif isinstance(item, Decimal):
            out.append(str(item) if item.is_finite() else json.dumps(str(item)))
        elif isinstance(item, dict):
            parts: list[Any] = [_Written("{")]
            for n, (key, member) in enumerate(item.items()):
                parts += [_Written((", " if n else "") + json.dumps(str(key), ensure_ascii=False) + ": "), member]
            pending += reversed([*parts, _Written("}")])
        elif isinstance(item, list | tuple):
            parts = [_Written("[")]
            for n, member in enumerate(item):
                parts += [_Written(", "), member] if n else [member]
            pending += reversed([*parts, _Written("]")])
        else:
            out.append(json.dumps(item, ensure_ascii=False, default=str))
    return "".join(out)


class _Written(str):
    """Text as_json_text() has already written out."""


def record_many_params(entries: Iterable[AuditEntry]) -> tuple[list[Any], ...]:
    """The batch as one array per parameter of audit.record_audit()."""
    rows = [record_params(entry) for entry in entries]
    return tuple([row[n] for row in rows] for n in range(7))


def set_context_sharded(settings: tuple[str, ...]) -> sql.Composed:
    """SET_CONTEXT as SET LOCAL statements, for a sharded log: Citus replays them on the workers."""
    names = ("audit.user_id", "audit.company_id", "audit.franchise_id", "audit.context")
    return sql.SQL("; ").join([sql.SQL("SET LOCAL citus.propagate_set_commands = local"), *(
        sql.SQL("SET LOCAL {} = {}").format(sql.SQL(name), sql.Literal(value))
        for name, value in zip(names, settings, strict=True))])


def company_batches(entries: Iterable[AuditEntry]) -> tuple[int, list[tuple[list[int], tuple[Any, ...]]]]:
    """A batch for a sharded log: (how many entries, [(their positions, RECORD_MANY_OF's parameters)]),
    one call per company, in the order the companies first appear."""
    rows = [record_params(entry) for entry in entries]
    by_company: dict[UUID, list[int]] = {}
    for position, row in enumerate(rows):
        if row[0] is None:
            raise InvalidEntry(f"record_many: entry {position + 1} (counting from 1): company_id must not be"
                               " None: the log is sharded by company, and a batch goes to each company's node",
                               parameter="company_id")
        by_company.setdefault(row[0], []).append(position)
    return len(rows), [(positions, (company, *([rows[p][n] for p in positions] for n in (1, 2, 3, 4, 5, 6))))
                       for company, positions in by_company.items()]


def renumbered(error: InvalidEntry, positions: list[int]) -> InvalidEntry:
    """A refusal of one company's part of a batch, naming the entry by its place in the whole batch."""
    def whole(match: re.Match[str]) -> str:
        return f"entry {positions[int(match.group(1)) - 1] + 1} "
    message = re.sub(r"entry ([0-9]+) (?=\(counting from 1\))", whole, str(error), count=1)
    return InvalidEntry(message, error.sqlstate, error.parameter)


def context_settings(previous: tuple[str | None, ...], user_id: UUID | None, company_id: UUID | None,
                     franchise_id: UUID | None, extra: Mapping[str, Any]) -> tuple[str, ...]:
    """The settings for a nested context: what is given replaces, what is not stays; extra keys merge."""
    old_user, old_company, old_franchise, old_extra = (value or "" for value in previous)
    try:
        merged = {**(json.loads(old_extra) if old_extra else {}), **extra}
    except ValueError as error:
        raise InvalidContext(f"context: {error}", parameter="context") from error
    extra_text = _json_text(merged, "context", InvalidContext)
    return (str(user_id) if user_id else old_user, str(company_id) if company_id else old_company,
            str(franchise_id) if franchise_id else old_franchise, extra_text if merged else "")


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def encode_cursor(record: AuditRecord) -> str:
    """The opaque cursor of the position after this entry, the same text as audit.page_cursor()'s."""
    micros = (record.created_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{record.id}"


def _asked(value: Any, parameter: str, kind: str = "text") -> Any:
    """A reading call's argument as the database can take it, else InvalidQuery naming it."""
    try:
        return _uuid(value, parameter) if kind == "uuid" else _text(value, parameter)
    except InvalidEntry as error:
        raise InvalidQuery(str(error), parameter=parameter) from error


def search_params(company_id: UUID, franchise_id: UUID | None, user_id: UUID | None, action: str | None,
                  entity: str | None, since: datetime | None, until: datetime | None, limit: int,
                  after: str | None) -> dict[str, Any]:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQuery(f"limit must be between 1 and {MAX_PAGE_SIZE}", parameter="limit")
    return {"company_id": _asked(company_id, "company_id", "uuid"),
            "franchise_id": _asked(franchise_id, "franchise_id", "uuid"),
            "user_id": _asked(user_id, "user_id", "uuid"), "action": _asked(action, "action"),
            "entity": _asked(entity, "entity"), "since": since, "until": until, "page_size": limit + 1,
            "after": _asked(after, "after")}


def history_params(entity: str, entity_id: UUID) -> dict[str, Any]:
    return {"entity": _asked(entity, "entity"), "entity_id": _asked(entity_id, "entity_id", "uuid")}


def get_params(entry_id: UUID) -> tuple[Any]:
    return (_asked(entry_id, "entry_id", "uuid"),)


def page(rows: list[AuditRecord], limit: int) -> tuple[list[AuditRecord], str | None]:
    """The entries of a page fetched with one row more, and the next page's cursor if that row came."""
    entries = rows[:limit]
    return entries, encode_cursor(entries[-1]) if len(rows) > limit else None
