import assert from "node:assert/strict";
import { test } from "node:test";
import Fastify from "fastify";
import { ModelRouter } from "../engines/router.ts";
import { Lifecycle } from "../serving/lifecycle.ts";
import { registerHealth } from "./health.ts";

test("/readyz is 503 while models load, 200 once ready, 503 for good from the drain; /livez is 200 throughout", async (t) => {
  const lifecycle = new Lifecycle();
  const app = Fastify();
  registerHealth(app, { router: new ModelRouter([]), lifecycle });
  t.after(() => app.close());
  const probe = async (url: string) => {
    const response = await app.inject({ url });
    return [response.statusCode, response.json().status];
  };

  // Before the models are loaded (startService marks the lifecycle ready once they are and it listens).
  assert.deepEqual(await probe("/readyz"), [503, "starting"]);
  assert.deepEqual(await probe("/livez"), [200, "ok"]);
  lifecycle.markReady();
  assert.deepEqual(await probe("/readyz"), [200, "ready"]);
  assert.deepEqual(await probe("/livez"), [200, "ok"]);
  assert.equal(lifecycle.beginDrain(), true);
  assert.equal(lifecycle.beginDrain(), false, "a second signal does not start a second drain");
  lifecycle.markReady();
  assert.deepEqual(await probe("/readyz"), [503, "draining"], "never ready again once draining");
  assert.deepEqual(await probe("/livez"), [200, "ok"]);
});
