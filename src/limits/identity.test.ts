import assert from "node:assert/strict";
import { test } from "node:test";
import { flowOf, identityOf } from "./identity.ts";

test("identityOf: an account counts with its key and plan; anyone else by address", () => {
  const viaKey = identityOf({ kind: "user", userId: "u1", role: "user", apiKeyId: "k1", sessionId: null, planId: "pro" }, "10.0.0.1");
  assert.deepEqual(viaKey, { kind: "user", userId: "u1", apiKeyId: "k1", planId: "pro", ip: "10.0.0.1" });
  assert.equal(flowOf(viaKey), "user:u1");
  const local = identityOf({ kind: "local" }, "127.0.0.1");
  assert.deepEqual(local, { kind: "local", userId: null, apiKeyId: null, planId: null, ip: "127.0.0.1" });
  assert.equal(flowOf(local), "ip:127.0.0.1");
  // A server built without auth has no actor: everyone is anonymous.
  assert.deepEqual(identityOf(undefined, ""), { kind: "anonymous", userId: null, apiKeyId: null, planId: null, ip: "unknown" });
});
