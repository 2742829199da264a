import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import Fastify from "fastify";
import { installErrorHandlers } from "../../errors.ts";
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
