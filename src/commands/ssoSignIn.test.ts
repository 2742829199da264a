import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase } from "../../test/support/databases.ts";
import { baseUsername, usernameCandidates } from "../auth/oidc/mapping.ts";
import type { SsoIdentity } from "../auth/oidc/providers.ts";
import { oidcProviderSchema, type OidcProviderConfig } from "../auth/oidcConfig.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { findUserByLogin } from "../auth/users.ts";
import { savePlan } from "../billing/plans.ts";
import { ServiceError } from "../errors.ts";
import type { Store } from "../store/database.ts";
import { createUser } from "./createUser.ts";
import { disableUser } from "./manageUsers.ts";
import { changeAttackMode, changeSignupMode } from "./signupSettings.ts";
import { ssoSignIn } from "./ssoSignIn.ts";

const hasher = new PasswordHasher({ memoryKiB: 64, iterations: 1, parallelism: 1 });
const lifetime = { maxAgeMs: 3_600_000, idleMs: 3_600_000 };

const provider = (extra: Partial<OidcProviderConfig> = {}): OidcProviderConfig =>
  oidcProviderSchema.parse({ id: "corp", name: "Corp", issuer: "https://idp.corp.example", clientId: "sputnik", ...extra });

const identity = (subject: string, extra: Partial<SsoIdentity> = {}): SsoIdentity => ({
  providerId: "corp",
  issuer: "https://idp.corp.example",
  subject,
  email: null,
  emailVerified: false,
  preferredUsername: null,
  name: null,
  groups: null,
  ...extra,
});

function signIn(store: Store, p: OidcProviderConfig, id: SsoIdentity) {
  return ssoSignIn({ db: store.db, hasher, lifetime }, { provider: p, identity: id, ip: "203.0.113.9", userAgent: "test", previousSessionId: null });
}

async function refused(promise: Promise<unknown>, code: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ServiceError, String(error));
    assert.equal(error.code, code);
    return true;
  });
}

async function root(store: Store) {
  return createUser({ db: store.db, hasher }, { username: "root", email: "root@corp.example", password: "root-password", role: "admin", by: null, ip: null });
}

test("user names come from preferred_username, else the e-mail's local part, and stay valid", () => {
  assert.equal(baseUsername({ preferredUsername: "Zoë Müller", email: null, name: null }), "zoe-muller");
  assert.equal(baseUsername({ preferredUsername: "jane.doe@corp.example", email: null, name: null }), "jane.doe");
  assert.equal(baseUsername({ preferredUsername: null, email: "x@corp.example", name: null }), "x-user");
  assert.equal(baseUsername({ preferredUsername: "__", email: null, name: null }), "user");
  assert.equal(baseUsername({ preferredUsername: "a".repeat(60), email: null, name: null }).length, 32);
  const candidates = usernameCandidates("a".repeat(32), 12);
  assert.equal(candidates[11], `${"a".repeat(29)}-12`);
  assert.ok(candidates.every((c) => /^[a-z0-9][a-z0-9_.-]{2,31}$/.test(c)));
});

forEachDatabase("a first sign-in provisions an account on the provider's plan, audited; later ones find it by (provider, sub)", async (store) => {
  await root(store);
  await changeSignupMode(store.db, null, "open");
  await savePlan(store.db, { id: "team", name: "Team", billed: false, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
  const corp = provider({ plan: "team" });
  const first = await signIn(store, corp, identity("sub-1", { preferredUsername: "Alice", email: "alice@corp.example", emailVerified: true }));
  assert.equal(first.outcome, "created");
  assert.deepEqual([first.user.username, first.user.email, first.user.role, first.user.status, first.user.plan_id], ["alice", "alice@corp.example", "user", "active", "team"]);
  assert.deepEqual(first.warnings, []);
  const audit = await store.db.selectFrom("audit_log").selectAll().where("action", "=", "user.sso_sign_up").execute();
  assert.equal(audit.length, 1);
  assert.equal(audit[0].target_id, first.user.id);
  assert.deepEqual(JSON.parse(audit[0].details), { provider: "corp", subject: "sub-1", mode: "open", status: "active", role: "user", plan_id: "team", email_kept: true });

  // The provider renamed her: the same sub is still the same account.
  const again = await signIn(store, corp, identity("sub-1", { preferredUsername: "alice.smith", email: "alice.smith@corp.example", emailVerified: true }));
  assert.deepEqual([again.outcome, again.user.id], ["signed_in", first.user.id]);
  assert.notEqual(again.session.id, first.session.id);
  assert.deepEqual([first.session.sign_in_method, again.session.sign_in_method], ["sso", "sso"], "SSO sessions are marked (the admin second-factor rule reads it)");
  const row = await store.db.selectFrom("oidc_identities").selectAll().executeTakeFirstOrThrow();
  assert.deepEqual([row.user_id, row.email], [first.user.id, "alice.smith@corp.example"]);

  // Same sub, another provider: another identity, another account, never merged.
  const partner = provider({ id: "partner", issuer: "https://idp.partner.example" });
  const other = await signIn(store, partner, identity("sub-1", { providerId: "partner", issuer: "https://idp.partner.example", preferredUsername: "alice", email: "alice@corp.example", emailVerified: true }));
  assert.equal(other.outcome, "created");
  assert.notEqual(other.user.id, first.user.id);
  assert.equal(other.user.username, "alice-2");
  assert.equal(other.user.email, null, "a verified address that belongs to another account is not copied (nor linked)");
  assert.equal(other.user.plan_id, "free");
});

forEachDatabase("e-mail links an account only with linkByVerifiedEmail and a verified address", async (store) => {
  const owner = await root(store);
  await changeSignupMode(store.db, null, "open");
  const linking = provider({ linkByVerifiedEmail: true });
  const unverified = await signIn(store, linking, identity("u-1", { email: "root@corp.example", emailVerified: false, preferredUsername: "root" }));
  assert.notEqual(unverified.user.id, owner.id);
  assert.equal(unverified.user.email, null);
  const notAllowed = await signIn(store, provider({ id: "other", issuer: "https://other.example" }), identity("u-2", { providerId: "other", issuer: "https://other.example", email: "root@corp.example", emailVerified: true }));
  assert.notEqual(notAllowed.user.id, owner.id);
  const linked = await signIn(store, linking, identity("u-3", { email: "root@corp.example", emailVerified: true }));
  assert.deepEqual([linked.outcome, linked.user.id, linked.user.role], ["linked", owner.id, "admin"]);
  assert.equal((await store.db.selectFrom("audit_log").select("action").where("action", "=", "user.sso_link").execute()).length, 1);
});

forEachDatabase("sign-up modes and attack mode decide about new accounts; linked ones sign in anyway", async (store) => {
  await root(store);
  const corp = provider({ adminGroups: ["ops"] });
  await changeSignupMode(store.db, null, "open");
  const existing = await signIn(store, corp, identity("linked", { groups: [] }));

  await changeSignupMode(store.db, null, "closed");
  await refused(signIn(store, corp, identity("new-1")), "signup_closed");
  assert.equal((await signIn(store, corp, identity("linked", { groups: [] }))).user.id, existing.user.id);

  await changeSignupMode(store.db, null, "code");
  await refused(signIn(store, corp, identity("new-2")), "signup_requires_code");

  await changeSignupMode(store.db, null, "approval");
  await refused(signIn(store, corp, identity("new-3", { preferredUsername: "waiting" })), "account_pending");
  assert.equal((await findUserByLogin(store.db, "waiting"))?.status, "pending", "the pending account stays created");
  await refused(signIn(store, corp, identity("new-3", { preferredUsername: "waiting" })), "account_pending");
  const promoted = await signIn(store, corp, identity("new-3", { preferredUsername: "waiting", groups: ["ops"] }));
  assert.deepEqual([promoted.user.status, promoted.user.role], ["active", "admin"], "made admin by the provider: approved");
  const admin = await signIn(store, corp, identity("new-4", { preferredUsername: "opsy", groups: ["ops"] }));
  assert.deepEqual([admin.user.role, admin.user.status], ["admin", "active"], "an admin named by the provider needs nobody's approval");

  await changeSignupMode(store.db, null, "open");
  await changeAttackMode(store.db, null, { enabled: true, signupMode: "code" });
  await refused(signIn(store, corp, identity("new-5")), "signup_requires_code");
  assert.equal((await signIn(store, corp, identity("linked", { groups: [] }))).user.id, existing.user.id);
  await changeAttackMode(store.db, null, { enabled: false });

  const disabledUser = await signIn(store, corp, identity("to-disable", { groups: [] }));
  await disableUser(store.db, { userId: admin.user.id, ip: null }, disabledUser.user.id);
  await refused(signIn(store, corp, identity("to-disable", { groups: [] })), "account_disabled");
});

forEachDatabase("groups map to admin and to plans at every sign-in; a missing claim changes nothing; the last admin stays", async (store) => {
  await changeSignupMode(store.db, null, "open");
  await savePlan(store.db, { id: "pro", name: "Pro", billed: false, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
  const corp = provider({ adminGroups: ["ops"], planByGroup: { research: "pro", staff: "free" }, plan: "free" });
  // A fresh install: the first account is the admin, groups or not.
  const first = await signIn(store, corp, identity("first", { groups: ["staff"] }));
  assert.equal(first.user.role, "admin");
  // The last active admin is not demoted by a groups claim.
  const kept = await signIn(store, corp, identity("first", { groups: ["staff"] }));
  assert.equal(kept.user.role, "admin");
  assert.match(kept.warnings.join(" "), /last active admin/);

  const bob = await signIn(store, corp, identity("bob", { groups: ["ops", "research", "staff"] }));
  assert.deepEqual([bob.user.role, bob.user.plan_id], ["admin", "pro"]);
  const demoted = await signIn(store, corp, identity("bob", { groups: ["staff"] }));
  assert.deepEqual([demoted.user.role, demoted.user.plan_id], ["user", "free"]);
  const noClaim = await signIn(store, corp, identity("bob", { groups: null }));
  assert.deepEqual([noClaim.user.role, noClaim.user.plan_id], ["user", "free"], "no groups claim at all: role and plan stay");
  const promoted = await signIn(store, corp, identity("bob", { groups: ["ops", "research"] }));
  assert.deepEqual([promoted.user.role, promoted.user.plan_id], ["admin", "pro"]);
  const changes = await store.db.selectFrom("audit_log").select(["action", "details"]).where("target_id", "=", bob.user.id).where("action", "in", ["user.set_role", "user.plan"]).orderBy("id").execute();
  // Ids made in the same millisecond do not sort by time: compare as sets.
  assert.deepEqual(
    changes.map((c) => `${c.action}:${JSON.parse(c.details).to}`).sort(),
    ["user.plan:free", "user.plan:pro", "user.set_role:admin", "user.set_role:user"],
  );

  const unknownPlan = provider({ id: "lab", issuer: "https://lab.example", plan: "nope" });
  const withWarning = await signIn(store, unknownPlan, identity("x", { providerId: "lab", issuer: "https://lab.example" }));
  assert.equal(withWarning.user.plan_id, "nope");
  assert.match(withWarning.warnings.join(" "), /plan "nope", which does not exist/);
});

forEachDatabase("an identity linked under one issuer is refused when its provider id names another issuer", async (store) => {
  await root(store);
  await changeSignupMode(store.db, null, "open");
  await signIn(store, provider(), identity("s"));
  const moved = provider({ issuer: "https://evil.example" });
  await refused(signIn(store, moved, identity("s", { issuer: "https://evil.example" })), "sso_issuer_mismatch");
});
