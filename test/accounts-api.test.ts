/**
 * The accounts app API end to end, over HTTP against a real server, on SQLite and PostgreSQL:
 * sign-up, sign-in, sessions, API keys on /v1, admin users, sign-up and attack modes, access codes,
 * the audit log.
 */
import assert from "node:assert/strict";
import { listRedemptions } from "../src/auth/accessCodes.ts";
import { getSignupMode, isAttackMode } from "../src/auth/signupMode.ts";
import { savePlan } from "../src/billing/plans.ts";
import { forEachDatabase } from "./support/databases.ts";
import { startAccountsServer, TEST_PASSWORD } from "./support/accountsServer.ts";

forEachDatabase("sign-up, me, logout and login again; a new session id at every sign-in", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const state = await server.client().get("/api/auth/state");
  assert.equal(state.status, 200);
  assert.deepEqual([state.body.user, state.body.signup_mode, state.body.setup_required], [null, "open", true]);

  const alice = await server.signUp("Alice", { email: "Alice@Example.com" });
  const me = await alice.get("/api/auth/me");
  assert.equal(me.status, 200);
  assert.deepEqual(
    { username: me.body.user.username, email: me.body.user.email, role: me.body.user.role, status: me.body.user.status, plan_id: me.body.user.plan_id },
    { username: "alice", email: "alice@example.com", role: "admin", status: "active", plan_id: "free" },
  );
  assert.equal(me.body.csrf_token, alice.cookies.get("sputnik_csrf"));
  const firstSession = alice.cookies.get("sputnik_session");

  assert.equal((await alice.post("/api/auth/logout")).status, 204);
  assert.equal(alice.cookies.has("sputnik_session"), false);
  assert.equal((await alice.get("/api/auth/me")).status, 401);

  // The old cookie, replayed, is dead.
  const replay = server.client();
  replay.cookies.set("sputnik_session", firstSession!);
  assert.equal((await replay.get("/api/auth/me")).status, 401);

  const byEmail = await alice.post("/api/auth/login", { login: "ALICE@example.com", password: TEST_PASSWORD });
  assert.equal(byEmail.status, 200, byEmail.text);
  assert.equal(byEmail.body.user.username, "alice");
  assert.notEqual(alice.cookies.get("sputnik_session"), firstSession);
  const again = await alice.post("/api/auth/login", { login: "alice", password: TEST_PASSWORD });
  assert.equal(again.status, 200);
  const sessions = await alice.get("/api/auth/sessions");
  assert.equal(sessions.body.data.length, 1, "signing in again ended the session it replaced");
  assert.equal(sessions.body.data[0].current, true);
});

forEachDatabase("sessions: list and revoke one's own; revoking the current one signs out", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const laptop = await server.signUp("bob");
  const phone = server.client();
  assert.equal((await phone.post("/api/auth/login", { login: "bob", password: TEST_PASSWORD })).status, 200);
  const list = await laptop.get("/api/auth/sessions");
  assert.equal(list.body.data.length, 2);
  const phoneSession = list.body.data.find((s: { current: boolean }) => !s.current);
  assert.equal((await laptop.delete(`/api/auth/sessions/${phoneSession.id}`)).status, 204);
  assert.equal((await phone.get("/api/auth/me")).status, 401);
  assert.equal((await laptop.delete(`/api/auth/sessions/${phoneSession.id}`)).status, 404, "already ended");
  const current = (await laptop.get("/api/auth/sessions")).body.data[0];
  assert.equal((await laptop.delete(`/api/auth/sessions/${current.id}`)).status, 204);
  assert.equal((await laptop.get("/api/auth/me")).status, 401);
});

forEachDatabase("API keys: shown once, listed by prefix, work on /v1 with last-use recorded, rename, expire, revoke", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const alice = await server.signUp("alice");
  const created = await alice.post("/api/keys", { name: "laptop", models: ["m1", "m1"], expires_in_days: 30 });
  assert.equal(created.status, 201, created.text);
  const key: string = created.body.key;
  assert.match(key, /^sk-[0-9A-Za-z]{48}$/);
  assert.equal(created.body.prefix, key.slice(0, 11));
  assert.deepEqual(created.body.models, ["m1"]);
  assert.ok(Date.parse(created.body.expires_at) > Date.now() + 29 * 86_400_000);

  const listed = await alice.get("/api/keys");
  assert.equal(listed.body.data.length, 1);
  assert.equal(listed.body.data[0].key, undefined);
  assert.equal(listed.body.data[0].last_used_at, null);

  const api = server.client();
  const models = await api.get("/v1/models", { headers: { authorization: `Bearer ${key}` } });
  assert.equal(models.status, 200);
  assert.notEqual((await alice.get(`/api/keys/${created.body.id}`)).body.last_used_at, null);

  const renamed = await alice.patch(`/api/keys/${created.body.id}`, { name: "work laptop" });
  assert.equal(renamed.body.name, "work laptop");
  assert.equal((await alice.delete(`/api/keys/${created.body.id}`)).status, 204);
  assert.equal((await api.get("/v1/models", { headers: { authorization: `Bearer ${key}` } })).status, 401);
  assert.equal((await alice.get(`/api/keys/${created.body.id}`)).status, 404);
  assert.equal((await alice.get("/api/keys")).body.data.length, 0);

  // An expired key fails.
  const soon = await alice.post("/api/keys", { name: "short", expires_at: new Date(Date.now() + 60_000).toISOString() });
  await store.db.updateTable("api_keys").set({ expires_at: Date.now() - 1 }).where("id", "=", soon.body.id).execute();
  assert.equal((await api.get("/v1/models", { headers: { authorization: `Bearer ${soon.body.key}` } })).status, 401);
  assert.equal((await alice.get(`/api/keys/${soon.body.id}`)).body.expired, true);
  // Bad input is a 400 naming the field.
  const bad = await alice.post("/api/keys", { name: "", models: [] });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.param, "name");
});

forEachDatabase("admin: list and search users, approve, change roles, keep one admin, audit everything", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const root = await server.signUp("root");
  assert.equal((await root.put("/api/admin/signup-mode", { mode: "approval" })).body.signup_mode, "approval");

  const carol = server.client();
  const pending = await carol.post("/api/auth/signup", { username: "carol", email: "carol@example.com", password: TEST_PASSWORD });
  assert.equal(pending.status, 202);
  assert.equal(pending.body.user.status, "pending");
  assert.equal(carol.cookies.has("sputnik_session"), false);
  const refused = await carol.post("/api/auth/login", { login: "carol", password: TEST_PASSWORD });
  assert.deepEqual([refused.status, refused.body.error.code], [403, "account_pending"]);

  const search = await root.get("/api/admin/users?q=CAROL&status=pending");
  assert.deepEqual(search.body.data.map((u: { username: string }) => u.username), ["carol"]);
  const carolId = search.body.data[0].id;
  assert.equal((await root.post(`/api/admin/users/${carolId}/approve`)).body.status, "active");
  assert.equal((await carol.post("/api/auth/login", { login: "carol", password: TEST_PASSWORD })).status, 200);
  assert.equal((await root.post(`/api/admin/users/${carolId}/approve`)).status, 200, "approving twice changes nothing");

  assert.equal((await root.patch(`/api/admin/users/${carolId}`, { role: "admin" })).body.role, "admin");
  assert.equal((await carol.get("/api/admin/users")).status, 200, "the new role applies to the live session");
  assert.equal((await carol.patch(`/api/admin/users/${carolId}`, { role: "user" })).body.role, "user");
  const rootId = (await root.get("/api/auth/me")).body.user.id;
  const lastAdmin = await root.patch(`/api/admin/users/${rootId}`, { role: "user" });
  assert.deepEqual([lastAdmin.status, lastAdmin.body.error.code], [409, "last_admin"]);
  assert.deepEqual((await root.post(`/api/admin/users/${rootId}/disable`)).body.error.code, "cannot_disable_self");
  assert.equal((await root.post(`/api/admin/users/${carolId}/disable`)).body.status, "disabled");
  const notPending = await root.post(`/api/admin/users/${carolId}/approve`);
  assert.deepEqual([notPending.status, notPending.body.error.code], [409, "invalid_status"]);
  assert.equal((await root.post(`/api/admin/users/${carolId}/enable`)).body.status, "active");

  // Paging.
  for (const name of ["usr1", "usr2", "usr3"]) assert.equal((await root.post("/api/admin/users", { username: name, password: TEST_PASSWORD })).status, 201);
  const page1 = await root.get("/api/admin/users?limit=2");
  assert.equal(page1.body.data.length, 2);
  const page2 = await root.get(`/api/admin/users?limit=2&cursor=${page1.body.next_cursor}`);
  const page3 = await root.get(`/api/admin/users?limit=2&cursor=${page2.body.next_cursor}`);
  const names = [...page1.body.data, ...page2.body.data, ...page3.body.data].map((u: { username: string }) => u.username);
  assert.deepEqual(names, ["usr3", "usr2", "usr1", "carol", "root"]);
  assert.equal(page3.body.next_cursor, null);
  assert.equal((await root.get("/api/admin/users?cursor=garbage")).status, 400);

  const audit = await root.get("/api/admin/audit?limit=100");
  const actions = audit.body.data.map((e: { action: string }) => e.action).reverse();
  assert.deepEqual(actions, [
    "user.sign_up",
    "settings.signup_mode",
    "user.sign_up",
    "user.approve",
    "user.set_role",
    "user.set_role",
    "user.disable",
    "user.enable",
    "user.create",
    "user.create",
    "user.create",
  ]);
  const approve = audit.body.data.find((e: { action: string }) => e.action === "user.approve");
  assert.deepEqual([approve.actor_user_id, approve.target_id, approve.details], [rootId, carolId, { from: "pending", to: "active" }]);
  assert.ok(Date.parse(approve.created_at) > 0);
});

forEachDatabase("disabling a user ends their sessions and keys at once; enabling brings back keys, not sessions", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const root = await server.signUp("root");
  const dave = await server.signUp("dave");
  const key = (await dave.post("/api/keys", { name: "k" })).body.key;
  const bearer = { headers: { authorization: `Bearer ${key}` } };
  const api = server.client();
  assert.equal((await api.get("/v1/models", bearer)).status, 200);
  const daveId = (await dave.get("/api/auth/me")).body.user.id;

  assert.equal((await root.post(`/api/admin/users/${daveId}/disable`)).body.status, "disabled");
  assert.equal((await dave.get("/api/auth/me")).status, 401);
  assert.equal((await api.get("/v1/models", bearer)).status, 401);
  const login = await server.client().post("/api/auth/login", { login: "dave", password: TEST_PASSWORD });
  assert.deepEqual([login.status, login.body.error.code], [403, "account_disabled"]);

  assert.equal((await root.post(`/api/admin/users/${daveId}/enable`)).body.status, "active");
  assert.equal((await api.get("/v1/models", bearer)).status, 200);
  assert.equal((await dave.get("/api/auth/me")).status, 401, "the ended session stays ended");
});

forEachDatabase("access codes: created with their grant, shown once, redeemed exactly as granted, listed with use counts, revoked", async (store, t) => {
  const server = await startAccountsServer(t, store);
  await savePlan(store.db, { id: "pro", name: "Pro", billed: true, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 2, features: [] });
  const root = await server.signUp("root");
  assert.equal((await root.post("/api/admin/access-codes", { plan_id: "nope" })).body.error.code, "unknown_plan");
  const created = await root.post("/api/admin/access-codes", { max_uses: 2, plan_id: "pro", credit_micros: 5_000_000, note: "launch", expires_in_days: 7 });
  assert.equal(created.status, 201, created.text);
  const code: string = created.body.code;
  assert.deepEqual(
    [created.body.status, created.body.uses, created.body.max_uses, created.body.plan_id, created.body.credit_micros],
    ["active", 0, 2, "pro", 5_000_000],
  );

  await root.put("/api/admin/signup-mode", { mode: "code" });
  const noCode = await server.client().post("/api/auth/signup", { username: "xxx1", password: TEST_PASSWORD });
  assert.deepEqual([noCode.status, noCode.body.error.code, noCode.body.error.param], [400, "access_code_required", "access_code"]);
  const e1 = await server.signUp("eee1", { access_code: code.toLowerCase() });
  const e2 = await server.signUp("eee2", { access_code: code, credit_micros: 10 ** 12, plan_id: "enterprise" });
  for (const client of [e1, e2]) {
    const me = (await client.get("/api/auth/me")).body.user;
    assert.deepEqual([me.plan_id, me.role], ["pro", "user"]);
  }
  const third = await server.client().post("/api/auth/signup", { username: "eee3", password: TEST_PASSWORD, access_code: code });
  assert.deepEqual([third.status, third.body.error.code], [400, "invalid_access_code"]);

  const redemptions = await listRedemptions(store.db, { accessCodeId: created.body.id });
  assert.deepEqual(redemptions.map((r) => [r.plan_id, r.credit_micros]), [["pro", 5_000_000], ["pro", 5_000_000]]);
  const listed = await root.get("/api/admin/access-codes");
  assert.equal(listed.body.data.length, 1);
  assert.deepEqual([listed.body.data[0].uses, listed.body.data[0].status, listed.body.data[0].code], [2, "used_up", undefined]);

  const another = await root.post("/api/admin/access-codes", {});
  const revoked = await root.delete(`/api/admin/access-codes/${another.body.id}`);
  assert.equal(revoked.body.status, "revoked");
  const late = await server.client().post("/api/auth/signup", { username: "eee4", password: TEST_PASSWORD, access_code: another.body.code });
  assert.equal(late.body.error.code, "invalid_access_code");
  const audit = (await root.get("/api/admin/audit?action=access_code.revoke")).body.data;
  assert.deepEqual(audit.map((e: { target_id: string }) => e.target_id), [another.body.id]);
});

forEachDatabase("attack mode: sign-up closes or needs a code at once; admins see it; switching off restores the mode", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const root = await server.signUp("root");
  const on = await root.put("/api/admin/attack-mode", { enabled: true, signup_mode: "closed" });
  assert.equal(on.status, 200);
  assert.deepEqual([on.body.attack_mode.enabled, on.body.attack_mode.signup_mode, on.body.effective_signup_mode, on.body.signup_mode], [true, "closed", "closed", "open"]);
  assert.equal(await isAttackMode(store.db), true);
  const closed = await server.client().post("/api/auth/signup", { username: "fff1", password: TEST_PASSWORD });
  assert.deepEqual([closed.status, closed.body.error.code], [403, "signup_closed"]);
  assert.equal((await server.client().get("/api/auth/state")).body.signup_mode, "closed");
  const seen = await root.get("/api/admin/attack-mode");
  assert.equal(seen.body.attack_mode.enabled, true);
  assert.notEqual(seen.body.attack_mode.updated_at, null);

  await root.put("/api/admin/attack-mode", { enabled: true, signup_mode: "code" });
  assert.equal(await getSignupMode(store.db), "code");
  const code = (await root.post("/api/admin/access-codes", {})).body.code;
  assert.equal((await server.client().post("/api/auth/signup", { username: "fff2", password: TEST_PASSWORD })).body.error.code, "access_code_required");
  assert.equal((await server.client().post("/api/auth/signup", { username: "fff3", password: TEST_PASSWORD, access_code: code })).status, 201);

  await root.put("/api/admin/attack-mode", { enabled: false });
  assert.equal((await server.client().post("/api/auth/signup", { username: "fff4", password: TEST_PASSWORD })).status, 201);
  const audit = (await root.get("/api/admin/audit?action=settings.attack_mode")).body.data;
  assert.equal(audit.length, 3);
});
