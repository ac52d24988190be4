"""The drizzle module (integrations/drizzle), run as the ERP runs it: Node, drizzle-kit, node-postgres.

Node 20 and npm are required, never skipped: `npm ci` installs the locked packages into
integrations/drizzle/node_modules when they are missing or older than package-lock.json. Every
drizzle-kit run that is not meant to change anything runs in a read-only session, so a proposal
it makes is shown and cannot run, whatever drizzle-kit does with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from audit_py.server import SUPERUSER, ThrowawayServer

from .conftest import OWNER, OWNING_ROLE, READER, WRITER

DRIZZLE_DIR = Path(__file__).resolve().parent.parent / "integrations" / "drizzle"
SCHEMA_TS = DRIZZLE_DIR / "src" / "schema.ts"
LOCK_STAMP = DRIZZLE_DIR / "node_modules" / ".audit-py-package-lock.sha256"
NO_CHANGES = "No changes detected"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STATEMENT = re.compile(r"^(CREATE|ALTER|DROP) .*", re.M)

# What the ERP wrote first (README): created_at as a timestamp without time zone, a JS Date.
NAIVE_CREATED_AT = 'createdAt: timestamp("created_at").defaultNow(),'
CREATED_AT = 'createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),'


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: these tests need Node 20 and npm (CI installs them; they are never skipped)")
    return found


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """integrations/drizzle/node_modules as package-lock.json pins it: `npm ci` when missing or stale."""
    _tool("node")
    npm = _tool("npm")
    lock_hash = hashlib.sha256((DRIZZLE_DIR / "package-lock.json").read_bytes()).hexdigest()
    if not LOCK_STAMP.exists() or LOCK_STAMP.read_text().strip() != lock_hash:
        # --ignore-scripts: no install script runs (as root, on CI). The only ones are esbuild's,
        # which check a binary that its platform package (@esbuild/linux-x64, locked) brings anyway.
        result = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                                cwd=DRIZZLE_DIR, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        LOCK_STAMP.write_text(lock_hash + "\n")
    return DRIZZLE_DIR / "node_modules"


def _run(node_modules: Path, tool: str, *args: str, env: dict[str, str] | None = None,
         cwd: Path = DRIZZLE_DIR) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AUDIT_DATABASE_URL")}
    return subprocess.run([str(node_modules / ".bin" / tool), *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=180,
                          env={**environment, "NO_COLOR": "1", "FORCE_COLOR": "0", **(env or {})})


def _url(server: ThrowawayServer, dbname: str, user: str, **settings: str) -> str:
    """A postgresql:// URL for node-postgres; settings go to the session as `options=-c name=value`."""
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    query = f"?options={quote(options, safe='')}" if options else ""
    return f"postgresql://{user}@127.0.0.1:{server.port}/{dbname}{query}"


def _owner_read_only(server: ThrowawayServer, dbname: str) -> str:
    """The log as its owner sees it (information_schema shows keys, defaults and CHECKs to owners
    only), in a session where nothing drizzle-kit proposes can run."""
    return _url(server, dbname, SUPERUSER, role=OWNING_ROLE, default_transaction_read_only="on")


@dataclass(frozen=True)
class Push:
    output: str
    statements: list[str]
    returncode: int

    @property
    def no_changes(self) -> bool:
        return NO_CHANGES in self.output and not self.statements


def _push(node_modules: Path, config: Path | str, *flags: str, env: dict[str, str]) -> Push:
    result = _run(node_modules, "drizzle-kit", "push", "--config", str(config), *flags, env=env)
    output = ANSI.sub("", result.stdout + result.stderr)
    return Push(output, [match.group(0) for match in STATEMENT.finditer(output)], result.returncode)


def _push_audit(node_modules: Path, url: str, schema: Path = SCHEMA_TS, *flags: str) -> Push:
    """drizzle-kit push with drizzle.audit.config.ts: schema `audit` against a schema.ts."""
    return _push(node_modules, "drizzle.audit.config.ts", *flags,
                 env={"AUDIT_DATABASE_URL": url, "AUDIT_DRIZZLE_SCHEMA": str(schema)})


@pytest.fixture
def scratch(tmp_path: Path, node_modules: Path) -> Path:
    """A directory for altered copies of the TypeScript, resolving packages as the module does."""
    (tmp_path / "node_modules").symlink_to(node_modules, target_is_directory=True)
    return tmp_path


def _altered_schema(scratch: Path, name: str, *replacements: tuple[str, str]) -> Path:
    text = SCHEMA_TS.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} is not in src/schema.ts once"
        text = text.replace(old, new)
    path = scratch / f"{name}.ts"
    path.write_text(text)
    return path


def _created_at_type(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                       " WHERE attrelid = 'audit.audit_logs'::regclass AND attname = 'created_at'").fetchone()
    assert row is not None
    return str(row[0])


# (a) Zero drift, and drift shown when there is some.

def test_drizzle_kit_push_finds_no_changes(postgresql: psycopg.Connection[Any], pg_server: ThrowawayServer,
                                           node_modules: Path) -> None:
    push = _push_audit(node_modules, _owner_read_only(pg_server, postgresql.info.dbname))
    assert push.no_changes, push.output


WRONG_DEFINITIONS = [
    pytest.param((CREATED_AT, NAIVE_CREATED_AT),
                 'ALTER TABLE "audit"."audit_logs" ALTER COLUMN "created_at" SET DATA TYPE timestamp;',
                 id="naive created_at"),
    pytest.param(('    context: jsonb("context").$type<Record<string, unknown>>().notNull().default({}),\n', ""),
                 'ALTER TABLE "audit"."audit_logs" DROP COLUMN "context";',
                 id="column removed"),
    pytest.param(('index("audit_logs_txid_brin").using("brin", t.txid)', 'index("audit_logs_txid_brin").on(t.txid)'),
                 'CREATE INDEX "audit_logs_txid_brin" ON "audit"."audit_logs" USING btree ("txid");',
                 id="BRIN index as btree"),
    pytest.param(('pgPolicy("blocks_reader", { as: "permissive", for: "select", to: auditReader, using: sql`true` }),',
                  ""),
                 'DROP POLICY "blocks_reader" ON "audit"."blocks" CASCADE;',
                 id="policy removed"),
]


@pytest.mark.parametrize(("replacement", "expected"), WRONG_DEFINITIONS)
def test_drizzle_kit_push_reports_a_wrong_definition(postgresql: psycopg.Connection[Any], pg_server: ThrowawayServer,
                                                     node_modules: Path, scratch: Path,
                                                     replacement: tuple[str, str], expected: str) -> None:
    wrong = _altered_schema(scratch, "wrong", replacement)
    push = _push_audit(node_modules, _owner_read_only(pg_server, postgresql.info.dbname), wrong)
    assert not push.no_changes and expected in push.statements, push.output
    assert _created_at_type(postgresql) == "timestamp with time zone"


# What push does not compare (drizzle-kit 0.31.11 compares an index by name, columns, uniqueness
# and method; a CHECK by name; a policy by name, kind, command and roles), compared here: drizzle-kit's
# own snapshot of schema.ts against the catalog.

def _check_text(definition: str) -> str:
    # As drizzle-kit's introspection strips pg_get_constraintdef()'s wrapping.
    return re.sub(r"\)\)\s*$", "", re.sub(r"^CHECK\s*\(\(", "", definition))


def catalog_differences(conn: psycopg.Connection[Any], snapshot: dict[str, Any]) -> list[str]:
    """What differs between drizzle-kit's snapshot of a schema.ts and schema `audit`: CHECK
    expressions, index keys, predicates, orders and opclasses, policy expressions and roles, RLS."""
    problems: list[str] = []
    tables = {name: table for name, table in snapshot["tables"].items() if table["schema"] == "audit"}
    catalog_tables = {row[0] for row in conn.execute(
        "SELECT 'audit.' || relname FROM pg_class WHERE relnamespace = 'audit'::regnamespace AND relkind = 'r'")}
    if set(tables) != catalog_tables:
        problems.append(f"tables: schema.ts has {sorted(tables)}, the database {sorted(catalog_tables)}")
    for key, table in tables.items():
        rls = conn.execute("SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass", (key,)).fetchone()
        if rls is None or rls[0] != table["isRLSEnabled"]:
            problems.append(f"{key}: row-level security {rls} vs {table['isRLSEnabled']}")

        checks = {name: _check_text(definition) for name, definition in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
            " AND contype = 'c'", (key,))}
        expected_checks = {name: check["value"] for name, check in table["checkConstraints"].items()}
        for name in sorted(checks.keys() | expected_checks.keys()):
            if checks.get(name) != expected_checks.get(name):
                problems.append(f"{key}: check {name}: database {checks.get(name)!r}, schema.ts "
                                f"{expected_checks.get(name)!r}")

        indexes: dict[str, dict[str, Any]] = {}
        # Each key column's opclass, NULL where it is its type's default (what no .op() declares).
        for name, unique, method, where, keys, options, opclasses in conn.execute("""
                SELECT i.relname, x.indisunique, am.amname, pg_get_expr(x.indpred, x.indrelid),
                       array(SELECT pg_get_indexdef(x.indexrelid, k, false) FROM generate_series(1, x.indnkeyatts) k),
                       x.indoption::int2[],
                       array(SELECT CASE WHEN o.opcdefault THEN NULL ELSE o.opcname END
                             FROM unnest(x.indclass) WITH ORDINALITY u(oid, n) JOIN pg_opclass o ON o.oid = u.oid
                             ORDER BY u.n)
                FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam
                WHERE x.indrelid = %s::regclass
                  AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid)""", (key,)):
            indexes[name] = {"unique": unique, "method": method, "where": where, "keys": keys,
                             "asc": [option & 1 == 0 for option in options],
                             "nulls": ["first" if option & 2 else "last" for option in options],
                             "opclass": opclasses}
        expected_indexes = {name: {"unique": index["isUnique"], "method": index["method"], "where": index.get("where"),
                                   "keys": [column["expression"] for column in index["columns"]],
                                   "asc": [column["asc"] for column in index["columns"]],
                                   "nulls": [column["nulls"] for column in index["columns"]],
                                   "opclass": [column.get("opclass") for column in index["columns"]]}
                            for name, index in table["indexes"].items()}
        for name in sorted(indexes.keys() | expected_indexes.keys()):
            if indexes.get(name) != expected_indexes.get(name):
                problems.append(f"{key}: index {name}: database {indexes.get(name)}, schema.ts "
                                f"{expected_indexes.get(name)}")

        policies = {name: {"as": kind, "for": command, "to": sorted(roles), "using": using, "withCheck": with_check}
                    for name, kind, command, roles, using, with_check in conn.execute(
                        "SELECT policyname, permissive, cmd, roles::text[], qual, with_check FROM pg_policies"
                        " WHERE schemaname = 'audit' AND tablename = %s", (table["name"],))}
        expected_policies = {name: {"as": policy["as"], "for": policy["for"], "to": sorted(policy["to"]),
                                    "using": policy.get("using"), "withCheck": policy.get("withCheck")}
                             for name, policy in table["policies"].items()}
        for name in sorted(policies.keys() | expected_policies.keys()):
            if policies.get(name) != expected_policies.get(name):
                problems.append(f"{key}: policy {name}: database {policies.get(name)}, schema.ts "
                                f"{expected_policies.get(name)}")
    return problems


def _snapshot(node_modules: Path, schema: Path = SCHEMA_TS) -> dict[str, Any]:
    result = _run(node_modules, "tsx", "test/snapshot.ts", str(schema))
    assert result.returncode == 0, result.stderr
    snapshot: dict[str, Any] = json.loads(result.stdout)
    return snapshot


def test_what_push_does_not_compare_matches_too(postgresql: psycopg.Connection[Any], node_modules: Path) -> None:
    snapshot = _snapshot(node_modules)
    assert len(snapshot["tables"]) == 5
    assert catalog_differences(postgresql, snapshot) == []


def test_a_wrong_expression_is_found_where_push_sees_none(postgresql: psycopg.Connection[Any],
                                                          pg_server: ThrowawayServer, node_modules: Path,
                                                          scratch: Path) -> None:
    wrong = _altered_schema(
        scratch, "wrong_expressions",
        (".where(sql`(user_id IS NOT NULL)`)", ".where(sql`(user_id IS NULL)`)"),
        ("octet_length((details)::text) <= 1048576", "octet_length((details)::text) <= 1048575"),
        ("to: auditTenantReader, using: tenantCompany }),\n    pgPolicy(\"audit_logs_definer_read\"",
         "to: auditTenantReader, using: sql`true` }),\n    pgPolicy(\"audit_logs_definer_read\""))
    problems = "\n".join(catalog_differences(postgresql, _snapshot(node_modules, wrong)))
    for name in ("index audit_logs_user_idx", "check audit_logs_details_printable", "policy audit_logs_tenant_reader"):
        assert name in problems, problems
    assert len(problems.splitlines()) == 3, problems
    # drizzle-kit's own comparison misses all three: why the test above exists.
    push = _push_audit(node_modules, _owner_read_only(pg_server, postgresql.info.dbname), wrong)
    assert push.no_changes, push.output


def test_drizzle_kit_push_as_the_installing_login_changes_nothing(postgresql: psycopg.Connection[Any],
                                                                  pg_server: ThrowawayServer, node_modules: Path,
                                                                  scratch: Path) -> None:
    """The ERP's naive definition, pushed with --force by the login that installed the log: refused."""
    naive = _altered_schema(scratch, "naive", (CREATED_AT, NAIVE_CREATED_AT))
    push = _push_audit(node_modules, _url(pg_server, postgresql.info.dbname, OWNER), naive, "--force")
    assert "must be owner of table audit_logs" in push.output and "42501" in push.output, push.output
    # drizzle-kit prints the refusal and exits 0: read its output, not its exit status.
    assert push.returncode == 0
    assert _created_at_type(postgresql) == "timestamp with time zone"


# drizzle.config.ts, the ERP's: its own tables, away from schema `audit` and from yoyo's tables.

ERP_TABLE = ("CREATE TABLE public.invoices (id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
             " company_id uuid NOT NULL, amount numeric(12, 2) NOT NULL)")


@pytest.fixture
def erp_database(postgresql: psycopg.Connection[Any], pg_server: ThrowawayServer) -> Iterator[str]:
    """This test's database, owned by the installing login as on Neon or RDS, with the ERP's table
    made by that login (which runs the ERP's migrations too)."""
    dbname = postgresql.info.dbname
    with psycopg.connect(pg_server.conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(OWNER)))
    with psycopg.connect(pg_server.conninfo_for(dbname, user=OWNER), autocommit=True) as conn:
        conn.execute(ERP_TABLE)
    yield dbname


def _erp_config(scratch: Path, name: str, *replacements: tuple[str, str]) -> Path:
    text = (DRIZZLE_DIR / "drizzle.config.ts").read_text()
    for old, new in replacements:
        assert text.count(old) == 1, f"{old!r} is not in drizzle.config.ts once"
        text = text.replace(old, new)
    path = scratch / f"{name}.config.ts"
    path.write_text(text)
    return path


def test_erp_config_keeps_push_and_pull_away_from_the_log(erp_database: str, pg_server: ThrowawayServer,
                                                          node_modules: Path, scratch: Path) -> None:
    url = _url(pg_server, erp_database, OWNER, default_transaction_read_only="on")
    push = _push(node_modules, "drizzle.config.ts", env={"DATABASE_URL": url})
    assert push.no_changes, push.output
    # pull (introspect) writes the ERP's table only: nothing of schema audit, nothing of yoyo's.
    config = _erp_config(scratch, "pull", ('out: "./drizzle",', f'out: "{scratch / "pulled"}",'))
    pull = _run(node_modules, "drizzle-kit", "pull", "--config", str(config), env={"DATABASE_URL": url})
    assert pull.returncode == 0, pull.stdout + pull.stderr
    pulled = (scratch / "pulled" / "schema.ts").read_text()
    assert 'pgTable("invoices"' in pulled and "audit" not in pulled and "yoyo" not in pulled, pulled


ERP_CONFIG_MISTAKES = [
    pytest.param(('  tablesFilter: ["!_yoyo_*", "!yoyo_lock"],\n', ""), 'DROP TABLE "_yoyo_migration" CASCADE;',
                 id="without tablesFilter"),
    pytest.param(('schemaFilter: ["public"],', 'schemaFilter: ["public", "audit"],'),
                 'DROP TABLE "audit"."audit_logs" CASCADE;', id="audit in schemaFilter"),
]


@pytest.mark.parametrize(("replacement", "expected"), ERP_CONFIG_MISTAKES)
def test_erp_config_without_its_filters_would_drop_tables(erp_database: str, pg_server: ThrowawayServer,
                                                          node_modules: Path, scratch: Path,
                                                          replacement: tuple[str, str], expected: str) -> None:
    config = _erp_config(scratch, "mistaken", replacement)
    # As a superuser, read-only: the installing login would stop earlier, at "permission denied"
    # while counting the rows of the log's tables; this shows what push proposes.
    url = _url(pg_server, erp_database, SUPERUSER, default_transaction_read_only="on")
    push = _push(node_modules, config, env={"DATABASE_URL": url})
    assert expected in push.statements, push.output


def test_generate_ignores_the_filters_for_tables_of_the_schema_files(erp_database: str, pg_server: ThrowawayServer,
                                                                      node_modules: Path, scratch: Path) -> None:
    """The mistake drizzle.config.ts warns of: a schema file that re-exports this module's tables."""
    reexporting = scratch / "erp-schema.ts"
    reexporting.write_text(f'export * from "{DRIZZLE_DIR / "test" / "erp-schema"}";\n'
                           f'export * from "{DRIZZLE_DIR / "src" / "schema"}";\n')
    config = _erp_config(scratch, "reexporting", ('schema: "./test/erp-schema.ts",', f'schema: "{reexporting}",'),
                         ('out: "./drizzle",', f'out: "{scratch / "drizzle"}",'))
    generate = _run(node_modules, "drizzle-kit", "generate", "--config", str(config))
    assert generate.returncode == 0, generate.stdout + generate.stderr
    (migration,) = (scratch / "drizzle").glob("*.sql")
    assert 'CREATE TABLE "audit"."audit_logs"' in migration.read_text()
    # push, with the same filters, leaves schema `audit` alone.
    url = _url(pg_server, erp_database, OWNER, default_transaction_read_only="on")
    push = _push(node_modules, config, env={"DATABASE_URL": url})
    assert push.no_changes, push.output


# (b) Recording as the writer, reading back as the reader.

def test_record_then_read_back_exactly(postgresql: psycopg.Connection[Any], pg_server: ThrowawayServer,
                                       node_modules: Path) -> None:
    details = {"amount": "120.50", "currency": "EUR", "lines": [1, 2.5, None, True], "note": "café ✓ \"quoted\"",
               "nested": {"empty": {}, "big": "12345678901234567890"}}
    entry = {"companyId": str(uuid.uuid4()), "action": "CREATE_INVOICE", "entity": "invoice",
             "entityId": str(uuid.uuid4()), "details": details, "userId": str(uuid.uuid4())}
    dbname = postgresql.info.dbname
    result = _run(node_modules, "tsx", "test/roundtrip.ts", json.dumps(entry), env={
        "WRITER_URL": _url(pg_server, dbname, WRITER),
        # The reader's session in another time zone than the writer's and the server's (UTC).
        "READER_URL": _url(pg_server, dbname, READER, TimeZone="Asia/Kolkata"),
    })
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert read["readerTimeZone"] == "Asia/Kolkata"
    ids = read["ids"]
    assert len(ids) == 3 and len(set(ids)) == 3
    by_id = {row["id"]: row for row in read["rows"]}
    stored = {str(row[0]): row for row in postgresql.execute(
        "SELECT id, details, created_at, txid, origin, user_id, action, context FROM audit.audit_logs"
        " WHERE id = ANY(%s::uuid[])", (ids,))}
    assert by_id.keys() == stored.keys() == set(ids)

    first = by_id[ids[0]]
    assert stored[ids[0]][1] == details and first["details"] == details
    assert (first["companyId"], first["entityId"], first["userId"], first["action"], first["context"]) == (
        entry["companyId"], entry["entityId"], entry["userId"], "CREATE_INVOICE", {})
    assert [by_id[i]["details"] for i in ids[1:]] == [{"step": "manager"}, {"step": "finance"}]
    assert [by_id[i]["userId"] for i in ids[1:]] == [entry["userId"], None]
    for entry_id, row in by_id.items():
        _, _, created_at, txid, origin, *_ = stored[entry_id]
        # created_at: the reader's zone's text, the same instant to the microsecond.
        assert row["createdAt"].endswith("+05:30"), row["createdAt"]
        assert datetime.fromisoformat(row["createdAt"]) == created_at
        # origin and txid as exact integers: a system identifier is far beyond a JS number's 2^53.
        assert (row["txid"], row["origin"]) == (str(txid), str(origin))
        assert origin > 2**53
    # One transaction: one created_at for all three.
    assert len({stored[i][2] for i in ids}) == 1


# (c) What the writer is refused.

def test_writer_cannot_insert_through_drizzle(postgresql: psycopg.Connection[Any], pg_server: ThrowawayServer,
                                              node_modules: Path) -> None:
    result = _run(node_modules, "tsx", "test/refusals.ts",
                  env={"WRITER_URL": _url(pg_server, postgresql.info.dbname, WRITER)})
    assert result.returncode == 0, result.stderr
    refusals = json.loads(result.stdout)
    assert refusals["insert"] == {"refused": True, "drizzleQueryError": True, "code": "42501",
                                  "name": "InsufficientPrivilege",
                                  "message": "permission denied for table audit_logs"}
    assert refusals["blankAction"] == {"refused": True, "drizzleQueryError": True, "code": "AU002",
                                       "name": "InvalidEntry", "parameter": "action",
                                       "message": "record_audit: action must not be blank"}
    assert refusals["notAnError"] is None
    assert postgresql.execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (0,)


# (d) The TypeScript type-checks, type tests included (test/types.ts).

def test_typescript_type_checks(node_modules: Path) -> None:
    result = _run(node_modules, "tsc", "--noEmit", "-p", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_search_pages_by_cursor_without_skipping_entries_that_share_an_instant(
        postgresql: psycopg.Connection[Any], pg_server: ThrowawayServer, node_modules: Path) -> None:
    """Pages of 7 over 40 entries, 30 of them from one transaction (one created_at): each once, in order."""
    company = uuid.uuid4()
    writer = psycopg.connect(pg_server.conninfo_for(postgresql.info.dbname, user=WRITER))
    with writer:
        for batch in (30, 5, 5):
            writer.execute("SELECT audit.record_audit_many(array_fill(%s::uuid, ARRAY[%s]), array_fill('A'::text,"
                           " ARRAY[%s]), array_fill('e'::text, ARRAY[%s]), ARRAY(SELECT gen_random_uuid()"
                           " FROM generate_series(1, %s)), array_fill('{}'::jsonb, ARRAY[%s]),"
                           " array_fill(gen_random_uuid(), ARRAY[%s]))", (company, *[batch] * 6))
            writer.commit()
    result = _run(node_modules, "tsx", "test/paging.ts", str(company), "7",
                  env={"READER_URL": _url(pg_server, postgresql.info.dbname, READER)})
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    expected = [str(row[0]) for row in postgresql.execute(
        "SELECT id FROM audit.audit_logs WHERE company_id = %s ORDER BY created_at DESC, id DESC", (company,))]
    assert read["ids"] == expected and len(expected) == 40 and read["pages"] == 6


# What searchAudit() sends, checked without a database.

def test_search_sends_the_cursor_in_named_notation(node_modules: Path) -> None:
    result = _run(node_modules, "tsx", "test/search-query.ts")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for query in (out["first"], out["next"]):
        assert re.search(r"FROM audit\.search\(\s*company_id\s*=>\s*\$1::uuid,", query["sql"]), query["sql"]
        assert re.search(r"after\s*=>\s*\$9::text\s*\)", query["sql"]), query["sql"]
        assert re.search(r"\bs\.cursor\b", query["sql"]) and "after_created_at" not in query["sql"]
        assert len(query["params"]) == 9
    assert out["first"]["params"][3] == "UPDATE_INVOICE" and out["first"]["params"][8] is None
    assert out["next"]["params"][7:] == [2, "opaque-cursor"]
    assert (out["fullPageNext"], out["shortPageNext"], out["emptyPageNext"]) == ("c2", None, None)
