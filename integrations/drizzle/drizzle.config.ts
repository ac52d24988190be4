// drizzle-kit as the ERP runs it, for the ERP's own tables: kept away from schema `audit`, and from
// the bookkeeping tables that yoyo (which installs the log) keeps in `public`.
//
// What keeps it away, command by command (drizzle-kit 0.31.11; tested in tests/test_drizzle.py):
// - push, pull: schemaFilter. Only the schemas listed are introspected, and push ignores the tables
//   of the schema files that lie in other schemas. tablesFilter narrows what is introspected, but
//   push still compares every table of the schema files (of the schemas listed) against it.
// - generate: neither filter. It reads every table the schema files export, schema `audit`
//   included, and writes CREATE SCHEMA "audit"; CREATE TABLE "audit"."audit_logs" ... into the
//   ERP's migrations if one of them exports this module's tables. Hence `schema` below lists the
//   ERP's own files, none of which may export (`export * from`) src/schema.ts: import the tables
//   where queries need them.
// - check: reads the migrations folder only; no database, no filters.

import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  // The ERP's own schema files. Here a stand-in ERP table (test/erp-schema.ts); never this module's
  // src/schema.ts, nor a file that re-exports it.
  schema: "./test/erp-schema.ts",
  out: "./drizzle",
  // The ERP's schemas (["public"] is drizzle-kit's default; spelled out so that nobody adds "audit":
  // push would then propose to drop the log's tables, or to "rename" them into the ERP's).
  schemaFilter: ["public"],
  // Table names, unqualified, matched in every schema of schemaFilter. yoyo keeps _yoyo_log,
  // _yoyo_migration, _yoyo_version and yoyo_lock in public: without these, push proposes to drop
  // them (or asks whether an ERP table is one of them renamed).
  tablesFilter: ["!_yoyo_*", "!yoyo_lock"],
  dbCredentials: { url: process.env.DATABASE_URL ?? "" },
  // Show every statement and ask before running any: push runs what it proposes one statement at a
  // time, outside a transaction, and exits 0 even when PostgreSQL refused one.
  verbose: true,
  strict: true,
});
