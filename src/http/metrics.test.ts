import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { isLoopbackAddress } from "../auth/localMode.ts";
import { Metrics } from "../metrics/metrics.ts";
import { installErrorHandlers } from "./errors.ts";
import { registerMetrics } from "./metrics.ts";

async function app(token?: string) {
  const metrics = new Metrics(() => [{ model: "m", queued: 3, running: 2, capacity: 4, turnEstimateMs: 250 }]);
  const server = Fastify();
  installErrorHandlers(server);
  registerMetrics(server, { metrics, token });
  server.get("/items/:id", async () => ({ ok: true }));
  await server.ready();
  return { server, metrics };
}

test("without a token, /metrics answers loopback clients that did not come through a proxy", async () => {
  const { server } = await app();
  const local = await server.inject({ url: "/metrics", remoteAddress: "127.0.0.1" });
  assert.equal(local.statusCode, 200);
  assert.match(local.headers["content-type"] as string, /^text\/plain/);
  assert.match(local.body, /sputnik_queue_length\{model="m"\} 3/);
  assert.match(local.body, /sputnik_active_sequences\{model="m"\} 2/);
  assert.match(local.body, /sputnik_sequences\{model="m"\} 4/);
  assert.match(local.body, /sputnik_queue_turn_seconds\{model="m"\} 0.25/);
  const remote = await server.inject({ url: "/metrics", remoteAddress: "203.0.113.7" });
  assert.equal(remote.statusCode, 403);
  assert.equal(remote.json().error.code, "metrics_forbidden");
  const proxied = await server.inject({ url: "/metrics", remoteAddress: "127.0.0.1", headers: { "x-forwarded-for": "203.0.113.7" } });
  assert.equal(proxied.statusCode, 403);
  await server.close();
});

test("with a token, /metrics needs it from everywhere", async () => {
  const { server } = await app("a-metrics-token-of-some-length");
  assert.equal((await server.inject({ url: "/metrics", remoteAddress: "127.0.0.1" })).statusCode, 401);
  const scraped = await server.inject({
    url: "/metrics",
    remoteAddress: "203.0.113.7",
    headers: { authorization: "Bearer a-metrics-token-of-some-length" },
  });
  assert.equal(scraped.statusCode, 200);
  await server.close();
});

test("requests are counted by route pattern and status, never by raw URL", async () => {
  const { server, metrics } = await app();
  await server.inject({ url: "/items/1" });
  await server.inject({ url: "/items/2" });
  await server.inject({ url: "/nowhere/at/all" });
  const text = await metrics.registry.metrics();
  assert.match(text, /sputnik_http_requests_total\{route="\/items\/:id",method="GET",status="200"\} 2/);
  assert.match(text, /sputnik_http_requests_total\{route="unmatched",method="GET",status="404"\} 1/);
  assert.doesNotMatch(text, /\/items\/1/);
  await server.close();
});

test("completions are observed per known model only: a client-chosen name never becomes a label", async () => {
  const metrics = new Metrics();
  const usage = {
    prompt_tokens: 10,
    completion_tokens: 21,
    total_tokens: 31,
    prompt_cache_hit_tokens: 6,
    prompt_cache_miss_tokens: 4,
    completion_tokens_details: { reasoning_tokens: 5 },
    prompt_tokens_details: { cached_tokens: 6 },
  };
  metrics.observeCompletion({ model: "m", engine: "local", status: 200, usage, ttftMs: 100, totalMs: 1100 });
  metrics.observeCompletion({ model: "made-up-name", engine: "none", status: 404, usage, ttftMs: null, totalMs: 1 });
  const text = await metrics.registry.metrics();
  assert.match(text, /sputnik_prompt_cache_hit_ratio\{model="m"\} 0.6/);
  assert.match(text, /sputnik_generation_tokens_per_second_sum\{model="m"\} 20/);
  assert.match(text, /sputnik_time_to_first_token_seconds_sum\{model="m"\} 0.1/);
  assert.doesNotMatch(text, /made-up-name/);
});

test("the loopback check behind /metrics knows IPv4, IPv6 and IPv4-mapped loopback addresses", () => {
  for (const address of ["127.0.0.1", "127.5.6.7", "::1", "::ffff:127.0.0.1"]) assert.equal(isLoopbackAddress(address), true, address);
  for (const address of ["10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1", undefined]) assert.equal(isLoopbackAddress(address), false, String(address));
});
