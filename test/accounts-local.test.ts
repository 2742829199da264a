/**
 * Loopback single-user mode, the refusal to serve the network without accounts, and API-key model
 * scopes against a real model.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../src/config/load.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startService } from "../src/runtime/startService.ts";
import { forEachDatabase } from "./support/databases.ts";
import { AppClient, rawRequest } from "./support/appClient.ts";
import { startAccountsServer, TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { startTestService, type TestService } from "./support/service.ts";

forEachDatabase("local mode: /v1 without keys on loopback until the first account exists", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const get = (headers: Record<string, string> = {}) => rawRequest(server.url, "GET", "/v1/models", headers);
  assert.equal((await get()).status, 200);
  assert.equal((await get({ authorization: "Bearer sk-unused" })).status, 200, "SDKs that insist on a key still work");
  // Not for proxied requests, nor for pages whose DNS name was rebound to 127.0.0.1.
  assert.equal((await get({ "x-forwarded-for": "203.0.113.9" })).status, 401);
  assert.equal((await get({ forwarded: "for=203.0.113.9" })).status, 401);
  assert.equal((await get({ host: "evil.example" })).status, 401);
  assert.equal((await get({ origin: "https://evil.example" })).status, 401);
  // The app API never runs without an account.
  assert.equal((await rawRequest(server.url, "GET", "/api/keys")).status, 401);

  await server.signUp("owner");
  const closed = await get();
  assert.deepEqual([closed.status, closed.body.error.code], [401, "missing_api_key"]);
  assert.equal((await get({ authorization: "Bearer sk-unused" })).status, 401);
});

forEachDatabase("local mode is off when configured off or when the server is not bound to loopback", async (store, t) => {
  const off = await startAccountsServer(t, store, { auth: { localMode: false, passwordHashing: TEST_PASSWORD_HASHING } });
  assert.equal((await rawRequest(off.url, "GET", "/v1/models")).status, 401);
  // Configured for all interfaces (the safety check lives in startService; here it listens on loopback anyway).
  const wide = await startAccountsServer(t, store, { host: "0.0.0.0" });
  assert.equal((await rawRequest(wide.url.replace("0.0.0.0", "127.0.0.1"), "GET", "/v1/models")).status, 401);
});

test("startService refuses a non-loopback address while no account exists, with a clear message", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-bind-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const config = loadConfig({ env: {}, flags: { host: "0.0.0.0", port: 0, dataDir, pullDefaultModel: false, logLevel: "silent" } });
  await assert.rejects(startService(config), (error: Error) => {
    assert.match(error.message, /Refusing to listen on 0\.0\.0\.0: no account exists yet/);
    assert.match(error.message, /sputnik admin create-user --admin --username <name>/);
    assert.match(error.message, /--host 127\.0\.0\.1/);
    return true;
  });
});

describe("API keys against a real model", () => {
  let service: TestService;
  before(async () => {
    service = await startTestService({ models: ["scripted"], config: { auth: { passwordHashing: TEST_PASSWORD_HASHING } } });
  });
  after(() => service.stop());

  test("a key scoped to other models finds this one nowhere (404); an allowed key and a session chat with it", async () => {
    const owner = new AppClient(service.url);
    assert.equal((await owner.post("/api/auth/signup", { username: "owner", password: TEST_PASSWORD })).status, 201);
    const elsewhere = (await owner.post("/api/keys", { name: "other", models: ["another-model"] })).body.key;
    const allowed = (await owner.post("/api/keys", { name: "scripted", models: ["scripted"] })).body.key;
    const chat = { model: "scripted", messages: [{ role: "user", content: "What is the answer?" }] };
    const api = new AppClient(service.url);
    const as = (key: string) => ({ headers: { authorization: `Bearer ${key}` }, csrf: false });

    const refused = await api.post("/v1/chat/completions", chat, as(elsewhere));
    assert.deepEqual([refused.status, refused.body.error.code, refused.body.error.param], [404, "model_not_found", "model"]);
    assert.deepEqual((await api.get("/v1/models", as(elsewhere))).body.data, []);
    assert.equal((await api.get("/v1/models/scripted", as(elsewhere))).status, 404);

    assert.deepEqual((await api.get("/v1/models", as(allowed))).body.data.map((m: { id: string }) => m.id), ["scripted"]);
    const answered = await api.post("/v1/chat/completions", chat, as(allowed));
    assert.equal(answered.status, 200, answered.text);
    assert.equal(answered.body.choices[0].message.content, MODEL_SCRIPTS.scripted!.answer);

    // A browser session may call /v1 too, but only with its CSRF token.
    assert.equal((await owner.post("/v1/chat/completions", chat, { csrf: false })).status, 403);
    assert.equal((await owner.post("/v1/chat/completions", chat)).status, 200);
  });
});
