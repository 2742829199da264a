import assert from "node:assert/strict";
import { forEachDatabase } from "../../test/support/databases.ts";
import { createAccessCode } from "../auth/accessCodes.ts";
import { PasswordHasher } from "../auth/passwords.ts";
import { ServiceError, type ErrorKind } from "../errors.ts";
import { changeSignupMode } from "./signupSettings.ts";
import { signUp, type SignUpInput } from "./signUp.ts";

const hasher = new PasswordHasher({ memoryKiB: 64, iterations: 1, parallelism: 1 });
const input = (username: string, extra: Partial<SignUpInput> = {}): SignUpInput => ({
  username,
  email: null,
  password: "password-123",
  accessCode: null,
  ip: "203.0.113.7",
  ...extra,
});

async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, code: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ServiceError, String(error));
    assert.deepEqual([error.kind, error.code], [kind, code]);
    return true;
  });
}

forEachDatabase("the first account is admin, exactly once, even when sign-ups race on a fresh install", async (store) => {
  // Open sign-up, so that every racer gets an active account (the default, approval, would leave the losers pending).
  await changeSignupMode(store.db, null, "open");
  const results = await Promise.all(["a1", "a2", "a3", "a4"].map((name) => signUp({ db: store.db, hasher }, input(name))));
  assert.equal(results.filter((r) => r.user.role === "admin").length, 1);
  const admins = await store.db.selectFrom("users").select("username").where("role", "=", "admin").execute();
  assert.equal(admins.length, 1);
  const later = await signUp({ db: store.db, hasher }, input("late"));
  assert.deepEqual([later.user.role, later.user.status, later.user.plan_id], ["user", "active", "free"]);
});

forEachDatabase("sign-up modes: closed refuses, code requires a code, approval leaves accounts pending", async (store) => {
  const deps = { db: store.db, hasher };
  await signUp(deps, input("root"));
  // The shipped default, once the first account (the admin) exists: approval.
  assert.equal((await signUp(deps, input("by-default"))).user.status, "pending");
  await changeSignupMode(store.db, null, "closed");
  await rejectsWith(signUp(deps, input("c1")), "forbidden", "signup_closed");
  await changeSignupMode(store.db, null, "code");
  await rejectsWith(signUp(deps, input("c2")), "invalid_request", "access_code_required");
  await changeSignupMode(store.db, null, "approval");
  const pending = await signUp(deps, input("c3"));
  assert.equal(pending.user.status, "pending");
  const { code } = await createAccessCode(store.db, { maxUses: 1, expiresAt: null, planId: null, creditMicros: 0, note: null, createdBy: null });
  const approvedByCode = await signUp(deps, input("c4", { accessCode: code }));
  assert.equal(approvedByCode.user.status, "active", "a valid code is an approval given in advance");
  const stored = await store.db.selectFrom("users").select(["username", "status"]).orderBy("username").execute();
  assert.deepEqual(stored, [
    { username: "by-default", status: "pending" },
    { username: "c3", status: "pending" },
    { username: "c4", status: "active" },
    { username: "root", status: "active" },
  ]);
});

forEachDatabase("a wrong code leaves no account behind, counts as a guess, and the name stays free", async (store) => {
  const deps = { db: store.db, hasher };
  await signUp(deps, input("root"));
  await rejectsWith(signUp(deps, input("mallory", { accessCode: "AAAA-BBBB-CCCC-DDDD" })), "invalid_request", "invalid_access_code");
  assert.equal(await store.db.selectFrom("users").select("id").where("username", "=", "mallory").executeTakeFirst(), undefined);
  const throttle = await store.db.selectFrom("auth_throttle").select(["key", "failures"]).orderBy("key").execute();
  assert.deepEqual(throttle.map((r) => [r.key.split(":")[0], r.failures]), [["code-ip", 1], ["code-prefix", 1]]);
  // A valid code, used up by a sign-up that then fails (name taken), is given back.
  const { code, row } = await createAccessCode(store.db, { maxUses: 1, expiresAt: null, planId: "free", creditMicros: 7, note: null, createdBy: null });
  await rejectsWith(signUp(deps, input("root", { accessCode: code })), "conflict", "username_taken");
  const after = await store.db.selectFrom("access_codes").select("uses").where("id", "=", row.id).executeTakeFirstOrThrow();
  assert.equal(after.uses, 0);
  const ok = await signUp(deps, input("mallory", { accessCode: code }));
  assert.deepEqual(ok.grant, { accessCodeId: row.id, planId: "free", creditMicros: 7 });
});

forEachDatabase("code guessing is throttled per address and per prefix", async (store) => {
  const deps = { db: store.db, hasher };
  await signUp(deps, input("root"));
  const { code } = await createAccessCode(store.db, { maxUses: 5, expiresAt: null, planId: null, creditMicros: 0, note: null, createdBy: null });
  const prefix = code.slice(0, 4);
  // Three wrong guesses on the real code's prefix, each from another address: the prefix is now blocked.
  for (let i = 0; i < 4; i++) {
    await rejectsWith(signUp(deps, input(`g${i}`, { accessCode: `${prefix}-0000-0000-000${i}`, ip: `198.51.100.${i}` })), "invalid_request", "invalid_access_code");
  }
  await rejectsWith(signUp(deps, input("lucky", { accessCode: code, ip: "198.51.100.99" })), "rate_limited", "too_many_code_attempts");
  // Per address: wrong codes with ever-new prefixes from one address.
  for (let i = 0; i < 6; i++) {
    await rejectsWith(signUp(deps, input(`h${i}`, { accessCode: `Z${i}ZZ-0000-0000-0000`, ip: "192.0.2.1" })), "invalid_request", "invalid_access_code");
  }
  await rejectsWith(signUp(deps, input("h-next", { accessCode: "YYYY-0000-0000-0000", ip: "192.0.2.1" })), "rate_limited", "too_many_code_attempts");
});

forEachDatabase("without a valid code, a taken name and a free one get the same answer (no user-name enumeration)", async (store) => {
  const deps = { db: store.db, hasher };
  await signUp(deps, input("root", { email: "root@example.com" }));
  await changeSignupMode(store.db, null, "code");
  const wrong = "wrong";
  // Each try from its own address, with a wrong code of its own prefix: no throttle in the way.
  let n = 0;
  const answer = async (extra: Partial<SignUpInput>) => {
    n++;
    const accessCode = extra.accessCode === wrong ? `${"ABCDEFGHJKMNPQRSTVWXYZ"[n]}000-0000-0000-0000` : extra.accessCode;
    try {
      await signUp(deps, input(extra.username ?? "x", { ...extra, ip: `192.0.2.${n}`, accessCode: accessCode ?? null }));
      return "created";
    } catch (error) {
      assert.ok(error instanceof ServiceError, String(error));
      return [error.kind, error.code, error.param, error.message];
    }
  };
  // A wrong code: the same refusal whether the name (or e-mail address) is taken or free.
  assert.deepEqual(await answer({ username: "root", accessCode: wrong }), await answer({ username: "free-name", accessCode: wrong }));
  assert.deepEqual(await answer({ username: "someone", email: "root@example.com", accessCode: wrong }), await answer({ username: "someone", accessCode: wrong }));
  assert.deepEqual(await answer({ username: "root", accessCode: wrong }), ["invalid_request", "invalid_access_code", "access_code", "This access code is not valid."]);
  // No code at all: the same too.
  assert.deepEqual(await answer({ username: "root" }), await answer({ username: "free-name" }));
  // Closed (also through attack mode): the same.
  await changeSignupMode(store.db, null, "closed");
  assert.deepEqual(await answer({ username: "root", accessCode: wrong }), await answer({ username: "free-name", accessCode: wrong }));
  // Only a holder of a valid code learns that a name is taken, and the code keeps its use.
  await changeSignupMode(store.db, null, "code");
  const { code, row } = await createAccessCode(store.db, { maxUses: 1, expiresAt: null, planId: null, creditMicros: 0, note: null, createdBy: null });
  assert.deepEqual((await answer({ username: "root", accessCode: code })).slice(0, 2), ["conflict", "username_taken"]);
  assert.equal((await store.db.selectFrom("access_codes").select("uses").where("id", "=", row.id).executeTakeFirstOrThrow()).uses, 0);
  assert.equal(await answer({ username: "newcomer", accessCode: code }), "created");
  assert.equal(await store.db.selectFrom("access_code_redemptions").select("id").execute().then((r) => r.length), 1);
});
