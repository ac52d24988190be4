"""Recording into a large log against recording into an empty one, on the same server.

Two databases: `big_log` holds a log larger than shared_buffers (20 million entries by default: 50
companies, 200 franchises and 500 users each, random entities, a year of history, ids as the stamp
gives them), `empty_log` none. pgbench records into each in turn. As a log grows, what an entry costs
can grow with it: every index an entry enters on a random key (the id before 0014, the entity) has
its pages spread over more memory than the server keeps, and each first change of a page after a
checkpoint writes the whole page to the WAL. The same pair runs again with the stamp as it was before
0014, whose ids were random, to show what time-ordered ids change.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from audit_py import migrate
from audit_py.server import ThrowawayServer

DATABASES = ("big_log", "empty_log", "big_log_before_0014")

# The id as the stamp makes it (sql/0030_immutability.sql), from the entry's own time: the history
# of a log written by this version. Before 0014, ids were random.
TIME_ORDERED_ID = """encode(overlay(uuid_send(gen_random_uuid())
                      PLACING int8send(((h.micros / 1000) << 16) | 28672 | ((h.micros %% 1000) * 4096 / 1000))
                      FROM 1 FOR 8), 'hex')::uuid"""
HISTORY_SQL = """
INSERT INTO audit.audit_logs (id, company_id, franchise_id, user_id, action, entity, entity_id, details,
                              created_at, txid, origin)
SELECT {id},
       ('00000000-0000-4000-8000-' || lpad(to_hex(1 + n %% 50), 12, '0'))::uuid,
       ('00000000-0000-4000-8001-' || lpad(to_hex(n %% 10000), 12, '0'))::uuid,
       ('00000000-0000-4000-8002-' || lpad(to_hex(n %% 25000), 12, '0'))::uuid,
       (ARRAY['CREATE_INVOICE', 'UPDATE_INVOICE', 'PAY_INVOICE', 'CREATE_ORDER'])[1 + n %% 4],
       'invoice', gen_random_uuid(), jsonb_build_object('amount', n %% 100000, 'currency', 'EUR'),
       h.at, n / 10, (SELECT system_identifier FROM pg_control_system())
FROM generate_series(%(low)s, %(high)s) n
CROSS JOIN LATERAL (SELECT now() - interval '365 days' + n * (interval '365 days' / %(entries)s) AS at) t
CROSS JOIN LATERAL (SELECT t.at, (extract(epoch FROM t.at) * 1000000)::bigint AS micros) h
"""


def prepare(server: ThrowawayServer, entries: int, load: Callable[[str, str, int], None]) -> None:
    """The databases migrated; the big ones loaded with `entries` entries by `load` (big_log.bulk_load)."""
    with psycopg.connect(server.conninfo, autocommit=True) as conn:
        for database in DATABASES:
            conn.execute(f"CREATE DATABASE {database}")
    for database in DATABASES:
        migrate(server.conninfo_for(database))
    load(server.conninfo_for("big_log"), HISTORY_SQL.replace("{id}", TIME_ORDERED_ID), entries)
    load(server.conninfo_for("big_log_before_0014"), HISTORY_SQL.replace("{id}", "gen_random_uuid()"), entries)


def sizes(server: ThrowawayServer) -> str:
    with psycopg.connect(server.conninfo_for("big_log")) as conn:
        row = conn.execute("SELECT count(*), pg_size_pretty(pg_table_size('audit.audit_logs')),"
                           " pg_size_pretty(pg_indexes_size('audit.audit_logs')),"
                           " current_setting('shared_buffers') FROM audit.audit_logs").fetchone()
    assert row is not None
    return f"{row[0]:,} entries, table {row[1]}, indexes {row[2]}, shared_buffers {row[3]}"


def wal_per_entry(server: ThrowawayServer, database: str, record: Callable[[], object],
                  entries: int) -> tuple[float, float]:
    """(WAL bytes, full-page images) per entry of the `entries` that `record` writes, after a checkpoint.

    From pg_stat_wal, which counts the whole cluster: nothing else writes meanwhile. No clock involved,
    so this machine's noise does not reach it.
    """
    with psycopg.connect(server.conninfo_for(database), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        before = conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone()
        record()
        after = conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone()
    assert before is not None and after is not None
    return float(after[0] - before[0]) / entries, float(after[1] - before[1]) / entries
