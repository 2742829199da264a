import assert from "node:assert/strict";
import { test } from "node:test";
import type { Actor, UserActor } from "../auth/actor.ts";
import { ServiceError, type ErrorKind } from "../errors.ts";
import { authorize, can, requireUser } from "./index.ts";

const alice: UserActor = { kind: "user", userId: "a", role: "user", apiKeyId: null, sessionId: "s1", planId: "free" };
const bob: UserActor = { kind: "user", userId: "b", role: "user", apiKeyId: "k1", sessionId: null, planId: "free" };
const root: UserActor = { kind: "user", userId: "r", role: "admin", apiKeyId: null, sessionId: "s2", planId: null };
const anonymous: Actor = { kind: "anonymous" };
const local: Actor = { kind: "local" };

function refusalOf(run: () => void): ErrorKind | "allowed" {
  try {
    run();
    return "allowed";
  } catch (error) {
    assert.ok(error instanceof ServiceError, `expected a ServiceError, got ${String(error)}`);
    return error.kind;
  }
}

test("API keys: the owner may do anything; anyone else, admins included, finds nothing (404)", () => {
  const key = { user_id: "a" };
  for (const action of ["apiKey.read", "apiKey.update", "apiKey.delete"] as const) {
    assert.equal(refusalOf(() => authorize(alice, action, key)), "allowed", action);
    assert.equal(refusalOf(() => authorize(bob, action, key)), "not_found", action);
    assert.equal(refusalOf(() => authorize(root, action, key)), "not_found", action);
    assert.equal(refusalOf(() => authorize(local, action, key)), "not_found", action);
    assert.equal(refusalOf(() => authorize(anonymous, action, key)), "unauthenticated", action);
  }
  assert.equal(refusalOf(() => authorize(alice, "apiKey.create")), "allowed");
  assert.equal(refusalOf(() => authorize(local, "apiKey.create")), "forbidden");
  assert.equal(refusalOf(() => authorize(anonymous, "apiKey.list")), "unauthenticated");
});

test("a missing object answers exactly like somebody else's: 404 with the same body", () => {
  const errorOf = (subject: { user_id: string } | undefined) => {
    try {
      authorize(bob, "apiKey.delete", subject);
    } catch (error) {
      return error as ServiceError;
    }
    assert.fail("expected a refusal");
  };
  const missing = errorOf(undefined);
  const foreign = errorOf({ user_id: "a" });
  assert.deepEqual([missing.kind, missing.message, missing.code, missing.param], [foreign.kind, foreign.message, foreign.code, foreign.param]);
});

test("users: self-read is allowed but admin actions on oneself are 403; others are 404; admins manage all", () => {
  assert.equal(refusalOf(() => authorize(alice, "user.read", { id: "a" })), "allowed");
  assert.equal(refusalOf(() => authorize(alice, "user.disable", { id: "a" })), "forbidden");
  assert.equal(refusalOf(() => authorize(alice, "user.read", { id: "b" })), "not_found");
  assert.equal(refusalOf(() => authorize(alice, "user.setRole", { id: "b" })), "not_found");
  assert.equal(refusalOf(() => authorize(root, "user.disable", { id: "b" })), "allowed");
  assert.equal(refusalOf(() => authorize(alice, "user.list")), "forbidden");
  assert.equal(refusalOf(() => authorize(root, "user.list")), "allowed");
});

test("admin-only resources: 403 for the class, 404 for each object, to non-admins", () => {
  assert.equal(refusalOf(() => authorize(alice, "accessCode.list")), "forbidden");
  assert.equal(refusalOf(() => authorize(alice, "accessCode.create")), "forbidden");
  assert.equal(refusalOf(() => authorize(alice, "accessCode.read", { id: "c" })), "not_found");
  assert.equal(refusalOf(() => authorize(alice, "accessCode.revoke", { id: "c" })), "not_found");
  assert.equal(refusalOf(() => authorize(root, "accessCode.revoke", { id: "c" })), "allowed");
  assert.equal(refusalOf(() => authorize(alice, "settings.update")), "forbidden");
  assert.equal(refusalOf(() => authorize(alice, "auditLog.list")), "forbidden");
  assert.equal(refusalOf(() => authorize(root, "settings.update")), "allowed");
});

test("sessions belong to their user", () => {
  assert.equal(can(alice, "session.delete", { user_id: "a" }), true);
  assert.equal(can(bob, "session.delete", { user_id: "a" }), false);
  assert.equal(refusalOf(() => authorize(bob, "session.delete", { user_id: "a" })), "not_found");
});

test("models: a key's model scope hides the others (404 on 'model'); no scope allows all", () => {
  const scoped: UserActor = { ...bob, modelScope: ["m1"] };
  const model = (id: string) => ({ id, plan: null });
  assert.equal(can(scoped, "model.use", model("m1")), true);
  assert.equal(can(scoped, "model.use", model("m2")), false);
  assert.equal(can(bob, "model.use", model("m2")), true);
  assert.equal(can(local, "model.use", model("m2")), true);
  try {
    authorize(scoped, "model.use", model("m2"));
    assert.fail("expected a refusal");
  } catch (error) {
    assert.ok(error instanceof ServiceError);
    assert.deepEqual([error.kind, error.code, error.param], ["not_found", "model_not_found", "model"]);
  }
});

test("models: the plan limits use (403 model_not_allowed naming the plan) but not visibility", () => {
  const plan = { name: "Free", allowedModels: ["m1"] };
  assert.equal(can(bob, "model.use", { id: "m1", plan }), true);
  assert.equal(can(bob, "model.use", { id: "m2", plan }), false);
  assert.equal(can(bob, "model.read", { id: "m2", plan }), true);
  assert.equal(can(bob, "model.use", { id: "m2", plan: { name: "Pro", allowedModels: null } }), true);
  try {
    authorize(bob, "model.use", { id: "m2", plan });
    assert.fail("expected a refusal");
  } catch (error) {
    assert.ok(error instanceof ServiceError);
    assert.deepEqual([error.kind, error.code, error.param], ["forbidden", "model_not_allowed", "model"]);
    assert.match(error.message, /Your plan \(Free\) does not include the model 'm2'/);
  }
  // A key's scope still wins: out of scope is not found, whatever the plan says.
  const scoped: UserActor = { ...bob, modelScope: ["m1"] };
  assert.equal(refusalOf(() => authorize(scoped, "model.use", { id: "m2", plan: { name: "Pro", allowedModels: null } })), "not_found");
});

test("requireUser: the account behind the actor, or 401", () => {
  assert.equal(requireUser(alice), alice);
  assert.equal(refusalOf(() => requireUser(local)), "unauthenticated");
  assert.equal(refusalOf(() => requireUser(anonymous)), "unauthenticated");
});

test("asking about an action no policy defines is a programming error, not a refusal", () => {
  assert.throws(() => authorize(alice, "nothing.read" as never, {} as never), /no policy is defined for nothing/);
  assert.throws(() => authorize(alice, "apiKey.fly" as never, { user_id: "a" } as never), /not an object action/);
});
