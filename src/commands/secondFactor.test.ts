import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { generate } from "otplib";
import { forEachDatabase } from "../../test/support/databases.ts";
import { actorFromSession } from "../auth/authenticate.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { RememberedDevices } from "../auth/rememberedDevices.ts";
import { totpSecretBox } from "../auth/secretBox.ts";
import { createSession, findSession } from "../auth/sessions.ts";
import { insertUser } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import { can } from "../policies/index.ts";
import type { Database } from "../store/schema.ts";
import { completeSecondFactor, logIn, type SecondFactorInput } from "./logIn.ts";
import { confirmTotpEnrolment, disableSecondFactor, ENROLMENT_MS, regenerateRecoveryCodes, secondFactorStatus, setAdminSecondFactorRequired, startTotpEnrolment } from "./secondFactor.ts";

const hasher = new PasswordHasher({ memoryKiB: 64, iterations: 1, parallelism: 1 });
const PASSWORD = "owner-password-1";
const lifetime = { maxAgeMs: 3_600_000, idleMs: 3_600_000 };
const devices = new RememberedDevices("test-device-key");
const T0 = Date.parse("2025-03-01T12:00:00Z");
const IP = "198.51.100.1";

async function owner(db: Kysely<Database>, username = "owner", role: "admin" | "user" = "admin") {
  return insertUser(db, { username, email: null, passwordHash: await hasher.hash(PASSWORD), role, status: "active", planId: "free" }, T0);
}

const codeAt = (secret: string, now: number) => generate({ secret, epoch: Math.floor(now / 1000) });

/** The error code of a refusal, or "ok". */
async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    assert.ok(error instanceof ServiceError, String(error));
    return error.code ?? error.kind;
  }
}

/** Enrols `userId` at `now` from session `sessionId`; returns the secret and the recovery codes. */
async function enrol(db: Kysely<Database>, userId: string, sessionId: string | null, now: number) {
  const { secret, uri } = await startTotpEnrolment({ db, hasher }, { userId, currentPassword: PASSWORD, ip: IP }, now);
  assert.match(uri, /^otpauth:\/\/totp\/Sputnik:/);
  const { recoveryCodes } = await confirmTotpEnrolment(db, { userId, sessionId, code: await codeAt(secret, now), ip: IP }, now);
  return { secret, recoveryCodes };
}

async function passwordStep(db: Kysely<Database>, now: number, extra: { ip?: string } = {}) {
  const result = await logIn({ db, hasher, lifetime, devices }, { login: "owner", password: PASSWORD, ip: extra.ip ?? IP, userAgent: "test", previousSessionId: null }, now);
  assert.equal(result.kind, "second_factor");
  return result.kind === "second_factor" ? result.pendingToken : "";
}

function secondStep(db: Kysely<Database>, input: Partial<SecondFactorInput>, now: number) {
  return completeSecondFactor({ db, hasher, lifetime, devices }, { pendingToken: null, ip: IP, userAgent: "test", previousSessionId: null, ...input }, now);
}

forEachDatabase("enrolment: password first, then a first code; the secret is sealed at rest, other sessions end, recovery codes are issued and audited", async (store) => {
  const db = store.db;
  const user = await owner(db);
  const mine = await createSession(db, { userId: user.id, userAgent: "here", ip: IP, lifetime }, T0);
  const other = await createSession(db, { userId: user.id, userAgent: "elsewhere", ip: "203.0.113.9", lifetime }, T0);

  assert.equal(await outcome(startTotpEnrolment({ db, hasher }, { userId: user.id, currentPassword: "wrong-password", ip: IP }, T0)), "invalid_current_password");
  const { secret } = await startTotpEnrolment({ db, hasher }, { userId: user.id, currentPassword: PASSWORD, ip: IP }, T0);
  const row = await db.selectFrom("totp_credentials").selectAll().where("user_id", "=", user.id).executeTakeFirstOrThrow();
  assert.equal(row.confirmed_at, null, "not in force before a first code");
  assert.ok(!row.secret_enc.includes(secret), "stored sealed, never in clear");
  assert.equal((await totpSecretBox(db)).open(row.secret_enc, `totp:${user.id}`), secret);
  // Not in force yet: the password alone still signs in.
  assert.equal((await logIn({ db, hasher, lifetime }, { login: "owner", password: PASSWORD, ip: IP, userAgent: null, previousSessionId: null }, T0)).kind, "signed_in");

  assert.equal(await outcome(confirmTotpEnrolment(db, { userId: user.id, sessionId: mine.session.id, code: "000000", ip: IP }, T0)), "invalid_code");
  // Too late: an enrolment left open does not stay confirmable.
  assert.equal(await outcome(confirmTotpEnrolment(db, { userId: user.id, sessionId: mine.session.id, code: await codeAt(secret, T0 + ENROLMENT_MS + 1000), ip: IP }, T0 + ENROLMENT_MS + 1000)), "enrolment_expired");
  const { recoveryCodes, endedSessions } = await confirmTotpEnrolment(db, { userId: user.id, sessionId: mine.session.id, code: await codeAt(secret, T0 + 1000), ip: IP }, T0 + 1000);
  assert.equal(recoveryCodes.length, 10);
  assert.equal(new Set(recoveryCodes).size, 10);
  for (const code of recoveryCodes) assert.match(code, /^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$/);
  const stored = await db.selectFrom("recovery_codes").select("code_hash").where("user_id", "=", user.id).execute();
  assert.ok(stored.every((r) => !recoveryCodes.some((c) => r.code_hash.includes(c.replaceAll("-", "")))), "codes stored hashed");
  assert.equal(endedSessions, 2, "the other browser's and the password-only sign-in above");
  assert.equal((await findSession(db, mine.session.id))?.revoked_at, null, "this session stays");
  assert.notEqual((await findSession(db, other.session.id))?.revoked_at, null, "the others end");
  assert.deepEqual(await secondFactorStatus(db, user.id), { enabled: true, confirmedAt: T0 + 1000, recoveryCodesLeft: 10 });
  assert.equal(await outcome(startTotpEnrolment({ db, hasher }, { userId: user.id, currentPassword: PASSWORD, ip: IP }, T0 + 2000)), "second_factor_on");

  // New recovery codes replace the old set.
  const fresh = await regenerateRecoveryCodes({ db, hasher }, { userId: user.id, currentPassword: PASSWORD, ip: IP }, T0 + 3000);
  assert.equal(fresh.length, 10);
  assert.equal(await outcome(secondStep(db, { pendingToken: await passwordStep(db, T0 + 4000), recoveryCode: recoveryCodes[0] }, T0 + 4000)), "invalid_recovery_code");

  await disableSecondFactor({ db, hasher }, { userId: user.id, currentPassword: PASSWORD, ip: IP }, T0 + 5000);
  assert.deepEqual(await secondFactorStatus(db, user.id), { enabled: false, confirmedAt: null, recoveryCodesLeft: 0 });
  assert.equal(await db.selectFrom("recovery_codes").select("id").where("user_id", "=", user.id).execute().then((r) => r.length), 0);
  const actions = await db.selectFrom("audit_log").select("action").where("target_id", "=", user.id).orderBy("created_at").execute();
  assert.deepEqual(actions.map((a) => a.action), ["second_factor.enable", "second_factor.recovery_codes", "second_factor.disable"]);
});

forEachDatabase("sign-in with a second factor: the password opens a pending sign-in; a code finishes it once; a code is never accepted twice; a recovery code works once", async (store) => {
  const db = store.db;
  const user = await owner(db);
  const { secret, recoveryCodes } = await enrol(db, user.id, null, T0);

  const t1 = T0 + 60_000;
  const pending = await passwordStep(db, t1);
  assert.equal(await db.selectFrom("sessions").select("id").where("created_at", "=", t1).execute().then((r) => r.length), 0, "no session before the code");
  assert.equal(await outcome(secondStep(db, { pendingToken: null, code: await codeAt(secret, t1) }, t1)), "login_expired");
  assert.equal(await outcome(secondStep(db, { pendingToken: "A".repeat(43), code: await codeAt(secret, t1) }, t1)), "login_expired");
  const code = await codeAt(secret, t1);
  const done = await secondStep(db, { pendingToken: pending, code }, t1);
  assert.equal(done.user.id, user.id);
  assert.equal((await findSession(db, done.session.id))?.user_id, user.id);
  // The pending sign-in is used up: the same cookie cannot make a second session.
  assert.equal(await outcome(secondStep(db, { pendingToken: pending, code: await codeAt(secret, t1 + 30_000) }, t1 + 30_000)), "login_expired");
  // The same code, with a new password step inside its window: refused as a replay.
  assert.equal(await outcome(secondStep(db, { pendingToken: await passwordStep(db, t1 + 5000), code }, t1 + 5000)), "code_already_used");
  // The next window's code does.
  assert.equal(await outcome(secondStep(db, { pendingToken: await passwordStep(db, t1 + 31_000), code: await codeAt(secret, t1 + 31_000) }, t1 + 31_000)), "ok");
  // A code two windows old is refused (one step of tolerance only).
  const t2 = t1 + 10 * 60_000;
  assert.equal(await outcome(secondStep(db, { pendingToken: await passwordStep(db, t2), code: await codeAt(secret, t2 - 90_000) }, t2)), "invalid_second_factor");

  // A recovery code works once, with any spacing or case; its use is audited with the count left.
  const spaced = ` ${recoveryCodes[3]!.toUpperCase().replaceAll("-", " ")} `;
  const viaRecovery = await secondStep(db, { pendingToken: await passwordStep(db, t2 + 1000), recoveryCode: spaced }, t2 + 1000);
  assert.equal(viaRecovery.usedRecoveryCode, true);
  assert.equal(viaRecovery.recoveryCodesLeft, 9);
  assert.equal(await outcome(secondStep(db, { pendingToken: await passwordStep(db, t2 + 2000), recoveryCode: recoveryCodes[3] }, t2 + 2000)), "invalid_recovery_code");
  const audit = await db.selectFrom("audit_log").selectAll().where("action", "=", "second_factor.recovery_code_used").execute();
  assert.equal(audit.length, 1);
  assert.deepEqual(JSON.parse(audit[0]!.details), { remaining: 9 });
});

forEachDatabase("wrong codes are throttled like passwords: a pending sign-in allows five, the account slows down, the owner's remembered device does not", async (store) => {
  const db = store.db;
  const user = await owner(db);
  const { secret } = await enrol(db, user.id, null, T0);
  const t = T0 + 60_000;
  const right = await codeAt(secret, t);
  const wrong = right === "123456" ? "654321" : "123456";

  // One pending sign-in: four wrong codes are refused one by one, the fifth ends it.
  const pending = await passwordStep(db, t);
  for (let i = 0; i < 4; i++) assert.equal(await outcome(secondStep(db, { pendingToken: pending, code: wrong }, t + i)), "invalid_second_factor");
  assert.equal(await outcome(secondStep(db, { pendingToken: pending, code: wrong }, t + 4)), "login_expired");
  assert.equal(await outcome(secondStep(db, { pendingToken: pending, code: right }, t + 5)), "login_expired", "even the right code: the password is asked again");

  // Guessing from many addresses: past the free failures, the account is blocked for new devices —
  // the right code is refused too while it lasts (a block must not test guesses).
  for (let a = 0; a < 3; a++) {
    const p = await passwordStep(db, t + 10, { ip: `203.0.113.${a}` });
    await outcome(secondStep(db, { pendingToken: p, code: wrong, ip: `203.0.113.${a}` }, t + 10));
  }
  const blocked = await passwordStep(db, t + 20, { ip: "192.0.2.50" });
  const refused = secondStep(db, { pendingToken: blocked, code: right, ip: "192.0.2.50" }, t + 20);
  await assert.rejects(refused, (e: ServiceError) => e.code === "too_many_second_factor_attempts" && Number(e.retryAfterS) >= 1);
  // The owner's remembered device (issued after an earlier full sign-in) is not held back.
  const cookie = devices.add(null, devices.issue(user.id, T0), user.id);
  const owners = await passwordStep(db, t + 21, { ip: "192.0.2.51" });
  assert.equal(await outcome(secondStep(db, { pendingToken: owners, code: right, ip: "192.0.2.51", deviceCookie: cookie }, t + 21)), "ok");
});

forEachDatabase("required for admins: an admin without a second factor has no admin rights until enrolled; turning it on needs one's own", async (store) => {
  const db = store.db;
  const admin = await owner(db, "owner", "admin");
  const other = await owner(db, "second-admin", "admin");
  const plain = await owner(db, "plain", "user");
  const session = (userId: string) => createSession(db, { userId, userAgent: null, ip: IP, lifetime });
  const actorOf = async (token: string) => (await actorFromSession(db, token, lifetime))!;

  assert.equal(await outcome(setAdminSecondFactorRequired(db, { userId: admin.id, ip: IP }, true)), "second_factor_required");
  const mine = await session(admin.id);
  await enrol(db, admin.id, mine.session.id, Date.now());
  assert.equal(await setAdminSecondFactorRequired(db, { userId: admin.id, ip: IP }, true), true);

  const enrolled = await actorOf(mine.token);
  assert.equal(enrolled.role, "admin");
  assert.equal(can(enrolled, "user.list"), true);
  const held = await actorOf((await session(other.id)).token);
  assert.deepEqual([held.role, held.secondFactorRequired], ["user", true]);
  assert.equal(can(held, "user.list"), false);
  assert.equal(can(held, "security.update", { id: other.id }), true, "can still reach their own security settings");
  const user = await actorOf((await session(plain.id)).token);
  assert.deepEqual([user.role, user.secondFactorRequired], ["user", undefined]);
  // The same admin signed in through single sign-on keeps admin rights: the provider owns MFA there.
  const viaSso = await actorOf((await createSession(db, { userId: other.id, userAgent: null, ip: IP, lifetime, signInMethod: "sso" })).token);
  assert.deepEqual([viaSso.role, viaSso.secondFactorRequired], ["admin", undefined]);

  // The refusal tells the admin what to do.
  const { authorize } = await import("../policies/index.ts");
  assert.throws(() => authorize(held, "user.list"), (e: ServiceError) => e.code === "second_factor_required" && e.kind === "forbidden");
  assert.throws(() => authorize(user, "user.list"), (e: ServiceError) => e.code === "forbidden");

  // Once they enrol, the same session has its admin rights back (no new sign-in).
  const heldSession = await session(other.id);
  await enrol(db, other.id, heldSession.session.id, Date.now());
  assert.equal((await actorOf(heldSession.token)).role, "admin");
  // Off again (audited), and admins without a second factor are admins again.
  assert.equal(await setAdminSecondFactorRequired(db, { userId: admin.id, ip: IP }, false), false);
  const actions = await db.selectFrom("audit_log").select(["action", "details"]).where("action", "=", "settings.require_admin_second_factor").orderBy("created_at").execute();
  assert.deepEqual(actions.map((a) => JSON.parse(a.details)), [{ from: false, to: true }, { from: true, to: false }]);
});
