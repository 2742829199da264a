import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import Fastify from "fastify";
import { forEachDatabase, type TestStore } from "../../../../test/support/databases.ts";
import { createApiKey } from "../../../auth/apiKeys.ts";
import { readLocalKey } from "../../../auth/localMode.ts";
import { createSession } from "../../../auth/sessions.ts";
import { insertUser } from "../../../auth/users.ts";
import { loadConfig } from "../../../config/load.ts";
import { installErrorHandlers } from "../../errors.ts";
import { localRequestInfo, registerAuth } from "./index.ts";

const LIFETIME = { maxAgeMs: 3_600_000, idleMs: 3_600_000 };

/** Only the auth middleware, and routes that echo who they see. */
async function app(t: TestContext, store: TestStore, auth: Record<string, unknown> = {}) {
  // Its own data directory (where the local key lives): on PostgreSQL the store's is shared.
  const dataDir = await mkdtemp(join(tmpdir(), "sputnik-auth-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const config = loadConfig({ env: {}, flags: { host: "127.0.0.1", port: 0, dataDir, logLevel: "silent", auth } });
  const server = Fastify();
  installErrorHandlers(server);
  await registerAuth(server, { store, config });
  const who = async (request: { actor: unknown }) => ({ actor: request.actor });
  server.get("/public", { config: { access: "public" } }, who);
  server.get("/api/thing", who);
  server.post("/api/thing", who);
  server.get("/v1/thing", who);
  server.post("/v1/thing", who);
  await server.ready();
  t.after(() => server.close());
  return { server, dataDir };
}

async function user(store: TestStore, username = "alice") {
  return insertUser(store.db, { username, email: null, passwordHash: "x", role: "user", status: "active", planId: "free" });
}

forEachDatabase("auth middleware: deny by default, public routes open, errors in the API's shape", async (store, t) => {
  await user(store);
  const { server } = await app(t, store);
  assert.deepEqual((await server.inject({ url: "/public" })).json(), { actor: { kind: "anonymous" } });
  const api = await server.inject({ url: "/api/thing" });
  assert.deepEqual([api.statusCode, api.json().error.code, api.json().error.type], [401, "unauthenticated", "authentication_error"]);
  const v1 = await server.inject({ url: "/v1/thing" });
  assert.deepEqual([v1.statusCode, v1.json().error.code], [401, "missing_api_key"]);
  // An unmatched URL is a plain 404: nothing about credentials.
  assert.equal((await server.inject({ url: "/api/nothing" })).statusCode, 404);
});

forEachDatabase("auth middleware: API keys on /v1 only, with their model scope; a wrong key is 401", async (store, t) => {
  const alice = await user(store);
  const { key, row } = await createApiKey(store.db, { userId: alice.id, name: "k", models: ["m1"], expiresAt: null });
  const { server } = await app(t, store);
  const seen = await server.inject({ url: "/v1/thing", headers: { authorization: `Bearer ${key}` } });
  assert.equal(seen.statusCode, 200);
  assert.deepEqual(seen.json().actor, { kind: "user", userId: alice.id, role: "user", apiKeyId: row.id, sessionId: null, planId: "free", modelScope: ["m1"] });
  // Keys need no CSRF header: they do not ride along on cross-site requests.
  assert.equal((await server.inject({ method: "POST", url: "/v1/thing", headers: { authorization: `Bearer ${key}` }, payload: {} })).statusCode, 200);
  const wrong = await server.inject({ url: "/v1/thing", headers: { authorization: `Bearer sk-${"x".repeat(48)}` } });
  assert.deepEqual([wrong.statusCode, wrong.json().error.code], [401, "invalid_api_key"]);
  const malformed = await server.inject({ url: "/v1/thing", headers: { authorization: "Basic abc" } });
  assert.deepEqual([malformed.statusCode, malformed.json().error.code], [401, "invalid_api_key"]);
  const onAppApi = await server.inject({ url: "/api/thing", headers: { authorization: `Bearer ${key}` } });
  assert.deepEqual([onAppApi.statusCode, onAppApi.json().error.code], [401, "api_key_not_accepted"]);
});

forEachDatabase("auth middleware: a session cookie signs in; state changes need the CSRF header; a dead cookie is forgotten", async (store, t) => {
  const alice = await user(store);
  const { token, session } = await createSession(store.db, { userId: alice.id, userAgent: null, ip: null, lifetime: LIFETIME });
  const { server } = await app(t, store);
  const cookie = `sputnik_session=${token}`;
  const me = await server.inject({ url: "/api/thing", headers: { cookie } });
  assert.equal(me.statusCode, 200);
  assert.deepEqual(me.json().actor, { kind: "user", userId: alice.id, role: "user", apiKeyId: null, sessionId: session.id, planId: "free" });
  const csrfCookie = me.cookies.find((c) => c.name === "sputnik_csrf");
  assert.ok(csrfCookie && csrfCookie.value.length >= 32, "the page gets its CSRF token as a cookie");
  assert.equal(me.cookies.filter((c) => c.name === "sputnik_csrf").length, 1);

  const without = await server.inject({ method: "POST", url: "/api/thing", headers: { cookie }, payload: {} });
  assert.deepEqual([without.statusCode, without.json().error.code], [403, "csrf_token_invalid"]);
  const foreign = await server.inject({ method: "POST", url: "/api/thing", headers: { cookie, origin: "https://evil.example", "x-sputnik-csrf": csrfCookie.value }, payload: {} });
  assert.deepEqual([foreign.statusCode, foreign.json().error.code], [403, "csrf_origin_mismatch"]);
  const withHeader = await server.inject({ method: "POST", url: "/api/thing", headers: { cookie, "x-sputnik-csrf": csrfCookie.value }, payload: {} });
  assert.equal(withHeader.statusCode, 200);

  const dead = await server.inject({ url: "/public", headers: { cookie: "sputnik_session=" + "a".repeat(43) } });
  assert.deepEqual(dead.json().actor, { kind: "anonymous" });
  const cleared = dead.cookies.find((c) => c.name === "sputnik_session");
  assert.ok(cleared && cleared.value === "", "the dead session cookie is cleared");
  assert.equal(dead.cookies.filter((c) => c.name === "sputnik_csrf").length, 1, "one fresh CSRF cookie, not two");
});

forEachDatabase("auth middleware: local mode on /v1 with the local key, from this machine only, until an account exists", async (store, t) => {
  const { server, dataDir } = await app(t, store);
  const localKey = await readLocalKey(dataDir);
  assert.ok(localKey, "the first run wrote the local key");
  const v1 = (headers: Record<string, string> = {}, remoteAddress = "127.0.0.1") =>
    server.inject({ url: "/v1/thing", remoteAddress, headers: { host: "localhost:8080", authorization: `Bearer ${localKey}`, ...headers } });
  assert.deepEqual((await v1()).json(), { actor: { kind: "local" } });
  assert.equal((await v1({ authorization: "Bearer sk-unused" })).statusCode, 401, "another key");
  assert.equal((await server.inject({ url: "/v1/thing", headers: { host: "localhost" } })).statusCode, 401, "no key");
  for (const proxy of <Array<Record<string, string>>>[{ "x-forwarded-for": "203.0.113.9" }, { "x-forwarded-host": "example.com" }, { forwarded: "for=1.2.3.4" }, { "x-real-ip": "1.2.3.4" }, { via: "1.1 proxy" }]) {
    assert.equal((await v1(proxy)).statusCode, 401, JSON.stringify(proxy));
  }
  assert.equal((await v1({ host: "evil.example" })).statusCode, 401, "a rebound DNS name");
  assert.equal((await v1({ origin: "https://evil.example" })).statusCode, 401);
  assert.equal((await v1({}, "10.0.0.5")).statusCode, 401, "another machine");
  assert.equal((await server.inject({ url: "/api/thing", headers: { host: "localhost", authorization: `Bearer ${localKey}` } })).statusCode, 401, "never the app API");
  await user(store);
  assert.equal((await v1()).statusCode, 401, "the first account ends local mode");
});

forEachDatabase("auth middleware: local mode can be configured off", async (store, t) => {
  const { server, dataDir } = await app(t, store, { localMode: false });
  assert.equal(await readLocalKey(dataDir), null, "no local key is made");
  assert.equal((await server.inject({ url: "/v1/thing", headers: { host: "localhost" } })).statusCode, 401);
});

test("localRequestInfo: what local mode judges, from the socket and the headers", async (t) => {
  const server = Fastify();
  server.get("/", async (request) => localRequestInfo(request));
  await server.ready();
  t.after(() => server.close());
  const plain = await server.inject({ url: "/", remoteAddress: "127.0.0.1", headers: { host: "localhost:8080", authorization: "Bearer sk-abc" } });
  // (JSON drops the undefined origin.)
  assert.deepEqual(plain.json(), { remoteAddress: "127.0.0.1", host: "localhost:8080", forwarded: false, bearerToken: "sk-abc" });
  const proxied = await server.inject({ url: "/", headers: { "x-forwarded-proto": "https", origin: "http://localhost" } });
  assert.equal(proxied.json().forwarded, true);
  assert.equal(proxied.json().origin, "http://localhost");
  assert.equal(proxied.json().bearerToken, null);
});
