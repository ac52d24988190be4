// Type tests: `tsc --noEmit` fails if any line marked @ts-expect-error compiles, i.e. if the types
// stopped refusing what they must refuse. Never run.

import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/node-postgres";

import { auditRefusal } from "../src/errors";
import { searchAudit } from "../src/read";
import { recordAudit } from "../src/record";
import { auditLogs } from "../src/schema";

export async function typeTests(): Promise<void> {
  const db = drizzle("postgresql://unused");
  const entry = { companyId: null, action: "A", entity: "e", entityId: "x", details: {} };

  const id: string = await recordAudit(db, entry);
  await db.transaction(async (tx) => recordAudit(tx, { ...entry, userId: null, franchiseId: id }));
  // @ts-expect-error: details is a JSON object, never an array or a string
  await recordAudit(db, { ...entry, details: [] });
  // @ts-expect-error: the database chooses the id
  await recordAudit(db, { ...entry, id });

  const [row] = await db.select().from(auditLogs).where(eq(auditLogs.id, id));
  if (row !== undefined) {
    const createdAt: string = row.createdAt;
    // @ts-expect-error: created_at is PostgreSQL's text, never a JS Date (milliseconds only)
    const asDate: Date = row.createdAt;
    // @ts-expect-error: origin is a bigint (about 7.3e18), never a JS number
    const origin: number | null = row.origin;
    void [createdAt, asDate, origin];
  }

  const page = await searchAudit(db, { companyId: id, limit: 10 });
  const next: string | null = page.next;
  // @ts-expect-error: a page starts after a cursor, never after a Date
  await searchAudit(db, { companyId: id, after: new Date() });
  // @ts-expect-error: since and until are timestamptz text with an offset, not Dates
  await searchAudit(db, { companyId: id, since: new Date() });
  void next;

  const refusal = auditRefusal(new Error("x"));
  if (refusal?.code === "AU002") {
    const parameter: string | undefined = refusal.parameter;
    void parameter;
  }
}
