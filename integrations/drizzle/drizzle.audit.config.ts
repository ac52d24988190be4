// drizzle-kit pointed at schema `audit` with this module's src/schema.ts, to prove that the
// definition matches the migrated log: `drizzle-kit push --config drizzle.audit.config.ts`
// must say "No changes detected" (tests/test_drizzle.py). A check, never a way to change the log.
//
// Run it as the log's owner, read-only:
//   AUDIT_DATABASE_URL='postgresql://postgres@host/db?options=-c%20role%3Daudit_owner%20-c%20default_transaction_read_only%3Don'
// - as the owner, because drizzle-kit reads defaults, keys and CHECK constraints through
//   information_schema, which shows them only to a table's owner: as the installing login (which
//   owns nothing of the log, README.md) it would see them missing and propose to add them back;
// - read-only, so that whatever it proposes cannot run, whatever it is asked; `strict` makes it ask
//   before running anything, which without a terminal fails before any statement runs.

import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  // A test points it at altered copies, to show that a difference is reported.
  schema: process.env.AUDIT_DRIZZLE_SCHEMA ?? "./src/schema.ts",
  schemaFilter: ["audit"],
  // Roles are the migrations' (src/schema.ts declares them `.existing()`); drizzle-kit leaves them be.
  entities: { roles: false },
  dbCredentials: { url: process.env.AUDIT_DATABASE_URL ?? "" },
  verbose: true,
  strict: true,
});
