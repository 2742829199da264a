import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { limitsConfigSchema } from "../../../limits/config.ts";
import { Limits } from "../../../limits/limits.ts";
import { MemoryBucketStore } from "../../../limits/tokenBucket.ts";
import { installErrorHandlers } from "../../errors.ts";
import { registerFloodGuard } from "./index.ts";

async function app(config: Record<string, unknown>) {
  const rejected: string[] = [];
  const limits = new Limits({
    config: limitsConfigSchema.parse(config),
    store: new MemoryBucketStore(),
    capacityOf: () => undefined,
    observer: { rejected: (reason) => rejected.push(reason), queueWait: () => undefined },
  });
  const server = Fastify();
  installErrorHandlers(server);
  registerFloodGuard(server, limits);
  server.post("/api/auth/login", { config: { ipRateLimit: "auth" } }, async () => ({ ok: true }));
  server.get("/v1/models", async () => ({ ok: true }));
  server.get("/health", async () => ({ ok: true }));
  await server.ready();
  return { server, rejected };
}

test("every request counts against the per-IP flood guard; a refusal is a 429 with Retry-After in the API's shape", async () => {
  const { server, rejected } = await app({ httpPerIpPerMinute: 3 });
  for (let i = 0; i < 3; i++) assert.equal((await server.inject({ url: "/health", remoteAddress: "10.1.1.1" })).statusCode, 200);
  const refused = await server.inject({ url: "/v1/models", remoteAddress: "10.1.1.1" });
  assert.equal(refused.statusCode, 429);
  assert.equal(refused.json().error.code, "rate_limit_ip");
  assert.equal(refused.json().error.type, "rate_limit_error");
  assert.ok(Number(refused.headers["retry-after"]) >= 1);
  assert.equal(refused.headers["x-ratelimit-remaining"], "0");
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
