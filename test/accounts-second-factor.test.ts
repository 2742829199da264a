/**
 * Second factor, password lifecycle and sign-up probing over HTTP, against a real server on SQLite
 * and PostgreSQL: what the cookies and bodies carry (the pending sign-in never reaches the page),
 * the admin requirement as the admin API answers it, reset links, and that sign-up says nothing
 * about a name to a caller who has not passed its gate. (The browser flows: test/e2e/security.test.ts.)
 */
import assert from "node:assert/strict";
import { generate } from "otplib";
import { changeAttackMode } from "../src/commands/signupSettings.ts";
import { forEachDatabase } from "./support/databases.ts";
import { startAccountsServer, TEST_PASSWORD } from "./support/accountsServer.ts";
import type { AppClient, AppResponse } from "./support/appClient.ts";

const cookieLine = (response: AppResponse, name: string) => response.setCookies.find((c) => c.startsWith(`${name}=`));

async function enrol(client: AppClient): Promise<{ secret: string; codes: string[] }> {
  const setup = await client.post("/api/security/totp/setup", { current_password: TEST_PASSWORD });
  assert.equal(setup.status, 200, setup.text);
  assert.match(setup.body.qr_data_url, /^data:image\/svg\+xml;base64,/);
  assert.match(Buffer.from(setup.body.qr_data_url.split(",")[1], "base64").toString("utf8"), /<svg/);
  const confirm = await client.post("/api/security/totp/confirm", { code: await generate({ secret: setup.body.secret }) });
  assert.equal(confirm.status, 200, confirm.text);
  return { secret: setup.body.secret, codes: confirm.body.recovery_codes };
}

forEachDatabase("two-step sign-in over HTTP: an httpOnly pending cookie, no session before the code; admins without a second factor are told to enrol", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const root = await server.signUp("root");
  const deputy = await server.signUp("deputy");
  const deputyId = (await deputy.get("/api/auth/me")).body.user.id;
  assert.equal((await root.patch(`/api/admin/users/${deputyId}`, { role: "admin" })).status, 200);

  // Requiring it needs one's own first.
  const early = await root.put("/api/admin/second-factor", { required_for_admins: true });
  assert.deepEqual([early.status, early.body.error.code], [409, "second_factor_required"]);
  const { secret, codes } = await enrol(root);
  assert.equal(codes.length, 10);
  assert.deepEqual((await root.put("/api/admin/second-factor", { required_for_admins: true })).body, { required_for_admins: true });

  // The deputy admin, without one: the admin API says what to do; their own settings still work.
  const refused = await deputy.get("/api/admin/users");
  assert.deepEqual([refused.status, refused.body.error.code], [403, "second_factor_required"]);
  const security = (await deputy.get("/api/security")).body;
  assert.deepEqual([security.required_for_admins, security.enrol_before_admin, security.second_factor.enabled], [true, true, false]);
  await enrol(deputy);
  assert.equal((await deputy.get("/api/admin/users")).status, 200, "the same session, admin again");

  // Sign-in: the password answers with a challenge and an httpOnly, SameSite=Strict cookie scoped to the sign-in routes.
  const browser = server.client();
  const step1 = await browser.post("/api/auth/login", { login: "root", password: TEST_PASSWORD });
  assert.equal(step1.status, 200, step1.text);
  assert.equal(step1.body.second_factor_required, true);
  assert.equal(step1.body.user, undefined);
  const pending = cookieLine(step1, "sputnik_login");
  assert.ok(pending, "pending cookie set");
  assert.match(pending, /HttpOnly/i);
  assert.match(pending, /SameSite=Strict/i);
  assert.match(pending, /Path=\/api\/auth\/login/i);
  assert.equal(cookieLine(step1, "sputnik_session"), undefined, "no session yet");
  assert.ok(!step1.text.includes(browser.cookies.get("sputnik_login")!), "the token is not in the body");
  assert.equal((await browser.get("/api/auth/me")).status, 401);

  const bad = await browser.post("/api/auth/login/second-factor", { code: "12345x" });
  assert.deepEqual([bad.status, bad.body.error.code], [401, "invalid_second_factor"]);
  const neither = await browser.post("/api/auth/login/second-factor", {});
  assert.equal(neither.status, 400);
  // The enrolment's code claimed this 30-second step: the next step's code (one step of tolerance) signs in.
  const done = await browser.post("/api/auth/login/second-factor", { code: await nextStepCode(secret) });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.body.user.username, "root");
  assert.ok(cookieLine(done, "sputnik_session"));
  assert.match(cookieLine(done, "sputnik_login") ?? "", /Expires=Thu, 01 Jan 1970|Max-Age=0/i, "pending cookie cleared");
  assert.equal((await browser.get("/api/auth/me")).status, 200);
  assert.ok(!server.logText().includes(secret), "the secret never reaches the log");
  for (const code of codes) assert.ok(!server.logText().includes(code));
});

const nextStepCode = (secret: string) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + 30 });

forEachDatabase("reset links over HTTP: admins only, not for oneself, the link's path carries the token in its fragment, used once", async (store, t) => {
  const server = await startAccountsServer(t, store, { publicUrl: "https://chat.example.com" });
  const root = await server.signUp("root");
  const erin = await server.signUp("erin");
  const rootId = (await root.get("/api/auth/me")).body.user.id;
  const erinId = (await erin.get("/api/auth/me")).body.user.id;

  assert.equal((await erin.post(`/api/admin/users/${rootId}/password-reset`)).status, 404, "not for non-admins");
  assert.equal((await root.post(`/api/admin/users/${rootId}/password-reset`)).body.error.code, "cannot_reset_own_password");
  const issued = await root.post(`/api/admin/users/${erinId}/password-reset`);
  assert.equal(issued.status, 201, issued.text);
  const token = issued.body.path.split("#")[1];
  assert.match(issued.body.path, /^\/reset-password#[A-Za-z0-9_-]{43}$/);
  assert.equal(issued.body.url, `https://chat.example.com${issued.body.path}`);

  const stranger = server.client();
  const weak = await stranger.post("/api/auth/password-reset", { token, new_password: "short" });
  assert.equal(weak.status, 400, "the new password is checked like any other");
  assert.equal((await stranger.post("/api/auth/password-reset", { token, new_password: "erin-new-password" })).status, 204);
  assert.equal((await erin.get("/api/auth/me")).status, 401, "erin's old session ended");
  const twice = await stranger.post("/api/auth/password-reset", { token, new_password: "another-password" });
  assert.deepEqual([twice.status, twice.body.error.code], [400, "invalid_reset_token"]);
  const login = await server.client().post("/api/auth/login", { login: "erin", password: "erin-new-password" });
  assert.equal(login.status, 200);
  assert.ok(!server.logText().includes(token), "the token never reaches the log");
});

forEachDatabase("sign-up tells a caller who has not passed its gate nothing about a name: identical answers for taken and free names", async (store, t) => {
  const server = await startAccountsServer(t, store);
  const first = await server.signUp("root", { email: "root@example.com" });
  assert.equal((await first.put("/api/admin/signup-mode", { mode: "code" })).status, 200);

  // …after that, without a valid code, a taken name (or e-mail) and a free one get byte-identical answers.
  let n = 0;
  const answer = async (body: Record<string, unknown>) => {
    n++;
    // A fresh client and a wrong code of its own prefix each time, so no throttle is in the way.
    const response = await server.client({ from: `127.0.1.${n}` }).post("/api/auth/signup", { password: TEST_PASSWORD, ...body });
    return [response.status, response.body];
  };
  const wrongCode = () => `W${String(n).padStart(3, "0")}-0000-0000-0000`;
  assert.deepEqual(await answer({ username: "root" }), await answer({ username: "free-name" }));
  assert.deepEqual(await answer({ username: "root", access_code: wrongCode() }), await answer({ username: "free-name", access_code: wrongCode() }));
  assert.deepEqual(await answer({ username: "other", email: "root@example.com", access_code: wrongCode() }), await answer({ username: "other", access_code: wrongCode() }));
  // Attack mode and closed: the same.
  await changeAttackMode(store.db, null, { enabled: true, signupMode: "closed" });
  assert.deepEqual(await answer({ username: "root" }), await answer({ username: "free-name" }));
  await changeAttackMode(store.db, null, { enabled: false });
  // The trade-off: where sign-up has no gate (open, approval), the form is the gate, and a taken
  // name must be told or nobody could pick another (see README, "Accounts and security").
  await first.put("/api/admin/signup-mode", { mode: "open" });
  const taken = await answer({ username: "root" });
  assert.deepEqual([taken[0], (taken[1] as { error: { code: string } }).error.code], [409, "username_taken"]);
});
