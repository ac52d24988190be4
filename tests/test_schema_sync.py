"""sql/ (the schema as it is now) and migrations/ (its history) build the same schema."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from audit_py import migrate
from audit_py.schema import sql_dir
from audit_py.server import ThrowawayServer

from .catalog import AUDIT_SCHEMA_QUERIES, snapshot
from .conftest import OWNER


def test_sql_files_and_migrations_build_the_same_schema(pg_server: ThrowawayServer,
                                                        empty_database: Callable[..., str]) -> None:
    from_sql, from_migrations = empty_database(), empty_database()
    with psycopg.connect(pg_server.conninfo_for(from_sql, user=OWNER)) as conn:
        for path in sorted(sql_dir().glob("*.sql")):
            conn.execute(path.read_text())  # type: ignore[call-overload]
    migrate(pg_server.conninfo_for(from_migrations, user=OWNER))

    with psycopg.connect(pg_server.conninfo_for(from_sql)) as a, \
            psycopg.connect(pg_server.conninfo_for(from_migrations)) as b:
        expected, actual = snapshot(a, AUDIT_SCHEMA_QUERIES), snapshot(b, AUDIT_SCHEMA_QUERIES)
    assert expected["relations"], "the sql/ files built nothing"
    for part in AUDIT_SCHEMA_QUERIES:
        assert actual[part] == expected[part], f"sql/ and migrations/ differ in {part}"
