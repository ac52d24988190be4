// A stand-in for the ERP's own drizzle schema (drizzle.config.ts): one table in public. It imports
// nothing from src/schema.ts, and exports none of its tables.

import { numeric, pgTable, uuid } from "drizzle-orm/pg-core";

export const invoices = pgTable("invoices", {
  id: uuid("id").primaryKey().defaultRandom(),
  companyId: uuid("company_id").notNull(),
  amount: numeric("amount", { precision: 12, scale: 2 }).notNull(),
});
