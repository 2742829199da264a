import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { installErrorHandlers } from "../http/errors.ts";
import { limitsConfigSchema } from "./config.ts";
import { registerAttackModeGate, registerFloodGuard } from "./httpGuards.ts";
import { Limits } from "./limits.ts";
import { MemoryBucketStore } from "./tokenBucket.ts";

async function app(config: Record<string, unknown>, attack = false) {
  const rejected: string[] = [];
  const limits = new Limits({
    config: limitsConfigSchema.parse(config),
    store: new MemoryBucketStore(),
    capacityOf: () => undefined,
    attackMode: async () => attack,
    observer: { rejected: (reason) => rejected.push(reason), queueWait: () => undefined },
  });
  const server = Fastify();
  installErrorHandlers(server);
  registerFloodGuard(server, limits);
  registerAttackModeGate(server, limits);
  // Stands in for the auth hook: a request with `x-user` is a signed-in user.
  server.addHook("onRequest", async (request) => {
    request.actor = request.headers["x-user"] ? { kind: "user", userId: "u1", role: "user", apiKeyId: null, sessionId: "s1", planId: null } : { kind: "anonymous" };
  });
  server.post("/api/auth/login", { config: { openInAttackMode: true, ipRateLimit: "auth" } }, async () => ({ ok: true }));
  server.get("/v1/models", async () => ({ ok: true }));
  server.post("/api/conversations", async () => ({ ok: true }));
  server.get("/health", async () => ({ ok: true }));
  server.get("/assets/app.js", async () => "js");
  await server.ready();
  return { server, limits, rejected };
}

test("every request counts against the per-IP flood guard", async () => {
  const { server, rejected } = await app({ httpPerIpPerMinute: 3 });
  for (let i = 0; i < 3; i++) assert.equal((await server.inject({ url: "/health", remoteAddress: "10.1.1.1" })).statusCode, 200);
  const refused = await server.inject({ url: "/v1/models", remoteAddress: "10.1.1.1" });
  assert.equal(refused.statusCode, 429);
  assert.equal(refused.json().error.code, "rate_limit_ip");
  assert.ok(Number(refused.headers["retry-after"]) >= 1);
  assert.equal((await server.inject({ url: "/health", remoteAddress: "10.1.1.2" })).statusCode, 200, "per address");
  assert.deepEqual(rejected, ["rate_limit_ip"]);
  await server.close();
});

test("routes marked ipRateLimit: auth also count against the sign-in bucket", async () => {
  const { server } = await app({ authPerIpPerMinute: 2, httpPerIpPerMinute: 100 });
  const login = () => server.inject({ method: "POST", url: "/api/auth/login", payload: {}, remoteAddress: "10.2.2.2" });
  const first = await login();
  assert.equal(first.statusCode, 200);
  assert.equal(first.headers["x-ratelimit-limit"], "2");
  assert.equal((await login()).statusCode, 200);
  const refused = await login();
  assert.equal(refused.statusCode, 429);
  assert.equal(refused.json().error.code, "rate_limit_auth");
  assert.equal((await server.inject({ url: "/v1/models", remoteAddress: "10.2.2.2" })).statusCode, 200, "other routes are not sign-in attempts");
  await server.close();
});

test("attack mode: the API needs a signed-in user, except sign-in; static files and /health stay open", async () => {
  const { server, rejected } = await app({}, true);
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

test("without attack mode anonymous requests pass the gate (the auth layer decides)", async () => {
  const { server } = await app({}, false);
  assert.equal((await server.inject({ url: "/v1/models" })).statusCode, 200);
  await server.close();
});
