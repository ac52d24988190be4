// The audit log's tables and views as drizzle-orm sees them: the migrated schema `audit`
// (sql/0020_audit_logs.sql, 0037, 0055, 0070, 0075, 0092, 0093), declared exactly, so that
// drizzle-kit finds nothing to change (tests/test_drizzle.py runs `drizzle-kit push` against a
// migrated database and expects "No changes detected").
//
// Read these tables with drizzle as a login granted audit_reader (or audit_tenant_reader). Never
// write them: only audit.record_audit() and audit.record_audit_many() may (src/record.ts), and no
// login may change them (README.md). Do not list this file in the `schema` of the ERP's own
// drizzle.config.ts: `drizzle-kit generate` ignores schemaFilter and tablesFilter for tables of the
// schema files and would write CREATE TABLE audit.* into the ERP's migrations (README.md here).

import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgPolicy,
  pgRole,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

export const audit = pgSchema("audit");

// The log's roles, made by its migrations. `.existing()`: drizzle-kit never creates, alters or
// drops them (and with `entities.roles` unset it does not compare roles at all); the policies
// below name them.
export const auditWriter = pgRole("audit_writer").existing();
export const auditReader = pgRole("audit_reader").existing();
export const auditTenantReader = pgRole("audit_tenant_reader").existing();
export const auditAdmin = pgRole("audit_admin").existing();
export const auditDefiner = pgRole("audit_definer").existing();

// PostgreSQL types drizzle-orm 0.45 has no column builder for. drizzle-kit compares a column's
// type by name, so the names are PostgreSQL's own.
/** bytea, read as node-postgres reads it: a Buffer. */
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });
/** regrole, read as its text: the role's name. */
const regrole = customType<{ data: string }>({ dataType: () => "regrole" });
/** name (a role name, 63 bytes at most). */
const name = customType<{ data: string }>({ dataType: () => "name" });
/** regclass, read as its text: the table's name, schema-qualified when not on the search_path. */
const regclass = customType<{ data: string }>({ dataType: () => "regclass" });

// The tenant reader's row-level security expression, on entries and blocks alike
// (0092_tenant_readers.sql), as PostgreSQL prints it back (pg_policies.qual): drizzle-kit's push
// ignores policy expressions, tests/test_drizzle.py compares them, character for character.
const tenantCompany = sql`((company_id = (NULLIF(current_setting('audit.company_id'::text, true), ''::text))::uuid) AND COALESCE(((NULLIF(current_setting('audit.company_id'::text, true), ''::text))::uuid = ANY (( SELECT audit._pinned_companies() AS _pinned_companies)::uuid[])), true))`;

/**
 * audit.audit_logs: one row per critical action, append-only.
 *
 * Column by column as `\d audit.audit_logs` shows it, in the table's order (txid, context and
 * origin last: later migrations added them).
 */
export const auditLogs = audit.table(
  "audit_logs",
  {
    // Chosen by the database on insert (the default below for the recording functions, which may not
    // name it; a trigger replaces any value another role gives): never pass one. A time-ordered
    // version 7 uuid (sql/0020_audit_logs.sql says how).
    id: uuid("id").primaryKey().default(sql`audit._new_entry_id()`),
    companyId: uuid("company_id").notNull(),
    franchiseId: uuid("franchise_id"),
    userId: uuid("user_id"),
    action: text("action").notNull(),
    entity: text("entity").notNull(),
    entityId: uuid("entity_id").notNull(),
    details: jsonb("details").$type<Record<string, unknown>>().notNull(),
    // timestamptz, read as PostgreSQL's own text ("2026-11-27 07:26:35.806209+00"): not
    // `timestamp()` without time zone, which node-postgres and drizzle read in the client's time
    // zone and which drizzle-kit would "fix" into `ALTER COLUMN created_at SET DATA TYPE timestamp`
    // (the ERP's naive `timestamp("created_at").defaultNow()`: entries shifted by the offset); and
    // not mode 'date', whose JS Date keeps milliseconds only: entries a few microseconds apart
    // compare equal, and a page boundary built from one skips or repeats entries. Sort and page by
    // the cursor of src/read.ts, never by this text either. No precision: the column has
    // none (6, PostgreSQL's default), and `precision: 6` would be drift.
    createdAt: timestamp("created_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    // bigint as a JS bigint: origin is a cluster's system identifier (about 7.3e18), far beyond
    // Number.MAX_SAFE_INTEGER, where mode 'number' would silently round it; txid likewise, for
    // consistency (it is an xid8, epoch included).
    txid: bigint("txid", { mode: "bigint" }).default(sql`txid_current()`),
    context: jsonb("context").$type<Record<string, unknown>>().notNull().default({}),
    origin: bigint("origin", { mode: "bigint" }).default(sql`(pg_control_system()).system_identifier`),
  },
  (t) => [
    // The reading indexes, each ending in (created_at, id), the order pages follow.
    index("audit_idx").on(t.companyId, t.franchiseId, t.createdAt, t.id),
    index("audit_logs_company_idx").on(t.companyId, t.createdAt, t.id),
    index("audit_logs_user_idx").on(t.companyId, t.userId, t.createdAt, t.id).where(sql`(user_id IS NOT NULL)`),
    index("audit_logs_entity_idx").on(t.entity, t.entityId, t.createdAt, t.id),
    // BRIN, for audit.seal(); `.using("brin", ...)`, else drizzle-kit would see a btree.
    index("audit_logs_txid_brin").using("brin", t.txid),
    index("audit_logs_origin_txid_idx").on(t.origin, t.txid).where(sql`(origin IS NOT NULL)`),
    // CHECK constraints in the text PostgreSQL prints back (pg_get_constraintdef), the text that
    // drizzle-kit's snapshots hold: the migrations write pg_catalog.jsonb_typeof(...), and
    // PostgreSQL drops the qualification and adds the casts. push compares CHECKs by name only;
    // tests/test_drizzle.py compares the expressions. Likewise the index predicates below.
    check("audit_logs_action_not_blank", sql`action ~ '[^[:space:]]'::text`),
    check("audit_logs_entity_not_blank", sql`entity ~ '[^[:space:]]'::text`),
    check("audit_logs_details_is_object", sql`jsonb_typeof(details) = 'object'::text`),
    check("audit_logs_context_is_object", sql`jsonb_typeof(context) = 'object'::text`),
    check("audit_logs_details_printable", sql`octet_length((details)::text) <= 1048576`),
    check("audit_logs_context_printable", sql`octet_length((context)::text) <= 1048576`),
    // Row-level security (0092_tenant_readers.sql), on for every table of the log: `.enableRLS()`
    // says so whatever the policies (drizzle-kit would also infer it from them). Only audit_definer
    // (the SECURITY DEFINER functions) may insert: the writer role has no INSERT privilege at all.
    pgPolicy("audit_logs_reader", { as: "permissive", for: "select", to: auditReader, using: sql`true` }),
    pgPolicy("audit_logs_tenant_reader", { as: "permissive", for: "select", to: auditTenantReader, using: tenantCompany }),
    pgPolicy("audit_logs_definer_read", { as: "permissive", for: "select", to: auditDefiner, using: sql`true` }),
    pgPolicy("audit_logs_definer_insert", { as: "permissive", for: "insert", to: auditDefiner, withCheck: sql`true` }),
  ],
).enableRLS();

/** audit.blocks: the sealed hash chain, one per company. Written by audit.seal() only. */
export const blocks = audit.table(
  "blocks",
  {
    companyId: uuid("company_id").notNull(),
    blockNo: bigint("block_no", { mode: "bigint" }).notNull(),
    xidFrom: bigint("xid_from", { mode: "bigint" }).notNull(),
    xidTo: bigint("xid_to", { mode: "bigint" }).notNull(),
    entryIds: uuid("entry_ids").array().notNull(),
    entryHashes: bytea("entry_hashes").array().notNull(),
    merkleRoot: bytea("merkle_root").notNull(),
    prevHash: bytea("prev_hash").notNull(),
    blockHash: bytea("block_hash").notNull(),
    sealedAt: timestamp("sealed_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    format: bigint("format", { mode: "bigint" }).notNull(),
    origin: bigint("origin", { mode: "bigint" }),
  },
  (t) => [
    // A named composite key: blocks_pkey, as the migration names it.
    primaryKey({ name: "blocks_pkey", columns: [t.companyId, t.blockNo] }),
    index("blocks_xid_to_idx").on(t.xidTo),
    index("blocks_origin_xid_to_idx").on(t.origin, t.xidTo),
    check("blocks_range_is_ordered", sql`xid_from < xid_to`),
    check("blocks_one_hash_per_entry", sql`cardinality(entry_ids) = cardinality(entry_hashes)`),
    pgPolicy("blocks_reader", { as: "permissive", for: "select", to: auditReader, using: sql`true` }),
    pgPolicy("blocks_tenant_reader", { as: "permissive", for: "select", to: auditTenantReader, using: tenantCompany }),
    pgPolicy("blocks_definer_read", { as: "permissive", for: "select", to: auditDefiner, using: sql`true` }),
    pgPolicy("blocks_definer_insert", { as: "permissive", for: "insert", to: auditDefiner, withCheck: sql`true` }),
  ],
).enableRLS();

// The configuration tables. The ERP never touches them (audit.enable_strict_mode(),
// audit.pin_tenant() and audit.seal() do), but declared they must be: drizzle-kit otherwise proposes
// `DROP TABLE audit.strict_mode CASCADE` and the like for every table of a schema it compares.

/** audit.strict_mode: where entries need a user (0037_strict_mode.sql). */
export const strictMode = audit.table(
  "strict_mode",
  {
    loginRole: regrole("login_role"),
    enabledAt: timestamp("enabled_at", { withTimezone: true, mode: "string" }).notNull().defaultNow(),
    // PostgreSQL prints the default session_user back in capitals, and drizzle-kit compares the text.
    enabledBy: name("enabled_by").notNull().default(sql`SESSION_USER`),
  },
  (t) => [
    // One row per role and one for the whole database: an expression index, which drizzle-kit
    // compares by name, uniqueness and method only.
    uniqueIndex("strict_mode_login_role_key").using("btree", sql`COALESCE((login_role)::oid, (0)::oid)`),
    pgPolicy("strict_mode_read", {
      as: "permissive",
      for: "select",
      to: [auditAdmin, auditDefiner, auditReader, auditWriter],
      using: sql`true`,
    }),
    pgPolicy("strict_mode_admin_insert", { as: "permissive", for: "insert", to: auditAdmin, withCheck: sql`true` }),
    pgPolicy("strict_mode_admin_delete", { as: "permissive", for: "delete", to: auditAdmin, using: sql`true` }),
  ],
).enableRLS();

/** audit.tenant_logins: tenant reader logins pinned to companies (0092_tenant_readers.sql). */
export const tenantLogins = audit.table(
  "tenant_logins",
  {
    loginRole: regrole("login_role").notNull(),
    companyId: uuid("company_id").notNull(),
  },
  (t) => [
    primaryKey({ name: "tenant_logins_pkey", columns: [t.loginRole, t.companyId] }),
    pgPolicy("tenant_logins_read", { as: "permissive", for: "select", to: [auditAdmin, auditDefiner], using: sql`true` }),
    pgPolicy("tenant_logins_admin_insert", { as: "permissive", for: "insert", to: auditAdmin, withCheck: sql`true` }),
    pgPolicy("tenant_logins_admin_delete", { as: "permissive", for: "delete", to: auditAdmin, using: sql`true` }),
  ],
).enableRLS();

/** audit.seal_lock: the one row whose lock makes seals take turns (0075_seal.sql). */
export const sealLock = audit.table(
  "seal_lock",
  {
    sealCount: bigint("seal_count", { mode: "bigint" }).notNull(),
    origin: bigint("origin", { mode: "bigint" }),
  },
  () => [
    uniqueIndex("seal_lock_one_row").using("btree", sql`(true)`),
    pgPolicy("seal_lock_definer_read", { as: "permissive", for: "select", to: auditDefiner, using: sql`true` }),
    pgPolicy("seal_lock_definer_update", {
      as: "permissive",
      for: "update",
      to: auditDefiner,
      using: sql`true`,
      withCheck: sql`true`,
    }),
  ],
).enableRLS();

// The views (0055_tracking.sql), `.existing()`: drizzle-kit neither creates nor redefines them,
// and, declared, does not propose to drop them.

/** audit.tracked_tables: the tables whose changes are recorded; readable by writers and readers. */
export const trackedTables = audit
  .view("tracked_tables", {
    tableName: regclass("table_name"),
    entity: text("entity"),
    excludeColumns: text("exclude_columns").array(),
    triggersInPlace: boolean("triggers_in_place"),
  })
  .existing();

// What a tracking trigger made by hand, without the transition tables, would read: reading them
// refuses (AU004). Internal; declared only so that drizzle-kit leaves them be.
export const auditNew = audit.view("audit_new", { missing: integer("missing") }).existing();
export const auditOld = audit.view("audit_old", { missing: integer("missing") }).existing();
