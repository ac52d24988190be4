"""The table, its index, its privileges and its documentation, as the catalogs report them."""

from __future__ import annotations

import psycopg
import pytest

from audit_py.server import SUPERUSER

from .conftest import OUTSIDER, OWNER, READER, WRITER, ConnectAs


def test_columns_are_those_of_the_specification(connect_as: ConnectAs) -> None:
    rows = connect_as(SUPERUSER).execute("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = 'audit.audit_logs'::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""").fetchall()
    assert rows == [
        # The stamp (0014.cheaper-entries): a version 7 id, the transaction, the cluster; audit_definer may
        # not name these columns, the trigger stamps every other role's inserts alike.
        ("id", "uuid", True, "audit._new_entry_id()"),
        ("company_id", "uuid", True, None),
        ("franchise_id", "uuid", False, None),
        ("user_id", "uuid", False, None),
        ("action", "text", True, None),
        ("entity", "text", True, None),
        ("entity_id", "uuid", True, None),
        ("details", "jsonb", True, None),
        ("created_at", "timestamp with time zone", True, "now()"),
        ("txid", "bigint", False, "txid_current()"),  # added by 0002.tamper-evidence
        ("context", "jsonb", True, "'{}'::jsonb"),  # added by 0005.change-tracking
        ("origin", "bigint", False, "(pg_control_system()).system_identifier"),  # added by 0012.portable-horizon
    ]


def test_primary_key_and_audit_idx(connect_as: ConnectAs) -> None:
    conn = connect_as(SUPERUSER)
    indexes = dict(conn.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
        " WHERE indrelid = 'audit.audit_logs'::regclass").fetchall())
    assert indexes["audit.audit_idx"] == \
        "CREATE INDEX audit_idx ON audit.audit_logs USING btree (company_id, franchise_id, created_at, id)"
    # The reading indexes of 0008.reading-indexes, each ending in the order pages follow.
    for name, columns in [("audit_logs_company_idx", "(company_id, created_at, id)"),
                          ("audit_logs_user_idx", "(company_id, user_id, created_at, id) WHERE (user_id IS NOT NULL)"),
                          ("audit_logs_entity_idx", "(entity, entity_id, created_at, id)")]:
        assert indexes[f"audit.{name}"] == f"CREATE INDEX {name} ON audit.audit_logs USING btree {columns}"
    assert indexes["audit.audit_logs_pkey"].endswith("USING btree (id)")


def test_everything_is_documented(connect_as: ConnectAs) -> None:
    undocumented = connect_as(SUPERUSER).execute("""
        SELECT 'schema audit' FROM pg_namespace n
            WHERE nspname = 'audit' AND obj_description(n.oid, 'pg_namespace') IS NULL
        UNION ALL SELECT 'relation ' || relname FROM pg_class c
            WHERE relnamespace = 'audit'::regnamespace AND relkind IN ('r', 'v', 'i', 'p')
              AND obj_description(c.oid, 'pg_class') IS NULL AND relname NOT LIKE '%_pkey'
        UNION ALL SELECT 'column ' || c.relname || '.' || attname FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind IN ('r', 'v', 'p') AND attnum > 0
              AND NOT attisdropped AND col_description(c.oid, attnum) IS NULL
        UNION ALL SELECT 'function ' || oid::regprocedure FROM pg_proc
            WHERE pronamespace = 'audit'::regnamespace AND obj_description(oid, 'pg_proc') IS NULL
        UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger t
            WHERE tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'audit'::regnamespace)
              AND NOT tgisinternal AND obj_description(t.oid, 'pg_trigger') IS NULL
        UNION ALL SELECT 'role ' || rolname FROM pg_roles r
            WHERE rolname LIKE 'audit\\_%' AND shobj_description(r.oid, 'pg_authid') IS NULL
    """).fetchall()
    assert undocumented == []


def test_every_function_pins_its_search_path_but_those_whose_comment_says_why_not(connect_as: ConnectAs) -> None:
    unpinned = connect_as(SUPERUSER).execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'audit'::regnamespace"
        " AND (proconfig IS NULL OR NOT 'search_path=pg_catalog, pg_temp' = ANY(proconfig))"
        " AND proname <> '_track_changes' ORDER BY 1").fetchall()
    assert [name for (name,) in unpinned] == [
        "_context_extra", "_context_user", "_context_uuid", "_entry_problem", "_micros",
        "_missing_company", "_new_entry_id", "_opt_uuid_bytes", "_page_problem", "_str_bytes", "_untrackable",
        "entry_hash",
        "page_cursor"]
    # Its trap views for a missing transition table come before pg_temp (sql/0055_tracking.sql). The
    # other settings are each one that changes how a built-in type prints: test_trust_boundary.py
    # sets them in the writer's session, but for lc_monetary, which a stock machine has no locale to
    # change (C, C.utf8 and POSIX print money alike).
    assert connect_as(SUPERUSER).execute(
        "SELECT proconfig FROM pg_proc WHERE oid = 'audit._track_changes()'::regprocedure").fetchone() == (
        ["search_path=pg_catalog, audit, pg_temp", "jit=off", "extra_float_digits=1", "DateStyle=ISO, YMD",
         "IntervalStyle=postgres", "TimeZone=UTC", "bytea_output=hex", "lc_monetary=C"],)


def test_every_security_definer_function_belongs_to_the_function_role(connect_as: ConnectAs) -> None:
    owners = connect_as(SUPERUSER).execute(
        "SELECT proname, proowner::regrole::text, prosecdef FROM pg_proc"
        " WHERE pronamespace = 'audit'::regnamespace ORDER BY 1").fetchall()
    assert {name for name, owner, definer in owners if definer} == {
        "_pinned_companies", "_track_changes", "digest", "record_audit", "record_audit_many", "seal", "verify"}
    assert {owner for name, owner, definer in owners if definer} == {"audit_definer"}
    assert {owner for name, owner, definer in owners if not definer} == {"audit_owner"}


def test_no_login_owns_or_holds_the_owning_roles(connect_as: ConnectAs) -> None:
    conn = connect_as(SUPERUSER)
    owners = conn.execute(
        "SELECT DISTINCT relowner::regrole::text FROM pg_class WHERE relnamespace = 'audit'::regnamespace"
        " UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'audit'").fetchall()
    assert owners == [("audit_owner",)]
    members = conn.execute(
        "SELECT r.rolname, m.member::regrole::text FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE r.rolname IN ('audit_owner', 'audit_definer')").fetchall()
    assert members == []
    attributes = conn.execute(
        "SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
        " FROM pg_roles WHERE rolname IN ('audit_owner', 'audit_definer', 'audit_admin') ORDER BY 1").fetchall()
    assert attributes == [(name, False, False, False, False, False, False)
                          for name in ("audit_admin", "audit_definer", "audit_owner")]


def test_public_gets_nothing_in_schema_audit(connect_as: ConnectAs) -> None:
    conn = connect_as(SUPERUSER)
    granted_to_public = conn.execute("""
        SELECT 'schema' FROM pg_namespace WHERE nspname = 'audit' AND has_schema_privilege('public', oid, 'USAGE')
        UNION ALL SELECT 'function ' || oid::regprocedure FROM pg_proc
            WHERE pronamespace = 'audit'::regnamespace AND has_function_privilege('public', oid, 'EXECUTE')
        UNION ALL SELECT 'relation ' || relname FROM pg_class WHERE relnamespace = 'audit'::regnamespace
            AND (SELECT bool_or(a.grantee = 0) FROM aclexplode(relacl) a)
    """).fetchall()
    assert granted_to_public == []


ROLE_PRIVILEGES = """
    SELECT p.privilege || ' ' || c.relname
    FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(privilege)
    CROSS JOIN pg_class c
    WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind = 'r'
      AND has_table_privilege(%(role)s, c.oid, p.privilege)
    UNION ALL SELECT 'EXECUTE ' || proname FROM pg_proc
        WHERE pronamespace = 'audit'::regnamespace AND has_function_privilege(%(role)s, oid, 'EXECUTE')
    -- A privilege on some columns only: the columns, in the table's order.
    UNION ALL SELECT p.privilege || ' ' || c.relname || ' (' || string_agg(a.attname, ', ' ORDER BY a.attnum) || ')'
    FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) AS p(privilege)
    CROSS JOIN pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind = 'r'
      AND NOT has_table_privilege(%(role)s, c.oid, p.privilege)
      AND has_column_privilege(%(role)s, c.oid, a.attnum, p.privilege)
    GROUP BY p.privilege, c.relname
    ORDER BY 1
"""


WRITER_PRIVILEGES = ["EXECUTE _refuse_truncate", "EXECUTE _track_changes", "EXECUTE _untrackable",
                     "EXECUTE disable_tracking", "EXECUTE enable_tracking", "EXECUTE record_audit",
                     "EXECUTE record_audit_many", "EXECUTE set_context", "SELECT strict_mode"]
ADMIN_PRIVILEGES = ["DELETE strict_mode", "DELETE tenant_logins", "EXECUTE disable_strict_mode",
                    "EXECUTE enable_strict_mode", "EXECUTE pin_tenant", "EXECUTE seal", "EXECUTE unpin_tenant",
                    "INSERT strict_mode", "INSERT tenant_logins", "SELECT strict_mode", "SELECT tenant_logins"]


@pytest.mark.parametrize(("role", "expected"), [
    ("audit_writer", WRITER_PRIVILEGES),
    # What the verifiers compare, for a DBA's own checks, too.
    ("audit_reader", ["EXECUTE _cursor_position", "EXECUTE _page_problem", "EXECUTE _protection_problems",
                      "EXECUTE _surface", "EXECUTE digest", "EXECUTE history", "EXECUTE page_cursor",
                      "EXECUTE protection_problems", "EXECUTE schema_version", "EXECUTE search",
                      "EXECUTE set_context", "EXECUTE verify", "SELECT audit_logs", "SELECT blocks",
                      "SELECT strict_mode"]),
    # Row-level security confines what it sees to one company: tests/test_reading.py.
    ("audit_tenant_reader", ["EXECUTE _cursor_position", "EXECUTE _page_problem", "EXECUTE _pinned_companies",
                             "EXECUTE history", "EXECUTE page_cursor", "EXECUTE search", "EXECUTE set_context",
                             "SELECT audit_logs", "SELECT blocks"]),
    ("audit_admin", ADMIN_PRIVILEGES),
    # What the SECURITY DEFINER functions it owns need, and no UPDATE, DELETE or TRUNCATE of the log.
    ("audit_definer", ["EXECUTE _block_hash", "EXECUTE _block_hash_v2", "EXECUTE _context_extra",
                       "EXECUTE _context_user", "EXECUTE _context_uuid", "EXECUTE _entry_problem",
                       "EXECUTE _merkle_root", "EXECUTE _micros", "EXECUTE _missing_company", "EXECUTE _new_entry_id",
                       "EXECUTE _opt_uuid_bytes", "EXECUTE _pinned_companies", "EXECUTE _protection_problems",
                       "EXECUTE _refuse_tracking", "EXECUTE _require_user", "EXECUTE _str_bytes", "EXECUTE _surface",
                       "EXECUTE _track_changes", "EXECUTE _untrackable", "EXECUTE digest", "EXECUTE entry_hash",
                       "EXECUTE record_audit", "EXECUTE record_audit_many", "EXECUTE seal", "EXECUTE verify",
                       # Not the stamp's columns (id, created_at, txid, origin): their defaults stamp its entries.
                       "INSERT audit_logs (company_id, franchise_id, user_id, action, entity, entity_id, details,"
                       " context)", "INSERT blocks", "SELECT audit_logs", "SELECT blocks",
                       "SELECT seal_lock", "SELECT strict_mode", "SELECT tenant_logins", "UPDATE seal_lock"]),
    # The installing login keeps audit_admin; the tests also grant it audit_writer, to track the ERP's tables.
    (OWNER, sorted(set(ADMIN_PRIVILEGES) | set(WRITER_PRIVILEGES))),
    (OUTSIDER, []),
])
def test_each_role_has_exactly_its_privileges(connect_as: ConnectAs, role: str, expected: list[str]) -> None:
    rows = connect_as(SUPERUSER).execute(ROLE_PRIVILEGES, {"role": role}).fetchall()
    assert [row[0] for row in rows] == expected


def test_roles_cannot_log_in(connect_as: ConnectAs) -> None:
    rows = connect_as(SUPERUSER).execute(
        "SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'audit\\_%' ORDER BY 1").fetchall()
    assert rows == [(name, False) for name in ("audit_admin", "audit_definer", "audit_owner", "audit_reader",
                                               "audit_tenant_reader", "audit_writer")]


def test_reader_reads_and_writer_does_not(connect_as: ConnectAs) -> None:
    assert connect_as(READER).execute("SELECT count(*) FROM audit.audit_logs").fetchone() == (0,)
    for role in (WRITER, OUTSIDER):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connect_as(role).execute("SELECT count(*) FROM audit.audit_logs")


def test_protection_problems_for_monitoring_name_what_changed(connect_as: ConnectAs) -> None:
    reader = connect_as(READER, autocommit=True)
    assert reader.execute("SELECT * FROM audit.protection_problems()").fetchall() == []
    connect_as(SUPERUSER, autocommit=True).execute("GRANT INSERT ON audit.audit_logs TO audit_writer")
    problems = [row[0] for row in reader.execute("SELECT * FROM audit.protection_problems()").fetchall()]
    assert problems and all("table audit.audit_logs" in problem for problem in problems), problems
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        connect_as(OUTSIDER).execute("SELECT * FROM audit.protection_problems()")
