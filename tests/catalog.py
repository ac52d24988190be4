"""What a database holds, read from its catalogs, in a form two databases can be compared by."""

from __future__ import annotations

from typing import Any

import psycopg

# Everything of schema audit that a DBA would review: if two databases give
# the same answers here, they hold the same schema.
AUDIT_SCHEMA_QUERIES = {
    "schema": """
        SELECT n.nspname, obj_description(n.oid, 'pg_namespace'), n.nspacl::text
        FROM pg_namespace n WHERE n.nspname = 'audit'""",
    "relations": """
        SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class'),
               (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(c.relacl) a)
        FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace ORDER BY c.relname""",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum), a.attacl::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'audit'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint')
        FROM pg_constraint WHERE connamespace = 'audit'::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid)
        FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'audit'::regnamespace)
        ORDER BY 1""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, tgenabled, pg_get_triggerdef(oid), obj_description(oid, 'pg_trigger')
        FROM pg_trigger WHERE NOT tgisinternal
          AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'audit'::regnamespace)
        ORDER BY 1, 2""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
               obj_description(p.oid, 'pg_proc'),
               (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(p.proacl) a)
        FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace ORDER BY 1, 2""",
    "roles": """
        SELECT rolname, rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolbypassrls
        FROM pg_roles WHERE rolname LIKE 'audit\\_%' ORDER BY 1""",
    "owners": """
        SELECT 'schema', nspowner::regrole::text FROM pg_namespace WHERE nspname = 'audit'
        UNION ALL SELECT c.relname, c.relowner::regrole::text FROM pg_class c
            WHERE c.relnamespace = 'audit'::regnamespace
        UNION ALL SELECT p.oid::regprocedure::text, p.proowner::regrole::text FROM pg_proc p
            WHERE p.pronamespace = 'audit'::regnamespace
        ORDER BY 1""",
    "policies": """
        SELECT polrelid::regclass::text, polname, polcmd, polpermissive, polroles::regrole[]::text[],
               pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
        FROM pg_policy WHERE polrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'audit'::regnamespace)
        ORDER BY 1, 2""",
}

# Every object a project could leave behind in a database, whatever its schema.
USER_OBJECT_QUERIES = {
    "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' ORDER BY 1",
    "relations": """
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
          AND c.relname NOT LIKE '%yoyo%'
        ORDER BY 1, 2""",
    "functions": """
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1""",
    "types": """
        SELECT t.oid::regtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
          AND t.typname NOT LIKE '%yoyo%'
        ORDER BY 1""",
    "triggers": "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2",
    "event_triggers": "SELECT evtname FROM pg_event_trigger ORDER BY 1",
    "default_acls": "SELECT defaclrole::regrole::text, defaclnamespace, defaclobjtype FROM pg_default_acl ORDER BY 1",
    "public_acl": "SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'",
    "roles": "SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' ORDER BY 1",
}


def snapshot(conn: psycopg.Connection[Any], queries: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    return {name: conn.execute(query).fetchall() for name, query in queries.items()}
