"""The database's refusals, as exceptions of our own.

psycopg turns SQLSTATEs it does not know (our AU001 to AU008) into a generic
error, so we map them by code. The psycopg error stays as __cause__.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

IMMUTABLE_VIOLATION = "AU001"
INVALID_ENTRY = "AU002"
PROTECTED_SCHEMA = "AU003"
INVALID_TRACKING = "AU004"
UNTRACKABLE_CHANGE = "AU005"
INVALID_CONTEXT = "AU006"
INVALID_QUERY = "AU007"
SEALING_REFUSED = "AU008"
UNINSTALL_REFUSED = "AU009"
CHECK_VIOLATION = "23514"


class AuditError(Exception):
    """A refusal of the audit log; `sqlstate` is the database's code (None if refused before reaching it)."""

    def __init__(self, message: str, sqlstate: str | None = None, parameter: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.parameter = parameter


class ImmutableViolation(AuditError):
    """An attempt to change or remove audit entries (SQLSTATE AU001)."""


class InvalidEntry(AuditError):
    """An entry the log refuses; `parameter` names the offending one (SQLSTATE AU002)."""


class ProtectedSchema(AuditError):
    """DDL on schema audit, refused by the event triggers of 0004.hardening (SQLSTATE AU003)."""


class InvalidTracking(AuditError):
    """A table that cannot be tracked as asked, or no longer can (SQLSTATE AU004)."""


class UntrackableChange(AuditError):
    """A change to a tracked table that cannot be recorded row by row: TRUNCATE (SQLSTATE AU005)."""


class InvalidContext(AuditError):
    """A malformed context setting, or no user under strict mode; `parameter` names it (SQLSTATE AU006)."""


class InvalidQuery(AuditError):
    """A search or history the log cannot answer as asked; `parameter` names the argument (SQLSTATE AU007)."""


class SealingRefused(AuditError):
    """audit.seal() on a database that subscribes to the log: its publisher seals (SQLSTATE AU008)."""


class UninstallRefused(AuditError):
    """A rollback of the migrations refused before it changed anything: the log holds entries and
    audit.destroy_entries was not set, or a later step could not finish as this login (SQLSTATE AU009)."""


_BY_SQLSTATE: dict[str, type[AuditError]] = {
    IMMUTABLE_VIOLATION: ImmutableViolation,
    INVALID_ENTRY: InvalidEntry,
    PROTECTED_SCHEMA: ProtectedSchema,
    INVALID_TRACKING: InvalidTracking,
    UNTRACKABLE_CHANGE: UntrackableChange,
    INVALID_CONTEXT: InvalidContext,
    INVALID_QUERY: InvalidQuery,
    SEALING_REFUSED: SealingRefused,
    UNINSTALL_REFUSED: UninstallRefused,
}

# A direct INSERT by the log's owner meets the table's CHECK constraints instead of
# audit.record_audit()'s checks, and every entry meets the size ones; each guards one column.
_CHECKED_COLUMNS = {
    "audit_logs_action_not_blank": "action",
    "audit_logs_entity_not_blank": "entity",
    "audit_logs_details_is_object": "details",
    "audit_logs_context_is_object": "context",
    "audit_logs_details_printable": "details",
    "audit_logs_context_printable": "context",
}


def _as_audit_error(error: psycopg.Error) -> AuditError | None:
    message = error.diag.message_primary or str(error)
    mapped = _BY_SQLSTATE.get(error.sqlstate or "")
    if mapped is not None:
        return mapped(message, error.sqlstate, error.diag.column_name or _named_parameter(error.sqlstate, message))
    column = _CHECKED_COLUMNS.get(error.diag.constraint_name or "")
    if error.sqlstate == CHECK_VIOLATION and error.diag.schema_name == "audit" and column:
        return InvalidEntry(message, error.sqlstate, column)
    return None


def _named_parameter(sqlstate: str | None, message: str) -> str | None:
    """The parameter an invalid entry's message starts with ("record_audit: action must not be blank"),
    for a refusal that lost its COLUMN field on the way: Citus passes on a worker's message, hint and
    detail, not the column it named."""
    if sqlstate != INVALID_ENTRY:
        return None
    match = re.search(r": ([a-z_]+) must ", message)
    return match.group(1) if match else None


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise the database's audit refusals as AuditError subclasses; let other errors through.

    Also through SQLAlchemy, which wraps the driver's error in its own (DBAPIError) and keeps it as `.orig`.
    """
    try:
        yield
    except Exception as error:
        driver_error = error if isinstance(error, psycopg.Error) else getattr(error, "orig", None)
        audit_error = _as_audit_error(driver_error) if isinstance(driver_error, psycopg.Error) else None
        if audit_error is None:
            raise
        raise audit_error from error
