import assert from "node:assert/strict";
import { test } from "node:test";
import type { UserActor } from "../auth/actor.ts";
import { can } from "./index.ts";

const alice: UserActor = { kind: "user", userId: "a", role: "user", apiKeyId: null, sessionId: "s1", planId: null };
const root: UserActor = { kind: "user", userId: "r", role: "admin", apiKeyId: null, sessionId: "s2", planId: null };

test("only the owner shares a conversation and lists or revokes its links; admins see none of it", () => {
  const owned = { user_id: "a" };
  assert.equal(can(alice, "conversation.share", owned), true);
  assert.equal(can(root, "conversation.share", owned), false);
  assert.equal(can({ kind: "anonymous" }, "conversation.share", owned), false);
  for (const action of ["conversationShare.read", "conversationShare.revoke"] as const) {
    assert.equal(can(alice, action, owned), true, action);
    assert.equal(can(root, action, owned), false, action);
    assert.equal(can({ kind: "local" }, action, owned), false, action);
  }
});
