import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import type { SessionRow } from "../auth/sessions.ts";
import type { Database } from "../store/schema.ts";

/**
 * Ends one sign-in session on request of `by` (its owner, already authorised by the policy),
 * audited as `session.revoke`. Signing out (the current session, by the logout route) is not
 * audited: it is the ordinary end of a session, not a revocation.
 */
export async function endSession(db: Kysely<Database>, by: { userId: string; ip: string | null }, session: SessionRow, now: number = Date.now()): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const result = await trx.updateTable("sessions").set({ revoked_at: now }).where("id", "=", session.id).where("revoked_at", "is", null).executeTakeFirst();
    const ended = Number(result.numUpdatedRows) === 1;
    if (ended) {
      await writeAudit(
        trx,
        { actorUserId: by.userId, action: "session.revoke", targetType: "session", targetId: session.id, details: { user_id: session.user_id, user_agent: session.user_agent, ip: session.ip }, ip: by.ip },
        now,
      );
    }
    return ended;
  });
}
