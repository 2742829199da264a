import { randomBytes, randomInt } from "node:crypto";
import type { Kysely } from "kysely";
import type { Role } from "../auth/actor.ts";
import { writeAudit } from "../auth/audit.ts";
import { findIdentity, linkIdentity, touchIdentity } from "../auth/oidc/identities.ts";
import { baseUsername, initialPlan, planFromGroups, roleFromGroups, usernameCandidates } from "../auth/oidc/mapping.ts";
import type { SsoIdentity } from "../auth/oidc/providers.ts";
import type { OidcProviderConfig } from "../auth/oidcConfig.ts";
import type { PasswordHasher } from "../auth/passwords.ts";
import { createSession, revokeSession, type SessionLifetime, type SessionRow } from "../auth/sessions.ts";
import { getSignupMode, type SignupMode } from "../auth/signupMode.ts";
import { AccountTakenError, claimFirstAccount, countActiveAdmins, findUserById, insertUser, updateUser, type UserRow } from "../auth/users.ts";
import { getPlan } from "../billing/plans.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";

export interface SsoSignInInput {
  provider: OidcProviderConfig;
  /** Validated by the provider's flow (src/auth/oidc/providers.ts). */
  identity: SsoIdentity;
  ip: string | null;
  userAgent: string | null;
  /** The session this browser had, ended now: every sign-in gets a fresh session id. */
  previousSessionId: string | null;
}

export interface SsoSignInDeps {
  db: Kysely<Database>;
  hasher: PasswordHasher;
  lifetime: SessionLifetime;
}

export interface SsoSignInResult {
  user: UserRow;
  token: string;
  session: SessionRow;
  /** How the identity found its account this time. */
  outcome: "signed_in" | "linked" | "created";
  /** Configuration problems worth an operator's attention (a mapped plan that does not exist). */
  warnings: string[];
}

/**
 * Signs in with an identity a provider vouched for, in one transaction with its audit rows:
 *
 * - the account linked to (provider id, sub) — never found by e-mail, and a `sub` from another
 *   provider is another identity — unless that provider has `linkByVerifiedEmail` and the
 *   address is verified: then the account with that address is linked (`user.sso_link`);
 * - else a new account (`user.sso_sign_up`) under the sign-up mode in force, attack mode
 *   included: `open` makes it active, `approval` pending (members of `adminGroups` and the first
 *   account on the install excepted: someone must be able to approve), `code` and `closed`
 *   refuse — a provider cannot carry an access code, and with a public provider anyone has an
 *   identity, so a sign-in there is no stand-in for one. Accounts already linked sign in whatever
 *   the mode. Its user name comes from preferred_username (else the e-mail's local part), made
 *   unique; its e-mail address is kept only when verified and not another account's (that
 *   account is not touched); it gets a random password nobody knows.
 * - groups (when the provider sends the claim) set the role (`adminGroups`) and plan
 *   (`planByGroup`) at every sign-in, audited as `user.set_role` / `user.plan` with source "sso";
 *   the last active admin is never demoted.
 *
 * Disabled accounts are refused; pending ones are refused after the transaction (a new pending
 * account stays created) unless the provider now names them admins.
 */
export async function ssoSignIn(deps: SsoSignInDeps, input: SsoSignInInput, now: number = Date.now()): Promise<SsoSignInResult> {
  const { db } = deps;
  const { provider, identity } = input;
  if (identity.providerId !== provider.id) throw new Error("ssoSignIn: the identity comes from another provider");
  const mode = await getSignupMode(db);
  // Hashing is the slow part: done before the transaction, and only when an account may be made.
  const known = await findIdentity(db, provider.id, identity.subject);
  const makeHash = () => deps.hasher.hash(randomBytes(32).toString("base64url"));
  const early = known ? null : await makeHash();
  // Nobody knows this password: the account signs in through its provider (or after an admin's reset).
  const passwordHash = async () => early ?? (await makeHash());

  const warnings: string[] = [];
  let result: { user: UserRow; outcome: SsoSignInResult["outcome"] } | undefined;
  for (let attempt = 1; !result; attempt++) {
    warnings.length = 0;
    try {
      result = await db.transaction().execute((trx) => signInTransaction(trx, input, mode, passwordHash, warnings, now));
    } catch (error) {
      // Two first sign-ins racing (same identity, or for one user name): the loser looks again.
      if (attempt < 3 && (error instanceof AccountTakenError || identityTaken(error))) continue;
      throw error;
    }
  }
  const { user, outcome } = result;
  // Told only to whoever proved the identity.
  if (user.status === "pending") {
    throw new ServiceError("forbidden", "Your account is waiting for an administrator's approval.", { code: "account_pending" });
  }
  if (input.previousSessionId) await revokeSession(db, input.previousSessionId, now);
  const { token, session } = await createSession(db, { userId: user.id, userAgent: input.userAgent, ip: input.ip, lifetime: deps.lifetime, signInMethod: "sso" }, now);
  await updateUser(db, user.id, { last_login_at: now }, now);
  return { user: { ...user, last_login_at: now }, token, session, outcome, warnings };
}

async function signInTransaction(
  trx: Kysely<Database>,
  input: SsoSignInInput,
  mode: SignupMode,
  passwordHash: () => Promise<string>,
  warnings: string[],
  now: number,
): Promise<{ user: UserRow; outcome: SsoSignInResult["outcome"] }> {
  const { provider, identity } = input;
  const linked = await findIdentity(trx, provider.id, identity.subject);
  let user: UserRow | undefined;
  let outcome: SsoSignInResult["outcome"] = "signed_in";
  if (linked) {
    if (linked.issuer !== identity.issuer) {
      // The provider id now names another issuer, whose subs are not the first one's people.
      throw new ServiceError("forbidden", `Provider "${provider.id}" now has another issuer than the one its accounts were linked with.`, {
        code: "sso_issuer_mismatch",
      });
    }
    user = await findUserById(trx, linked.user_id);
  } else if (provider.linkByVerifiedEmail && identity.emailVerified && identity.email) {
    user = await trx.selectFrom("users").selectAll().where("email", "=", identity.email).executeTakeFirst();
    if (user) {
      outcome = "linked";
      await linkIdentity(trx, { providerId: provider.id, subject: identity.subject, issuer: identity.issuer, userId: user.id, email: identity.email }, now);
      await writeAudit(
        trx,
        { actorUserId: user.id, action: "user.sso_link", targetType: "user", targetId: user.id, details: { provider: provider.id, subject: identity.subject, email: identity.email }, ip: input.ip },
        now,
      );
    }
  }
  if (!user) {
    return { user: await provision(trx, input, mode, passwordHash, warnings, now), outcome: "created" };
  }

  if (user.status === "disabled") throw new ServiceError("forbidden", "Your account has been disabled.", { code: "account_disabled" });
  const updated = await applyGroups(trx, input, user, warnings, now);
  if (linked) await touchIdentity(trx, provider.id, identity.subject, identity.email, now);
  return { user: updated, outcome };
}

async function provision(
  trx: Kysely<Database>,
  input: SsoSignInInput,
  mode: SignupMode,
  passwordHash: () => Promise<string>,
  warnings: string[],
  now: number,
): Promise<UserRow> {
  const { provider, identity } = input;
  if (mode === "closed") {
    throw new ServiceError("forbidden", "This server is not creating new accounts right now.", { code: "signup_closed" });
  }
  if (mode === "code") {
    throw new ServiceError("forbidden", "New accounts on this server need an access code, which single sign-on cannot carry.", { code: "signup_requires_code" });
  }
  // Kept only when the provider verified it and no other account has it: never a way into that account.
  let email: string | null = null;
  if (identity.email && identity.emailVerified) {
    const owner = await trx.selectFrom("users").select("id").where("email", "=", identity.email).executeTakeFirst();
    email = owner ? null : identity.email;
  }
  const username = await freeUsername(trx, baseUsername(identity));
  const planId = initialPlan(provider, identity.groups);
  const groupRole = roleFromGroups(provider, identity.groups);
  const user = await insertUser(trx, { username, email, passwordHash: await passwordHash(), role: "user", status: "active", planId }, now);
  const first = await claimFirstAccount(trx, user.id, now);
  const role: Role = first ? "admin" : (groupRole ?? "user");
  // Someone must be able to approve: the first account, and admins named by the provider, start active.
  const status = mode === "approval" && role !== "admin" ? "pending" : "active";
  if (role !== user.role || status !== user.status) await updateUser(trx, user.id, { role, status }, now);
  await linkIdentity(trx, { providerId: provider.id, subject: identity.subject, issuer: identity.issuer, userId: user.id, email: identity.email }, now);
  await warnUnknownPlan(trx, provider, planId, warnings);
  await writeAudit(
    trx,
    {
      actorUserId: user.id,
      action: "user.sso_sign_up",
      targetType: "user",
      targetId: user.id,
      details: { provider: provider.id, subject: identity.subject, mode, status, role, plan_id: planId, email_kept: email !== null },
      ip: input.ip,
    },
    now,
  );
  return { ...user, role, status };
}

/** Role and plan from the groups claim, when this provider manages them (src/auth/oidc/mapping.ts). */
async function applyGroups(trx: Kysely<Database>, input: SsoSignInInput, user: UserRow, warnings: string[], now: number): Promise<UserRow> {
  const { provider, identity } = input;
  let { role, plan_id: planId } = user;
  const groupRole = roleFromGroups(provider, identity.groups);
  if (groupRole !== undefined && groupRole !== role) {
    const lastAdmin = role === "admin" && user.status === "active" && (await countActiveAdmins(trx)) <= 1;
    if (lastAdmin) {
      warnings.push(`${user.username} left the admin groups of "${provider.id}" but stays admin: it is the last active admin account.`);
    } else {
      await writeAudit(
        trx,
        { actorUserId: user.id, action: "user.set_role", targetType: "user", targetId: user.id, details: { from: role, to: groupRole, source: "sso", provider: provider.id }, ip: input.ip },
        now,
      );
      role = groupRole;
    }
  }
  const groupPlan = planFromGroups(provider, identity.groups);
  if (groupPlan !== undefined && groupPlan !== planId) {
    await warnUnknownPlan(trx, provider, groupPlan, warnings);
    await writeAudit(
      trx,
      { actorUserId: user.id, action: "user.plan", targetType: "user", targetId: user.id, details: { from: planId, to: groupPlan, source: "sso", provider: provider.id }, ip: input.ip },
      now,
    );
    planId = groupPlan;
  }
  // As at provisioning: an admin named by the provider waits for nobody's approval.
  let status = user.status;
  if (status === "pending" && groupRole === "admin") {
    status = "active";
    await writeAudit(
      trx,
      { actorUserId: user.id, action: "user.approve", targetType: "user", targetId: user.id, details: { from: "pending", to: "active", source: "sso", provider: provider.id }, ip: input.ip },
      now,
    );
  }
  if (role !== user.role || planId !== user.plan_id || status !== user.status) await updateUser(trx, user.id, { role, plan_id: planId, status }, now);
  return { ...user, role, plan_id: planId, status };
}

async function freeUsername(trx: Kysely<Database>, base: string): Promise<string> {
  const candidates = usernameCandidates(base, 20);
  const taken = new Set((await trx.selectFrom("users").select("username").where("username", "in", candidates).execute()).map((r) => r.username));
  const free = candidates.find((c) => !taken.has(c));
  // Twenty namesakes: a random suffix (a clash there is retried by the caller).
  return free ?? `${base.slice(0, 25).replace(/[^a-z0-9]+$/, "")}-${randomInt(100_000, 1_000_000)}`;
}

/** A plan id that does not exist falls back to the default plan in billing; the operator should know. */
async function warnUnknownPlan(trx: Kysely<Database>, provider: OidcProviderConfig, planId: string, warnings: string[]): Promise<void> {
  if (!(await getPlan(trx, planId))) warnings.push(`Provider "${provider.id}" maps to plan "${planId}", which does not exist: billing uses the default plan.`);
}

function identityTaken(error: unknown): boolean {
  const e = error as { code?: string; message?: string; constraint?: string };
  const duplicate = e.code === "23505" || String(e.code).startsWith("SQLITE_CONSTRAINT");
  return duplicate && /oidc_identities/.test(`${e.constraint ?? ""} ${e.message ?? ""}`);
}
