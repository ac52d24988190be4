"""Apply (or roll back) the bundled yoyo migrations."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    """The wheel carries migrations/ and sql/ inside the package; a checkout has them beside it."""
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


def migrations_dir() -> Path:
    return _bundled("migrations")


def sql_dir() -> Path:
    return _bundled("sql")


def yoyo_url(conninfo: str) -> str:
    """A libpq conninfo (key=value or URI) as yoyo's postgresql+psycopg:// URL.

    Every parameter but the database name travels as a query argument, which
    yoyo hands to psycopg.connect() as is: no host, socket path or password
    needs URL escaping rules of its own.
    """
    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items() if value is not None}
    dbname = params.pop("dbname", "")
    return f"postgresql+psycopg:///{quote(dbname, safe='')}?{urlencode(params)}"


def migrate(conninfo: str) -> list[str]:
    """Apply the migrations not yet applied; return their ids, in order."""
    backend = get_backend(yoyo_url(conninfo))
    migrations = read_migrations(str(migrations_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return [migration.id for migration in pending]


def rollback(conninfo: str) -> list[str]:
    """Roll back every applied migration, newest first; return their ids."""
    backend = get_backend(yoyo_url(conninfo))
    migrations = read_migrations(str(migrations_dir()))
    with backend.lock():
        applied = backend.to_rollback(migrations)
        backend.rollback_migrations(applied)
    return [migration.id for migration in applied]
