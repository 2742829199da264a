import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AppClient } from "./support/appClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

/** Sign-in and sign-up attempts are rate-limited per client IP on the real app routes. */
let service: TestService;
before(async () => {
  service = await startTestService({ models: ["scripted"], config: { limits: { authPerIpPerMinute: 3 } } });
});
after(() => service.stop());

test("login and sign-up attempts share a per-IP budget: 429 with Retry-After when it runs out", async () => {
  const client = new AppClient(service.url);
  const statuses: number[] = [];
  for (let i = 0; i < 2; i++) statuses.push((await client.post("/api/auth/login", { login: "nobody", password: "wrong password" })).status);
  statuses.push((await client.post("/api/auth/signup", { username: "x", password: "short" })).status);
  const refused = await client.post("/api/auth/login", { login: "nobody", password: "wrong password" });
  assert.ok(statuses.every((s) => s !== 429), `first attempts are judged on their merits: ${statuses.join(",")}`);
  assert.equal(refused.status, 429, refused.text);
  assert.ok(Number(refused.headers["retry-after"]) > 0, "Retry-After set");
  assert.equal(refused.body?.error?.type, "rate_limit_error", refused.text);
  // Reading the sign-in state is not an attempt and stays open.
  assert.equal((await client.get("/api/auth/state")).status, 200);
});
