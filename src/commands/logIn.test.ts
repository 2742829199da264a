import assert from "node:assert/strict";
import { forEachDatabase } from "../../test/support/databases.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { RememberedDevices } from "../auth/rememberedDevices.ts";
import { insertUser } from "../auth/users.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";
import type { Kysely } from "kysely";
import { logIn, type LogInInput } from "./logIn.ts";
import { unlockUser } from "./unlockUser.ts";

const hasher = new PasswordHasher({ memoryKiB: 64, iterations: 1, parallelism: 1 });
const PASSWORD = "owner-password-1";
const devices = new RememberedDevices("test-device-key");
const lifetime = { maxAgeMs: 3_600_000, idleMs: 3_600_000 };
const T0 = Date.parse("2025-03-01T12:00:00Z");

async function owner(db: Kysely<Database>) {
  return insertUser(db, { username: "owner", email: "owner@example.com", passwordHash: await hasher.hash(PASSWORD), role: "admin", status: "active", planId: "free" }, T0);
}

function attempt(db: Kysely<Database>, input: Partial<LogInInput>, now: number) {
  return logIn(
    { db, hasher, lifetime, devices },
    { login: "owner", password: PASSWORD, ip: "198.51.100.1", userAgent: null, previousSessionId: null, deviceCookie: null, ...input },
    now,
  );
}

/** The error's code and Retry-After, or "ok" for a sign-in that worked. */
async function outcome(promise: Promise<unknown>): Promise<string | [string | null, number | undefined]> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    assert.ok(error instanceof ServiceError, String(error));
    return [error.code, error.retryAfterS];
  }
}

/** Strangers on `addresses` addresses, each staying under its own per-address limits, guess at the account. */
async function distributedGuessing(db: Kysely<Database>, addresses: number, perAddress: number, now: number): Promise<void> {
  for (let a = 0; a < addresses; a++) {
    for (let i = 0; i < perAddress; i++) await outcome(attempt(db, { password: `guess-${a}-${i}`, ip: `203.0.113.${a}` }, now));
  }
}

forEachDatabase("strangers guessing from many addresses cannot keep the owner out: a remembered device gets in, a new one waits at most a minute", async (store) => {
  const db = store.db;
  const user = await owner(db);
  const cookie = devices.add(null, devices.issue(user.id, T0), user.id);
  await distributedGuessing(db, 10, 4, T0);

  // The account is under attack: a new device from a clean address is refused, but only briefly.
  const fresh = await outcome(attempt(db, { ip: "192.0.2.50" }, T0 + 1));
  assert.equal(fresh[0], "too_many_login_attempts");
  assert.ok(Number(fresh[1]) <= 60, `a new device waits ${fresh[1]} s`);
  // The owner's remembered device is not refused at all, from its usual address or another.
  assert.equal(await outcome(attempt(db, { deviceCookie: cookie }, T0 + 2)), "ok");
  assert.equal(await outcome(attempt(db, { deviceCookie: cookie, ip: "192.0.2.77" }, T0 + 3)), "ok");
  // A forged or other account's cookie proves nothing.
  const forged = new RememberedDevices("another-key");
  assert.equal((await outcome(attempt(db, { deviceCookie: forged.add(null, forged.issue(user.id, T0), user.id), ip: "192.0.2.51" }, T0 + 4)))[0], "too_many_login_attempts");

  // Hammering during the block is refused without counting: the block does not grow, and once it
  // runs out the owner on a new device gets in.
  const blockedUntil = T0 + 1 + Number(fresh[1]) * 1000;
  for (let i = 0; i < 30; i++) assert.equal((await outcome(attempt(db, { password: `more-${i}`, ip: `203.0.113.${100 + i}` }, T0 + 10 + i)))[0], "too_many_login_attempts");
  assert.equal(await outcome(attempt(db, { ip: "192.0.2.50" }, blockedUntil)), "ok");
});

forEachDatabase("per-account delays are capped at a minute however long the guessing goes on", async (store) => {
  const db = store.db;
  await owner(db);
  let now = T0;
  let longest = 0;
  // Each stranger waits out the block, then fails again: the worst the owner ever faces.
  for (let i = 0; i < 40; i++) {
    const result = await outcome(attempt(db, { password: `guess-${i}`, ip: `203.0.113.${i}` }, now));
    if (result !== "ok" && result[0] === "too_many_login_attempts") {
      longest = Math.max(longest, Number(result[1]));
      now += Number(result[1]) * 1000;
      i--;
    }
  }
  assert.ok(longest > 0 && longest <= 60, `longest block ${longest} s`);
  const afterBlock = await outcome(attempt(db, { ip: "192.0.2.50" }, now + 60_000));
  assert.equal(afterBlock, "ok");
});

forEachDatabase("a remembered device that guesses loses its exemption; one address guessing is stopped on its own", async (store) => {
  const db = store.db;
  const user = await owner(db);
  const stolen = devices.add(null, devices.issue(user.id, T0), user.id);
  // Guessing with a stolen cookie, from ever-new addresses (so no per-address counter stops it).
  const results = [];
  for (let i = 0; i < 30; i++) results.push(await outcome(attempt(db, { deviceCookie: stolen, password: `guess-${i}`, ip: `203.0.113.${i}` }, T0 + i)));
  assert.ok(results.some((r) => r !== "ok" && r[0] === "too_many_login_attempts"), "the stolen cookie is throttled eventually");
  // Its own ten free failures and the one that blocks it, then the account's, as for any new device.
  assert.equal(results.filter((r) => r !== "ok" && r[0] === "invalid_credentials").length, 22);

  // Per (account, address): five free failures, then that address is blocked for that account…
  await unlockUser(db, null, "owner");
  const single: unknown[] = [];
  for (let i = 0; i < 7; i++) single.push((await outcome(attempt(db, { password: `x${i}`, ip: "198.51.100.9" }, T0 + 100_000)))[0]);
  assert.deepEqual(single, [...Array(6).fill("invalid_credentials"), "too_many_login_attempts"]);
  // …even with the right password, while the owner elsewhere is not affected.
  assert.equal((await outcome(attempt(db, { ip: "198.51.100.9" }, T0 + 100_001)))[0], "too_many_login_attempts");
  assert.equal(await outcome(attempt(db, { ip: "198.51.100.10" }, T0 + 100_002)), "ok");
});

forEachDatabase("unlock-user clears the account's throttling at once, and is audited", async (store) => {
  const db = store.db;
  const user = await owner(db);
  await distributedGuessing(db, 10, 4, T0);
  await outcome(attempt(db, { password: "wrong", ip: "192.0.2.50" }, T0));
  assert.equal((await outcome(attempt(db, { ip: "192.0.2.50" }, T0 + 1)))[0], "too_many_login_attempts");
  const { cleared } = await unlockUser(db, { userId: user.id, ip: "127.0.0.1" }, "owner", T0 + 2);
  assert.ok(cleared >= 2, `${cleared} counters cleared`);
  assert.equal(await outcome(attempt(db, { ip: "192.0.2.50" }, T0 + 3)), "ok");
  const audit = await db.selectFrom("audit_log").select(["action", "target_id"]).execute();
  assert.deepEqual(audit, [{ action: "user.unlock", target_id: user.id }]);
  await assert.rejects(unlockUser(db, null, "nobody"), (e: unknown) => e instanceof ServiceError && e.kind === "not_found");
});
