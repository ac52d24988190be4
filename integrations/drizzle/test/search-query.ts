// What searchAudit() sends, without a database: named notation, the cursor as text, never a
// time built in JS; and the page it makes.
//
//   npx tsx test/search-query.ts

import { PgDialect } from "drizzle-orm/pg-core";

import { type AuditSearchRow, pageOf, searchWithCursorQuery } from "../src/read";
import { printJson } from "./json";

const dialect = new PgDialect();
const render = (params: Parameters<typeof searchWithCursorQuery>[0]) => dialect.sqlToQuery(searchWithCursorQuery(params));

const row = (cursor: string) => ({ cursor }) as AuditSearchRow;

printJson({
  first: render({ companyId: "00000000-0000-4000-8000-00000000c001", action: "UPDATE_INVOICE", limit: 2 }),
  next: render({ companyId: "00000000-0000-4000-8000-00000000c001", limit: 2, after: "opaque-cursor" }),
  fullPageNext: pageOf([row("c1"), row("c2")], 2).next,
  shortPageNext: pageOf([row("c1")], 2).next,
  emptyPageNext: pageOf([], 2).next,
});
