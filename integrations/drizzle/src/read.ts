// Reading entries a page at a time: audit.search(), newest first, paged by an opaque cursor (the
// `cursor` column of every row, 0013.paging-cursors).
//
// Page with the cursor only. Never build one from createdAt, and never from a JS Date: a Date keeps
// milliseconds, created_at has microseconds, and every entry of one transaction shares it, so a
// page boundary made of a time skips or repeats entries.

import { type SQL, sql } from "drizzle-orm";

import type { AuditDb, Uuid } from "./record";

/** What to search for; every filter but companyId is optional. */
export interface SearchAuditParams {
  companyId: Uuid;
  franchiseId?: Uuid | null;
  userId?: Uuid | null;
  action?: string | null;
  entity?: string | null;
  /**
   * Entries created at or after this instant: timestamptz text WITH an offset
   * ("2026-11-01T00:00:00Z", or an entry's createdAt as read). Text without one would be read in
   * the session's TimeZone.
   */
  since?: string | null;
  /** Entries created before this instant (exclusive); the same text as `since`. */
  until?: string | null;
  /** Entries per page, 1 to 100000 (AU007 otherwise); 100 when omitted. */
  limit?: number;
  /** The page after this cursor: a previous page's `next`, or any row's `cursor`. */
  after?: string | null;
}

/** An entry, as audit.audit_logs holds it. */
export interface AuditEntryRow {
  id: Uuid;
  companyId: Uuid;
  franchiseId: Uuid | null;
  userId: Uuid | null;
  action: string;
  entity: string;
  entityId: Uuid;
  details: Record<string, unknown>;
  /** timestamptz as PostgreSQL prints it, microseconds and offset included. For display; page with `cursor`. */
  createdAt: string;
  txid: bigint | null;
  context: Record<string, unknown>;
  origin: bigint | null;
}

/** A row of a search: the entry, and the cursor of the page after it. */
export interface AuditSearchRow extends AuditEntryRow {
  cursor: string;
}

export interface AuditPage {
  entries: AuditSearchRow[];
  /** The cursor of the next page: the last row's when the page is full; null when it is not. */
  next: string | null;
}

export const DEFAULT_PAGE_SIZE = 100;

/** audit.search() in named notation, `after` included. Exported so that tests can check what it sends. */
export function searchWithCursorQuery(params: SearchAuditParams): SQL {
  return sql`SELECT s.id, s.company_id, s.franchise_id, s.user_id, s.action, s.entity, s.entity_id,
       s.details, s.created_at, s.txid, s.context, s.origin, s.cursor
FROM audit.search(
    company_id   => ${params.companyId}::uuid,
    franchise_id => ${params.franchiseId ?? null}::uuid,
    user_id      => ${params.userId ?? null}::uuid,
    action       => ${params.action ?? null}::text,
    entity       => ${params.entity ?? null}::text,
    since        => ${params.since ?? null}::timestamptz,
    until        => ${params.until ?? null}::timestamptz,
    page_size    => ${params.limit ?? DEFAULT_PAGE_SIZE}::integer,
    after        => ${params.after ?? null}::text
) AS s`;
}

/** A row as node-postgres returns it through drizzle: uuid, int8 and timestamptz as text, jsonb parsed. */
interface RawSearchRow extends Record<string, unknown> {
  id: string;
  company_id: string;
  franchise_id: string | null;
  user_id: string | null;
  action: string;
  entity: string;
  entity_id: string;
  details: Record<string, unknown>;
  created_at: string;
  txid: string | null;
  context: Record<string, unknown>;
  origin: string | null;
  cursor: string;
}

function toSearchRow(row: RawSearchRow): AuditSearchRow {
  return {
    id: row.id,
    companyId: row.company_id,
    franchiseId: row.franchise_id,
    userId: row.user_id,
    action: row.action,
    entity: row.entity,
    entityId: row.entity_id,
    details: row.details,
    createdAt: row.created_at,
    txid: row.txid === null ? null : BigInt(row.txid),
    context: row.context,
    origin: row.origin === null ? null : BigInt(row.origin),
    cursor: row.cursor,
  };
}

/** The page these rows make: `next` is the last row's cursor when the page is full. */
export function pageOf(entries: AuditSearchRow[], pageSize: number): AuditPage {
  const last = entries.at(-1);
  return { entries, next: entries.length >= pageSize && last !== undefined ? last.cursor : null };
}

/**
 * A page of a company's entries, newest first, as a login granted audit_reader (or
 * audit_tenant_reader, with the company in its context) may read them:
 *
 * ```ts
 * let page = await searchAudit(db, { companyId, action: "UPDATE_INVOICE", limit: 50 });
 * while (page.next) {
 *   page = await searchAudit(db, { companyId, action: "UPDATE_INVOICE", limit: 50, after: page.next });
 * }
 * ```
 *
 * Refusals (AU007 for a bad argument or cursor) arrive as DrizzleQueryError: see auditRefusal().
 */
export async function searchAudit(db: AuditDb, params: SearchAuditParams): Promise<AuditPage> {
  const result = await db.execute<RawSearchRow>(searchWithCursorQuery(params));
  return pageOf(result.rows.map(toSearchRow), params.limit ?? DEFAULT_PAGE_SIZE);
}
