"""audit_py: an immutable audit log in PostgreSQL, with a thin psycopg 3 wrapper."""

from .errors import (
    AuditError,
    ImmutableViolation,
    InvalidContext,
    InvalidEntry,
    InvalidQuery,
    InvalidTracking,
    ProtectedSchema,
    SealingRefused,
    UninstallRefused,
    UntrackableChange,
)
from .models import AuditEntry, AuditRecord, Page
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
    "InvalidQuery",
    "InvalidTracking",
    "Page",
    "ProtectedSchema",
    "SealingRefused",
    "UninstallRefused",
    "UntrackableChange",
    "migrate",
    "rollback",
]
