import type { Kysely } from "kysely";
import { codePrefix, redeemAccessCode, type AccessCodeGrant } from "../auth/accessCodes.ts";
import { writeAudit } from "../auth/audit.ts";
import { addCredit } from "../billing/balances.ts";
import type { PasswordHasher } from "../auth/passwords.ts";
import { getSignupMode } from "../auth/signupMode.ts";
import { CODE_IP_RULE, CODE_PREFIX_RULE, Throttle } from "../auth/throttle.ts";
import { claimFirstAccount, DEFAULT_PLAN_ID, insertUser, updateUser, type UserRow } from "../auth/users.ts";
import { ApiError } from "../http/errors.ts";
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
 * Self-service sign-up under the sign-up mode in force. In one transaction: creates the account
 * (admin if it is the first on this install), redeems the access code (its plan and credit, once),
 * and writes the audit entry — a failure anywhere leaves no account and no used code behind.
 * Only the whitelisted fields of `input` exist here: nothing a client sends can choose a role,
 * plan or credit.
 */
export async function signUp(deps: { db: Kysely<Database>; hasher: PasswordHasher }, input: SignUpInput, now: number = Date.now()): Promise<SignUpResult> {
  const { db, hasher } = deps;
  const mode = await getSignupMode(db);
  if (mode === "closed") throw new ApiError(403, "Sign-up is closed on this server.", "signup_closed");
  if (mode === "code" && !input.accessCode) {
    throw new ApiError(400, "An access code is required to sign up.", "access_code_required", "access_code");
  }
  const codeThrottles = input.accessCode ? codeThrottlesFor(db, input.ip, input.accessCode) : [];
  for (const { throttle, key } of codeThrottles) {
    const wait = await throttle.waitMs(key, now);
    if (wait > 0) throw retryAfter(wait, "Too many wrong access codes. Try again later.", "too_many_code_attempts");
  }

  // Hash before the transaction: it is the slow part and holds no lock.
  const passwordHash = await hasher.hash(input.password);
  try {
    return await db.transaction().execute(async (trx) => {
      const user = await insertUser(trx, { username: input.username, email: input.email, passwordHash, role: "user", status: "active", planId: DEFAULT_PLAN_ID }, now);
      const first = await claimFirstAccount(trx, user.id, now);
      let grant: AccessCodeGrant | null = null;
      if (input.accessCode) {
        grant = await redeemAccessCode(trx, input.accessCode, user.id, now);
        if (!grant) throw new InvalidAccessCode();
      }
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
      throw new ApiError(400, "This access code is not valid.", "invalid_access_code", "access_code");
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
