import type { Kysely, Selectable } from "kysely";
import { newId } from "../store/ids.ts";
import type { AuditLogTable, Database } from "../store/schema.ts";
import { afterCursor, toPage } from "./cursor.ts";

export type AuditEntryRow = Selectable<AuditLogTable>;

export interface AuditEntry {
  /** The admin who acted; null for the command line. */
  actorUserId: string | null;
  /** What happened, as "resource.verb": "user.disable", "access_code.create", "settings.signup_mode"… */
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  /** Context worth keeping (old → new values…). Never a secret. */
  details?: Record<string, unknown>;
  ip?: string | null;
}

/** Appends to the audit log; pass the transaction that makes the change, so both or neither happen. */
export async function writeAudit(db: Kysely<Database>, entry: AuditEntry, now: number = Date.now()): Promise<AuditEntryRow> {
  const row: AuditEntryRow = {
    id: newId(now),
    created_at: now,
    actor_user_id: entry.actorUserId,
    action: entry.action,
    target_type: entry.targetType ?? null,
    target_id: entry.targetId ?? null,
    details: JSON.stringify(entry.details ?? {}),
    ip: entry.ip ?? null,
  };
  await db.insertInto("audit_log").values(row).execute();
  return row;
}

export async function listAudit(
  db: Kysely<Database>,
  opts: { limit: number; cursor?: string; action?: string; targetId?: string },
): Promise<{ items: AuditEntryRow[]; nextCursor: string | null }> {
  let q = db.selectFrom("audit_log").selectAll();
  if (opts.action) q = q.where("action", "=", opts.action);
  if (opts.targetId) q = q.where("target_id", "=", opts.targetId);
  if (opts.cursor) {
    q = q.where(afterCursor(opts.cursor));
  }
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(opts.limit + 1).execute();
  return toPage(rows, opts.limit);
}
