"""Sealing, verifying and taking digests of the companies' hash chains.

verify() is the independent verifier: it reads the rows and the catalogs with its own queries and
recomputes every hash in Python (audit_py.canonical), calling no function of the database's schema
audit: each could have been replaced. It compares the whole protection surface with a fresh
install's (audit_py.surface), and counts every row once. On a Citus coordinator it also connects
to every worker, to read each worker's own surface and to check the transaction ids of the entries
that worker stamped against its counter. audit.verify() in SQL makes the same checks on its own (on
Citus, on the company's worker only).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import canonical, surface, wire
from .errors import translate_errors

VERIFIED, TAMPERED, UNVERIFIABLE = "verified", "tampered", "unverifiable"
# A Citus worker the verifier could not reach: what it holds went unchecked, which an alert must not
# take for a clean log (exit 1, as tampering), and yet it is not tampering found.
UNREACHED = "unreached"

@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one company's chain (or, company_id None, the log's protections)."""

    company_id: UUID | None
    status: str
    report: str
    block_no: int | None = None
    entry_id: UUID | None = None

    @property
    def ok(self) -> bool:
        return self.status == VERIFIED

    @property
    def line(self) -> str:
        """The verdict as `audit-py verify` prints it."""
        label = {VERIFIED: "OK", TAMPERED: "TAMPERED", UNVERIFIABLE: "UNVERIFIED",
                 UNREACHED: "UNREACHED"}[self.status]
        return f"{label:<11}{self.report}"


@dataclass(frozen=True)
class _Block:
    block_no: int
    xid_from: int
    xid_to: int
    entry_ids: list[bytes]
    entry_hashes: list[bytes]
    merkle_root: bytes
    prev_hash: bytes
    block_hash: bytes
    sealed_at: int  # microseconds since 1970
    format: int = canonical.FORMAT
    origin: int | None = None  # the cluster whose transactions [xid_from, xid_to) counts


@dataclass
class Run:
    """What one verification found: a verdict on the protections, one per company, and the heads of
    the chains it verified (what a digest records)."""

    verdicts: list[Verdict] = field(default_factory=list)
    heads: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    chains: dict[UUID, dict[int, bytes]] = field(default_factory=dict)
    guard_installed: bool = False

    @property
    def exit_code(self) -> int:
        """0 everything verified, 1 tampering found (or a Citus worker out of reach), 2 something could not
        be verified."""
        statuses = {verdict.status for verdict in self.verdicts}
        if TAMPERED in statuses or UNREACHED in statuses:
            return 1
        return 2 if UNVERIFIABLE in statuses or not self.verdicts else 0


_BLOCKS_SQL = """
SELECT b.block_no::pg_catalog.int8, b.xid_from::pg_catalog.int8, b.xid_to::pg_catalog.int8, b.entry_ids,
       b.entry_hashes, b.merkle_root, b.prev_hash, b.block_hash, b.sealed_at, b.format::pg_catalog.int8,
       b.origin::pg_catalog.int8
FROM audit.blocks b WHERE b.company_id OPERATOR(pg_catalog.=) %s ORDER BY b.block_no
"""
# Every row of the company, sealed or not, by origin and in transaction order: the entries of a block
# arrive together. Numbers are read as the canonical form has them (i64), whatever type a tampered
# column has.
_ENTRIES_SQL = """
SELECT a.id, a.company_id, a.franchise_id, a.user_id, a.action, a.entity, a.entity_id,
       a.details, a.created_at, a.txid::pg_catalog.int8, a.context, a.origin::pg_catalog.int8
FROM audit.audit_logs a WHERE a.company_id OPERATOR(pg_catalog.=) %s
ORDER BY a.origin NULLS FIRST, COALESCE(a.txid, 0)
"""
# For each origin, the newest horizon any seal reached: every entry of that origin below it is sealed.
_HORIZON_SQL = "SELECT b.origin::pg_catalog.int8, pg_catalog.max(b.xid_to) FROM audit.blocks b GROUP BY 1"
# This cluster, and the verifying transaction's own id if it has one (its entries are its own).
_HERE_SQL = """
SELECT s.system_identifier, pg_catalog.pg_current_xact_id_if_assigned()::pg_catalog.text::pg_catalog.int8
FROM pg_catalog.pg_control_system() s
"""
# The first transaction id not given out yet, read after the rows: no row read before can be that recent.
_UNASSIGNED_SQL = ("SELECT pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())"
                   "::pg_catalog.text::pg_catalog.int8")
# TABLESAMPLE SYSTEM (100) reads every page of the table: no planner setting can send it through an index.
_TABLE_COUNT_SQL = """
SELECT a.company_id, pg_catalog.count(*) FROM audit.audit_logs a TABLESAMPLE SYSTEM (100)
WHERE %(only)s::pg_catalog.uuid[] IS NULL OR a.company_id OPERATOR(pg_catalog.=) ANY (%(only)s::pg_catalog.uuid[])
GROUP BY a.company_id
"""
_COMPANIES_SQL = """
SELECT b.company_id FROM audit.blocks b UNION SELECT a.company_id FROM audit.audit_logs a ORDER BY 1
"""
_LOGIN_SQL = """
SELECT r.rolname, r.rolsuper OR r.rolbypassrls,
       EXISTS (SELECT FROM pg_catalog.pg_roles x WHERE x.rolname OPERATOR(pg_catalog.=) 'audit_reader'
                                                  AND pg_catalog.pg_has_role(r.oid, x.oid, 'USAGE'))
FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user
"""
# Whatever the login, its role or its database set: names resolve in pg_catalog and print unquoted
# unless they must be, text arrives in UTF-8, string literals read as written, row-level security
# applies as the login's policies say (never an error instead).
_PIN_SETTINGS = ("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true),"
                 " pg_catalog.set_config('client_encoding', 'UTF8', true),"
                 " pg_catalog.set_config('row_security', 'on', true),"
                 " pg_catalog.set_config('quote_all_identifiers', 'off', true),"
                 " pg_catalog.set_config('standard_conforming_strings', 'on', true)")
_ORPHAN = ("entry {} lies in a sealed range but no block holds it: the company's last block was removed,"
           " or the entry inserted afterwards")


@contextmanager
def _session(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A read-only snapshot of the whole log, with pinned settings; a savepoint inside a caller's transaction."""
    idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
    with conn.transaction():
        if idle:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(_PIN_SETTINGS)
        yield


def companies(conn: psycopg.Connection[Any]) -> list[UUID]:
    """Every company with a chain or an entry."""
    with _session(conn):
        return [row[0] for row in conn.execute(_COMPANIES_SQL).fetchall()]


def verify(conn: psycopg.Connection[Any], company_id: UUID) -> Verdict:
    """Verify the protections and one company's chain against its entries, reading no other company's."""
    run = verify_all(conn, [company_id])
    worst = next((v for v in run.verdicts if v.status == TAMPERED), None) \
        or next((v for v in run.verdicts if v.status == UNREACHED), None) \
        or next((v for v in run.verdicts if v.status == UNVERIFIABLE), None)
    if worst is None:
        company = run.verdicts[-1]
        return Verdict(company_id, VERIFIED, company.report.rstrip(".") + "; protections in place.")
    # The log's own verdict (protections, access) is given as the company's.
    return worst if worst.company_id is not None else Verdict(company_id, worst.status, worst.report)


def verify_all(conn: psycopg.Connection[Any], only: list[UUID] | None = None) -> Run:
    """Verify the protections, then each company (every one with a chain or entries, unless `only`).

    All in one read-only snapshot, so that every count agrees with every other (rows keep arriving
    on a replica). A company that cannot be read gets its own verdict; the others are verified still.
    """
    run = Run()
    try:
        with _session(conn), ExitStack() as workers:
            _verify_all(conn, only, run, workers)
    except psycopg.errors.InsufficientPrivilege as error:
        run.verdicts.append(Verdict(None, UNVERIFIABLE, f"This login may not read the log: {_first_line(error)}."))
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as error:
        run.verdicts.append(Verdict(None, TAMPERED, f"The log's tables could not be read: {_first_line(error)}."))
    except psycopg.Error as error:
        # A worker out of the verifier's reach is most often out of the coordinator's too: the queries
        # that read every shard then fail. Said as what it is, beside the worker's own verdict.
        if not any(verdict.status == UNREACHED for verdict in run.verdicts):
            raise
        run.verdicts.append(Verdict(None, UNREACHED, "The log could not be read through the coordinator while a"
                                                     f" worker is out of reach: {_first_line(error)}."))
    return run


def _verify_all(conn: psycopg.Connection[Any], only: list[UUID] | None, run: Run, stack: ExitStack) -> None:
    refusal = _refusal(conn)
    if refusal:
        run.verdicts.append(Verdict(None, UNVERIFIABLE, refusal))
        return
    citus = surface.is_citus(conn)
    # citus-install runs as a superuser and installs the DDL guard on every node: on Citus its absence
    # is tampering, not a non-superuser's install.
    judgement = surface.judge(surface.read(conn, citus), citus, require_guard=citus)
    copies: dict[str, set[str]] = {}
    if citus:
        problems, copies = _coordinator_copies(conn)
        judgement.problems.extend(problems)
    run.guard_installed = judgement.guard_installed
    run.verdicts.append(_protections_verdict(judgement, surface.takers(conn)))
    workers = _check_workers(conn, run, stack, copies) if citus else []
    company_ids = only or [row[0] for row in conn.execute(_COMPANIES_SQL).fetchall()]
    here, own = conn.execute(_HERE_SQL).fetchone()  # type: ignore[misc]
    # Read before any chain: a seal committing meanwhile (at READ COMMITTED) only adds blocks above these.
    horizons = dict(conn.execute(_HORIZON_SQL).fetchall())
    counted: dict[UUID, int] = {}
    newest: dict[UUID, dict[int, tuple[int, bytes]]] = {}
    for company_id in company_ids:
        scan = _Scan(here, own)
        try:
            with conn.transaction():  # a savepoint: a company that fails leaves the others to verify
                verdict, chain, counted[company_id] = _verify_company(conn, company_id, horizons, scan)
            newest[company_id] = scan.by_origin
        except psycopg.errors.InsufficientPrivilege as error:
            verdict, chain = Verdict(company_id, UNVERIFIABLE, f"Company {company_id} could not be read:"
                                                               f" {_first_line(error)}."), []
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as error:
            verdict, chain = Verdict(company_id, TAMPERED, f"Company {company_id} could not be read, the log's"
                                                           f" tables having changed: {_first_line(error)}."), []
        except (psycopg.DataError, struct.error, TypeError, ValueError) as error:
            # Rows of types the schema does not have (the protections' verdict says which column).
            verdict, chain = Verdict(company_id, UNVERIFIABLE, f"Company {company_id} could not be verified: its"
                                                               f" rows are not of the log's types ({error})."), []
        run.verdicts.append(verdict)
        if verdict.ok:
            run.chains[company_id] = {block.block_no: block.block_hash for block in chain}
            if chain:
                run.heads[company_id] = {"block_no": chain[-1].block_no, "block_hash": chain[-1].block_hash.hex(),
                                         "xid_to": chain[-1].xid_to}
    _check_unindexed(conn, run, counted, only)
    _check_given_out(run, workers, newest)


@dataclass(frozen=True)
class _Worker:
    """A Citus worker the verifier reached: its connection (autocommit) and its system identifier."""

    name: str  # host:port, as the coordinator's pg_dist_node has it
    conn: psycopg.Connection[Any]
    origin: int


# The workers, from the coordinator's own metadata (its group 0 is the coordinator itself).
_WORKERS_SQL = """
SELECT n.nodename, n.nodeport, n.groupid FROM pg_catalog.pg_dist_node n
WHERE n.groupid OPERATOR(pg_catalog.<>) 0 AND n.noderole::pg_catalog.text OPERATOR(pg_catalog.=) 'primary'
ORDER BY n.groupid, n.nodeid
"""
_IDENTIFIER_SQL = "SELECT s.system_identifier FROM pg_catalog.pg_control_system() s"


def _worker_conninfo(conn: psycopg.Connection[Any], host: str, port: int) -> str:
    """The coordinator's connection parameters, credentials included, with the worker's host and port."""
    params = conninfo_to_dict(conn.info.dsn)
    params.pop("hostaddr", None)  # the coordinator's address, which would override the worker's host
    params.update(host=host, port=str(port))
    if conn.info.password:
        params["password"] = conn.info.password
    return make_conninfo("", **params)


def _coordinator_copies(conn: psycopg.Connection[Any]) -> tuple[list[str], dict[str, set[str]]]:
    """The shards of schema audit placed on the coordinator itself (group 0), its copies of the reference
    tables, which its own queries read (a tenant reader's policy reads audit.tenant_logins), hidden from
    the catalog queries above as every shard is: what differs in them from a fresh install, and their
    rows in words (which each worker's copies must have too)."""
    placed = dict(conn.execute(surface.PLACED_SQL, (0,)).fetchall())
    conn.execute(surface.SHOW_SHARDS_SQL)
    try:
        _, shards = surface.read_worker(conn, placed, set())
        return surface.judge_shards(shards, placed), surface.configuration(conn, placed)
    finally:
        conn.execute("SELECT pg_catalog.set_config('citus.override_table_visibility', 'on', true)")


def _check_workers(conn: psycopg.Connection[Any], run: Run, stack: ExitStack,
                   copies: dict[str, set[str]]) -> list[_Worker]:
    """On a Citus coordinator: each worker's protection surface, read there (shards, functions,
    triggers, grants), who may act as the log's roles and its copies of the reference tables (against
    the coordinator's `copies`), one verdict a worker; the workers reached, for the check of transaction
    ids."""
    reached = []
    members = surface.memberships(conn)
    for host, port, group in conn.execute(_WORKERS_SQL).fetchall():
        name = f"{host}:{port}"
        placed = dict(conn.execute(surface.PLACED_SQL, (group,)).fetchall())
        left_over = {int(row[0].rsplit("_", 1)[1]) for row in conn.execute(surface.LEFT_OVER_SQL, (group,))
                     if row[0].rsplit("_", 1)[-1].isdigit()}
        try:
            worker = stack.enter_context(psycopg.connect(_worker_conninfo(conn, host, port), autocommit=True,
                                                         connect_timeout=10))
        except psycopg.OperationalError as error:
            run.verdicts.append(Verdict(None, UNREACHED, f"Worker {name} could not be reached ({_first_line(error)}):"
                                                         " its shards' protections, and the transaction ids of the"
                                                         " entries written there, were not verified."))
            continue
        with worker.transaction():
            worker.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            worker.execute(_PIN_SETTINGS)
            worker.execute(surface.SHOW_SHARDS_SQL)
            problems = surface.judge_worker(*surface.read_worker(worker, placed, left_over), placed)
            problems += surface.judge_memberships(members, surface.memberships(worker))
            problems += surface.judge_configuration(copies, surface.configuration(worker, placed))
            origin = int(worker.execute(_IDENTIFIER_SQL).fetchone()[0])  # type: ignore[index]
        reached.append(_Worker(name, worker, origin))
        if problems:
            run.verdicts.append(Verdict(None, TAMPERED, f"The protections of the log on worker {name} were tampered"
                                                        f" with: {'; '.join(problems)}."))
        else:
            run.verdicts.append(Verdict(None, VERIFIED, f"Protections in place on worker {name}: its {len(placed)}"
                                                        " shards, functions and grants are as a fresh install's, and"
                                                        " who belongs to the log's roles is as on the coordinator."))
    return reached


def _check_given_out(run: Run, workers: list[_Worker], newest: dict[UUID, dict[int, tuple[int, bytes]]]) -> None:
    """Each entry written on a worker claims a transaction id that worker has given out: below the
    first id not given out yet, read there after every row was (no row read before can be that recent)."""
    for worker in workers:
        unassigned = int(worker.conn.execute(_UNASSIGNED_SQL).fetchone()[0])  # type: ignore[index]
        for company_id, origins in newest.items():
            txid, raw_id = origins.get(worker.origin, (-1, b""))
            if txid < unassigned or next(v for v in run.verdicts if v.company_id == company_id).status != VERIFIED:
                continue
            entry = UUID(bytes=raw_id)
            verdict = Verdict(company_id, TAMPERED, f"Company {company_id}: entry {entry} claims a transaction id"
                                                    f" worker {worker.name} has not given out yet: it was forged.",
                              None, entry)
            run.verdicts = [v for v in run.verdicts if v.company_id != company_id] + [verdict]
            run.chains.pop(company_id, None)
            run.heads.pop(company_id, None)


def _check_unindexed(conn: psycopg.Connection[Any], run: Run, counted: dict[UUID, int],
                     only: list[UUID] | None) -> None:
    """The rows each company was read with (through the indexes) against a scan of the table itself.

    A row kept out of the indexes (a superuser can mark an index not ready, insert, and mark it ready
    again) is missed by every index scan, the verifier's included. In one snapshot, the counts agree.
    """
    rows = conn.execute(_TABLE_COUNT_SQL, {"only": only}).fetchall()
    judged = {verdict.company_id: verdict.status for verdict in run.verdicts}
    for company_id, count in rows:
        if count == counted.get(company_id, 0) or judged.get(company_id, VERIFIED) != VERIFIED:
            continue
        verdict = Verdict(company_id, TAMPERED, f"Company {company_id}: the table holds {count} of its rows, its"
                                                f" indexes show {counted.get(company_id, 0)}: rows were kept out of"
                                                " the indexes.")
        run.verdicts = [v for v in run.verdicts if v.company_id != company_id] + [verdict]
        run.chains.pop(company_id, None)
        run.heads.pop(company_id, None)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else type(error).__name__


def _refusal(conn: psycopg.Connection[Any]) -> str | None:
    """Why this login cannot verify, if it cannot: no log, another version, or rows it would not see."""
    if not surface.has_schema(conn):
        return "There is no audit log in this database (no schema audit): nothing to verify. Migrate it first."
    found, known = surface.schema_version(conn), surface.version()
    if found != known:
        what = "older than 11" if found is None else str(found)
        return (f"The log's schema is version {what}; this audit-py verifies version {known}."
                " Migrate the database (audit-py migrate), or use the audit-py of its version.")
    row = conn.execute(_LOGIN_SQL).fetchone()
    assert row is not None, "the current role exists"
    login, sees_everything, reader = row
    if not (sees_everything or reader):
        return (f"Login {login} is not an audit_reader: it may not see every entry (a tenant reader sees its"
                " own company's only), and a verdict on part of a chain proves nothing. Verify as an"
                " audit_reader login.")
    return None


def _protections_verdict(judgement: surface.Judgement, takers: list[str]) -> Verdict:
    if judgement.problems:
        return Verdict(None, TAMPERED, "The protections of the log were tampered with: "
                                       + "; ".join(judgement.problems) + ".")
    guard = ("the DDL guard is installed" if judgement.guard_installed
             else "no DDL guard (it needs a superuser to install): changes are detected, not refused")
    # Such a login can rewrite the log as a superuser can: only a digest kept elsewhere then tells.
    who = ", ".join(["superusers"] + takers)
    return Verdict(None, VERIFIED, f"Protections in place: schema audit is as a fresh install of version"
                                   f" {surface.version()} has it; {guard}. Can take the log's owning roles: {who}.")


def _verify_company(conn: psycopg.Connection[Any], company_id: UUID, horizons: dict[int | None, int],
                    scan: _Scan) -> tuple[Verdict, list[_Block], int]:
    """The company's verdict, its verified chain, and how many of its rows it read."""
    with wire.raw(conn.cursor(binary=True)) as cur:
        chain = [_Block(*row) for row in cur.execute(_BLOCKS_SQL, (company_id,)).fetchall()]
    sound, broken = _check_links(company_id, chain)
    verdict = _check_entries(conn, company_id, sound, horizons, scan)
    if verdict is not None:
        return verdict, [], 0
    if scan.newest is not None and scan.newest[0] >= conn.execute(_UNASSIGNED_SQL).fetchone()[0]:  # type: ignore[index]
        entry = UUID(bytes=scan.newest[1])
        return Verdict(company_id, TAMPERED, f"Company {company_id}: entry {entry} claims a transaction id not"
                                             " given out yet: it was forged.", None, entry), [], 0
    if broken is not None:
        return broken, [], 0
    if scan.orphan is not None:
        entry = UUID(bytes=scan.orphan)
        return Verdict(company_id, TAMPERED, f"Company {company_id}: {_ORPHAN.format(entry)}.", None, entry), [], 0
    entries = sum(len(block.entry_ids) for block in sound)
    if not sound and not scan.unsealed:
        # Not an OK: a company removed whole, blocks and all, would look the same (a digest tells).
        return Verdict(company_id, UNVERIFIABLE, f"Company {company_id} has no entries and no blocks: nothing to"
                                                 " verify."), [], 0
    verified = Verdict(company_id, VERIFIED, f"Company {company_id}: {len(sound)} blocks and {entries} sealed"
                                             f" entries verified; {scan.unsealed} entries not sealed yet.")
    return verified, sound, scan.rows


@dataclass
class _Scan:
    """What a pass over a company's rows found besides a verdict."""

    here: int  # this cluster's system identifier: the origin of the entries written here
    own: int | None  # the verifying transaction's id, if it has one
    rows: int = 0
    unsealed: int = 0
    orphan: bytes | None = None  # the first unsealed entry below the newest seal's horizon
    newest: tuple[int, bytes] | None = None  # (txid, id) of the last row written here, by others
    # (txid, id) of the last row of each origin: on Citus, each worker's are checked against that worker
    by_origin: dict[int, tuple[int, bytes]] = field(default_factory=dict)


def _check_links(company_id: UUID, chain: list[_Block]) -> tuple[list[_Block], Verdict | None]:
    """The chain's sound prefix, and what breaks it after that, if anything."""
    prev_hash: bytes = canonical.ZERO_HASH
    ends: dict[int | None, int] = {}  # for each origin, where its ranges stand so far
    for number, block in enumerate(chain, start=1):
        why = None
        if block.block_no != number:
            why = f"block {number} is missing: the chain goes from block {number - 1} to block {block.block_no}"
        elif (block.format not in (canonical.FORMAT, canonical.BLOCK_WITH_ORIGIN)
              or (block.format == canonical.FORMAT and (block.origin is not None
                                                        or (number > 1 and chain[number - 2].format != block.format)))):
            # Form 1's hash does not cover the form number; audit.seal() wrote 1, and writes 2 since 0012.
            why = (f"block {number} claims canonical form {block.format}, which is not the form it was sealed in:"
                   " its format was changed")
        elif (None in (block.xid_from, block.xid_to, block.merkle_root, block.prev_hash, block.block_hash)
              or not wire.is_finite(block.sealed_at) or block.entry_ids is None
              or block.entry_hashes is None or len(block.entry_ids) != len(block.entry_hashes)
              or None in block.entry_ids or None in block.entry_hashes):
            why = (f"block {number} holds values audit.seal() never writes (a NULL, an infinite time, unpaired"
                   " hashes): it was forged or altered")
        elif block.prev_hash != prev_hash or block.xid_from != ends.get(block.origin, 0):
            why = f"block {number} does not follow block {number - 1}: the chain was cut, reordered or rewritten here"
        elif (canonical.merkle_root(block.entry_hashes) != block.merkle_root
              or canonical.block_hash(company_id, block.block_no, block.xid_from, block.xid_to, len(block.entry_ids),
                                      block.merkle_root, block.prev_hash, block.sealed_at, block.format,
                                      block.origin) != block.block_hash):
            why = f"block {number} was rewritten: its contents no longer match its hash"
        if why:
            return chain[:number - 1], Verdict(company_id, TAMPERED, f"Company {company_id}: {why}.", number)
        prev_hash, ends[block.origin] = block.block_hash, block.xid_to
    return chain, None


def _check_entries(conn: psycopg.Connection[Any], company_id: UUID, chain: list[_Block],
                   horizons: dict[int | None, int], scan: _Scan) -> Verdict | None:
    """Every row of the company once, by origin and in transaction order; the first problem, if any."""
    by_origin: dict[int | None, list[_Block]] = {}
    for chained in chain:
        by_origin.setdefault(chained.origin, []).append(chained)
    seen: set[bytes] = set()
    origin: int | None = None
    started = False
    blocks: Iterator[_Block] = iter(())
    block: _Block | None = None
    found: dict[bytes, bytes] = {}
    sha256, entry_bytes = hashlib.sha256, canonical.raw_entry_bytes
    with wire.raw(conn.cursor(name="audit_py_verify", binary=True)) as cur:
        cur.itersize = 10_000
        for row in cur.execute(_ENTRIES_SQL, (company_id,)):
            entry_id = row[0]
            if (None in (entry_id, row[4], row[5], row[6], row[7], row[10]) or not wire.is_finite(row[8])
                    or (row[9] is not None and row[9] < 0)):
                entry = UUID(bytes=entry_id) if entry_id else None
                return Verdict(company_id, TAMPERED, f"Company {company_id}: entry {entry or 'without an id'} holds"
                                                     " a value no recorded entry can hold (a NULL the schema"
                                                     " forbids, a time out of range, a negative transaction id): it"
                                                     " was forged or altered.", None, entry)
            if entry_id in seen:
                entry = UUID(bytes=entry_id)
                return Verdict(company_id, TAMPERED, f"Company {company_id}: two rows share the id {entry}, which"
                                                     " belongs to one entry only: a row was inserted beside it.",
                               None, entry)
            seen.add(entry_id)
            if not started or row[11] != origin:
                verdict = _close_origin(company_id, block, blocks, found)
                if verdict is not None:
                    return verdict
                origin, found, started = row[11], {}, True
                blocks = iter(by_origin.pop(origin, []))
                block = next(blocks, None)
            txid = row[9] or 0
            while block is not None and txid >= block.xid_to:
                verdict = _compare(company_id, block, found)
                if verdict is not None:
                    return verdict
                block, found = next(blocks, None), {}
            if origin == scan.here and txid != scan.own:
                scan.newest = (txid, entry_id)
            elif origin is not None:
                scan.by_origin[origin] = (txid, entry_id)
            scan.rows += 1
            if block is not None:
                found[entry_id] = sha256(entry_bytes(*row)).digest()
            else:
                scan.unsealed += 1
                if scan.orphan is None and txid < horizons.get(origin, 0):
                    scan.orphan = entry_id
    verdict = _close_origin(company_id, block, blocks, found)
    if verdict is not None:
        return verdict
    for rest in by_origin.values():  # origins with blocks and no entry left at all
        verdict = _close_origin(company_id, rest[0], iter(rest[1:]), {})
        if verdict is not None:
            return verdict
    return None


def _close_origin(company_id: UUID, block: _Block | None, blocks: Iterator[_Block],
                  found: dict[bytes, bytes]) -> Verdict | None:
    """The blocks of an origin the rows have moved past: each must hold exactly what was found for it."""
    while block is not None:
        verdict = _compare(company_id, block, found)
        if verdict is not None:
            return verdict
        block, found = next(blocks, None), {}
    return None


def _compare(company_id: UUID, block: _Block, found: dict[bytes, bytes]) -> Verdict | None:
    sealed = dict(zip(block.entry_ids, block.entry_hashes, strict=True))
    if found == sealed and len(sealed) == len(block.entry_ids):
        return None
    where = f"Block {block.block_no} of company {company_id}"
    for raw_id in sorted(set(sealed) | set(found)):
        entry_id = UUID(bytes=raw_id)
        if raw_id not in found:
            return Verdict(company_id, TAMPERED, f"{where}: entry {entry_id} was sealed in this block and is"
                                                 " missing; it was deleted.", block.block_no, entry_id)
        if raw_id not in sealed:
            return Verdict(company_id, TAMPERED, f"{where}: entry {entry_id} was not sealed in this block; it was"
                                                 " inserted afterwards.", block.block_no, entry_id)
        if found[raw_id] != sealed[raw_id]:
            return Verdict(company_id, TAMPERED, f"{where}: entry {entry_id} was changed after it was sealed.",
                           block.block_no, entry_id)
    return None


def seal(conn: psycopg.Connection[Any]) -> list[tuple[UUID, int, int]]:
    """Run audit.seal() in its own transaction; return (company_id, block_no, entry_count) per block made.

    SealingRefused on a logical subscriber of the log."""
    with translate_errors(), conn.transaction():
        return [(row[0], row[1], row[2]) for row in conn.execute("SELECT * FROM audit.seal()").fetchall()]


def check_digest(run: Run, digest: dict[str, Any], only: list[UUID] | None = None) -> list[Verdict]:
    """Each company's verified chain must still hold the block the digest recorded, and a guard the
    digest saw installed must still be."""
    results = []
    if digest.get("guard") and not run.guard_installed:
        results.append(Verdict(None, TAMPERED, f"The digest of {digest['taken_at']} saw the DDL guard installed;"
                                               " it is gone: a superuser removed it."))
    for company, head in sorted(digest["chains"].items()):
        company_id = UUID(company)
        if only and company_id not in only:
            continue
        where = f"Company {company_id}: the digest of {digest['taken_at']} records block {head['block_no']}"
        chain = run.chains.get(company_id)
        if chain is None:
            verified = next((v for v in run.verdicts if v.company_id == company_id), None)
            if verified is None or verified.status == UNVERIFIABLE:
                status = TAMPERED if verified is None or "no entries and no blocks" in verified.report \
                    else UNVERIFIABLE
                results.append(Verdict(company_id, status, f"{where}; the company's chain "
                                       + ("no longer exists: it was removed since." if status == TAMPERED
                                          else "could not be verified."), head["block_no"]))
            continue  # its own verdict already says what is wrong
        held = chain.get(head["block_no"])
        if held is None:
            results.append(Verdict(company_id, TAMPERED, f"{where}, which no longer exists: the chain was cut or"
                                                         " rewritten since.", head["block_no"]))
        elif held.hex() != head["block_hash"]:
            results.append(Verdict(company_id, TAMPERED, f"{where} with another hash: the chain was rewritten"
                                                         " since.", head["block_no"]))
        else:
            results.append(Verdict(company_id, VERIFIED, f"{where}; the verified chain still holds it."))
    return results


def take_digest(conn: psycopg.Connection[Any], run: Run) -> dict[str, Any]:
    """A digest of the chains `run` has just verified, built here from their verified heads."""
    with _session(conn):
        row = conn.execute("SELECT pg_catalog.current_database(),"
                           " pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC',"
                           " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").fetchone()
    assert row is not None
    return {"format": 1, "database": row[0], "taken_at": row[1], "guard": run.guard_installed,
            "chains": {str(company): head for company, head in sorted(run.heads.items())}}
