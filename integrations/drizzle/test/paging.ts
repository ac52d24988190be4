// Pages through a company's entries with searchAudit() as the reader login, by cursor only, and
// prints the ids in the order read.
//
//   READER_URL=... npx tsx test/paging.ts <company id> <page size>

import { drizzle } from "drizzle-orm/node-postgres";
import pg from "pg";

import { searchAudit } from "../src/read";
import { printJson, requiredEnv } from "./json";

const [companyId, pageSize] = [process.argv[2] ?? "", Number(process.argv[3] ?? "100")];
const pool = new pg.Pool({ connectionString: requiredEnv("READER_URL"), max: 1 });
try {
  const db = drizzle(pool);
  const ids: string[] = [];
  let page = await searchAudit(db, { companyId, limit: pageSize });
  let pages = 1;
  ids.push(...page.entries.map((row) => row.id));
  while (page.next) {
    page = await searchAudit(db, { companyId, limit: pageSize, after: page.next });
    pages += 1;
    ids.push(...page.entries.map((row) => row.id));
  }
  printJson({ ids, pages });
} finally {
  await pool.end();
}
