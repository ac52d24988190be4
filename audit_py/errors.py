"""The database's refusals, as exceptions of our own.

psycopg turns SQLSTATEs it does not know (our AU001, AU002) into a generic
error, so we map them by code. The psycopg error stays as __cause__.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

IMMUTABLE_VIOLATION = "AU001"
INVALID_ENTRY = "AU002"
CHECK_VIOLATION = "23514"


class AuditError(Exception):
    """A refusal of the audit log; `sqlstate` is the database's code."""

    def __init__(self, message: str, sqlstate: str | None = None, parameter: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.parameter = parameter


class ImmutableViolation(AuditError):
    """An attempt to change or remove audit entries (SQLSTATE AU001)."""


class InvalidEntry(AuditError):
    """An entry the log refuses; `parameter` names the offending one (SQLSTATE AU002)."""


_BY_SQLSTATE: dict[str, type[AuditError]] = {
    IMMUTABLE_VIOLATION: ImmutableViolation,
    INVALID_ENTRY: InvalidEntry,
    CHECK_VIOLATION: InvalidEntry,
}


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise the database's audit refusals as AuditError subclasses."""
    try:
        yield
    except psycopg.Error as error:
        mapped = _BY_SQLSTATE.get(error.sqlstate or "")
        if mapped is None:
            raise
        raise mapped(error.diag.message_primary or str(error), error.sqlstate, error.diag.column_name) from error
