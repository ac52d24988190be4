"""The log sharded by company on Citus: install on a coordinator (README: Scaling out).

Two steps, each on the coordinator:

1. `migrate_coordinator(conninfo)`: the ordinary migrations, as the installing login, with Citus's
   DDL propagation off for their connections. They build on the coordinator the same log as on a
   plain PostgreSQL; nothing reaches the workers yet (Citus would otherwise create each object on the
   workers as it is made, through connections as audit_owner, a role that may not log in).
2. `distribute(conninfo)`: `sql/citus/*.sql`, as a superuser, in one transaction: the schema
   changes distributing needs, the tables distributed by company_id and co-located, the
   configuration as reference tables, every function created on every worker, recording delegated to
   the company's worker; last, the DDL guard on every node (on a worker, with who may pass it there:
   sql/citus/workers/).

`install(conninfo, superuser_conninfo)` does both. A plain PostgreSQL never runs either. Later, as a
superuser: `add_worker()` makes a new node part of the log, `move_company()` and `rebalance()` move
shards, each through a loan of the tables' ownership (below).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from yoyo.migrations import read_sql_migration

from . import copied_code, surface
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


def worker_guard_paths() -> list[Path]:
    """What guards schema audit on each worker: sql/0095_hardening.sql as on the coordinator, then
    sql/citus/workers/*.sql (who passes it on a worker), in that order."""
    return [sql_dir() / "0095_hardening.sql", *sorted((sql_dir() / "citus" / "workers").glob("*.sql"))]


# Each file is one DO block, run on every worker by run_command_on_workers(), which connects as the
# calling superuser. Citus does not propagate event triggers; the guard's schema and functions are
# each worker's own (propagation off), not objects Citus would create, alter or drop elsewhere.
_ON_WORKERS = ("SELECT w.nodename, w.nodeport, w.success, w.result"
               " FROM pg_catalog.run_command_on_workers(%s) w ORDER BY w.nodename, w.nodeport")


class CitusError(Exception):
    """What a Citus operation of this module could not do, said for its user."""


class GuardError(CitusError):
    """The DDL guard could not be installed on a worker."""


def _guard_every_node(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """The DDL guard on the coordinator (sql/0095_hardening.sql, which a non-superuser installing
    login could not install) and on every worker (worker_guard_paths()): the distributing login is a
    superuser. Last, once the rest is done: the guard refuses DDL in schema audit."""
    conn.execute("SET LOCAL citus.enable_ddl_propagation = off")
    conn.execute((sql_dir() / "0095_hardening.sql").read_text().encode())
    for path in worker_guard_paths():
        command = "SET LOCAL citus.enable_ddl_propagation = off; " + path.read_text()
        for node, port, success, result in conn.execute(_ON_WORKERS, (command,)).fetchall():
            if not success:
                raise GuardError(f"{path.name} on worker {node}:{port}: {result}")


def distribute(superuser_conninfo: str) -> bool:
    """Distribute the migrated log; False (nothing done) when it is distributed already."""
    with psycopg.connect(superuser_conninfo) as conn:
        if is_distributed(conn):
            return False
        with conn.transaction():
            for statement in distribute_statements():
                conn.execute(statement.encode())
            _guard_every_node(conn)
    return True


def install(conninfo: str, superuser_conninfo: str | None = None,
            on_notice: Callable[[str], None] | None = None) -> tuple[list[str], bool]:
    """Migrate as the installing login, then distribute as a superuser (the same login by default)."""
    applied = migrate_coordinator(conninfo, on_notice=on_notice)
    return applied, distribute(superuser_conninfo or conninfo)


# Citus moves a shard through connections as the table's owner: it creates the shard on the new
# worker as that role, and the subscription that copies the writes made meanwhile (force_logical)
# applies them as a role of its own, made a member of the table's owner. The log's owner is
# audit_owner, a role no one may log in as; letting it log in for the move would let in anyone whom
# pg_hba trusts as it. So for the move the log's two tables belong to the superuser that moves them,
# a login Citus's connections use already and whose rights are whole anyway, and the superuser is
# granted USAGE on schema audit, the one right the subscription's role (a member of it, not a
# superuser) needs beside ownership: applying an INSERT fires none of the log's triggers. Then both
# are as before. Ownership moves the grants with it (their grantor follows the owner), so the
# surface after is the one before.
_MOVE = ("SELECT pg_catalog.citus_move_shard_placement(pg_catalog.get_shard_id_for_distribution_column("
         "'audit.audit_logs', %s::pg_catalog.uuid), %s, %s, %s, %s, shard_transfer_mode => %s)")
_PLACEMENT = ("SELECT n.nodename, n.nodeport FROM pg_catalog.pg_dist_placement p"
              " JOIN pg_catalog.pg_dist_node n ON n.groupid = p.groupid"
              " WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column("
              "'audit.audit_logs', %s::pg_catalog.uuid)")
_LOG_TABLES = ("audit_logs", "blocks")


def _require_superuser(conn: psycopg.Connection[tuple[object, ...]], error: Exception) -> None:
    row = conn.execute("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user").fetchone()
    if not (row and row[0]):
        raise error


class MoveError(CitusError):
    """The company's shard cannot be moved (the log is not distributed, or the login is no superuser)."""


def _lend_tables(conn: psycopg.Connection[tuple[object, ...]], tables: tuple[str, ...], *, to_mover: bool,
                 refusal: Callable[[psycopg.Connection[tuple[object, ...]]], str | None] | None = None) -> None:
    """Tables of schema audit to the superuser of conn for a move or a copy (to_mover), or back to
    audit_owner. `refusal`, asked once the tables are locked (their owner changed, not committed yet),
    says why not to lend them after all: a table co-located meanwhile, by a transaction that held the
    log's table until then, is seen."""
    owner = sql.SQL("CURRENT_USER") if to_mover else sql.Identifier("audit_owner")
    usage = "GRANT USAGE ON SCHEMA audit TO CURRENT_USER" if to_mover else \
        "REVOKE USAGE ON SCHEMA audit FROM CURRENT_USER"
    with conn.transaction():
        # The DDL guard (where a superuser installed it) lets this one transaction change the tables.
        conn.execute("SELECT pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true)")
        for table in tables:
            conn.execute(sql.SQL("ALTER TABLE audit.{} OWNER TO {}").format(sql.Identifier(table), owner))
        why = refusal(conn) if refusal is not None else None
        if why:
            raise MoveError(why)
        conn.execute(usage)


@contextlib.contextmanager
def _lent_tables(superuser_conninfo: str, conn: psycopg.Connection[tuple[object, ...]], tables: tuple[str, ...],
                 refusal: Callable[[psycopg.Connection[tuple[object, ...]]], str | None] | None = None
                 ) -> Iterator[None]:
    """The tables lent to conn's superuser for the block's Citus operation, then given back."""
    _lend_tables(conn, tables, to_mover=True, refusal=refusal)
    try:
        yield
    finally:
        _give_back(superuser_conninfo, tables)


def _give_back(superuser_conninfo: str, tables: tuple[str, ...], attempts: int = 20) -> None:
    """The tables back to audit_owner, on a connection of its own (the operation's may be the one that
    failed). A reader's transaction can hold one table and wait for the other, and so end the change
    as a deadlock, or hold it past the lock timeout: tried again, rather than left lent."""
    for attempt in range(attempts):
        try:
            with psycopg.connect(superuser_conninfo, autocommit=True) as restoring:
                restoring.execute("SET lock_timeout = '5s'")
                _lend_tables(restoring, tables, to_mover=False)
            return
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def move_company(superuser_conninfo: str, company_id: object, target_host: str, target_port: int,
                 mode: str = "block_writes", trust: Iterable[str] = ()) -> tuple[str, int]:
    """Move the shard holding company_id (and its co-located shards, every company of that range) to
    another worker, with Citus's citus_move_shard_placement(); return where it was. Entries keep their
    stamps (id, time, txid and origin); the next audit.seal() on the new worker takes the entries left
    unsealed on the old one. mode: Citus's shard_transfer_mode. block_writes (the default) makes writes
    to the range wait while it copies; force_logical (or auto) lets them go on, through a subscription
    whose role Citus makes, able to log in without a password, and a member of the tables' owner: for
    the move, the superuser (README: Shard moves). Refused when the tables it copies would run, as the
    superuser, code of a role neither a superuser, nor the log's, nor named in `trust` (copied_code)."""
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        _require_superuser(conn, MoveError("moving a company's shard needs a superuser login"))
        row = conn.execute(_PLACEMENT, (str(company_id),)).fetchone()
        if row is None:
            raise MoveError("the log is not distributed: run audit-py citus-install first")
        source_host, source_port = str(row[0]), int(row[1])
        trusted = list(trust)
        with _lent_tables(superuser_conninfo, conn, _LOG_TABLES, lambda locked: copied_code.refusal(
                locked, copied_code.CO_LOCATED_SQL, "moving a company's shard", trusted)):
            conn.execute(_MOVE, (str(company_id), source_host, source_port, target_host, target_port, mode))
    return source_host, source_port


_REFERENCE_TABLES = ("strict_mode", "tenant_logins")
_MEMBERSHIPS_ON_WORKERS = ("SELECT w.nodename, w.nodeport, w.success, w.result"
                           " FROM pg_catalog.run_command_on_workers(%s) w")


def _check_memberships(conn: psycopg.Connection[tuple[object, ...]], host: str, port: int) -> None:
    """Refuse a node whose own memberships in the log's roles are not the coordinator's: Citus grants
    the coordinator's there, and leaves the node's own (a node used before, or made ready by hand)."""
    command = ("SELECT COALESCE(pg_catalog.json_agg(m.membership), '[]')"
               f" FROM ({surface.MEMBERSHIPS_SQL}) m(membership)")
    coordinator = surface.memberships(conn)
    for node, node_port, success, result in conn.execute(_MEMBERSHIPS_ON_WORKERS, (command,)).fetchall():
        if (node, node_port) != (host, port):
            continue
        if not success:
            raise AddWorkerError(f"could not read the memberships of the log's roles on {host}:{port}: {result}")
        problems = surface.judge_memberships(coordinator, set(json.loads(str(result))))
        if problems:
            raise AddWorkerError(
                f"on {host}:{port}, {'; '.join(problems)}: make that node's memberships of the log's roles the"
                " coordinator's (as a superuser there, with citus.enable_ddl_propagation = off), then run"
                " citus-add-worker again")


class AddWorkerError(CitusError):
    """The worker cannot be made part of the log (the log is not distributed, the login is no superuser,
    or the node's own memberships of the log's roles are not the coordinator's)."""


def add_worker(superuser_conninfo: str, host: str, port: int, trust: Iterable[str] = ()) -> bool:
    """Make a worker part of the sharded log; True when this call added it to the cluster, False when
    it was a node already (then what follows is done again, which changes nothing on the others).

    The worker needs `CREATE EXTENSION citus` in the database first, as for citus_add_node(). Citus
    then creates there the roles, schema audit, its functions and the tables' shells; this checks that
    no login belongs there to one of the log's roles as it does not on the coordinator, copies the
    configuration's reference tables to it (as a move does, through connections as their owner: for
    the copy, the superuser), takes back PUBLIC's EXECUTE on the functions (Citus gives it to each
    function it creates), and installs the DDL guard there (every worker's is installed again, in
    place). It holds no company until one is moved to it (move_company(), or Citus's rebalancer)."""
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        _require_superuser(conn, AddWorkerError("adding a worker needs a superuser login"))
        if not is_distributed(conn):
            raise AddWorkerError("the log is not distributed: run audit-py citus-install first")
        why = copied_code.refusal(conn, copied_code.REFERENCE_SQL, "adding a worker", trust, (host, port))
        if why:
            raise AddWorkerError(why)
        row = conn.execute("SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_dist_node"
                           " WHERE nodename = %s AND nodeport = %s)", (host, port)).fetchone()
        added = bool(row and row[0])
        if added:
            conn.execute("SELECT pg_catalog.citus_add_node(%s, %s)", (host, port))
        _check_memberships(conn, host, port)
        with _lent_tables(superuser_conninfo, conn, _REFERENCE_TABLES):
            conn.execute("SELECT pg_catalog.replicate_reference_tables('block_writes')")
        with conn.transaction():
            conn.execute("SELECT pg_catalog.set_config('audit.allow_ddl', pg_catalog.pg_current_xact_id()::text, true)")
            conn.execute("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC")
            _guard_every_node(conn)
    return added


_SHARD_PLACES = ("SELECT s.shardid, p.groupid FROM pg_catalog.pg_dist_shard s"
                 " JOIN pg_catalog.pg_dist_placement p USING (shardid)"
                 " WHERE s.logicalrelid = 'audit.audit_logs'::pg_catalog.regclass")


def rebalance(superuser_conninfo: str, mode: str = "block_writes", trust: Iterable[str] = ()) -> int:
    """Spread the log's shards evenly over the workers (after add_worker(), say), with Citus's
    rebalance_table_shards() for the log's co-location group: every table co-located with the log (a
    tracked business table) moves with it. Return how many of the log's shards moved. As a move
    (move_company()), through the same loan of the log's tables to the superuser; mode likewise."""
    with psycopg.connect(superuser_conninfo, autocommit=True) as conn:
        _require_superuser(conn, MoveError("rebalancing the log's shards needs a superuser login"))
        if not is_distributed(conn):
            raise MoveError("the log is not distributed: run audit-py citus-install first")
        before: dict[object, object] = dict(conn.execute(_SHARD_PLACES).fetchall())
        trusted = list(trust)
        with _lent_tables(superuser_conninfo, conn, _LOG_TABLES, lambda locked: copied_code.refusal(
                locked, copied_code.CO_LOCATED_SQL, "rebalancing the log's shards", trusted)):
            conn.execute("SELECT pg_catalog.rebalance_table_shards('audit.audit_logs',"
                         " shard_transfer_mode => %s::citus.shard_transfer_mode)", (mode,))
        after: dict[object, object] = dict(conn.execute(_SHARD_PLACES).fetchall())
    return len([shard for shard, group in after.items() if before.get(shard) != group])
