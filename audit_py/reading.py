"""What `audit-py log`, `tail` and `export` print: entries as a table or JSON lines, followed live, exported."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.abc import Buffer
from psycopg.pq import TransactionStatus

from . import offline, queries, sharded_tail, surface
from .errors import INVALID_QUERY, InvalidQuery
from .models import AuditRecord
from .sharded_tail import Position

# An entry is final once its transaction's id is below the snapshot's xmin: no
# transaction that could still commit has a smaller one (the horizon audit.seal() uses too).
HORIZON_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
FOLLOW_SQL = (
    f"SELECT {queries.RECORD_COLUMNS}, txid FROM audit.audit_logs"
    " WHERE txid >= %(start)s AND txid < %(horizon)s AND (%(company_id)s::uuid IS NULL OR company_id = %(company_id)s)"
    " ORDER BY txid, id"
)
LAST_SQL = (
    f"SELECT * FROM (SELECT {queries.RECORD_COLUMNS}, txid FROM audit.audit_logs"
    " WHERE txid < %(horizon)s AND (%(company_id)s::uuid IS NULL OR company_id = %(company_id)s)"
    " ORDER BY txid DESC, id DESC LIMIT %(last)s) AS latest ORDER BY txid, id"
)
# SET LOCAL rather than set_config(): on a log sharded on Citus, Citus passes SET LOCAL on to the
# workers, where the tenant policies read it (with propagate_set_commands = local, a setting of no
# meaning elsewhere), and set_config() never.
SET_COMPANY_SQL = "SET LOCAL citus.propagate_set_commands = local; SET LOCAL audit.company_id = {}"
# Entries past the horizon have committed and wait for an older transaction still open: which ones,
# oldest first (a transaction prepared for two-phase commit waits until COMMIT PREPARED).
WAITING_SQL = (
    "SELECT count(*) FROM audit.audit_logs WHERE txid >= %(horizon)s"
    " AND (%(company_id)s::uuid IS NULL OR company_id = %(company_id)s)"
)
HOLDING_BACK_SQL = """
SELECT what FROM (
    SELECT format('prepared transaction %L in database %s, prepared %s ago', gid, database,
                  date_trunc('second', now() - prepared)) AS what, age(transaction) AS age
    FROM pg_catalog.pg_prepared_xacts
    UNION ALL
    SELECT format('session %s in database %s, login %s', pid, coalesce(datname, '?'), coalesce(usename, '?')),
           greatest(age(backend_xid), age(backend_xmin))
    FROM pg_catalog.pg_stat_activity
    WHERE pid <> pg_backend_pid() AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
) AS w ORDER BY age DESC LIMIT 3
"""
EXPORT_COLUMNS = ("id, company_id, franchise_id, user_id, action, entity, entity_id, details, created_at, txid,"
                  " context")
# JSON built by the server, streamed by COPY: no row passes through Python one by one. Built by
# concatenation: half again as fast as json_build_object() or row_to_json(), and exact, since uuids
# and timestamps (DateStyle ISO, set for the export) need no escaping, to_json() escapes the texts,
# and jsonb's text form is JSON already.
# Sent as CSV whose quote and delimiter are control characters that JSON text never holds raw (it
# escapes every character below U+0020), so that no line is ever quoted: each arrives as the very
# JSON line, and Python writes it as it comes. The text format would double every backslash, to be
# undone in Python at a pass over every byte.
EXPORT_JSON_SQL = (
    "COPY (SELECT '{\"id\":\"' || id || '\",\"company_id\":\"' || company_id"
    " || '\",\"franchise_id\":' || COALESCE('\"' || franchise_id || '\"', 'null')"
    " || ',\"user_id\":' || COALESCE('\"' || user_id || '\"', 'null')"
    " || ',\"action\":' || to_json(action) || ',\"entity\":' || to_json(entity)"
    " || ',\"entity_id\":\"' || entity_id || '\",\"details\":' || details"
    " || ',\"created_at\":\"' || created_at || '\",\"txid\":' || COALESCE(txid::text, 'null')"
    " || ',\"context\":' || context || ',\"origin\":' || COALESCE(origin::text, 'null') || '}'"
    " FROM audit.audit_logs {where} ORDER BY created_at, id) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01',"
    " DELIMITER E'\\x02')"
)
EXPORT_CSV_SQL = (
    f"COPY (SELECT {EXPORT_COLUMNS} FROM audit.audit_logs {{where}} ORDER BY created_at, id)"
    " TO STDOUT WITH (FORMAT csv, HEADER)"
)
COUNT_SQL = "SELECT count(*) FROM audit.audit_logs {where}"
EXPORT_BATCH = 1000  # rows per write: one join and one write per thousand rows
TABLE_COLUMNS = ("created_at", "action", "entity", "entity_id", "user_id", "franchise_id", "details")


def as_json(record: AuditRecord) -> str:
    """One JSON line; the numbers in details and context as exact as the database holds them."""
    # Not dataclasses.asdict(): it copies details recursively, and fails where they nest deep.
    return queries.as_json_text({field.name: getattr(record, field.name) for field in fields(record)})


def as_table(records: list[AuditRecord], out: IO[str]) -> None:
    """Aligned columns for a terminal; details cut to what fits."""
    rows = [[_cell(getattr(record, column)) for column in TABLE_COLUMNS] for record in records]
    widths = [max([len(column)] + [len(row[n]) for row in rows]) for n, column in enumerate(TABLE_COLUMNS[:-1])]
    for row in [list(TABLE_COLUMNS)] + rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  ".join(cells + [row[-1][:80]]) + "\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    text = queries.as_json_text(value) if isinstance(value, dict) else str(value)
    # Whatever a writer stored prints as one visible cell: a newline would forge a row, an escape
    # sequence would drive the terminal.
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class Unsupported(Exception):
    """What this command does not do with this log (a tail position of another kind of log)."""


def name_company(conn: psycopg.Connection[Any], company_id: UUID | None) -> None:
    """Put the company in the transaction's context: a tenant reader sees nothing without it."""
    if company_id is not None:
        conn.execute(sql.SQL(SET_COMPANY_SQL).format(sql.Literal(str(company_id))))


def follow(conninfo: str, company_id: UUID | None, start: int | Position | None, poll: float, last: int = 0,
           stop: Iterator[bool] | None = None, notice_after: float = 60,
           retry_connect: bool = True,
           polled: Callable[[int | Position], None] | None = None) -> Iterator[tuple[AuditRecord, int | Position]]:
    """Entries as their transactions end, in transaction order; each with the position to resume from:
    a transaction id, or on a log sharded by company on Citus one for each worker (sharded_tail).

    Without a start: the `last` latest entries, then what ends from now on. Reconnects when the
    connection drops, and goes on from where it was: nothing is skipped or repeated. `stop`, when
    given, is asked after each poll whether to stop. When committed entries have waited
    `notice_after` seconds for an older transaction still open, says which on standard error.
    A connection the server refuses (a password, a database) ends it, as does any failure to
    connect unless `retry_connect`; a connection lost is retried, backing off up to 30 s.
    """
    stall = _Stall(notice_after)
    failures, connected = 0, False
    while True:
        try:
            connected = False
            with psycopg.connect(conninfo, autocommit=True, application_name="audit-py tail") as conn:
                failures, connected = 0, True
                sharded = surface.is_citus(conn)
                if isinstance(start, Position) != sharded and start is not None:
                    raise Unsupported(f"tail: --from-position {start} is a position of a log on "
                                      f"{'one PostgreSQL' if sharded else 'Citus'}, and this one is "
                                      f"{'sharded on Citus' if sharded else 'on one PostgreSQL'}")
                queries.exact_json(conn)
                while True:
                    with conn.transaction():
                        name_company(conn, company_id)
                        if sharded:
                            records, start = sharded_tail.poll(conn, company_id, start, last)  # type: ignore[arg-type]
                        else:
                            records, start = _poll(conn, company_id, start, last, stall)  # type: ignore[arg-type]
                    for record in records:
                        yield record, start  # type: ignore[misc]
                    if polled is not None and start is not None:  # once the poll's entries are out: an
                        polled(start)                              # interrupted poll repeats, never skips
                    if stop is not None and next(stop):
                        return
                    time.sleep(poll)
        except psycopg.OperationalError as error:
            # Refused by the server at the door (a password, a database, a role: a FATAL of its own):
            # no retry would do better.
            if not connected and (not retry_connect or "FATAL:" in str(error)):
                raise
            delay = min(max(poll, 0.5) * 2 ** failures, 30.0)
            failures += 1
            print(f"audit-py tail: connection lost ({str(error).strip().splitlines()[0]}); retrying in {delay:g} s",
                  file=sys.stderr, flush=True)
            time.sleep(delay)


@dataclass
class _Stall:
    """How long the horizon has stood still, so that tail says once which transactions hold it."""

    after: float
    moved: float = field(default_factory=time.monotonic)
    told: int | None = None


def _poll(conn: psycopg.Connection[Any], company_id: UUID | None, start: int | None, last: int,
          stall: _Stall) -> tuple[list[AuditRecord], int]:
    """One poll of a log on one PostgreSQL: the entries final since `start` (without one, the `last`
    latest), and the horizon they reach."""
    horizon = int(conn.execute(HORIZON_SQL).fetchone()[0])  # type: ignore[index]
    if start is None or horizon != start:
        stall.moved = time.monotonic()
    elif time.monotonic() - stall.moved >= stall.after and stall.told != horizon:
        stall.told = horizon
        _say_what_holds_back(conn, horizon, company_id)
    params = {"start": start, "horizon": horizon, "company_id": company_id, "last": last}
    with conn.cursor() as cur:
        found = cur.execute(LAST_SQL if start is None else FOLLOW_SQL, params).fetchall()
    return [AuditRecord(*row[:10]) for row in found], horizon


def _say_what_holds_back(conn: psycopg.Connection[Any], horizon: int, company_id: UUID | None) -> None:
    waiting = conn.execute(WAITING_SQL, {"horizon": horizon, "company_id": company_id}).fetchone()
    if waiting and waiting[0]:
        blockers = "; ".join(row[0] for row in conn.execute(HOLDING_BACK_SQL).fetchall())
        print(f"audit-py tail: {waiting[0]} entries wait on transactions still open:"
              f" {blockers or 'none this login can see'}", file=sys.stderr, flush=True)


def export(conn: psycopg.Connection[Any], company_id: UUID, since: datetime | None, until: datetime | None,
           fmt: str, out: Path | None, progress: IO[str] | None) -> int:
    """Stream a company's entries, oldest first, to a file (standard output when out is None); return how
    many were written. A file appears, with its chain beside it, only once the export is complete."""
    if since is not None and until is not None and since >= until:
        raise InvalidQuery("export: --since must be before --until", INVALID_QUERY, "since")
    if out is None:
        return _export(conn, company_id, since, until, fmt, sys.stdout.buffer, None, progress)
    partial = out.with_name(f".{out.name}.partial")
    chain = offline.chain_path(partial)
    try:
        with partial.open("wb") as file:
            written = _export(conn, company_id, since, until, fmt, _WriteBehind(file),
                              partial if fmt == "jsonl" else None, progress)
            _sync(file)
        if fmt == "jsonl":
            with chain.open("rb") as written_chain:
                _sync(written_chain)
            chain.replace(offline.chain_path(out))
        partial.replace(out)
        _sync_directory(out.parent)
    finally:
        partial.unlink(missing_ok=True)
        chain.unlink(missing_ok=True)
    return written


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class _WriteBehind:
    """An export file that asks the kernel to start writing its pages back as each 32 MiB fills
    (POSIX_FADV_DONTNEED starts the writeback and lets the pages go once clean), so that the fsync
    before the rename waits for the last ones only, not for a whole file written while it streamed."""

    EVERY = 32 << 20

    def __init__(self, file: IO[bytes]) -> None:
        self.file, self.written, self.advised = file, 0, 0

    def write(self, data: bytes, /) -> int:
        count = self.file.write(data)
        self.written += count
        if self.written - self.advised >= self.EVERY and hasattr(os, "posix_fadvise"):
            self.file.flush()
            os.posix_fadvise(self.file.fileno(), self.advised, self.written - self.advised, os.POSIX_FADV_DONTNEED)
            self.advised = self.written
        return count


# An export that said it was done is on disk, renamed into place, through a crash of the machine: its
# bytes are synced before the rename, and the rename itself after (the directory's entry).
def _sync(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _export(conn: psycopg.Connection[Any], company_id: UUID, since: datetime | None, until: datetime | None,
            fmt: str, file: _Sink, chain_beside: Path | None, progress: IO[str] | None) -> int:
    where = "WHERE company_id = %(company_id)s"
    where += " AND created_at >= %(since)s" if since else ""
    where += " AND created_at < %(until)s" if until else ""
    params = {"company_id": company_id, "since": since, "until": until}
    template = EXPORT_JSON_SQL if fmt == "jsonl" else EXPORT_CSV_SQL
    fresh = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.transaction():
        if fresh:  # one snapshot for the count, the rows and the chain: none can disagree with another
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        name_company(conn, company_id)
        conn.execute("SET LOCAL DateStyle = 'ISO'")  # the timestamps' text, in the JSON and the CSV
        total = int(conn.execute(COUNT_SQL.replace("{where}", where), params).fetchone()[0]) if progress else 0  # type: ignore[index]
        written = 0
        with conn.cursor() as cur:
            with cur.copy(template.replace("{where}", where), params) as copy:
                batch: list[Buffer] = []
                for data in copy:  # one row each
                    batch.append(data)
                    if len(batch) == EXPORT_BATCH:
                        written += _write(file, batch)
                        if progress is not None:
                            progress.write(f"\r{written:,} of {total:,} entries")
                written += _write(file, batch)
        if fmt == "csv":
            written -= 1  # the header line
        elif chain_beside is not None:
            offline.write_chain(conn, company_id, since, until, chain_beside)
        if progress is not None:
            progress.write(f"\r{written:,} of {total:,} entries\n")
    return written


def _write(file: _Sink, batch: list[Buffer]) -> int:
    """Write a batch of whole rows as they came; return how many."""
    file.write(b"".join(batch))
    count = len(batch)
    batch.clear()
    return count
