"""The bundled schema: its migrations, its current SQL, and applying them with yoyo."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from psycopg.conninfo import conninfo_to_dict
from yoyo import get_backend, read_migrations
from yoyo.migrations import read_sql_migration

from .errors import translate_errors

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

    Every parameter travels as a query argument, which yoyo unquotes and hands
    to psycopg.connect() as is (it would not unquote a database name in the
    path): a host, socket path, password or name may hold any character.
    """
    params = {key: str(value) for key, value in conninfo_to_dict(conninfo).items() if value is not None}
    return f"postgresql+psycopg://?{urlencode(params)}"


@contextmanager
def _backend(conninfo: str) -> Iterator[Any]:
    """yoyo's backend, locked against a concurrent run, its connection closed after."""
    backend = get_backend(yoyo_url(conninfo))
    try:
        with backend.lock():
            yield backend
    finally:
        backend.connection.close()


class MigrationRefused(Exception):
    """Migrations this log cannot take, or give back, as they are: a log sharded on Citus (README:
    Scaling out)."""


def migrate(conninfo: str, on_notice: Callable[[str], None] | None = None) -> list[str]:
    """Apply the migrations not yet applied; return their ids, in order.

    on_notice receives what the migrations say as they run (a step skipped for want of a superuser,
    an index rebuilt), which yoyo itself does not show.
    """
    with _backend(conninfo) as backend:
        if on_notice is not None:
            _listen(backend, on_notice)
        pending = backend.to_apply(read_migrations(str(migrations_dir())))
        if pending and _distributed(backend):
            # Run on the coordinator, they would change its log and not the workers' (each has the
            # functions and the shards), and the distributing steps of sql/citus/ would not run again.
            raise MigrationRefused(
                f"this log is sharded on Citus, and {', '.join(m.id for m in pending)} cannot be applied to it:"
                " upgrading a distributed log is not supported yet (README: Scaling out); nothing was changed")
        backend.apply_migrations(pending)
    return [migration.id for migration in pending]


def _distributed(backend: Any) -> bool:
    """Whether audit.audit_logs is a Citus distributed table in the backend's database."""
    with backend.transaction(), backend.cursor() as cursor:
        cursor.execute("SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute("SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition"
                       " WHERE logicalrelid = pg_catalog.to_regclass('audit.audit_logs'))")
        return bool(cursor.fetchone()[0])


def _listen(backend: Any, on_notice: Callable[[str], None]) -> None:
    """Hand on_notice what the server says on every connection of the backend's: yoyo runs each
    migration on a copy of it (backend.copy(), a connection of its own)."""
    heard: weakref.WeakSet[Any] = weakref.WeakSet()

    class Listening(type(backend)):  # type: ignore[misc]
        def init_connection(self, connection: Any) -> None:
            super().init_connection(connection)
            if connection not in heard:
                heard.add(connection)
                connection.add_notice_handler(lambda notice: on_notice(notice.message_primary))

    backend.__class__ = Listening


def rollback(conninfo: str, *, destroy_entries: bool = False) -> list[str]:
    """Uninstall: roll back every applied migration, newest first, in one transaction; return their ids.

    A log that holds entries goes only with destroy_entries=True (export first); this argument alone
    decides, whatever audit.destroy_entries the connection carries. yoyo would commit each rollback
    on its own, so a step that fails (a lock not granted in time, an object of yours in the way)
    would leave the log half-removed; here it leaves everything as it was (UninstallRefused, or the
    database's error), yoyo's bookkeeping included.
    """
    with translate_errors(), _backend(conninfo) as backend:
        applied = backend.to_rollback(read_migrations(str(migrations_dir())))
        if applied and _distributed(backend):
            raise MigrationRefused("this log is sharded on Citus: uninstalling a distributed log is not supported"
                                   " (its shards and functions are on every worker, each behind the DDL guard);"
                                   " nothing was changed")
        with backend.transaction(), backend.cursor() as cursor:
            cursor.execute(f"SELECT pg_catalog.set_config('audit.destroy_entries', "
                           f"'{'on' if destroy_entries else 'off'}', true)")
            for migration in applied:
                for statement in _rollback_statements(migration.path):
                    cursor.execute(statement)
                backend.unmark_one(migration, log=False)
                backend.log_migration(migration, "rollback")
    return [migration.id for migration in applied]


def _rollback_statements(migration_path: str) -> list[str]:
    """The statements of a migration's .rollback.sql, split as yoyo splits them."""
    _, _, statements = read_sql_migration(str(Path(migration_path).with_suffix("")) + ".rollback.sql")
    return [str(statement) for statement in statements]
