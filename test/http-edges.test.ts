/**
 * Edges of the HTTP layer against a real server: the CSRF cookie a browser keeps is the token it
 * was told, and every API path, however it is spelled, answers in the API's error shape.
 */
import assert from "node:assert/strict";
import { forEachDatabase } from "./support/databases.ts";
import { rawRequest, type AppResponse } from "./support/appClient.ts";
import { startAccountsServer, TEST_PASSWORD } from "./support/accountsServer.ts";

function csrfCookies(response: AppResponse): string[] {
  return response.setCookies.filter((c) => c.startsWith("sputnik_csrf=")).map((c) => c.slice("sputnik_csrf=".length).split(";")[0]!);
}

forEachDatabase("/api/auth/state sets exactly one CSRF cookie, equal to the body's token; a scripted sign-in with it succeeds", async (store, t) => {
  const server = await startAccountsServer(t, store);
  await server.signUp("alice");

  const state = await rawRequest(server.url, "GET", "/api/auth/state");
  assert.equal(state.status, 200);
  const set = csrfCookies(state);
  assert.equal(set.length, 1, `one Set-Cookie for sputnik_csrf, got ${JSON.stringify(state.setCookies)}`);
  assert.equal(set[0], state.body.csrf_token);

  // A script that keeps the cookie and echoes the body's token, as the web app does.
  const token = state.body.csrf_token as string;
  const login = await rawRequest(
    server.url,
    "POST",
    "/api/auth/login",
    { "content-type": "application/json", cookie: `sputnik_csrf=${set[0]}`, "x-sputnik-csrf": token },
    JSON.stringify({ login: "alice", password: TEST_PASSWORD }),
  );
  assert.equal(login.status, 200, login.text);
  const session = login.setCookies.find((c) => c.startsWith("sputnik_session="))!.split(";")[0]!;
  const signedIn = csrfCookies(login);
  assert.deepEqual(signedIn, [login.body.csrf_token], "sign-in sets one CSRF cookie: the session's token");

  // Signed in, with a stale CSRF cookie: state repairs it once, and says the same value.
  const repaired = await rawRequest(server.url, "GET", "/api/auth/state", { cookie: `${session}; sputnik_csrf=${"s".repeat(43)}` });
  assert.deepEqual(csrfCookies(repaired), [repaired.body.csrf_token]);
  assert.equal(repaired.body.csrf_token, login.body.csrf_token);
  const keys = await rawRequest(server.url, "POST", "/api/keys", {
    "content-type": "application/json",
    cookie: `${session}; sputnik_csrf=${repaired.body.csrf_token}`,
    "x-sputnik-csrf": repaired.body.csrf_token,
  }, JSON.stringify({ name: "scripted" }));
  assert.equal(keys.status, 201, keys.text);

  // A dead session cookie: cleared, and the fresh anonymous token is the one the body gives.
  const dead = await rawRequest(server.url, "GET", "/api/auth/state", { cookie: `sputnik_session=${"d".repeat(43)}` });
  assert.equal(dead.body.user, null);
  assert.deepEqual(csrfCookies(dead), [dead.body.csrf_token]);
});

forEachDatabase("malformed and differently-spelled API paths answer in the API's JSON error shape", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const bad = await rawRequest(server.url, "GET", "/v1/models/%c0");
  assert.equal(bad.status, 400);
  assert.match(String(bad.headers["content-type"]), /^application\/json/);
  assert.deepEqual(Object.keys(bad.body), ["error"]);
  assert.deepEqual([bad.body.error.type, bad.body.error.code], ["invalid_request_error", "invalid_url"]);

  for (const path of ["/V1/models", "/API/admin/users", "/Api/Auth/State", "/v1/no-such-thing", "/api/no/such/thing", "/v1", "/api"]) {
    for (const method of ["GET", "POST"]) {
      const response = await rawRequest(server.url, method, path, method === "POST" ? { "content-type": "application/json" } : {}, method === "POST" ? "{}" : undefined);
      assert.equal(response.status, 404, `${method} ${path}: ${response.text.slice(0, 80)}`);
      assert.match(String(response.headers["content-type"]), /^application\/json/, `${method} ${path}`);
      assert.equal(response.body.error.code, "route_not_found", `${method} ${path}`);
    }
  }
});
