/**
 * The "done when" for accounts, over HTTP against a real server on SQLite and PostgreSQL:
 * other people's objects are 404, mass assignment grants nothing, paths can't dodge auth, bad
 * bearer tokens get a fast 401, secrets never reach logs or later responses, CSRF and CORS hold,
 * cookies carry the right flags, and logins are throttled with the same answer for unknown users.
 */
import assert from "node:assert/strict";
import { listRedemptions } from "../src/auth/accessCodes.ts";
import { serviceSecret } from "../src/auth/secrets.ts";
import { forEachDatabase } from "./support/databases.ts";
import { rawRequest, type AppResponse } from "./support/appClient.ts";
import { startAccountsServer, TEST_PASSWORD } from "./support/accountsServer.ts";

forEachDatabase("a second user gets 404 for every object of the first, by id in the path, query or body", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const first = await server.signUp("first"); // admin: owns codes too
  const second = await server.signUp("second");
  const firstId = (await first.get("/api/auth/me")).body.user.id;
  const key = (await first.post("/api/keys", { name: "first's key" })).body;
  const code = (await first.post("/api/admin/access-codes", {})).body;
  const session = (await first.get("/api/auth/sessions")).body.data[0];
  const missing = "01900000-0000-7000-8000-000000000000";

  const notFound = (response: AppResponse, what: string) => {
    assert.equal(response.status, 404, `${what}: ${response.status} ${response.text}`);
    assert.ok(!response.text.includes(firstId) && !response.text.includes("first"), `${what} leaks nothing`);
  };
  // By id in the path: keys, sessions, codes, the user, and every admin action on them.
  notFound(await second.get(`/api/keys/${key.id}`), "read key");
  notFound(await second.patch(`/api/keys/${key.id}`, { name: "mine now" }), "rename key");
  notFound(await second.delete(`/api/keys/${key.id}`), "revoke key");
  notFound(await second.delete(`/api/auth/sessions/${session.id}`), "end session");
  notFound(await second.get(`/api/admin/access-codes/${code.id}`), "read code");
  notFound(await second.delete(`/api/admin/access-codes/${code.id}`), "revoke code");
  notFound(await second.get(`/api/admin/users/${firstId}`), "read user");
  for (const verb of ["approve", "disable", "enable"]) notFound(await second.post(`/api/admin/users/${firstId}/${verb}`), `${verb} user`);
  notFound(await second.patch(`/api/admin/users/${firstId}`, { role: "user" }), "demote user");
  // Their objects answer exactly like objects that don't exist.
  const foreign = await second.get(`/api/keys/${key.id}`);
  const absent = await second.get(`/api/keys/${missing}`);
  assert.deepEqual(foreign.body, absent.body);
  // Lists of admin objects are refused as a whole (403), not filtered.
  assert.equal((await second.get("/api/admin/access-codes")).status, 403);
  assert.equal((await second.get("/api/admin/users")).status, 403);

  // By id in the query: an owner filter is not a parameter anyone can set.
  const listed = await second.get(`/api/keys?user_id=${firstId}&id=${key.id}`);
  assert.deepEqual(listed.body.data, []);
  // By id in the body: ownership comes from the session, never from the request.
  const made = await second.post("/api/keys", { name: "planted", user_id: firstId, id: key.id });
  assert.equal(made.status, 201);
  assert.notEqual(made.body.id, key.id);
  assert.deepEqual((await first.get("/api/keys")).body.data.map((k: { id: string }) => k.id), [key.id]);
  const row = await store.db.selectFrom("api_keys").select("user_id").where("id", "=", made.body.id).executeTakeFirstOrThrow();
  assert.notEqual(row.user_id, firstId);
  // The first user's key is untouched by all of it.
  assert.equal((await first.get(`/api/keys/${key.id}`)).body.name, "first's key");
  assert.equal((await server.client().get("/v1/models", { headers: { authorization: `Bearer ${key.key}` } })).status, 200);
});

forEachDatabase("sign-up with extra fields grants nothing; a code grants exactly its plan and credit, once per use", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const admin = await server.signUp("root");
  const extras = { role: "admin", is_admin: true, tier: "enterprise", plan_id: "enterprise", credit: 10 ** 9, credit_micros: 10 ** 12, status: "active", id: "01900000-0000-7000-8000-000000000001" };
  const mallory = await server.signUp("mallory", extras);
  const me = (await mallory.get("/api/auth/me")).body.user;
  assert.deepEqual([me.role, me.plan_id, me.status], ["user", "free", "active"]);
  assert.notEqual(me.id, extras.id);
  assert.equal((await mallory.get("/api/admin/users")).status, 403);
  assert.deepEqual(await listRedemptions(store.db, { userId: me.id }), []);

  const code = (await admin.post("/api/admin/access-codes", { max_uses: 1, credit_micros: 1_000_000 })).body;
  const oscar = await server.signUp("oscar", { access_code: code.code, credit_micros: 10 ** 12, role: "admin" });
  const oscarId = (await oscar.get("/api/auth/me")).body.user.id;
  assert.equal((await oscar.get("/api/auth/me")).body.user.role, "user");
  const grants = await listRedemptions(store.db, { userId: oscarId });
  assert.deepEqual(grants.map((g) => [g.access_code_id, g.credit_micros, g.plan_id]), [[code.id, 1_000_000, null]]);
  const again = await server.client().post("/api/auth/signup", { username: "oscar2", password: TEST_PASSWORD, access_code: code.code });
  assert.equal(again.body.error.code, "invalid_access_code");
});

forEachDatabase("auth cannot be bypassed by path tricks", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const admin = await server.signUp("root"); // an account exists: local mode is over
  const user = await server.signUp("plain");
  const anonymousPaths = [
    "/v1/models",
    "/v1/models/",
    "/V1/models",
    "/v1//models",
    "//v1/models",
    "/v1%2fmodels",
    "/v1%2Fmodels",
    "/v1/models.",
    "/v1/models/.",
    "/v1/./models",
    "/./v1/models",
    "/health/../v1/models",
    "/v1/models?/health",
    "/v1/models%3F/health",
    "/v1/models#/health",
    "/v1/models;/health",
    "/%76%31/models",
    "/v1/models%00",
    "/api/admin/users",
    "/API/admin/users",
    "/api//admin/users",
    "/api/admin%2fusers",
    "/api/admin/users.",
    "/api/admin/users?/api/auth/state",
    "/api/keys/",
  ];
  for (const path of anonymousPaths) {
    const response = await rawRequest(server.url, "GET", path);
    // Refused, unknown, or (for spellings that match no API route) the web app's public HTML page.
    const apiAnswer = String(response.headers["content-type"]).includes("json");
    assert.ok([400, 401, 404].includes(response.status) || (response.status === 200 && !apiAnswer), `${path} answered ${response.status}`);
    assert.ok(!/"object":"list"|"username"|"prefix"/.test(response.text), `${path} leaked ${response.text.slice(0, 200)}`);
  }
  // POST variants on the completions route, without credentials.
  for (const path of ["/v1/chat/completions", "/V1/chat/completions", "/v1/chat//completions", "/v1/chat%2fcompletions", "/v1/chat/completions?x=/health"]) {
    const response = await rawRequest(server.url, "POST", path, { "content-type": "application/json" }, JSON.stringify({ model: "x", messages: [] }));
    assert.ok([401, 404].includes(response.status), `${path} answered ${response.status}`);
  }
  // A signed-in non-admin gets no admin route by any spelling.
  const cookie = [...user.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  for (const path of ["/api/admin/users", "/api/admin/users/", "/api/admin/users?role=admin", "/api//admin/users", "/API/admin/users", "/api/admin/audit"]) {
    const response = await rawRequest(server.url, "GET", path, { cookie });
    const apiAnswer = String(response.headers["content-type"]).includes("json");
    assert.ok([403, 404].includes(response.status) || (response.status === 200 && !apiAnswer), `${path} answered ${response.status}`);
    assert.ok(!/"username"/.test(response.text), `${path} leaked ${response.text.slice(0, 200)}`);
  }
  // While the right credentials on the canonical paths do work (the checks above could fail).
  assert.equal((await admin.get("/api/admin/users")).status, 200);
  assert.equal((await rawRequest(server.url, "GET", "/health")).status, 503, "/health is public (and says no engines)");
});

forEachDatabase("a malformed or injection-shaped bearer token gets a fast 401 that echoes nothing", async (store, t) => {
  const server = await startAccountsServer(t, store);
  await server.signUp("root");
  const tokens = [
    "x' OR 1=1 --",
    "sk-' OR '1'='1",
    "sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
    `sk-${"A".repeat(48)}`,
    `sk-${"A".repeat(5000)}`,
    "sk-😀😀😀",
    "'; DROP TABLE users; --",
    "",
  ];
  const headers = [...tokens.map((tk) => `Bearer ${tk}`), "Basic dXNlcjpwYXNz", "Bearer", "bearer  x y", "Token abc"];
  for (const authorization of headers) {
    const response = await rawRequest(server.url, "GET", "/v1/models", { authorization: Buffer.from(authorization).toString("latin1") });
    assert.equal(response.status, 401, authorization);
    assert.equal(response.body.error.code, "invalid_api_key", authorization);
    assert.ok(response.ms < 2000, `${authorization} took ${response.ms} ms`);
    for (const token of tokens.filter((tk) => tk.length > 3)) assert.ok(!response.text.includes(token), "the token is not echoed");
  }
  assert.equal(await store.db.selectFrom("users").select("id").execute().then((r) => r.length), 1, "the users table is intact");
  // API keys are for /v1: the app API refuses them outright.
  const app = await rawRequest(server.url, "GET", "/api/keys", { authorization: `Bearer sk-${"A".repeat(48)}` });
  assert.deepEqual([app.status, app.body.error.code], [401, "api_key_not_accepted"]);
});

forEachDatabase("no secret (password, key, code, session id) appears in logs or in any response after creation", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const password = "Pa55word-that-must-not-leak";
  const admin = server.client();
  assert.equal((await admin.post("/api/auth/signup", { username: "root", password })).status, 201);
  const sessionToken = admin.cookies.get("sputnik_session")!;
  const key = (await admin.post("/api/keys", { name: "k" })).body.key as string;
  const code = (await admin.post("/api/admin/access-codes", { max_uses: 2 })).body.code as string;
  // Use them all, including failures that might be logged.
  await server.client().get("/v1/models", { headers: { authorization: `Bearer ${key}` } });
  await server.client().post("/api/auth/login", { login: "root", password });
  await server.client().post("/api/auth/login", { login: "root", password: `${password}x` });
  await server.client().post("/api/auth/login", { login: password, password });
  const invitee = server.client();
  await invitee.post("/api/auth/signup", { username: "guest", password: "guest-password-1", access_code: code });
  await server.client().post("/api/auth/signup", { username: "guest2", password: "guest-password-2", access_code: `${code.slice(0, 5)}XXXX-XXXX-XXXX` });

  const later: AppResponse[] = [];
  for (const path of ["/api/auth/me", "/api/auth/state", "/api/auth/sessions", "/api/keys", "/api/admin/access-codes", "/api/admin/users", "/api/admin/audit", "/api/admin/signup-mode"]) {
    later.push(await admin.get(path));
  }
  const keyId = (await admin.get("/api/keys")).body.data[0].id;
  later.push(await admin.get(`/api/keys/${keyId}`));
  const secrets = {
    password,
    "guest password": "guest-password-1",
    key,
    "key body": key.slice(11),
    code,
    "code, compact": code.replaceAll("-", ""),
    "session token": sessionToken,
    "service secret": await serviceSecret(store.db),
  };
  const logs = server.logText();
  assert.ok(server.logLines.length > 20, "the log was captured");
  for (const [name, secret] of Object.entries(secrets)) {
    assert.ok(!logs.includes(secret), `the ${name} is in the log`);
    for (const response of later) assert.ok(!response.text.includes(secret), `the ${name} is in a later response`);
  }
  for (const response of later) assert.doesNotMatch(response.text, /hash/i, "no stored hash is ever returned");
});

forEachDatabase("CSRF: cookie-authenticated changes need the token header and a same-site origin", async (store, t) => {
  const server = await startAccountsServer(t, store, { corsOrigins: ["https://app.example"] });
  const alice = await server.signUp("alice");
  const noHeader = await alice.post("/api/keys", { name: "k" }, { csrf: false });
  assert.deepEqual([noHeader.status, noHeader.body.error.code], [403, "csrf_token_invalid"]);
  const wrong = await alice.post("/api/keys", { name: "k" }, { headers: { "x-sputnik-csrf": "a".repeat(64) } });
  assert.equal(wrong.status, 403);
  const foreign = await alice.post("/api/keys", { name: "k" }, { headers: { origin: "https://evil.example" } });
  assert.deepEqual([foreign.status, foreign.body.error.code], [403, "csrf_origin_mismatch"]);
  assert.equal((await alice.delete("/api/auth/sessions/01900000-0000-7000-8000-000000000000", { csrf: false })).status, 403);
  assert.equal((await alice.post("/api/auth/logout", {}, { csrf: false })).status, 403, "no forced logout either");
  assert.equal((await alice.get("/api/keys")).body.data.length, 0, "nothing was created");
  // The right token from our own origin, or an allow-listed one, passes.
  assert.equal((await alice.post("/api/keys", { name: "k" }, { headers: { origin: server.url } })).status, 201);
  assert.equal((await alice.post("/api/keys", { name: "k2" }, { headers: { origin: "https://app.example" } })).status, 201);
  // Signing in needs the (pre-session) token too: no login CSRF.
  const fresh = server.client();
  const login = await fresh.post("/api/auth/login", { login: "alice", password: TEST_PASSWORD }, { csrf: false });
  assert.equal(login.status, 403);
  // Bearer keys on /v1 need no CSRF token (browsers never send them on their own).
  const key = (await alice.get("/api/keys")).body.data.length;
  assert.equal(key, 2);
});

forEachDatabase("CORS answers only allow-listed origins, never '*', with credentials", async (store, t) => {
  const server = await startAccountsServer(t, store, { corsOrigins: ["https://app.example"] });
  const preflight = (origin: string) =>
    rawRequest(server.url, "OPTIONS", "/api/keys", { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-sputnik-csrf" });
  const allowed = await preflight("https://app.example");
  assert.equal(allowed.headers["access-control-allow-origin"], "https://app.example");
  assert.equal(allowed.headers["access-control-allow-credentials"], "true");
  assert.match(String(allowed.headers["access-control-allow-headers"]), /x-sputnik-csrf/);
  for (const origin of ["https://evil.example", "https://app.example.evil.example", "null", "http://app.example"]) {
    const refused = await preflight(origin);
    assert.equal(refused.headers["access-control-allow-origin"], undefined, origin);
  }
  const simple = await rawRequest(server.url, "GET", "/api/auth/state", { origin: "https://evil.example" });
  assert.equal(simple.headers["access-control-allow-origin"], undefined);
  assert.ok(!JSON.stringify(allowed.headers).includes('"*"'));
});

forEachDatabase("cookies: httpOnly session, SameSite=Lax, Secure behind https; the secret is generated per install", async (store, t) => {
  const plain = await startAccountsServer(t, store);
  const alice = plain.client();
  const signup = await alice.post("/api/auth/signup", { username: "alice", password: TEST_PASSWORD });
  const session = signup.setCookies.find((c) => c.startsWith("sputnik_session="))!;
  const csrf = signup.setCookies.find((c) => c.startsWith("sputnik_csrf="))!;
  assert.match(session, /HttpOnly/i);
  assert.match(session, /SameSite=Lax/i);
  assert.doesNotMatch(session, /Secure/i);
  assert.doesNotMatch(csrf, /HttpOnly/i, "the page must read the CSRF cookie");

  const proxied = await startAccountsServer(t, store, { trustProxy: true });
  const viaTls = await rawRequest(proxied.url, "POST", "/api/auth/login", { "content-type": "application/json", "x-forwarded-proto": "https", cookie: `sputnik_csrf=${"c".repeat(43)}`, "x-sputnik-csrf": "c".repeat(43) }, JSON.stringify({ login: "alice", password: TEST_PASSWORD }));
  assert.equal(viaTls.status, 200, viaTls.text);
  assert.ok(viaTls.setCookies.every((c) => /;\s*Secure/i.test(c)), viaTls.setCookies.join(" | "));
  // Without trustProxy the same header is not believed.
  const spoofed = await rawRequest(plain.url, "GET", "/api/auth/state", { "x-forwarded-proto": "https" });
  assert.ok(spoofed.setCookies.every((c) => !/;\s*Secure/i.test(c)));
  const public_ = await startAccountsServer(t, store, { publicUrl: "https://chat.example" });
  const state = await rawRequest(public_.url, "GET", "/api/auth/state");
  assert.ok(state.setCookies.length > 0 && state.setCookies.every((c) => /;\s*Secure/i.test(c)));

  // The secret: made on first run, kept, and different for every install.
  const secret = await serviceSecret(store.db);
  assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(await serviceSecret((await store.openAnother()).db), secret);
});

forEachDatabase("login throttling: growing delays per (account, address) and per address; unknown users get the same answers", async (store, t) => {
  const server = await startAccountsServer(t, store);
  await server.signUp("victim");
  const attempt = (login: string, password: string, from = "127.0.0.1") =>
    server.client({ from }).post("/api/auth/login", { login, password });
  const shape = (r: AppResponse) => [r.status, r.body?.error?.code, r.body?.error?.message, r.headers["retry-after"] ?? null];

  const known: unknown[] = [];
  const unknown: unknown[] = [];
  for (let i = 0; i < 7; i++) {
    known.push(shape(await attempt("victim", `wrong-${i}-password`)));
    unknown.push(shape(await attempt("nobody-here", `wrong-${i}-password`)));
  }
  assert.deepEqual(known, unknown, "the same answers, in the same order, for a real and a made-up account");
  assert.deepEqual(known.slice(0, 6).map((s) => (s as unknown[])[0]), [401, 401, 401, 401, 401, 401]);
  assert.deepEqual(known[6], [429, "too_many_login_attempts", "Too many failed sign-in attempts. Try again in 1 second.", "1"]);
  // Blocked means blocked: even the right password is refused from that address, so guesses learn nothing.
  assert.equal((await attempt("victim", TEST_PASSWORD)).status, 429);
  // The block is per account: another account from another address is unaffected...
  await server.signUp("bystander");
  assert.equal((await attempt("bystander", TEST_PASSWORD, "127.0.0.3")).status, 200);
  // ...and per address: many accounts from one address hit the address's own limit.
  const sprayer = "127.0.0.9";
  const statuses: number[] = [];
  for (let i = 0; i < 22; i++) statuses.push((await attempt(`spray${i}`, "Password1!", sprayer)).status);
  assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
  assert.equal(statuses[21], 429);
  assert.equal((await attempt("bystander", TEST_PASSWORD, sprayer)).status, 429, "the address is blocked whatever the account");
  // And after the block runs out, the next failure blocks for longer (growing delays).
  await new Promise((r) => setTimeout(r, 1100));
  const next = await attempt("victim", "wrong-again");
  assert.equal(next.status, 401);
  const blocked = await attempt("victim", "wrong-again");
  assert.deepEqual([blocked.status, blocked.headers["retry-after"]], [429, "2"]);
});

forEachDatabase("strangers hammering an account from other addresses cannot lock out the owner's remembered device", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const owner = await server.signUp("owner");
  await owner.post("/api/auth/logout");
  const login = await owner.post("/api/auth/login", { login: "owner", password: TEST_PASSWORD });
  assert.equal(login.status, 200);
  // The remembered-device cookie: httpOnly, strict, sent back to the sign-in route only.
  const device = login.setCookies.find((c) => c.startsWith("sputnik_device="))!;
  assert.match(device, /HttpOnly/i);
  assert.match(device, /SameSite=Strict/i);
  assert.match(device, /Path=\/api\/auth\/login/i);
  assert.ok(!owner.cookies.get("sputnik_device")!.includes(TEST_PASSWORD));

  // Ten addresses, each staying under its own limits, guess forty times between them.
  for (let a = 0; a < 10; a++) {
    for (let i = 0; i < 4; i++) {
      const guess = await server.client({ from: `127.0.1.${a + 1}` }).post("/api/auth/login", { login: "owner", password: `guess-${a}-${i}` });
      assert.ok([401, 429].includes(guess.status), guess.text);
    }
  }
  // A new device from a clean address is slowed (a minute at most), not locked out for long…
  const fresh = await server.client({ from: "127.0.2.1" }).post("/api/auth/login", { login: "owner", password: TEST_PASSWORD });
  assert.deepEqual([fresh.status, fresh.body.error.code], [429, "too_many_login_attempts"]);
  assert.ok(Number(fresh.headers["retry-after"]) <= 60, `Retry-After ${fresh.headers["retry-after"]}`);
  // …and the owner's own browser, which the account remembers, signs in right away.
  const again = await owner.post("/api/auth/login", { login: "owner", password: TEST_PASSWORD });
  assert.equal(again.status, 200, again.text);
  assert.equal((await owner.get("/api/auth/me")).body.user.username, "owner");
});

forEachDatabase("unknown users cost the same password work as real ones (no timing oracle)", async (store, t) => {
  // A deliberately expensive hash makes the difference, if any, far larger than the noise.
  const server = await startAccountsServer(t, store, { auth: { passwordHashing: { memoryKiB: 32 * 1024, iterations: 3, parallelism: 1 } } });
  // Several real accounts, so that no one of them reaches the per-account failure block (which
  // answers 429 without hashing and would make the known side look fast).
  for (const name of ["timed0", "timed1", "timed2"]) await server.signUp(name);
  const time = async (login: string, i: number) => (await server.client({ from: `127.0.${i}.1` }).post("/api/auth/login", { login, password: "not-the-password" })).ms;
  const known: number[] = [];
  const unknown: number[] = [];
  // One discarded round warms both paths (first connection, first dummy hash), then the two kinds
  // of login alternate so that a burst of load from parallel tests hits both alike.
  await time("timed0", 200);
  await time("ghost-warm", 201);
  for (let i = 0; i < 9; i++) {
    known.push(await time(`timed${i % 3}`, i));
    unknown.push(await time(`ghost${i}`, i + 10));
  }
  // The fastest of each kind is the work itself; slower samples only add other tests' load.
  const fastest = (xs: number[]) => Math.min(...xs);
  const ratio = fastest(unknown) / fastest(known);
  t.diagnostic(`unknown/known login time ratio ${ratio.toFixed(2)} (fastest ${fastest(unknown).toFixed(1)} vs ${fastest(known).toFixed(1)} ms)`);
  // Without the dummy hash an unknown user answers in a few ms against 50+ ms (ratio < 0.1);
  // with it both do one argon2id verify. The bounds leave room for a busy CI machine's noise.
  assert.ok(ratio > 0.3 && ratio < 3, `unknown/known login time ratio ${ratio.toFixed(2)} (${fastest(unknown)} vs ${fastest(known)} ms)`);
});
