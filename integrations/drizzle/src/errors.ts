// The log's refusals, told apart by SQLSTATE.
//
// drizzle-orm 0.45 wraps a failed query in a DrizzleQueryError whose `cause` is node-postgres's
// DatabaseError, which carries the SQLSTATE as `.code` and the diagnostic's column field as
// `.column`. The codes are the log's own (README.md, "Errors"; audit_py/errors.py maps the same
// codes to Python exceptions of the same names).

import type { DatabaseError } from "pg";

/** The log's SQLSTATEs (class AU) and the name audit_py gives each. */
export const AUDIT_SQLSTATES = {
  AU001: "ImmutableViolation",
  AU002: "InvalidEntry",
  AU003: "ProtectedSchema",
  AU004: "InvalidTracking",
  AU005: "UntrackableChange",
  AU006: "InvalidContext",
  AU007: "InvalidQuery",
  AU008: "SealingRefused",
  AU009: "UninstallRefused",
} as const;

export type AuditSqlstate = keyof typeof AUDIT_SQLSTATES;
export type AuditErrorName = (typeof AUDIT_SQLSTATES)[AuditSqlstate] | "InsufficientPrivilege";

/** What the log refused, and why. */
export interface AuditRefusal {
  /** The SQLSTATE: AU001 to AU009; 23514 for a CHECK of the log's table; 42501 for a missing privilege. */
  code: AuditSqlstate | "23514" | "42501";
  name: AuditErrorName;
  /** The parameter, setting or column at fault, where the log names one (AU002, AU006, AU007, 23514). */
  parameter: string | undefined;
  message: string;
  /** node-postgres's error, as the driver raised it. */
  cause: DatabaseError;
}

// A direct INSERT by the log's owner, and an oversized details or context by any path, meet the
// table's CHECK constraints rather than record_audit()'s checks: an invalid entry all the same.
const CHECKED_COLUMNS: Record<string, string> = {
  audit_logs_action_not_blank: "action",
  audit_logs_entity_not_blank: "entity",
  audit_logs_details_is_object: "details",
  audit_logs_context_is_object: "context",
  audit_logs_details_printable: "details",
  audit_logs_context_printable: "context",
};

function isAuditSqlstate(code: string): code is AuditSqlstate {
  return Object.hasOwn(AUDIT_SQLSTATES, code);
}

/**
 * node-postgres's DatabaseError behind `error`: the error itself, or its `cause` (DrizzleQueryError),
 * or the cause's cause. Undefined for anything else (a connection refused, a bug).
 */
export function databaseErrorOf(error: unknown): DatabaseError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    const candidate = current as Partial<DatabaseError>;
    if (typeof candidate.code === "string" && /^[0-9A-Z]{5}$/.test(candidate.code) && "severity" in candidate) {
      return current as DatabaseError;
    }
    current = current.cause;
  }
  return undefined;
}

/**
 * The log's refusal behind `error`, or undefined when it is no refusal of the log's (rethrow it).
 *
 * ```ts
 * try {
 *   await recordAudit(db, entry);
 * } catch (error) {
 *   const refusal = auditRefusal(error);
 *   if (refusal?.code === "AU002") return badRequest(`${refusal.parameter}: ${refusal.message}`);
 *   throw error;
 * }
 * ```
 */
export function auditRefusal(error: unknown): AuditRefusal | undefined {
  const cause = databaseErrorOf(error);
  if (cause === undefined || cause.code === undefined) {
    return undefined;
  }
  const code = cause.code;
  if (isAuditSqlstate(code)) {
    return { code, name: AUDIT_SQLSTATES[code], parameter: cause.column, message: cause.message, cause };
  }
  const checkedColumn = cause.constraint === undefined ? undefined : CHECKED_COLUMNS[cause.constraint];
  if (code === "23514" && cause.schema === "audit" && checkedColumn !== undefined) {
    return { code, name: "InvalidEntry", parameter: checkedColumn, message: cause.message, cause };
  }
  if (code === "42501") {
    // Not only the log's: any table the login may not touch. db.insert(auditLogs) ends here.
    return { code, name: "InsufficientPrivilege", parameter: undefined, message: cause.message, cause };
  }
  return undefined;
}

/** True when `error` is the log's refusal with that SQLSTATE (any of the log's, without one). */
export function isAuditRefusal(error: unknown, code?: AuditRefusal["code"]): boolean {
  const refusal = auditRefusal(error);
  return refusal !== undefined && (code === undefined || refusal.code === code);
}
