import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import { clearLoginThrottle } from "../auth/loginThrottle.ts";
import { findUserByLogin, type UserRow } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { AdminContext } from "./manageUsers.ts";

/**
 * Clears an account's sign-in throttling (per account, per (account, address), per remembered
 * device) and audits it as `user.unlock`: `sputnik admin unlock-user --username X`, for an owner
 * slowed by someone guessing at their account. Per-address counters are left alone.
 */
export async function unlockUser(
  db: Kysely<Database>,
  by: AdminContext | null,
  username: string,
  now: number = Date.now(),
): Promise<{ user: UserRow; cleared: number }> {
  // By user name only: `findUserByLogin` would read a name with "@" as an e-mail address.
  const user = username.includes("@") ? undefined : await findUserByLogin(db, username);
  if (!user) throw new ServiceError("not_found", `No account is named ${username}.`, { code: "not_found", param: "username" });
  const cleared = await db.transaction().execute(async (trx) => {
    const n = await clearLoginThrottle(trx, user.id);
    await writeAudit(trx, { actorUserId: by?.userId ?? null, action: "user.unlock", targetType: "user", targetId: user.id, details: { cleared: n }, ip: by?.ip ?? null }, now);
    return n;
  });
  return { user, cleared };
}
