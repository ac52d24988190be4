"""audit_py: an immutable audit log in PostgreSQL, with a thin psycopg 3 wrapper."""

from .errors import (
    AuditError,
    ImmutableViolation,
    InvalidContext,
    InvalidEntry,
    InvalidTracking,
    ProtectedSchema,
    UntrackableChange,
)
from .models import AuditEntry, AuditRecord
from .schema import migrate, rollback
from .service import AsyncAuditService, AuditService

__all__ = [
    "AsyncAuditService",
    "AuditEntry",
    "AuditError",
    "AuditRecord",
    "AuditService",
    "ImmutableViolation",
    "InvalidContext",
    "InvalidEntry",
    "InvalidTracking",
    "ProtectedSchema",
    "UntrackableChange",
    "migrate",
    "rollback",
]
