/**
 * Loopback single-user mode, the refusal to serve the network without accounts, and API-key model
 * scopes against a real model.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { localKeyPath } from "../src/auth/localMode.ts";
import { loadConfig } from "../src/config/load.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startService } from "../src/runtime/startService.ts";
import { forEachDatabase } from "./support/databases.ts";
import { AppClient, rawRequest } from "./support/appClient.ts";
import { startAccountsServer, TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { startTestService, type TestService } from "./support/service.ts";

forEachDatabase("local mode: /v1 with the data directory's local key, from loopback, until the first account exists", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const key = server.localKey!;
  assert.match(key, /^sk-local-[0-9A-Za-z]{43}$/);
  assert.equal((await stat(localKeyPath(server.config.dataDir))).mode & 0o777, 0o600, "only its owner may read the key file");
  const withKey = { authorization: `Bearer ${key}` };
  const get = (headers: Record<string, string> = {}) => rawRequest(server.url, "GET", "/v1/models", headers);
  assert.equal((await get(withKey)).status, 200, "the OpenAI SDK with the local key as its API key works");
  // Being on this machine is not enough: this is what a default nginx proxy_pass sends (a loopback
  // connection, a loopback Host, no forwarding headers), and it gets nothing without the key.
  const proxied = await get({ host: `127.0.0.1:${new URL(server.url).port}` });
  assert.deepEqual([proxied.status, proxied.body.error.code], [401, "missing_api_key"]);
  assert.equal((await get({ authorization: "Bearer sk-unused" })).status, 401, "any other key is refused");
  assert.equal((await get({ authorization: `Bearer ${key.slice(0, -1)}x` })).status, 401);
  // With the key, still not for requests with proxy signs, nor for pages whose DNS name was rebound to 127.0.0.1.
  const proxySigns: Array<Record<string, string>> = [{ "x-forwarded-for": "203.0.113.9" }, { forwarded: "for=203.0.113.9" }, { via: "1.1 proxy" }, { "x-real-ip": "203.0.113.9" }, { host: "evil.example" }, { origin: "https://evil.example" }];
  for (const headers of proxySigns) {
    assert.equal((await get({ ...withKey, ...headers })).status, 401, JSON.stringify(headers));
  }
  // The app API never runs without an account.
  assert.equal((await rawRequest(server.url, "GET", "/api/keys")).status, 401);

  await server.signUp("owner");
  const closed = await get();
  assert.deepEqual([closed.status, closed.body.error.code], [401, "missing_api_key"]);
  assert.equal((await get(withKey)).status, 401, "the first account ends the mode for good");
});

forEachDatabase("local mode is off when configured off or when the server is not bound to loopback", async (store, t) => {
  const off = await startAccountsServer(t, store, { auth: { localMode: false, passwordHashing: TEST_PASSWORD_HASHING } });
  assert.equal(off.localKey, null, "no key is made when the mode is off");
  assert.equal((await rawRequest(off.url, "GET", "/v1/models")).status, 401);
  // Configured for all interfaces (the safety check lives in startService; here it listens on loopback anyway).
  const wide = await startAccountsServer(t, store, { host: "0.0.0.0" });
  assert.equal(wide.localKey, null);
  assert.equal((await rawRequest(wide.url.replace("0.0.0.0", "127.0.0.1"), "GET", "/v1/models")).status, 401);
  // Each data directory has its own key: another install's opens nothing here.
  const here = await startAccountsServer(t, store);
  const elsewhere = await startAccountsServer(t, store);
  assert.notEqual(here.localKey, elsewhere.localKey);
  assert.equal((await rawRequest(here.url, "GET", "/v1/models", { authorization: `Bearer ${elsewhere.localKey}` })).status, 401);
  assert.equal((await rawRequest(here.url, "GET", "/v1/models", { authorization: `Bearer ${here.localKey}` })).status, 200);
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
