import type { AuditEntryRow } from "../auth/audit.ts";
import { isoTime } from "./time.ts";

export function presentAuditEntry(entry: AuditEntryRow) {
  let details: unknown = {};
  try {
    details = JSON.parse(entry.details);
  } catch {
    details = { unreadable: true };
  }
  return {
    id: entry.id,
    created_at: isoTime(entry.created_at),
    actor_user_id: entry.actor_user_id,
    action: entry.action,
    target_type: entry.target_type,
    target_id: entry.target_id,
    details,
    ip: entry.ip,
  };
}
