import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { listenWhileStarting, STARTING_RETRY_AFTER_S } from "./startupListener.ts";

test("while the models load: alive, not ready, every API refused with 503 + Retry-After in its own shape; then the port is free for the real server", async () => {
  const startup = await listenWhileStarting("127.0.0.1", 0);
  const base = `http://127.0.0.1:${startup.port}`;
  try {
    const livez = await fetch(`${base}/livez`);
    assert.equal(livez.status, 200);
    assert.deepEqual(await livez.json(), { status: "ok" });
    assert.equal((await fetch(`${base}/health/live`)).status, 200);
    const readyz = await fetch(`${base}/readyz`);
    assert.equal(readyz.status, 503);
    assert.deepEqual(await readyz.json(), { status: "starting" });

    const v1 = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "x", messages: [] }) });
    assert.equal(v1.status, 503);
    assert.equal(v1.headers.get("retry-after"), String(STARTING_RETRY_AFTER_S));
    const v1Body = (await v1.json()) as { error: { type: string; code: string; message: string } };
    assert.equal(v1Body.error.type, "service_unavailable");
    assert.equal(v1Body.error.code, "starting");
    assert.match(v1Body.error.message, /starting/);

    const anthropic = await fetch(`${base}/anthropic/v1/messages`, { method: "POST", body: "{}" });
    assert.equal(anthropic.status, 503);
    const anthropicBody = (await anthropic.json()) as { type: string; error: { type: string } };
    assert.deepEqual([anthropicBody.type, anthropicBody.error.type], ["error", "overloaded_error"]);
    assert.equal((await fetch(`${base}/`)).status, 503, "the web app too: nothing is served before the service is");
  } finally {
    await startup.close();
  }
  // The real server takes the same port at once.
  const real = http.createServer((_q, r) => r.end("real"));
  await new Promise<void>((resolve) => real.listen({ host: "127.0.0.1", port: startup.port }, resolve));
  try {
    assert.equal((real.address() as AddressInfo).port, startup.port);
    assert.equal(await (await fetch(`${base}/readyz`)).text(), "real");
  } finally {
    real.closeAllConnections();
    await new Promise((resolve) => real.close(resolve));
  }
});
