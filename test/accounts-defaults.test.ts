/**
 * Safer defaults on a fresh install: after the first account (the admin), sign-up waits for
 * approval; the default plan has token quotas people can see and admins can raise. Installs that
 * already had accounts keep their plan.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { getPlan, resolvePlan, savePlan } from "../src/billing/plans.ts";
import { openDatabase } from "../src/store/database.ts";
import { forEachDatabase } from "./support/databases.ts";
import { startAccountsServer, TEST_PASSWORD } from "./support/accountsServer.ts";

forEachDatabase("fresh install: the first account is an active admin, later ones wait for approval until an admin opens sign-up", async (store, t) => {
  const server = await startAccountsServer(t, store, {}, { signupMode: null });
  const state = await server.client().get("/api/auth/state");
  assert.deepEqual([state.body.signup_mode, state.body.setup_required], ["approval", true]);
  const admin = await server.signUp("root");
  assert.equal((await admin.get("/api/auth/me")).body.user.role, "admin");

  const stranger = await server.client().post("/api/auth/signup", { username: "stranger", password: TEST_PASSWORD });
  assert.deepEqual([stranger.status, stranger.body.user.status], [202, "pending"]);
  assert.equal(stranger.setCookies.some((c) => c.startsWith("sputnik_session=")), false, "no session while pending");
  const login = await server.client().post("/api/auth/login", { login: "stranger", password: TEST_PASSWORD });
  assert.deepEqual([login.status, login.body.error.code], [403, "account_pending"]);
  const settings = await admin.get("/api/admin/signup-mode");
  assert.deepEqual([settings.body.signup_mode, settings.body.effective_signup_mode], ["approval", "approval"]);

  assert.equal((await admin.put("/api/admin/signup-mode", { mode: "open" })).status, 200);
  assert.equal((await server.client().post("/api/auth/signup", { username: "welcome", password: TEST_PASSWORD })).status, 201);
});

forEachDatabase("fresh install: the default plan has daily and monthly token quotas, which admins can raise", async (store, t) => {
  const server = await startAccountsServer(t, store);
  await server.signUp("root");
  const user = await server.signUp("plain");
  const planId = (await user.get("/api/auth/me")).body.user.plan_id;
  // What billing enforces for a new user: the plan they are on (src/billing/quotas.ts reads these).
  const plan = await resolvePlan(store.db, planId, "free");
  assert.deepEqual([plan.id, plan.dailyTokenQuota, plan.monthlyTokenQuota], ["free", 500_000, 5_000_000]);
  await savePlan(store.db, { ...plan, dailyTokenQuota: 2_000_000, monthlyTokenQuota: null });
  const raised = await resolvePlan(store.db, planId, "free");
  assert.deepEqual([raised.dailyTokenQuota, raised.monthlyTokenQuota], [2_000_000, null]);
});

test("an install that already has accounts keeps its default plan as it was (no surprise limits)", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-defaults-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const old = await openDatabase({ dataDir, migrateTo: "0300_billing" });
  await old.db
    .insertInto("users")
    .values({ id: "01900000-0000-7000-8000-000000000001", username: "root", email: null, password_hash: "x", role: "admin", status: "active", plan_id: "free", created_at: 1, updated_at: 1, last_login_at: null })
    .execute();
  await old.close();
  const upgraded = await openDatabase({ dataDir });
  t.after(() => upgraded.close());
  const free = await getPlan(upgraded.db, "free");
  assert.deepEqual([free?.dailyTokenQuota, free?.monthlyTokenQuota], [null, null]);
});
