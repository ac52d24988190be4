// The audit log for a drizzle-orm (node-postgres) application: its tables (read them, never
// write them), the calls that write entries, the search that pages through them, and its refusals.

export * from "./errors";
export * from "./read";
export * from "./record";
export * from "./schema";
