"""The log sharded by company on Citus: install on a coordinator (README: Scaling out).

Two steps, each on the coordinator:

1. `migrate_coordinator(conninfo)`: the ordinary migrations, as the installing login, with Citus's
   DDL propagation off for their connections. They build on the coordinator the same log as on a
   plain PostgreSQL; nothing reaches the workers yet (Citus would otherwise create each object on the
   workers as it is made, through connections as audit_owner, a role that may not log in).
2. `distribute(conninfo)`: `sql/citus/*.sql`, as a superuser, in one transaction: the schema
   changes distributing needs, the tables distributed by company_id and co-located, the
   configuration as reference tables, every function created on every worker, recording delegated to
   the company's worker.

`install(conninfo, superuser_conninfo)` does both. A plain PostgreSQL never runs either.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from yoyo.migrations import read_sql_migration

from .schema import migrate, sql_dir

NO_DDL_PROPAGATION = "-c citus.enable_ddl_propagation=off"


def distribute_paths() -> list[Path]:
    """sql/citus/*.sql, in the order they run."""
    return sorted((sql_dir() / "citus").glob("*.sql"))


def distribute_statements() -> list[str]:
    """The statements of those files, one by one: Citus loses track of a transaction's connections to
    the workers when several statements that reach them come in one query string."""
    statements: list[str] = []
    for path in distribute_paths():
        _, _, parsed = read_sql_migration(str(path))
        statements += [str(statement) for statement in parsed]
    return statements


def migrate_coordinator(conninfo: str, on_notice: Callable[[str], None] | None = None) -> list[str]:
    """Apply the migrations on a Citus coordinator, for this database only; return their ids."""
    options = conninfo_to_dict(conninfo).get("options") or ""
    return migrate(make_conninfo(conninfo, options=f"{options} {NO_DDL_PROPAGATION}".strip()), on_notice=on_notice)


def is_distributed(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Whether audit.audit_logs is a Citus distributed table here."""
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')").fetchone()
    if not row or not row[0]:
        return False
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition"
        " WHERE logicalrelid = 'audit.audit_logs'::pg_catalog.regclass)").fetchone()
    return bool(row and row[0])


def distribute(superuser_conninfo: str) -> bool:
    """Distribute the migrated log; False (nothing done) when it is distributed already."""
    with psycopg.connect(superuser_conninfo) as conn:
        if is_distributed(conn):
            return False
        with conn.transaction():
            for statement in distribute_statements():
                conn.execute(statement.encode())
    return True


def install(conninfo: str, superuser_conninfo: str | None = None,
            on_notice: Callable[[str], None] | None = None) -> tuple[list[str], bool]:
    """Migrate as the installing login, then distribute as a superuser (the same login by default)."""
    applied = migrate_coordinator(conninfo, on_notice=on_notice)
    return applied, distribute(superuser_conninfo or conninfo)


# Citus moves a shard through connections as the table's owner: it creates the shard on the new
# worker as that role, and the subscription that copies the writes made meanwhile (force_logical)
# applies them with that role's rights. Here the owner is audit_owner, a role no one may log in as.
# For the move only, audit_owner may log in (it has no password: where logins authenticate, only
# what lets Citus's own connections in lets it in, as for the superuser), then it is NOLOGIN again.
_MOVE = ("SELECT pg_catalog.citus_move_shard_placement(pg_catalog.get_shard_id_for_distribution_column("
         "'audit.audit_logs', %s), %s, %s, %s, %s, shard_transfer_mode => %s)")
_PLACEMENT = ("SELECT n.nodename, n.nodeport FROM pg_catalog.pg_dist_placement p"
              " JOIN pg_catalog.pg_dist_node n ON n.groupid = p.groupid"
              " WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column('audit.audit_logs', %s)")


def move_company(superuser_conninfo: str, company_id: object, target_host: str, target_port: int,
                 mode: str = "auto") -> tuple[str, int]:
    """Move the shard holding company_id (and its co-located shards, every company of that range) to
    another worker, with Citus's citus_move_shard_placement(); return where it was. Entries keep their
    stamps (id, time, txid and origin); the next audit.seal() on the new worker takes the entries left
    unsealed on the old one. mode: Citus's shard_transfer_mode (auto, force_logical, block_writes)."""
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        row = conn.execute(_PLACEMENT, (company_id,)).fetchone()
        assert row is not None, "the log is not distributed"
        source_host, source_port = str(row[0]), int(row[1])
        conn.execute("ALTER ROLE audit_owner LOGIN")
        try:
            conn.execute(_MOVE, (company_id, source_host, source_port, target_host, target_port, mode))
        finally:
            conn.execute("ALTER ROLE audit_owner NOLOGIN")
    return source_host, source_port
