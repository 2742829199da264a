import assert from "node:assert/strict";
import { test } from "node:test";
import type { Actor, UserActor } from "../auth/actor.ts";
import { ApiError } from "../http/errors.ts";
import { authorize, can, requireUser } from "./index.ts";

const alice: UserActor = { kind: "user", userId: "a", role: "user", apiKeyId: null, sessionId: "s1", planId: "free" };
const bob: UserActor = { kind: "user", userId: "b", role: "user", apiKeyId: "k1", sessionId: null, planId: "free" };
const root: UserActor = { kind: "user", userId: "r", role: "admin", apiKeyId: null, sessionId: "s2", planId: null };
const anonymous: Actor = { kind: "anonymous" };
const local: Actor = { kind: "local" };

function statusOf(run: () => void): number | "allowed" {
  try {
    run();
    return "allowed";
  } catch (error) {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
    return error.status;
  }
}

test("API keys: the owner may do anything; anyone else, admins included, finds nothing (404)", () => {
  const key = { user_id: "a" };
  for (const action of ["apiKey.read", "apiKey.update", "apiKey.delete"] as const) {
    assert.equal(statusOf(() => authorize(alice, action, key)), "allowed", action);
    assert.equal(statusOf(() => authorize(bob, action, key)), 404, action);
    assert.equal(statusOf(() => authorize(root, action, key)), 404, action);
    assert.equal(statusOf(() => authorize(local, action, key)), 404, action);
    assert.equal(statusOf(() => authorize(anonymous, action, key)), 401, action);
  }
  assert.equal(statusOf(() => authorize(alice, "apiKey.create")), "allowed");
  assert.equal(statusOf(() => authorize(local, "apiKey.create")), 403);
  assert.equal(statusOf(() => authorize(anonymous, "apiKey.list")), 401);
});

test("a missing object answers exactly like somebody else's: 404 with the same body", () => {
  const errorOf = (subject: { user_id: string } | undefined) => {
    try {
      authorize(bob, "apiKey.delete", subject);
    } catch (error) {
      return error as ApiError;
    }
    assert.fail("expected a refusal");
  };
  const missing = errorOf(undefined);
  const foreign = errorOf({ user_id: "a" });
  assert.deepEqual([missing.status, missing.message, missing.code], [foreign.status, foreign.message, foreign.code]);
});

test("users: self-read is allowed but admin actions on oneself are 403; others are 404; admins manage all", () => {
  assert.equal(statusOf(() => authorize(alice, "user.read", { id: "a" })), "allowed");
  assert.equal(statusOf(() => authorize(alice, "user.disable", { id: "a" })), 403);
  assert.equal(statusOf(() => authorize(alice, "user.read", { id: "b" })), 404);
  assert.equal(statusOf(() => authorize(alice, "user.setRole", { id: "b" })), 404);
  assert.equal(statusOf(() => authorize(root, "user.disable", { id: "b" })), "allowed");
  assert.equal(statusOf(() => authorize(alice, "user.list")), 403);
  assert.equal(statusOf(() => authorize(root, "user.list")), "allowed");
});

test("admin-only resources: 403 for the class, 404 for each object, to non-admins", () => {
  assert.equal(statusOf(() => authorize(alice, "accessCode.list")), 403);
  assert.equal(statusOf(() => authorize(alice, "accessCode.create")), 403);
  assert.equal(statusOf(() => authorize(alice, "accessCode.read", { id: "c" })), 404);
  assert.equal(statusOf(() => authorize(alice, "accessCode.revoke", { id: "c" })), 404);
  assert.equal(statusOf(() => authorize(root, "accessCode.revoke", { id: "c" })), "allowed");
  assert.equal(statusOf(() => authorize(alice, "settings.update")), 403);
  assert.equal(statusOf(() => authorize(alice, "auditLog.list")), 403);
  assert.equal(statusOf(() => authorize(root, "settings.update")), "allowed");
});

test("sessions belong to their user", () => {
  assert.equal(can(alice, "session.delete", { user_id: "a" }), true);
  assert.equal(can(bob, "session.delete", { user_id: "a" }), false);
  assert.equal(statusOf(() => authorize(bob, "session.delete", { user_id: "a" })), 404);
});

test("models: a key's model scope hides the others (404 on 'model'); no scope allows all", () => {
  const scoped: UserActor = { ...bob, modelScope: ["m1"] };
  assert.equal(can(scoped, "model.use", "m1"), true);
  assert.equal(can(scoped, "model.use", "m2"), false);
  assert.equal(can(bob, "model.use", "m2"), true);
  assert.equal(can(local, "model.use", "m2"), true);
  try {
    authorize(scoped, "model.use", "m2");
    assert.fail("expected a refusal");
  } catch (error) {
    assert.ok(error instanceof ApiError);
    assert.deepEqual([error.status, error.code, error.param], [404, "model_not_found", "model"]);
  }
});

test("requireUser: the account behind the actor, or 401", () => {
  assert.equal(requireUser(alice), alice);
  assert.equal(statusOf(() => requireUser(local)), 401);
  assert.equal(statusOf(() => requireUser(anonymous)), 401);
});

test("asking about an action no policy defines is a programming error, not a refusal", () => {
  assert.throws(() => authorize(alice, "nothing.read" as never, {} as never), /no policy is defined for nothing/);
  assert.throws(() => authorize(alice, "apiKey.fly" as never, { user_id: "a" } as never), /not an object action/);
});
