"""`audit-py tail` on a log sharded by company on Citus: a position for each worker's transaction counter.

On one PostgreSQL an entry is final once its transaction id is below the horizon (the xmin of a fresh
snapshot), and tail's position is one transaction id. On Citus each worker counts its own
transactions and stamps its entries with its own system identifier (their origin), so the position
is one transaction id per origin, and each origin's horizon is read on its worker. An entry keeps its
origin when its shard moves, so its place in the position does not change.

Each poll, through the coordinator only (tail's login need not reach the workers):
- every worker's horizon and origin, by run_command_on_workers() (a fresh snapshot on each worker,
  read before the entries are, so that every entry below it has committed and is seen);
- the entries of each worker's origin from its position up to its horizon; of an origin in the
  position that is no worker's (a worker removed, or the coordinator before distributing), whatever
  is past the position: nothing can be added under it any more. A worker that cannot be reached holds
  back its origin, and, since its origin is unknown then, every origin that is no reached worker's.

A worker added since the position was printed starts from its first entry; a fresh tail (no
position) starts each origin at its horizon, and takes as passed every origin that is no worker's.
Within a poll, entries come by origin, then in each origin's transaction order.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from . import queries
from .models import AuditRecord

# Run as tail's own login on each worker, through the coordinator's connections.
HORIZONS_SQL = (
    "SELECT w.success, w.result FROM pg_catalog.run_command_on_workers("
    "$$SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::text || ':'"
    " || s.system_identifier FROM pg_catalog.pg_control_system() s$$) w"
)
COLUMNS = sql.SQL(f"{queries.RECORD_COLUMNS}, txid, origin")


class Position(dict[int, int]):
    """For each origin, the first transaction id tail has not read yet; printed `origin:txid,...`."""

    def __str__(self) -> str:
        return ",".join(f"{origin}:{txid}" for origin, txid in sorted(self.items()))

    @classmethod
    def parse(cls, text: str) -> Position:
        try:
            pairs = [part.split(":") for part in text.split(",")]
            position = cls({int(origin): int(txid) for origin, txid in pairs})
        except ValueError:
            raise ValueError(f"not a position of a sharded log (origin:txid,...): {text}") from None
        if any(txid < 0 for txid in position.values()):
            raise ValueError(f"a transaction id is 0 or more: {text}")
        return position


def _horizons(conn: psycopg.Connection[Any]) -> tuple[dict[int, int], bool]:
    """{origin: horizon} of the workers reached; whether every worker was."""
    horizons, every = {}, True
    for success, result in conn.execute(HORIZONS_SQL).fetchall():
        if not success:
            every = False
            continue
        horizon, origin = str(result).split(":")
        horizons[int(origin)] = int(horizon)
    return horizons, every


def _company(company_id: UUID | None) -> sql.Composable:
    return sql.SQL(" AND company_id = {}").format(sql.Literal(str(company_id))) if company_id else sql.SQL("")


def poll(conn: psycopg.Connection[Any], company_id: UUID | None, start: Position | None,
         last: int) -> tuple[list[AuditRecord], Position | None]:
    """The entries final since `start` (without one, the `last` latest final entries) and the position
    after them. In a transaction whose context names company_id (reading.name_company()). A tail
    starts only once every worker is reached: a worker's origin left out of its first position would
    later be read from its first entry."""
    horizons, every = _horizons(conn)
    if start is None and not every:
        return [], None
    if start is None:
        # The latest final entries: below their worker's horizon, or of an origin that is no worker's.
        final = sql.SQL(" OR ").join([
            *(sql.SQL("(origin = {} AND txid < {})").format(origin, horizon) for origin, horizon in horizons.items()),
            sql.SQL("origin <> ALL({})").format(list(horizons)) if every and horizons else sql.SQL(str(every))])
        query = sql.SQL("SELECT * FROM (SELECT {} FROM audit.audit_logs WHERE ({}){} ORDER BY created_at DESC,"
                        " id DESC LIMIT {}) AS latest ORDER BY origin, txid, id").format(
            COLUMNS, final, _company(company_id), last)
        return [AuditRecord(*row[:10]) for row in conn.execute(query).fetchall()], Position(horizons)
    ranges: dict[int, tuple[int, int | None]] = {
        origin: (start.get(origin, 0), horizon) for origin, horizon in horizons.items()}
    if every:
        ranges.update({origin: (txid, None) for origin, txid in start.items() if origin not in horizons})
    if not ranges:
        return [], start
    clauses = sql.SQL(" OR ").join(
        sql.SQL("(origin = {} AND txid >= {}{})").format(
            origin, begin, sql.SQL(" AND txid < {}").format(end) if end is not None else sql.SQL(""))
        for origin, (begin, end) in ranges.items())
    rows = conn.execute(sql.SQL("SELECT {} FROM audit.audit_logs WHERE ({}){} ORDER BY origin, txid, id").format(
        COLUMNS, clauses, _company(company_id))).fetchall()
    reached = Position(start)
    reached.update(horizons)
    for row in rows:
        if row[11] not in horizons:
            reached[row[11]] = max(reached[row[11]], row[10] + 1)
    return [AuditRecord(*row[:10]) for row in rows], reached
