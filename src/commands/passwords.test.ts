import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { forEachDatabase } from "../../test/support/databases.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { RESET_TOKEN_MS } from "../auth/passwordResets.ts";
import { createSession, findSession } from "../auth/sessions.ts";
import { hasSecondFactor, saveUnconfirmedTotp } from "../auth/totp.ts";
import { insertUser } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import { logIn } from "./logIn.ts";
import { changePassword, issuePasswordReset, resetPassword } from "./passwords.ts";
import { endSession } from "./sessions.ts";

const hasher = new PasswordHasher({ memoryKiB: 64, iterations: 1, parallelism: 1 });
const lifetime = { maxAgeMs: 3_600_000, idleMs: 3_600_000 };
const T0 = Date.parse("2025-03-01T12:00:00Z");
const IP = "198.51.100.1";
const OLD = "old-password-1";
const NEW = "new-password-2";

async function user(db: Kysely<Database>, username: string, role: "admin" | "user" = "user") {
  return insertUser(db, { username, email: null, passwordHash: await hasher.hash(OLD), role, status: "active", planId: "free" }, T0);
}

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    assert.ok(error instanceof ServiceError, String(error));
    return error.code ?? error.kind;
  }
}

const signIn = (db: Kysely<Database>, login: string, password: string, now: number) =>
  outcome(logIn({ db, hasher, lifetime }, { login, password, ip: IP, userAgent: null, previousSessionId: null }, now));

const live = async (db: Kysely<Database>, id: string) => (await findSession(db, id))?.revoked_at === null;

forEachDatabase("changing the password needs the current one, ends every other session and keeps this one; audited", async (store) => {
  const db = store.db;
  const alice = await user(db, "alice");
  const here = await createSession(db, { userId: alice.id, userAgent: "here", ip: IP, lifetime }, T0);
  const there = await createSession(db, { userId: alice.id, userAgent: "there", ip: "203.0.113.5", lifetime }, T0);
  const bob = await user(db, "bob");
  const bobs = await createSession(db, { userId: bob.id, userAgent: null, ip: IP, lifetime }, T0);

  const wrong = changePassword({ db, hasher }, { userId: alice.id, sessionId: here.session.id, currentPassword: "not-it-at-all", newPassword: NEW, ip: IP }, T0);
  await assert.rejects(wrong, (e: ServiceError) => e.code === "invalid_current_password" && e.param === "current_password" && e.kind === "invalid_request");
  assert.ok((await live(db, there.session.id)) && (await live(db, here.session.id)), "a refusal changes nothing");

  const { endedSessions } = await changePassword({ db, hasher }, { userId: alice.id, sessionId: here.session.id, currentPassword: OLD, newPassword: NEW, ip: IP }, T0 + 1000);
  assert.equal(endedSessions, 1);
  assert.equal(await live(db, here.session.id), true);
  assert.equal(await live(db, there.session.id), false);
  assert.equal(await live(db, bobs.session.id), true, "nobody else's sessions");
  assert.equal(await signIn(db, "alice", OLD, T0 + 2000), "invalid_credentials");
  assert.equal(await signIn(db, "alice", NEW, T0 + 3000), "ok");
  const audit = await db.selectFrom("audit_log").selectAll().where("action", "=", "user.password_change").execute();
  assert.deepEqual(audit.map((a) => [a.actor_user_id, a.target_id, JSON.parse(a.details)]), [[alice.id, alice.id, { ended_sessions: 1 }]]);
  assert.ok(!audit[0]!.details.includes(NEW), "no password in the audit log");
});

forEachDatabase("a reset link works once and expires; a newer one voids the older; every session ends; a second factor stays on; issue and use are audited", async (store) => {
  const db = store.db;
  const admin = await user(db, "root", "admin");
  const carol = await user(db, "carol");
  const session = await createSession(db, { userId: carol.id, userAgent: null, ip: IP, lifetime }, T0);
  await saveUnconfirmedTotp(db, carol.id, "v1.sealed", T0);
  await db.updateTable("totp_credentials").set({ confirmed_at: T0 }).where("user_id", "=", carol.id).execute();

  const by = { userId: admin.id, ip: IP };
  const first = await issuePasswordReset(db, by, carol.id, T0);
  const second = await issuePasswordReset(db, by, carol.id, T0 + 1000);
  assert.match(second.token, /^[A-Za-z0-9_-]{43}$/);
  const stored = await db.selectFrom("password_reset_tokens").select("token_hash").execute();
  assert.ok(stored.every((r) => r.token_hash !== second.token && r.token_hash !== first.token), "stored hashed");
  // The older link no longer works; an unknown one neither.
  assert.equal(await outcome(resetPassword({ db, hasher }, { token: first.token, newPassword: NEW, ip: IP }, T0 + 2000)), "invalid_reset_token");
  assert.equal(await outcome(resetPassword({ db, hasher }, { token: "x".repeat(43), newPassword: NEW, ip: IP }, T0 + 2000)), "invalid_reset_token");
  // Past its hour, the newest is dead too.
  assert.equal(await outcome(resetPassword({ db, hasher }, { token: second.token, newPassword: NEW, ip: IP }, T0 + 1000 + RESET_TOKEN_MS + 1)), "invalid_reset_token");

  const third = await issuePasswordReset(db, by, carol.id, T0 + 5000);
  const reset = await resetPassword({ db, hasher }, { token: third.token, newPassword: NEW, ip: "192.0.2.9" }, T0 + 6000);
  assert.equal(reset.id, carol.id);
  assert.equal(await live(db, session.session.id), false, "every session ended");
  assert.equal(await outcome(resetPassword({ db, hasher }, { token: third.token, newPassword: "third-password-3", ip: IP }, T0 + 7000)), "invalid_reset_token", "once only");
  assert.equal(await hasSecondFactor(db, carol.id), true, "the link replaces the password, not the second factor");
  const login = await logIn({ db, hasher, lifetime }, { login: "carol", password: NEW, ip: IP, userAgent: null, previousSessionId: null }, T0 + 8000);
  assert.equal(login.kind, "second_factor");

  const actions = await db.selectFrom("audit_log").select(["action", "actor_user_id", "ip"]).where("target_id", "=", carol.id).orderBy("created_at").orderBy("id").execute();
  assert.deepEqual(
    actions.map((a) => [a.action, a.actor_user_id]),
    [["user.password_reset_issue", admin.id], ["user.password_reset_issue", admin.id], ["user.password_reset_issue", admin.id], ["user.password_reset", carol.id]],
  );

  // A disabled account gets no link.
  await db.updateTable("users").set({ status: "disabled" }).where("id", "=", carol.id).execute();
  assert.equal(await outcome(issuePasswordReset(db, by, carol.id, T0 + 9000)), "invalid_status");
});

forEachDatabase("ending a session is audited once; ending it again changes nothing", async (store) => {
  const db = store.db;
  const dave = await user(db, "dave");
  const { session } = await createSession(db, { userId: dave.id, userAgent: "Firefox", ip: "203.0.113.7", lifetime }, T0);
  assert.equal(await endSession(db, { userId: dave.id, ip: IP }, session, T0 + 1), true);
  assert.equal(await endSession(db, { userId: dave.id, ip: IP }, session, T0 + 2), false);
  assert.equal(await live(db, session.id), false);
  const audit = await db.selectFrom("audit_log").selectAll().where("action", "=", "session.revoke").execute();
  assert.deepEqual(audit.map((a) => [a.target_id, JSON.parse(a.details)]), [[session.id, { user_id: dave.id, user_agent: "Firefox", ip: "203.0.113.7" }]]);
});
