import type { Kysely } from "kysely";
import { createAccessCode, findAccessCode, revokeAccessCode, type AccessCodeRow, type NewAccessCode } from "../auth/accessCodes.ts";
import { writeAudit } from "../auth/audit.ts";
import { getPlan } from "../billing/plans.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { AdminContext } from "./manageUsers.ts";

/** Creates an access code (audited). The returned `code` is the only time its text exists. */
export async function issueAccessCode(
  db: Kysely<Database>,
  by: AdminContext,
  input: Omit<NewAccessCode, "createdBy">,
  now: number = Date.now(),
): Promise<{ code: string; row: AccessCodeRow }> {
  if (input.planId !== null && !(await getPlan(db, input.planId))) {
    throw new ServiceError("invalid_request", `There is no plan '${input.planId}'.`, { code: "unknown_plan", param: "plan_id" });
  }
  return db.transaction().execute(async (trx) => {
    const created = await createAccessCode(trx, { ...input, createdBy: by.userId }, now);
    await writeAudit(
      trx,
      {
        actorUserId: by.userId,
        action: "access_code.create",
        targetType: "access_code",
        targetId: created.row.id,
        details: { prefix: created.row.prefix, max_uses: input.maxUses, expires_at: input.expiresAt, plan_id: input.planId, credit_micros: input.creditMicros },
        ip: by.ip,
      },
      now,
    );
    return created;
  });
}

/** Revokes a code (audited); revoking twice is a no-op. */
export async function withdrawAccessCode(db: Kysely<Database>, by: AdminContext, id: string, now: number = Date.now()): Promise<AccessCodeRow> {
  return db.transaction().execute(async (trx) => {
    if (await revokeAccessCode(trx, id, now)) {
      await writeAudit(trx, { actorUserId: by.userId, action: "access_code.revoke", targetType: "access_code", targetId: id, ip: by.ip }, now);
    }
    const row = await findAccessCode(trx, id);
    if (!row) throw new ServiceError("not_found", "Access code not found", { code: "not_found" });
    return row;
  });
}
