import type { Kysely } from "kysely";
import type { Role } from "../auth/actor.ts";
import { writeAudit } from "../auth/audit.ts";
import type { PasswordHasher } from "../auth/passwords.ts";
import { claimFirstAccount, DEFAULT_PLAN_ID, insertUser, updateUser, type UserRow } from "../auth/users.ts";
import type { Database } from "../store/schema.ts";
import { accountTaken } from "./errors.ts";

export interface CreateUserInput {
  /** Already validated and normalised. */
  username: string;
  email: string | null;
  password: string;
  role: Role;
  /** The admin creating it; null from the command line. */
  by: string | null;
  ip: string | null;
}

/**
 * An account made by an operator (CLI `sputnik admin create-user`, or an admin in the app): active at
 * once whatever the sign-up mode. The first account on an install is admin whatever was asked.
 */
export async function createUser(deps: { db: Kysely<Database>; hasher: PasswordHasher }, input: CreateUserInput, now: number = Date.now()): Promise<UserRow> {
  const passwordHash = await deps.hasher.hash(input.password);
  try {
    return await deps.db.transaction().execute(async (trx) => {
      const user = await insertUser(trx, { username: input.username, email: input.email, passwordHash, role: input.role, status: "active", planId: DEFAULT_PLAN_ID }, now);
      const first = await claimFirstAccount(trx, user.id, now);
      const role: Role = first ? "admin" : input.role;
      if (role !== user.role) await updateUser(trx, user.id, { role }, now);
      await writeAudit(trx, { actorUserId: input.by, action: "user.create", targetType: "user", targetId: user.id, details: { role, username: user.username }, ip: input.ip }, now);
      return { ...user, role };
    });
  } catch (error) {
    throw accountTaken(error);
  }
}
