import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { LOCAL, type Actor } from "../auth/actor.ts";
import { writeAudit } from "../auth/audit.ts";
import { anyUserExists, findUserById, insertUser, AccountTakenError } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";

/**
 * The account model audits run as (src/audit/runner.ts through the serving pipeline): a system
 * account on its own plan, so an audit waits in the queue, obeys the rate limits and is metered
 * like any client, and its usage is one line in the billing overview whose budget (the plan's
 * token quotas) the operator sets in the admin area. It cannot sign in: its password hash is no
 * hash at all, and it is never an admin.
 */
export const AUDIT_USERNAME = "audit";
export const AUDIT_PLAN_ID = "audit";
/** A fresh install's budget for audits: about ten full runs of the bundled suite on two models. */
export const AUDIT_PLAN_MONTHLY_TOKEN_QUOTA = 10_000_000;

/** settings row naming the account (so a person who took the name "audit" first is never used). */
const AUDIT_ACCOUNT_KEY = "audit_account";
/** Not a PHC string: every password check against it fails (src/auth/passwords.ts). */
const NO_PASSWORD = "!system-account:no-password";

/**
 * Who an audit runs as: the audit account, created with its plan on first use. On an install with
 * no account yet it is the local operator instead (metered, never charged): creating an account
 * there would end the loopback single-user mode and let a server bound to the network start
 * without an administrator (src/auth/localMode.ts).
 */
export async function auditActor(db: Kysely<Database>, now: number = Date.now()): Promise<Actor> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const known = await readAccountId(db);
    if (known) {
      const user = await findUserById(db, known);
      if (user) {
        if (user.status !== "active") {
          throw new ServiceError("forbidden", `The audit account "${user.username}" is ${user.status}: enable it in the admin area to run audits.`, { code: "audit_account_disabled" });
        }
        return { kind: "user", userId: user.id, role: "user", apiKeyId: null, sessionId: null, planId: user.plan_id };
      }
    }
    if (!(await anyUserExists(db))) return LOCAL;
    try {
      await createAuditAccount(db, now);
    } catch (error) {
      // Another process made it at the same moment: read theirs.
      if (!(error instanceof AccountTakenError) && !(error instanceof LostRace)) throw error;
    }
  }
  throw new ServiceError("internal", "The audit account could not be created.", { code: "audit_account_unavailable" });
}

class LostRace extends Error {}

async function readAccountId(db: Kysely<Database>): Promise<string | null> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", AUDIT_ACCOUNT_KEY).executeTakeFirst();
  if (!row) return null;
  try {
    const id = JSON.parse(row.value) as unknown;
    return typeof id === "string" ? id : null;
  } catch {
    return null;
  }
}

async function createAuditAccount(db: Kysely<Database>, now: number): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto("plans")
      .values({
        id: AUDIT_PLAN_ID,
        name: "Model audits",
        billed: 0,
        allowed_models: null,
        daily_token_quota: null,
        monthly_token_quota: AUDIT_PLAN_MONTHLY_TOKEN_QUOTA,
        max_thinking_budget: null,
        concurrency_weight: 1,
        features: "[]",
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.column("id").doNothing())
      .execute();
    const taken = await trx.selectFrom("users").select("id").where("username", "=", AUDIT_USERNAME).executeTakeFirst();
    const username = taken ? `${AUDIT_USERNAME}-${randomBytes(3).toString("hex")}` : AUDIT_USERNAME;
    const user = await insertUser(trx, { username, email: null, passwordHash: NO_PASSWORD, role: "user", status: "active", planId: AUDIT_PLAN_ID }, now);
    const claimed = await trx
      .insertInto("settings")
      .values({ key: AUDIT_ACCOUNT_KEY, value: JSON.stringify(user.id), updated_at: now, updated_by: null })
      .onConflict((oc) => oc.column("key").doNothing())
      .returning("key")
      .executeTakeFirst();
    if (!claimed) throw new LostRace();
    await writeAudit(trx, { actorUserId: null, action: "audit.account_create", targetType: "user", targetId: user.id, details: { username, plan: AUDIT_PLAN_ID } }, now);
  });
}
