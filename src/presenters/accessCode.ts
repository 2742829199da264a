import type { AccessCodeRow } from "../auth/accessCodes.ts";
import { isoTime } from "./time.ts";

export function accessCodeStatus(code: AccessCodeRow, now: number = Date.now()): "active" | "revoked" | "expired" | "used_up" {
  if (code.revoked_at !== null) return "revoked";
  if (code.expires_at !== null && code.expires_at <= now) return "expired";
  if (code.uses >= code.max_uses) return "used_up";
  return "active";
}

/** A code as admins list it: its prefix and use counts, never the code or its hash. */
export function presentAccessCode(code: AccessCodeRow, now: number = Date.now()) {
  return {
    id: code.id,
    prefix: code.prefix,
    note: code.note,
    status: accessCodeStatus(code, now),
    max_uses: code.max_uses,
    uses: code.uses,
    plan_id: code.plan_id,
    credit_micros: code.credit_micros,
    expires_at: isoTime(code.expires_at),
    created_by: code.created_by,
    created_at: isoTime(code.created_at),
    revoked_at: isoTime(code.revoked_at),
  };
}

/** The answer to creating a code: the only response that ever carries the code text. */
export function presentCreatedAccessCode(code: AccessCodeRow, text: string) {
  return { ...presentAccessCode(code), code: text };
}
