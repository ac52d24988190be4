"""The tracking trigger function with its protections taken away one at a time: what each one costs.

Each variant is a copy of the installed audit._track_changes(), read back from the server, with one
part replaced, cumulatively: the output settings it pins (not jit = off, which spares each statement
a JIT compilation and protects nothing); its per-statement catalog query (replaced by
what the query finds for the bench's invoices table, as constants); the context it reads (strict mode
included); the diff of an UPDATE (the new row's JSON recorded whole). Never installed by the product:
the copies live in schema public of a throwaway server, owned by audit_definer as the real one is.

What the copies show is the ceiling of a faster design that keeps each protection: a trigger function
generated per tracked table, with the table's columns compiled in, could drop the catalog query and
nothing else, and it would still have to find, at every statement, that the table had not changed
under it. Every edit asserts that the text it replaces is there, so a change to the function fails
the bench rather than measuring something else.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import psycopg
from psycopg import sql

# The catalog query's results for the invoices table: its key is `id`, nothing is excluded, every
# column is of a built-in type, and it is a plain table whose trigger has the right transition tables.
CATALOG_RESULTS = ("key_column := 'id'; excluded := '{}'; built_in := true; whole := true;"
                   " old_table := 'audit_old'; new_table := 'audit_new';")
CONTEXT = {"(SELECT audit._context_uuid('audit.company_id'))": "NULL::pg_catalog.uuid",
           "(SELECT audit._context_uuid('audit.franchise_id'))": "NULL::pg_catalog.uuid",
           "(SELECT audit._context_user(operation))": "NULL::pg_catalog.uuid",
           "(SELECT audit._context_extra())": "'{}'::pg_catalog.jsonb"}
PINNED = re.compile(r'^ SET "?(extra_float_digits|datestyle|intervalstyle|timezone|bytea_output|lc_monetary)"? TO .*\n',
                    re.I | re.M)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"audit._track_changes() no longer holds {old[:60]!r}"
    return text.replace(old, new)


def _without_settings(text: str) -> str:
    stripped, count = PINNED.subn("", text)
    assert count == 6, f"audit._track_changes() pins {count} output settings, not 6"
    return stripped


def _without_catalog_query(text: str) -> str:
    start = text.index("    SELECT c.key_column, c.excluded, c.built_in,")
    end = text.index("WHERE r.oid = TG_RELID;", start) + len("WHERE r.oid = TG_RELID;")
    return text[:start] + "    " + CATALOG_RESULTS + text[end:]


def _without_context(text: str) -> str:
    for old, new in CONTEXT.items():
        text = _replace(text, old, new)
    return text


def _without_diff(text: str) -> str:
    start = text.index("        FROM (\n            SELECT n.j AS new_row, d.changes")
    end = text.index("WHERE c.changes IS NOT NULL;", start) + len("WHERE c.changes IS NOT NULL;")
    return (text[:start] + "        FROM (SELECT pg_catalog.to_jsonb(t.*) AS new_row, '{}'::pg_catalog.jsonb AS changes"
            " FROM audit_new t) AS c;" + text[end:])


# Cumulative: each takes away what the one before it took, and one thing more.
VARIANTS: dict[str, list[Callable[[str], str]]] = {
    "without its pinned settings": [_without_settings],
    "without its catalog query": [_without_settings, _without_catalog_query],
    "without its catalog query, settings and context": [_without_settings, _without_catalog_query, _without_context],
    "without all that and the diff": [_without_settings, _without_catalog_query, _without_context, _without_diff],
}


def function_name(variant: str) -> str:
    return "public.bench_track_" + re.sub(r"\W+", "_", variant).strip("_")


def create(conn: psycopg.Connection[tuple[object, ...]], variant: str) -> str:
    """Create the variant's copy of audit._track_changes(); return its name."""
    row = conn.execute("SELECT pg_get_functiondef('audit._track_changes()'::regprocedure)").fetchone()
    assert row is not None
    text = str(row[0])
    for edit in VARIANTS[variant]:
        text = edit(text)
    name = function_name(variant)
    install_copy(conn, text, name)
    return name


def install_copy(conn: psycopg.Connection[tuple[object, ...]], definition: str, name: str) -> None:
    """A definition of audit._track_changes() created as the function `name`, owned by audit_definer as the
    real one is."""
    conn.execute(_replace(definition, "FUNCTION audit._track_changes()", f"FUNCTION {name}()").encode())
    conn.execute(f"ALTER FUNCTION {name}() OWNER TO audit_definer")


def track_updates_with(conn: psycopg.Connection[tuple[object, ...]], table: str, function: str) -> None:
    """Track `table`, its UPDATEs through `function` with the configuration enable_tracking() gave it."""
    conn.execute("SELECT audit.enable_tracking(%s, 'invoice')", (table,))
    row = conn.execute("SELECT convert_from(substring(tgargs, 1, length(tgargs) - 1), 'UTF8') FROM pg_trigger"
                       " WHERE tgrelid = %s::regclass AND tgname = 'audit_track_update'", (table,)).fetchone()
    assert row is not None
    conn.execute(f"DROP TRIGGER audit_track_update ON {table}")
    conn.execute(sql.SQL("CREATE TRIGGER audit_track_update AFTER UPDATE ON {} REFERENCING OLD TABLE AS audit_old"
                         " NEW TABLE AS audit_new FOR EACH STATEMENT EXECUTE FUNCTION {}({})").format(
        sql.SQL(table), sql.SQL(function), sql.Literal(str(row[0]))))
