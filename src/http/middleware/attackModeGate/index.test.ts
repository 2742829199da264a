import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { limitsConfigSchema } from "../../../limits/config.ts";
import { Limits } from "../../../limits/limits.ts";
import { MemoryBucketStore } from "../../../limits/tokenBucket.ts";
import { installErrorHandlers } from "../../errors.ts";
import { registerAttackModeGate } from "./index.ts";

async function app(attack: boolean) {
  const rejected: string[] = [];
  const limits = new Limits({
    config: limitsConfigSchema.parse({}),
    store: new MemoryBucketStore(),
    capacityOf: () => undefined,
    attackMode: async () => attack,
    observer: { rejected: (reason) => rejected.push(reason), queueWait: () => undefined },
  });
  const server = Fastify();
  installErrorHandlers(server);
  registerAttackModeGate(server, limits);
  // Stands in for the auth middleware: a request with `x-user` is a signed-in user.
  server.addHook("onRequest", async (request) => {
    request.actor = request.headers["x-user"] ? { kind: "user", userId: "u1", role: "user", apiKeyId: null, sessionId: "s1", planId: null } : { kind: "anonymous" };
  });
  server.post("/api/auth/login", { config: { openInAttackMode: true } }, async () => ({ ok: true }));
  server.get("/v1/models", async () => ({ ok: true }));
  server.post("/api/conversations", async () => ({ ok: true }));
  server.get("/health", async () => ({ ok: true }));
  server.get("/assets/app.js", async () => "js");
  await server.ready();
  return { server, rejected };
}

test("attack mode: the API needs a signed-in user, except sign-in; static files and /health stay open", async () => {
  const { server, rejected } = await app(true);
  const v1 = await server.inject({ url: "/v1/models" });
  assert.equal(v1.statusCode, 401);
  assert.equal(v1.json().error.code, "attack_mode_auth_required");
  assert.equal((await server.inject({ method: "POST", url: "/api/conversations", payload: {} })).statusCode, 401);
  assert.equal((await server.inject({ method: "POST", url: "/api/auth/login", payload: {} })).statusCode, 200);
  assert.equal((await server.inject({ url: "/health" })).statusCode, 200);
  assert.equal((await server.inject({ url: "/assets/app.js" })).statusCode, 200);
  assert.equal((await server.inject({ url: "/v1/models", headers: { "x-user": "1" } })).statusCode, 200);
  assert.deepEqual(rejected, ["attack_mode_auth", "attack_mode_auth"]);
  await server.close();
});

test("without attack mode anonymous requests pass the gate (the auth middleware decides)", async () => {
  const { server } = await app(false);
  assert.equal((await server.inject({ url: "/v1/models" })).statusCode, 200);
  await server.close();
});
