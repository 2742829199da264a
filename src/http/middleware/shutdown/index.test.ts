import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import Fastify from "fastify";
import { ModelRouter } from "../../../engines/router.ts";
import { Lifecycle } from "../../../serving/lifecycle.ts";
import { installAnthropicErrorHandlers } from "../../anthropic/errors.ts";
import { installErrorHandlers } from "../../errors.ts";
import { registerHealth } from "../../health.ts";
import { registerShutdownGate } from "./index.ts";

test("while the server drains before closing, a new request gets 503 shutting_down with Retry-After in the API's shape", async () => {
  const app = Fastify({ return503OnClosing: false });
  installErrorHandlers(app);
  registerShutdownGate(app);
  // Like the web replies' drain: running work gets time to finish before the server stops listening.
  let drained!: () => void;
  const drain = new Promise<void>((resolve) => (drained = resolve));
  app.addHook("preClose", async () => drain);
  app.get("/v1/models", async () => ({ ok: true }));
  await app.listen({ host: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/v1/models`;
  assert.equal((await fetch(url)).status, 200, "served before the close");

  const closed = app.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const refused = await fetch(url);
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get("retry-after"), "5");
  assert.equal(refused.headers.get("connection"), "close");
  const body = (await refused.json()) as { error: { code: string; type: string } };
  assert.deepEqual([body.error.code, body.error.type], ["shutting_down", "service_unavailable"]);
  drained();
  await closed;
});

test("from the start of a drain (before the server closes), new requests get 503 + Retry-After in each API's shape while the probes still answer", async (t) => {
  const lifecycle = new Lifecycle("ready");
  const app = Fastify({ return503OnClosing: false });
  installErrorHandlers(app);
  registerShutdownGate(app, { lifecycle });
  registerHealth(app, { router: new ModelRouter([]), lifecycle });
  app.post("/v1/chat/completions", async () => ({ ok: true }));
  app.get("/api/conversations", async () => ({ ok: true }));
  await app.register(
    async (scope) => {
      installAnthropicErrorHandlers(scope);
      scope.post("/v1/messages", async () => ({ ok: true }));
    },
    { prefix: "/anthropic" },
  );
  await app.ready();
  t.after(() => app.close());
  assert.equal((await app.inject({ method: "POST", url: "/v1/chat/completions", payload: {} })).statusCode, 200, "served before the drain");

  lifecycle.beginDrain();
  const openai = await app.inject({ method: "POST", url: "/v1/chat/completions", payload: {} });
  assert.equal(openai.statusCode, 503);
  assert.equal(openai.headers["retry-after"], "5");
  assert.equal(openai.headers.connection, "close");
  assert.deepEqual(pick(openai.json().error, ["type", "code"]), { type: "service_unavailable", code: "shutting_down" });
  const app_ = await app.inject({ method: "GET", url: "/api/conversations" });
  assert.equal(app_.statusCode, 503);
  assert.equal(app_.headers["retry-after"], "5");
  assert.equal(app_.json().error.code, "shutting_down", "the web app's shape (OpenAI's)");
  const anthropic = await app.inject({ method: "POST", url: "/anthropic/v1/messages", payload: {} });
  assert.equal(anthropic.statusCode, 503);
  assert.equal(anthropic.headers["retry-after"], "5");
  assert.equal(anthropic.json().type, "error");
  assert.equal(anthropic.json().error.type, "overloaded_error", "Anthropic's shape");

  // The probes: alive, not ready (the load balancer stops sending; the orchestrator does not kill).
  const livez = await app.inject({ url: "/livez" });
  assert.deepEqual([livez.statusCode, livez.json()], [200, { status: "ok" }]);
  assert.equal((await app.inject({ url: "/health/live" })).statusCode, 200);
  const readyz = await app.inject({ url: "/readyz?verbose" });
  assert.deepEqual([readyz.statusCode, readyz.json()], [503, { status: "draining" }]);
});

function pick(value: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, value[k]]));
}
