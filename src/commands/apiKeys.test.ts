import assert from "node:assert/strict";
import { forEachDatabase } from "../../test/support/databases.ts";
import { resolveApiKey } from "../auth/apiKeys.ts";
import { insertUser } from "../auth/users.ts";
import { ServiceError, type ErrorKind } from "../errors.ts";
import { createKeyForUser, listKeysWithOwners, revokeKeyById } from "./apiKeys.ts";

async function rejectsWith(promise: Promise<unknown>, kind: ErrorKind, code: string, message?: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ServiceError, String(error));
    assert.deepEqual([error.kind, error.code], [kind, code]);
    if (message) assert.match(error.message, message);
    return true;
  });
}

const base = { name: "ci", models: null, expiresAt: null, by: null };

forEachDatabase("create-key makes a live key with its audit row; list shows owners; revoke ends it with its own", async (store) => {
  const db = store.db;
  const alice = await insertUser(db, { username: "alice", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  await insertUser(db, { username: "bob", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  const now = Date.now();
  const scoped = await createKeyForUser(db, { ...base, username: "ALICE", models: ["m1", "m2", "m1"], expiresAt: now + 86_400_000 }, now);
  const plain = await createKeyForUser(db, { ...base, username: "bob" }, now + 1);
  assert.match(scoped.key, /^sk-[0-9A-Za-z]{48}$/);
  assert.deepEqual([scoped.row.user_id, scoped.row.models, scoped.row.expires_at], [alice.id, '["m1","m2"]', now + 86_400_000]);
  assert.equal((await resolveApiKey(db, scoped.key))?.user.id, alice.id);

  assert.deepEqual((await listKeysWithOwners(db)).map((k) => [k.username, k.id]), [["bob", plain.row.id], ["alice", scoped.row.id]]);
  assert.deepEqual((await listKeysWithOwners(db, { username: "alice" })).map((k) => k.id), [scoped.row.id]);
  await rejectsWith(listKeysWithOwners(db, { username: "carol" }), "not_found", "not_found");

  const revoked = await revokeKeyById(db, null, scoped.row.id);
  assert.ok(revoked.revoked_at !== null);
  assert.equal(await resolveApiKey(db, scoped.key), undefined, "refused at once");
  await rejectsWith(revokeKeyById(db, null, scoped.row.id), "conflict", "already_revoked");
  assert.ok((await listKeysWithOwners(db, { username: "alice" }))[0]!.revoked_at, "revoked keys stay listed, marked");

  const audit = await db.selectFrom("audit_log").select(["action", "actor_user_id", "target_id", "details"]).orderBy("created_at").orderBy("id").execute();
  assert.deepEqual(audit.map((a) => [a.action, a.actor_user_id, a.target_id]), [
    ["api_key.create", null, scoped.row.id],
    ["api_key.create", null, plain.row.id],
    ["api_key.revoke", null, scoped.row.id],
  ]);
  assert.deepEqual(JSON.parse(audit[0]!.details), { user_id: alice.id, username: "alice", name: "ci", models: ["m1", "m2"], expires_at: now + 86_400_000, prefix: scoped.row.prefix });
  assert.ok(audit.every((a) => !a.details.includes(scoped.key) && !a.details.includes(plain.key)), "never the key");
});

forEachDatabase("create-key refuses unknown and inactive accounts, past expiries and bad names or scopes, writing nothing", async (store) => {
  const db = store.db;
  await insertUser(db, { username: "alice", email: null, passwordHash: "x", role: "user", status: "active", planId: null });
  await insertUser(db, { username: "bob", email: null, passwordHash: "x", role: "user", status: "disabled", planId: null });
  await rejectsWith(createKeyForUser(db, { ...base, username: "nobody" }), "not_found", "not_found", /No account is named nobody/);
  await rejectsWith(createKeyForUser(db, { ...base, username: "bob" }), "conflict", "account_not_active", /bob is disabled/);
  await rejectsWith(createKeyForUser(db, { ...base, username: "alice", expiresAt: Date.now() - 1 }), "invalid_request", "invalid_parameter", /future/);
  await rejectsWith(createKeyForUser(db, { ...base, username: "alice", models: ["ok", " "] }), "invalid_request", "invalid_parameter", /^models: /);
  await rejectsWith(createKeyForUser(db, { ...base, username: "alice", models: [] }), "invalid_request", "invalid_parameter", /^models: /);
  await rejectsWith(createKeyForUser(db, { ...base, username: "alice", name: " " }), "invalid_request", "invalid_parameter", /^name: /);
  await rejectsWith(revokeKeyById(db, null, "0193f0c2-0000-7000-8000-000000000000"), "not_found", "not_found");
  assert.deepEqual(await db.selectFrom("api_keys").select("id").execute(), []);
  assert.deepEqual(await db.selectFrom("audit_log").select("id").execute(), []);
});
