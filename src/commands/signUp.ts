import type { Kysely } from "kysely";
import { codePrefix, recordRedemption, takeAccessCodeUse, type AccessCodeGrant } from "../auth/accessCodes.ts";
import { writeAudit } from "../auth/audit.ts";
import { addCredit } from "../billing/balances.ts";
import type { PasswordHasher } from "../auth/passwords.ts";
import { getSignupMode } from "../auth/signupMode.ts";
import { CODE_IP_RULE, CODE_PREFIX_RULE, Throttle } from "../auth/throttle.ts";
import { claimFirstAccount, DEFAULT_PLAN_ID, insertUser, updateUser, type UserRow } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import { accountTaken, retryAfter } from "./errors.ts";

export interface SignUpInput {
  /** Already validated and normalised (usernameSchema, emailSchema, password length). */
  username: string;
  email: string | null;
  password: string;
  accessCode: string | null;
  ip: string | null;
}

export interface SignUpResult {
  user: UserRow;
  /** What the access code granted, when one was redeemed. */
  grant: AccessCodeGrant | null;
}

class InvalidAccessCode extends Error {}

/**
 * Self-service sign-up under the sign-up mode in force. In one transaction: redeems the access code
 * (its plan and credit, once), creates the account (admin if it is the first on this install), and
 * writes the audit entry — a failure anywhere leaves no account and no used code behind.
 * Every gate (mode, attack mode, code throttling, the code itself) is passed before anything is
 * said about the user name or e-mail address: without a valid code, a taken name and a free one
 * get the same answer, so the sign-up form cannot be used to find out who has an account.
 * Only the whitelisted fields of `input` exist here: nothing a client sends can choose a role,
 * plan or credit.
 */
export async function signUp(deps: { db: Kysely<Database>; hasher: PasswordHasher }, input: SignUpInput, now: number = Date.now()): Promise<SignUpResult> {
  const { db, hasher } = deps;
  const mode = await getSignupMode(db);
  if (mode === "closed") throw new ServiceError("forbidden", "Sign-up is closed on this server.", { code: "signup_closed" });
  if (mode === "code" && !input.accessCode) {
    throw new ServiceError("invalid_request", "An access code is required to sign up.", { code: "access_code_required", param: "access_code" });
  }
  const codeThrottles = input.accessCode ? codeThrottlesFor(db, input.ip, input.accessCode) : [];
  for (const { throttle, key } of codeThrottles) {
    const wait = await throttle.waitMs(key, now);
    if (wait > 0) throw retryAfter(wait, "Too many wrong access codes.", "too_many_code_attempts");
  }

  // Hash before the transaction: it is the slow part and holds no lock.
  const passwordHash = await hasher.hash(input.password);
  try {
    return await db.transaction().execute(async (trx) => {
      // The code first: a wrong one must be refused before the name is looked at.
      let grant: AccessCodeGrant | null = null;
      if (input.accessCode) {
        grant = await takeAccessCodeUse(trx, input.accessCode, now);
        if (!grant) throw new InvalidAccessCode();
      }
      // A taken name throws here and rolls the transaction back, giving the code's use back.
      const user = await insertUser(trx, { username: input.username, email: input.email, passwordHash, role: "user", status: "active", planId: DEFAULT_PLAN_ID }, now);
      if (grant) await recordRedemption(trx, grant, user.id, now);
      const first = await claimFirstAccount(trx, user.id, now);
      // The first account has nobody to approve it; a valid code is an approval given in advance.
      const status = mode === "approval" && !first && !grant ? "pending" : "active";
      const role = first ? "admin" : "user";
      const planId = grant?.planId ?? DEFAULT_PLAN_ID;
      // The code's starting credit, in the same transaction: granted credit, spent before topped-up.
      if (grant && grant.creditMicros > 0) {
        await addCredit(trx, { userId: user.id, kind: "granted", amountMicros: grant.creditMicros, source: "access_code", note: grant.accessCodeId }, now);
      }
      if (status !== user.status || role !== user.role || planId !== user.plan_id) {
        await updateUser(trx, user.id, { status, role, plan_id: planId }, now);
      }
      await writeAudit(
        trx,
        {
          actorUserId: user.id,
          action: "user.sign_up",
          targetType: "user",
          targetId: user.id,
          details: { mode, status, role, ...(grant ? { access_code_id: grant.accessCodeId, plan_id: grant.planId, credit_micros: grant.creditMicros } : {}) },
          ip: input.ip,
        },
        now,
      );
      return { user: { ...user, status, role, plan_id: planId }, grant };
    });
  } catch (error) {
    if (error instanceof InvalidAccessCode) {
      for (const { throttle, key } of codeThrottles) await throttle.recordFailure(key, now);
      throw new ServiceError("invalid_request", "This access code is not valid.", { code: "invalid_access_code", param: "access_code" });
    }
    throw accountTaken(error);
  }
}

function codeThrottlesFor(db: Kysely<Database>, ip: string | null, code: string) {
  return [
    { throttle: new Throttle(db, CODE_IP_RULE, "code-ip"), key: ip ?? "unknown" },
    { throttle: new Throttle(db, CODE_PREFIX_RULE, "code-prefix"), key: codePrefix(code) },
  ];
}
