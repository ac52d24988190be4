"""The code that would run as a superuser when Citus copies tables' rows to a new shard.

A shard move (move_company(), rebalance()) copies every table co-located with the log, the ERP's own
tracked tables among them, and adding a worker copies every reference table. Citus copies the rows
through its own connections as the superuser that asked, so each row runs, as that superuser, the
code its table holds: CHECK constraints, index expressions and operator classes, triggers, defaults,
the constraints of its columns' domains. Code that a login other than a superuser owns would then
run with a superuser's rights, on a connection a worker's DDL guard takes for Citus's own: a table's
owner could rewrite the log there, unseen by either verifier (found by attacking it). So, before
such a copy, each function, operator, operator class and domain those tables reach must belong to a
superuser or to the log's own roles, whose code only a superuser can change; else the copy is
refused, naming what.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

# Whose code the tables' rows may run: the tables' owners; the owners of every type their columns hold,
# through array elements, domains' base types, composites' fields and ranges' subtypes; and the owners of
# what their constraints, indexes, triggers and defaults name, one dependency (pg_depend) away, and the
# constraints of their domains, however nested.
_UNTRUSTED_SQL = """
WITH RECURSIVE types (oid) AS (
    SELECT a.atttypid FROM pg_catalog.pg_attribute a
    WHERE a.attrelid OPERATOR(pg_catalog.=) ANY (%(tables)s::pg_catalog.oid[]) AND a.attnum > 0 AND NOT a.attisdropped
    UNION
    SELECT n.next
    FROM types y
    JOIN pg_catalog.pg_type z ON z.oid OPERATOR(pg_catalog.=) y.oid
    CROSS JOIN LATERAL (
        SELECT NULLIF(z.typelem, 0::pg_catalog.oid)
        UNION ALL SELECT NULLIF(z.typbasetype, 0::pg_catalog.oid)
        UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
                  WHERE z.typtype OPERATOR(pg_catalog.=) 'c' AND a.attrelid OPERATOR(pg_catalog.=) z.typrelid
                    AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r
                  WHERE r.rngtypid OPERATOR(pg_catalog.=) z.oid OR r.rngmultitypid OPERATOR(pg_catalog.=) z.oid
    ) AS n (next)
    WHERE n.next IS NOT NULL
),
sources (classid, objid) AS (
    SELECT * FROM (
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, t.oid
        FROM pg_catalog.pg_class t WHERE t.oid OPERATOR(pg_catalog.=) ANY (%(tables)s::pg_catalog.oid[])
        UNION
        SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid
        FROM pg_catalog.pg_constraint c WHERE c.conrelid OPERATOR(pg_catalog.=) ANY (%(tables)s::pg_catalog.oid[])
        UNION
        SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid
        FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) ANY (%(tables)s::pg_catalog.oid[])
        UNION
        SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, g.oid
        FROM pg_catalog.pg_trigger g WHERE g.tgrelid OPERATOR(pg_catalog.=) ANY (%(tables)s::pg_catalog.oid[])
        UNION
        SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, d.oid
        FROM pg_catalog.pg_attrdef d WHERE d.adrelid OPERATOR(pg_catalog.=) ANY (%(tables)s::pg_catalog.oid[])
        UNION
        -- The constraints of every domain the columns hold, however nested (a trusted owner's domain
        -- may call a function its owner can replace).
        SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid
        FROM types y JOIN pg_catalog.pg_constraint c ON c.contypid OPERATOR(pg_catalog.=) y.oid
    ) AS own
    UNION
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, c.oid
    FROM sources s
    JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) s.classid AND d.objid OPERATOR(pg_catalog.=) s.objid
                               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
    JOIN pg_catalog.pg_constraint c ON c.contypid OPERATOR(pg_catalog.=) d.refobjid
),
reached (refclassid, refobjid) AS (
    SELECT DISTINCT d.refclassid, d.refobjid
    FROM sources s
    JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) s.classid AND d.objid OPERATOR(pg_catalog.=) s.objid
),
code (what, owner) AS (
    SELECT pg_catalog.format('table %%s', c.oid::pg_catalog.regclass), c.relowner
    FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ANY (%(tables)s::pg_catalog.oid[])
    UNION ALL
    SELECT pg_catalog.format('type %%s', z.oid::pg_catalog.regtype), z.typowner
    FROM types y JOIN pg_catalog.pg_type z ON z.oid OPERATOR(pg_catalog.=) y.oid
    UNION ALL
    SELECT pg_catalog.format('function %%s', p.oid::pg_catalog.regprocedure), p.proowner
    FROM reached r JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) r.refobjid
    WHERE r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
    UNION ALL
    SELECT pg_catalog.format('operator %%s', o.oid::pg_catalog.regoperator), o.oprowner
    FROM reached r JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) r.refobjid
    WHERE r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass
    UNION ALL
    SELECT pg_catalog.format('function %%s', p.oid::pg_catalog.regprocedure), p.proowner
    FROM reached r JOIN pg_catalog.pg_operator o ON o.oid OPERATOR(pg_catalog.=) r.refobjid
    JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) o.oprcode
    WHERE r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass
    UNION ALL
    SELECT pg_catalog.format('operator class %%I.%%I', n.nspname, c.opcname), c.opcowner
    FROM reached r JOIN pg_catalog.pg_opclass c ON c.oid OPERATOR(pg_catalog.=) r.refobjid
    JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.opcnamespace
    WHERE r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_opclass'::pg_catalog.regclass
    UNION ALL
    SELECT pg_catalog.format('domain %%s', t.oid::pg_catalog.regtype), t.typowner
    FROM reached r JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) r.refobjid
    WHERE r.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
      AND t.typtype OPERATOR(pg_catalog.=) 'd'
)
SELECT pg_catalog.quote_ident(o.rolname), pg_catalog.string_agg(DISTINCT c.what, '; ')
FROM code c JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) c.owner
WHERE NOT o.rolsuper
  AND o.rolname OPERATOR(pg_catalog.<>) ALL (ARRAY['audit_owner', 'audit_definer']::pg_catalog.name[])
  AND o.rolname OPERATOR(pg_catalog.<>) ALL (%(trusted)s::pg_catalog.name[])
GROUP BY o.rolname
ORDER BY 1
"""


def untrusted(conn: psycopg.Connection[Any], tables: list[int], trusted: list[str]) -> dict[str, str]:
    """{role: what of its code the rows of `tables` (oids) may run} for each role neither a superuser, nor
    the log's, nor `trusted`."""
    rows = conn.execute(_UNTRUSTED_SQL, {"tables": tables, "trusted": trusted}).fetchall()
    return {str(role): str(what) for role, what in rows}


# The tables a move of the log's shards copies: its co-location group (the log's own tables among them,
# whose owner is trusted).
CO_LOCATED_SQL = """
SELECT pg_catalog.array_agg(p.logicalrelid::pg_catalog.oid) FROM pg_catalog.pg_dist_partition p
WHERE p.colocationid OPERATOR(pg_catalog.=) (
    SELECT l.colocationid FROM pg_catalog.pg_dist_partition l
    WHERE l.logicalrelid OPERATOR(pg_catalog.=) 'audit.audit_logs'::pg_catalog.regclass)
"""
# The tables adding a worker copies: every reference table the node has no copy of yet (all of them,
# when it is no node yet).
REFERENCE_SQL = """
SELECT pg_catalog.array_agg(p.logicalrelid::pg_catalog.oid) FROM pg_catalog.pg_dist_partition p
WHERE p.partmethod OPERATOR(pg_catalog.=) 'n' AND p.repmodel OPERATOR(pg_catalog.=) 't'
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_shard s
                  JOIN pg_catalog.pg_dist_placement l ON l.shardid OPERATOR(pg_catalog.=) s.shardid
                  JOIN pg_catalog.pg_dist_node n ON n.groupid OPERATOR(pg_catalog.=) l.groupid
                  WHERE s.logicalrelid OPERATOR(pg_catalog.=) p.logicalrelid
                    AND n.nodename OPERATOR(pg_catalog.=) %(host)s AND n.nodeport OPERATOR(pg_catalog.=) %(port)s)
"""


def refusal(conn: psycopg.Connection[Any], tables_sql: str, operation: str, trusted: Iterable[str] = (),
            node: tuple[str, int] | None = None) -> str | None:
    """Why `operation` must not copy the tables `tables_sql` names (for REFERENCE_SQL, to `node`), or None
    when it may."""
    row = conn.execute(tables_sql, {"host": node[0], "port": node[1]} if node else None).fetchone()
    found = untrusted(conn, list(row[0] or []) if row else [], list(trusted))
    if not found:
        return None
    owners = "; ".join(f"{role} ({what})" for role, what in found.items())
    trust = " ".join(f"--trust-owner {role}" for role in found)
    return (f"{operation} would copy tables whose rows run, as the superuser copying them, code that these roles"
            f" own, or can add or change at any time (a table's owner its constraints, a type's owner its"
            f" checks): {owners}. Each could then act as a superuser on a worker. Have a superuser own those"
            f" objects, or, if you trust these roles as superusers, name them: {trust}")
