"""The protection surface of the log, read and judged in Python.

The query is the body of audit._surface() as this package ships it (sql/0078_surface.sql), run from
here: the database's copy of that function, which a superuser can replace, is never called. What a
fresh install has is in surface.json (scripts/surface writes it), in full, so that a difference is
named line by line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import psycopg

from .schema import sql_dir

_EXPECTED = Path(__file__).with_name("surface.json")
# A log sharded by company on Citus (sql/citus/): the coordinator's surface after `audit-py
# citus-install`, written by scripts/surface-citus from a real cluster.
_EXPECTED_CITUS = Path(__file__).with_name("surface-citus.json")
# The same install as each worker holds it (written by scripts/surface-citus too): the functions, the
# shell tables Citus keeps there, and what one shard of each table of the log has, its id written
# "(shard)", since a worker holds as many shards as its placements say, each named by its own id.
_EXPECTED_WORKER = Path(__file__).with_name("surface-citus-worker.json")
SHARD = "(shard)"
# Citus names the TRUNCATE trigger it adds to each distributed table after the table's oid.
_CITUS_TRIGGER = re.compile(r"truncate_trigger_[0-9]+")
_SHARDED_SQL = """
SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
   AND pg_catalog.to_regclass('audit.audit_logs') IS NOT NULL
   AND EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'citus')
"""
_DISTRIBUTED_SQL = """
SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
               WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'audit.audit_logs'::pg_catalog.regclass)
"""
_BODY = re.compile(r"AS \$surface\$\n(.*?)\$surface\$;", re.S)
_VERSION_SQL = """
SELECT p.prosrc FROM pg_catalog.pg_proc p
WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('audit')
  AND p.proname OPERATOR(pg_catalog.=) 'schema_version'
"""
_SCHEMA_SQL = "SELECT pg_catalog.to_regnamespace('audit') IS NOT NULL"
_GUARD = re.compile(r"^(event trigger |schema audit_guard$|function audit_guard\.)")


@cache
def query() -> str:
    """The surface query, as sql/0078_surface.sql defines audit._surface()."""
    match = _BODY.search((sql_dir() / "0078_surface.sql").read_text())
    assert match, "sql/0078_surface.sql defines audit._surface() between $surface$ quotes"
    return match.group(1)


@cache
def expected(citus: bool = False) -> dict[str, Any]:
    """{"version": N, "objects": {object: [description, ...]}}: each description a fresh install may have
    (PostgreSQL versions print a few definitions differently); with citus, a Citus coordinator's."""
    document: dict[str, Any] = json.loads((_EXPECTED_CITUS if citus else _EXPECTED).read_text())
    return document


@cache
def expected_worker() -> dict[str, Any]:
    """{"version": N, "objects": {object: [description, ...]}, "shards": {table: {object: [...]}}}: a Citus
    worker's surface after `audit-py citus-install`, each shard of `table` as in shards[table]."""
    document: dict[str, Any] = json.loads(_EXPECTED_WORKER.read_text())
    return document


def is_citus(conn: psycopg.Connection[Any]) -> bool:
    """Whether the log is sharded by company on Citus here (audit.audit_logs a distributed table)."""
    row = conn.execute(_SHARDED_SQL).fetchone()
    if not (row and row[0]):
        return False
    row = conn.execute(_DISTRIBUTED_SQL).fetchone()
    return bool(row and row[0])


def version() -> int:
    return int(expected()["version"])


def schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """The log's schema version, read from the catalog; None where no audit.schema_version() exists."""
    row = conn.execute(_VERSION_SQL).fetchone()
    if row is None:
        return None
    found = re.fullmatch(r"\s*SELECT\s+(\d+)\s*", row[0])
    return int(found.group(1)) if found else -1


def has_schema(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(_SCHEMA_SQL).fetchone()
    return bool(row and row[0])


def read(conn: psycopg.Connection[Any], citus: bool = False) -> dict[str, list[str]]:
    """Each object of the surface and its description(s); the caller pins search_path first."""
    found: dict[str, list[str]] = {}
    for obj, description in conn.execute(query()).fetchall():
        if citus and description:
            description = _CITUS_TRIGGER.sub("truncate_trigger_(oid)", description)
        found.setdefault(obj or "an object without a name", []).append(description or "no description")
    return found


# The shards of the log's tables that the coordinator's metadata places on a worker (its group), and
# those Citus has yet to drop there after a move (pg_dist_cleanup): no longer part of the log.
PLACED_SQL = """
SELECT s.shardid::pg_catalog.int8, s.logicalrelid::pg_catalog.regclass::pg_catalog.text
FROM pg_catalog.pg_dist_shard s
JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid
JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) s.logicalrelid
WHERE p.groupid OPERATOR(pg_catalog.=) %s
  AND c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.to_regnamespace('audit')
ORDER BY 1
"""
LEFT_OVER_SQL = """
SELECT c.object_name FROM pg_catalog.pg_dist_cleanup c
WHERE c.node_group_id OPERATOR(pg_catalog.=) %s AND c.object_type OPERATOR(pg_catalog.=) 1
"""
# Citus hides shards from catalog queries unless told not to: the verifier must see them.
SHOW_SHARDS_SQL = "SELECT pg_catalog.set_config('citus.override_table_visibility', 'off', true)"


def read_worker(conn: psycopg.Connection[Any], placed: dict[int, str], left_over: set[int]
                ) -> tuple[dict[str, list[str]], dict[int, dict[str, list[str]]]]:
    """A worker's surface: the objects that belong to no shard, and those of each shard placed there
    ({shard id: {object: descriptions}}), the shard's id written "(shard)" in names and descriptions.
    The objects of shards Citus is yet to drop after a move (left_over) are left out: no query reads
    them any more. An object named after any other shard stays as it is (an object added). The caller
    pins search_path and shows shards (SHOW_SHARDS_SQL) first."""
    plain: dict[str, list[str]] = {}
    shards: dict[int, dict[str, list[str]]] = {}
    for obj, descriptions in read(conn, citus=True).items():
        found = re.search(r"_([0-9]+)$", obj)
        shard_id = int(found.group(1)) if found else None
        if shard_id in left_over and shard_id not in placed:
            continue
        if shard_id not in placed:
            plain[obj] = descriptions
            continue
        suffix = re.compile(rf"_{shard_id}\b")
        shards.setdefault(shard_id, {})[suffix.sub("_" + SHARD, obj)] = [
            suffix.sub("_" + SHARD, description) for description in descriptions]
    return plain, shards


def judge_worker(plain: dict[str, list[str]], shards: dict[int, dict[str, list[str]]],
                 placed: dict[int, str]) -> list[str]:
    """What differs on a worker from a fresh install's worker, each in a sentence: the objects outside
    the shards, the DDL guard included (citus-install and citus-add-worker install it on each node as
    a superuser), then each placed shard (judge_shards)."""
    return (judge(plain, objects=expected_worker()["objects"], require_guard=True).problems
            + judge_shards(shards, placed))


def judge_shards(shards: dict[int, dict[str, list[str]]], placed: dict[int, str]) -> list[str]:
    """Each shard placed on a node against the template of its table, a worker's or the coordinator's
    copies of the reference tables alike (a shard gone whole is named once)."""
    problems = []
    for shard_id, table in sorted(placed.items()):
        template = expected_worker()["shards"].get(table)
        name = f"{table}_{shard_id}"
        if template is None:
            problems.append(f"shard {name} belongs to a table a fresh install does not distribute")
        elif shard_id not in shards:
            problems.append(f"shard {name} is missing")
        else:
            problems += [problem.replace(SHARD, str(shard_id))
                         for problem in judge(shards[shard_id], objects=template).problems]
    return problems


# Who could take the log's roles, beyond the superusers: PostgreSQL 16 gives a role's creator ADMIN
# OPTION on it (the installing login, which migrations need), and on 15 any CREATEROLE login may
# grant itself any role that is not a superuser's. Not tampering, but what an auditor must know.
_TAKERS_SQL = """
SELECT r.rolname || ' (admin option on ' || g.rolname || ')'
FROM pg_catalog.pg_roles g
JOIN pg_catalog.pg_auth_members m ON m.roleid OPERATOR(pg_catalog.=) g.oid AND m.admin_option
JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) m.member AND NOT r.rolsuper
WHERE g.rolname IN ('audit_owner', 'audit_definer')
UNION
SELECT r.rolname || ' (CREATEROLE, PostgreSQL 15)' FROM pg_catalog.pg_roles r
WHERE r.rolcreaterole AND NOT r.rolsuper
  AND pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog.<) 160000
ORDER BY 1
"""


def takers(conn: psycopg.Connection[Any]) -> list[str]:
    """Logins other than superusers that could take audit_owner or audit_definer, and how."""
    return [row[0] for row in conn.execute(_TAKERS_SQL).fetchall()]


def is_guard(obj: str) -> bool:
    """The event triggers of a superuser install, and their function's schema."""
    return bool(_GUARD.match(obj))


@dataclass(frozen=True)
class Judgement:
    problems: list[str]
    guard_installed: bool


def judge(found: dict[str, list[str]], citus: bool = False,
          objects: dict[str, list[str]] | None = None, require_guard: bool = False) -> Judgement:
    """What differs from a fresh install (or from `objects`), each in a sentence; whether the DDL guard
    is installed. Without the guard whole, only a part of it is named, unless it is required."""
    if objects is None:
        objects = expected(citus)["objects"]
    guard_installed = any(is_guard(obj) for obj in found)
    problems = []
    for obj, accepted in objects.items():
        if obj not in found:
            if guard_installed or require_guard or not is_guard(obj):
                problems.append(f"{obj} is missing")
            continue
        descriptions = found[obj]
        if len(descriptions) > 1:
            problems.append(f"{obj} exists {len(descriptions)} times")
        elif descriptions[0] not in accepted:
            problems.append(f"{obj} was changed: {_difference(accepted[0], descriptions[0])}")
    for obj in found:
        if obj not in objects:
            problems.append(f"{obj} was added: {found[obj][0].splitlines()[0]}")  # read() leaves none empty
    return Judgement(problems, guard_installed)


def _difference(expected_text: str, actual_text: str) -> str:
    """The lines that differ, in words."""
    expected_lines, actual_lines = expected_text.splitlines(), actual_text.splitlines()
    added = [repr(line) for line in actual_lines if line not in expected_lines]
    missing = [repr(line) for line in expected_lines if line not in actual_lines]
    parts = ([f"has {' and '.join(added)}"] if added else []) + ([f"lacks {' and '.join(missing)}"] if missing else [])
    return ", ".join(parts) or "its lines are in another order"


# On Citus, who may act as one of the log's roles is the coordinator's to say: Citus makes roles and
# grants on every node, and a worker checks there the writes and reads sent to it (a tenant reader made
# an audit_reader on one worker alone, directly or through any role between, reads every company of
# that worker). Each role's effective membership in each of the log's roles, the superusers, and the
# roles that bypass row-level security, in words, names quoted as identifiers.
MEMBERSHIPS_SQL = """
SELECT pg_catalog.concat(pg_catalog.quote_ident(m.rolname), ' is a member of ', a.role_name)
FROM pg_catalog.pg_roles m,
     pg_catalog.unnest(ARRAY['audit_owner', 'audit_definer', 'audit_writer', 'audit_reader',
                             'audit_tenant_reader', 'audit_admin']::pg_catalog.name[]) a(role_name)
WHERE NOT m.rolsuper AND m.rolname OPERATOR(pg_catalog.<>) a.role_name
  AND pg_catalog.pg_has_role(m.oid, pg_catalog.to_regrole(a.role_name)::pg_catalog.oid, 'MEMBER')
UNION ALL
SELECT pg_catalog.concat(pg_catalog.quote_ident(m.rolname), ' is a superuser')
FROM pg_catalog.pg_roles m WHERE m.rolsuper
UNION ALL
SELECT pg_catalog.concat(pg_catalog.quote_ident(m.rolname), ' bypasses row-level security')
FROM pg_catalog.pg_roles m WHERE m.rolbypassrls AND NOT m.rolsuper
"""


def memberships(conn: psycopg.Connection[Any]) -> set[str]:
    return {str(row[0]) for row in conn.execute(MEMBERSHIPS_SQL).fetchall()}


def judge_memberships(coordinator: set[str], node: set[str]) -> list[str]:
    """How who may act as the log's roles on a node differs from the coordinator, in sentences."""
    return ([f"{membership} here, not on the coordinator" for membership in sorted(node - coordinator)]
            + [f"{membership} on the coordinator, not here" for membership in sorted(coordinator - node)])


# The configuration as a node's own copies of the reference tables hold it: a superuser on a worker who
# changes one copy alone changes there whom strict mode covers, or which companies a pinned tenant
# reads. Each row in words; auditors read both tables on Citus (sql/citus/0005_role_names.sql).
CONFIGURATION_SQL = {
    "audit.strict_mode": "SELECT pg_catalog.concat('strict mode covers ', COALESCE(pg_catalog.quote_ident("
                         "s.login_role::pg_catalog.text), 'every role')) FROM audit.{} s",
    "audit.tenant_logins": "SELECT pg_catalog.concat(pg_catalog.quote_ident(p.login_role::pg_catalog.text),"
                           " ' is pinned to company ', p.company_id) FROM audit.{} p",
}


def configuration(conn: psycopg.Connection[Any], placed: dict[int, str]) -> dict[str, set[str]]:
    """{table: its rows in words} of the node's copies of the reference tables (read with shards shown)."""
    return {table: {str(row[0]) for row in conn.execute(CONFIGURATION_SQL[table].format(f"{table[6:]}_{shard_id}"))}
            for shard_id, table in placed.items() if table in CONFIGURATION_SQL}


def judge_configuration(coordinator: dict[str, set[str]], node: dict[str, set[str]]) -> list[str]:
    """How a node's copies differ from the coordinator's (a copy missing is named by judge_shards())."""
    problems = []
    for table in sorted(set(coordinator) & set(node)):
        problems += [f"{row} in this copy of {table}, not in the coordinator's"
                     for row in sorted(node[table] - coordinator[table])]
        problems += [f"{row} in the coordinator's copy of {table}, not in this one"
                     for row in sorted(coordinator[table] - node[table])]
    return problems
