// Records entries through recordAudit() and recordAuditMany() as the writer login, then reads
// them back through drizzle as the reader login; prints what it wrote and what it read.
//
//   WRITER_URL=... READER_URL=... npx tsx test/roundtrip.ts '<entry as JSON>'

import { inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";

import { type NewAuditEntry, recordAudit, recordAuditMany } from "../src/record";
import { auditLogs } from "../src/schema";
import { printJson, requiredEnv } from "./json";

const entry = JSON.parse(process.argv[2] ?? "null") as NewAuditEntry;

const writerPool = new pg.Pool({ connectionString: requiredEnv("WRITER_URL"), max: 1 });
const readerPool = new pg.Pool({ connectionString: requiredEnv("READER_URL"), max: 1 });
try {
  const writer = drizzle(writerPool);
  // One transaction: both calls commit together.
  const ids = await writer.transaction(async (tx) => {
    const one = await recordAudit(tx, entry);
    const many = await recordAuditMany(tx, [
      { ...entry, action: "APPROVE_INVOICE", details: { step: "manager" } },
      { ...entry, action: "APPROVE_INVOICE", details: { step: "finance" }, userId: null },
    ]);
    return [one, ...many];
  });

  const reader = drizzle(readerPool, { schema: { auditLogs } });
  const rows = await reader.select().from(auditLogs).where(inArray(auditLogs.id, ids));
  const timeZone = await readerPool.query<{ tz: string }>("SELECT current_setting('TimeZone') AS tz");
  printJson({ ids, rows, readerTimeZone: timeZone.rows[0]?.tz });
} finally {
  await writerPool.end();
  await readerPool.end();
}
