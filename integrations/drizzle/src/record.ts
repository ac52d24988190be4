// Writing entries: audit.record_audit() and audit.record_audit_many(), the only ways in.
//
// Never db.insert(auditLogs): the writer role (audit_writer) has no INSERT privilege on the log,
// so PostgreSQL refuses it with 42501, and rightly so (README.md here). The functions run as the
// log's function role, check the entry (AU002 naming the parameter), take company, user and
// franchise from the transaction's context where passed as null, and stamp id, created_at, txid
// and origin themselves. Both write in the caller's transaction: pass a transaction (`tx`) to have
// the entry commit or roll back with the business change.
//
// Named notation (`company_id => ...`) as the README's SQL does: the call keeps its meaning
// whatever the order of the function's parameters, and a later overload cannot capture it.

import { sql } from "drizzle-orm";
import type { NodePgQueryResultHKT } from "drizzle-orm/node-postgres";
import type { PgDatabase } from "drizzle-orm/pg-core";

/**
 * A node-postgres drizzle database (`drizzle(pool)`, with or without a schema of the ERP's), or a
 * transaction of one (`db.transaction(async (tx) => ...)`).
 */
export type AuditDb = PgDatabase<NodePgQueryResultHKT, any, any>;

/** A UUID, as text. */
export type Uuid = string;

/** One entry to record. */
export interface NewAuditEntry {
  /** The company; null takes the transaction's context (audit.set_context()), refused (AU002) if it has none. */
  companyId: Uuid | null;
  /** What was done, e.g. CREATE_INVOICE. Never blank. */
  action: string;
  /** Kind of thing it was done to, e.g. invoice. Never blank. */
  entity: string;
  entityId: Uuid;
  /**
   * A JSON object: changed fields, amounts, reasons. Sent as JSON.stringify writes it, so write
   * amounts as strings ("120.50"): a JS number loses a decimal's trailing zeros, and an integer
   * beyond 2^53 its last digits. A BigInt throws here, before reaching the database.
   */
  details: Record<string, unknown>;
  /** The user; omitted or null takes the transaction's context. */
  userId?: Uuid | null;
  /** The franchise; omitted or null takes the transaction's context. */
  franchiseId?: Uuid | null;
}

/** Records one entry in the caller's transaction; returns its id. */
export async function recordAudit(db: AuditDb, entry: NewAuditEntry): Promise<Uuid> {
  const result = await db.execute<{ id: Uuid }>(sql`SELECT audit.record_audit(
    company_id   => ${entry.companyId}::uuid,
    action       => ${entry.action}::text,
    entity       => ${entry.entity}::text,
    entity_id    => ${entry.entityId}::uuid,
    details      => ${JSON.stringify(entry.details)}::jsonb,
    user_id      => ${entry.userId ?? null}::uuid,
    franchise_id => ${entry.franchiseId ?? null}::uuid
  ) AS id`);
  const row = result.rows[0];
  if (row === undefined) {
    throw new Error("audit.record_audit() returned no row");
  }
  return row.id;
}

/**
 * Records a batch in one round trip, all or nothing (the message of a refusal names the entry);
 * returns the new ids in the entries' order. Element i of each array the function takes is entry i.
 */
export async function recordAuditMany(db: AuditDb, entries: readonly NewAuditEntry[]): Promise<Uuid[]> {
  // sql.param: one array parameter each. A bare JS array in a drizzle template becomes a list of
  // parameters, "($1, $2, ...)", which no array-typed parameter accepts.
  const column = <T>(pick: (entry: NewAuditEntry) => T) => sql.param(entries.map(pick));
  const result = await db.execute<{ id: Uuid }>(sql`SELECT r.id FROM audit.record_audit_many(
    company_ids   => ${column((e) => e.companyId)}::uuid[],
    actions       => ${column((e) => e.action)}::text[],
    entities      => ${column((e) => e.entity)}::text[],
    entity_ids    => ${column((e) => e.entityId)}::uuid[],
    details       => ${column((e) => JSON.stringify(e.details))}::jsonb[],
    user_ids      => ${column((e) => e.userId ?? null)}::uuid[],
    franchise_ids => ${column((e) => e.franchiseId ?? null)}::uuid[]
  ) WITH ORDINALITY AS r(id, n) ORDER BY r.n`);
  return result.rows.map((row) => row.id);
}
