// What the writer login is refused, as auditRefusal() tells it: db.insert(auditLogs) (42501, no
// INSERT privilege), and an entry the log refuses (AU002, naming the parameter).
//
//   WRITER_URL=... npx tsx test/refusals.ts

import { randomUUID } from "node:crypto";

import { DrizzleQueryError } from "drizzle-orm/errors";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";

import { auditRefusal } from "../src/errors";
import { recordAudit } from "../src/record";
import { auditLogs } from "../src/schema";
import { printJson, requiredEnv } from "./json";

async function refusalOf(attempt: () => Promise<unknown>): Promise<unknown> {
  try {
    await attempt();
    return { refused: false };
  } catch (error) {
    const refusal = auditRefusal(error);
    return {
      refused: true,
      drizzleQueryError: error instanceof DrizzleQueryError,
      code: refusal?.code,
      name: refusal?.name,
      parameter: refusal?.parameter,
      message: refusal?.message ?? String(error),
    };
  }
}

const pool = new pg.Pool({ connectionString: requiredEnv("WRITER_URL"), max: 1 });
try {
  const db = drizzle(pool);
  const company = randomUUID();
  printJson({
    insert: await refusalOf(() =>
      db.insert(auditLogs).values({
        companyId: company,
        action: "CREATE_INVOICE",
        entity: "invoice",
        entityId: randomUUID(),
        details: { amount: "1.00" },
      }),
    ),
    blankAction: await refusalOf(() =>
      recordAudit(db, { companyId: company, action: "   ", entity: "invoice", entityId: randomUUID(), details: {} }),
    ),
    notAnError: auditRefusal(new Error("connection refused")) ?? null,
  });
} finally {
  await pool.end();
}
