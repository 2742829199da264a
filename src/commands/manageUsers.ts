import type { Kysely } from "kysely";
import type { Role } from "../auth/actor.ts";
import { writeAudit } from "../auth/audit.ts";
import { revokeUserSessions } from "../auth/sessions.ts";
import { countActiveAdmins, findUserById, updateUser, type UserRow, type UserStatus } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";

/** Who is acting (already authorised by the policy): for the audit log and self-protection rules. */
export interface AdminContext {
  userId: string;
  ip: string | null;
}

/** pending → active. */
export function approveUser(db: Kysely<Database>, by: AdminContext, userId: string): Promise<UserRow> {
  return changeStatus(db, by, userId, { from: ["pending"], to: "active", action: "user.approve" });
}

/** Disables an account: its sessions end now, and its keys stop working on the next request. */
export function disableUser(db: Kysely<Database>, by: AdminContext, userId: string): Promise<UserRow> {
  return changeStatus(db, by, userId, { from: ["active", "pending"], to: "disabled", action: "user.disable" });
}

/** disabled → active (sessions stay ended; keys work again). */
export function enableUser(db: Kysely<Database>, by: AdminContext, userId: string): Promise<UserRow> {
  return changeStatus(db, by, userId, { from: ["disabled"], to: "active", action: "user.enable" });
}

export async function setUserRole(db: Kysely<Database>, by: AdminContext, userId: string, role: Role, now: number = Date.now()): Promise<UserRow> {
  return db.transaction().execute(async (trx) => {
    const user = await mustFind(trx, userId);
    if (user.role === role) return user;
    if (user.role === "admin") await keepOneAdmin(trx, user);
    await updateUser(trx, userId, { role }, now);
    await writeAudit(trx, { actorUserId: by.userId, action: "user.set_role", targetType: "user", targetId: userId, details: { from: user.role, to: role }, ip: by.ip }, now);
    return { ...user, role, updated_at: now };
  });
}

async function changeStatus(
  db: Kysely<Database>,
  by: AdminContext,
  userId: string,
  change: { from: UserStatus[]; to: UserStatus; action: string },
  now: number = Date.now(),
): Promise<UserRow> {
  if (change.to === "disabled" && userId === by.userId) {
    throw new ServiceError("conflict", "You cannot disable your own account.", { code: "cannot_disable_self" });
  }
  return db.transaction().execute(async (trx) => {
    const user = await mustFind(trx, userId);
    if (user.status === change.to) return user;
    if (!change.from.includes(user.status)) {
      throw new ServiceError("conflict", `The account is ${user.status}; this action applies to ${change.from.join(" or ")} accounts.`, { code: "invalid_status" });
    }
    if (change.to === "disabled" && user.role === "admin") await keepOneAdmin(trx, user);
    await updateUser(trx, userId, { status: change.to }, now);
    if (change.to === "disabled") await revokeUserSessions(trx, userId, now);
    await writeAudit(trx, { actorUserId: by.userId, action: change.action, targetType: "user", targetId: userId, details: { from: user.status, to: change.to }, ip: by.ip }, now);
    return { ...user, status: change.to, updated_at: now };
  });
}

async function mustFind(db: Kysely<Database>, userId: string): Promise<UserRow> {
  const user = await findUserById(db, userId);
  if (!user) throw new ServiceError("not_found", "User not found", { code: "not_found" });
  return user;
}

/** The service must keep at least one active admin, or nobody could run it from the app. */
async function keepOneAdmin(db: Kysely<Database>, user: UserRow): Promise<void> {
  if (user.status === "active" && (await countActiveAdmins(db)) <= 1) {
    throw new ServiceError("conflict", "This is the last active admin account; make another admin first.", { code: "last_admin" });
  }
}
