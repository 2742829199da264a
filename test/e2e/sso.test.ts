/**
 * Single sign-on with OpenID Connect, end to end: real OpenID providers (oidc-provider) in this
 * process, one Sputnik with password sign-in turned off, one Chromium. The browser clicks
 * "Sign in with …", signs in on the provider's own page and comes back signed in — or comes back
 * refused when the state, the nonce or the ID token's signature is not what Sputnik made or the
 * provider's keys vouch for, or when a validly signed ID token names another audience or issuer.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { findUserByLogin, type UserRow } from "../../src/auth/users.ts";
import { savePlan } from "../../src/billing/plans.ts";
import { createUser } from "../../src/commands/createUser.ts";
import { PasswordHasher } from "../../src/auth/passwords.ts";
import { TEST_PASSWORD_HASHING } from "../support/accountsServer.ts";
import { AppClient } from "../support/appClient.ts";
import { startIdp, type TestIdp } from "../support/oidcIdp.ts";
import { startTestService, type TestService } from "../support/service.ts";
import { setSignupModeForTests } from "../support/signupMode.ts";
import { CHROMIUM, screenshot } from "./browser.ts";

const SCOPES = ["openid", "email", "profile", "groups"];
const CORP_SECRET = "corp-client-secret-0123456789";
const PARTNER_SECRET = "partner-client-secret-0123456789";
const ROGUE_SECRET = "rogue-client-secret-0123456789";

const corpAccounts = {
  alice: { email: "alice@corp.example", email_verified: true, preferred_username: "alice", groups: ["staff"] },
  olga: { email: "olga@corp.example", email_verified: true, preferred_username: "olga", groups: ["staff", "sputnik-admins"] },
  mallory: { email: "mallory@corp.example", email_verified: true, preferred_username: "mallory", groups: [] },
  pat: { email: "pat@corp.example", email_verified: true, preferred_username: "pat", groups: [] },
};

describe("single sign-on (OpenID Connect) in the browser", () => {
  let corp: TestIdp;
  let partner: TestIdp;
  let rogue: TestIdp;
  let strayAudience: TestIdp;
  let strayIssuer: TestIdp;
  let service: TestService;
  let browser: Browser;
  let url: string;
  let root: UserRow;

  before(async () => {
    // Each provider on its own loopback address: their cookies and Sputnik's never share a host.
    [corp, partner, rogue, strayAudience, strayIssuer] = await Promise.all([
      startIdp("127.0.0.2"),
      startIdp("127.0.0.3"),
      startIdp("127.0.0.4", { forgeKeys: true }),
      // Signed with the provider's real key, but made out to another client, or by another issuer.
      startIdp("127.0.0.5", { rewriteIdToken: (claims) => ({ ...claims, aud: "another-client" }) }),
      startIdp("127.0.0.6", { rewriteIdToken: (claims) => ({ ...claims, iss: "http://127.0.0.7:1" }) }),
    ]);
    const provider = (id: string, name: string, idp: TestIdp, clientId: string, clientSecret: string, extra = {}) => ({
      id,
      name,
      issuer: idp.issuer,
      clientId,
      clientSecret,
      scopes: SCOPES,
      ...extra,
    });
    service = await startTestService({
      config: {
        // Every sign-in here comes from 127.0.0.1: the per-IP sign-in guard (20 a minute, tested in
        // test/auth-rate-limit.test.ts) is for attackers, and this file signs in more often than that.
        limits: { authPerIpPerMinute: 10_000 },
        auth: {
          passwordHashing: TEST_PASSWORD_HASHING,
          passwordSignIn: false,
          oidcProviders: [
            provider("corp", "Corp ID", corp, "sputnik", CORP_SECRET, { plan: "team", adminGroups: ["sputnik-admins"] }),
            provider("partner", "Partner ID", partner, "sputnik-at-partner", PARTNER_SECRET),
            provider("rogue", "Rogue ID", rogue, "sputnik", ROGUE_SECRET),
            provider("stray-aud", "Stray Audience ID", strayAudience, "sputnik", ROGUE_SECRET),
            provider("stray-iss", "Stray Issuer ID", strayIssuer, "sputnik", ROGUE_SECRET),
          ],
        },
      },
    });
    url = service.url;
    const callback = (id: string) => `${url}/api/auth/sso/${id}/callback`;
    corp.configure({ clientId: "sputnik", clientSecret: CORP_SECRET, redirectUri: callback("corp"), accounts: corpAccounts });
    // The partner's "alice" has the very same sub and a verified copy of alice's address.
    partner.configure({
      clientId: "sputnik-at-partner",
      clientSecret: PARTNER_SECRET,
      redirectUri: callback("partner"),
      accounts: { alice: { email: "alice@corp.example", email_verified: true, preferred_username: "alice", groups: ["sputnik-admins"] } },
    });
    rogue.configure({ clientId: "sputnik", clientSecret: ROGUE_SECRET, redirectUri: callback("rogue"), accounts: { eve: { preferred_username: "eve" } } });
    strayAudience.configure({ clientId: "sputnik", clientSecret: ROGUE_SECRET, redirectUri: callback("stray-aud"), accounts: { trent: { preferred_username: "trent" } } });
    strayIssuer.configure({ clientId: "sputnik", clientSecret: ROGUE_SECRET, redirectUri: callback("stray-iss"), accounts: { victor: { preferred_username: "victor" } } });
    // The first account, made as `sputnik admin create-user` makes it: password sign-in being off must not stop that.
    root = await createUser(
      { db: service.store.db, hasher: new PasswordHasher(TEST_PASSWORD_HASHING) },
      { username: "root", email: null, password: "root-password-1", role: "admin", by: null, ip: null },
    );
    await savePlan(service.store.db, { id: "team", name: "Team", billed: false, allowedModels: null, dailyTokenQuota: null, monthlyTokenQuota: null, maxThinkingBudget: null, concurrencyWeight: 1, features: [] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
  });

  after(async () => {
    await browser?.close();
    await service?.stop();
    await Promise.all([corp, partner, rogue, strayAudience, strayIssuer].map((idp) => idp?.close()));
  });

  /** A fresh browser profile (no Sputnik or provider cookies) on Sputnik's sign-in page. */
  async function signInPage(): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(`${url}/login`);
    return page;
  }

  /** Clicks "Sign in with <provider>" and signs in on the provider's own login page as `login`. */
  async function viaProvider(page: Page, providerName: string, login: string): Promise<void> {
    await page.getByRole("link", { name: `Sign in with ${providerName}` }).click();
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill("whatever-the-idp-checks");
    await page.locator('button[type="submit"]').click();
  }

  async function me(page: Page): Promise<{ status: number; user?: { id: string; username: string; role: string; plan_id: string; email: string | null } }> {
    return page.evaluate(async () => {
      const response = await fetch("/api/auth/me");
      const body = response.ok ? ((await response.json()) as { user: never }) : null;
      return { status: response.status, ...(body ? { user: body.user } : {}) };
    });
  }

  /**
   * Changes one parameter of the authorization request Sputnik sends the browser to the provider
   * with (its redirect's Location), as an attacker in the middle would. Playwright does not route
   * the hops of a redirect, so the redirect itself is fetched and answered with the changed URL;
   * its cookie (the sign-in in progress) reaches the browser's jar through the context's fetch.
   */
  async function tamperAuthorizationRequest(page: Page, providerId: string, param: string, value: string): Promise<void> {
    await page.route(`${url}/api/auth/sso/${providerId}/start`, async (route) => {
      const response = await route.fetch({ maxRedirects: 0 });
      assert.equal(response.status(), 302);
      const location = new URL(response.headers().location!);
      assert.ok(location.searchParams.has(param), `the authorization request carries ${param}`);
      location.searchParams.set(param, value);
      await route.fulfill({ status: 302, headers: { location: location.href } });
    });
  }

  /** Back on Sputnik's sign-in page, not signed in, with `message` shown. */
  async function refusedWith(page: Page, message: RegExp): Promise<void> {
    try {
      await page.getByRole("alert").filter({ hasText: message }).waitFor();
    } catch (error) {
      throw new Error(`no alert matching ${message} on ${page.url()}: ${(await page.locator("body").innerText()).slice(0, 500)}`, { cause: error });
    }
    assert.equal(page.url(), `${url}/login`, "the error code is dropped from the address bar once shown");
    assert.equal((await me(page)).status, 401);
  }

  test("the sign-in page offers the providers and no password form; the password routes refuse", async () => {
    const client = new AppClient(url);
    const state = await client.get("/api/auth/state");
    assert.deepEqual(state.body.sso_providers, [
      { id: "corp", name: "Corp ID" },
      { id: "partner", name: "Partner ID" },
      { id: "rogue", name: "Rogue ID" },
      { id: "stray-aud", name: "Stray Audience ID" },
      { id: "stray-iss", name: "Stray Issuer ID" },
    ]);
    assert.equal(state.body.password_sign_in, false);
    const login = await client.post("/api/auth/login", { login: "root", password: "root-password-1" });
    assert.equal(login.status, 403);
    assert.equal(login.body.error.code, "password_sign_in_disabled");
    assert.match(login.body.error.message, /Password sign-in is turned off/);
    const signup = await client.post("/api/auth/signup", { username: "newbie", password: "password-123" });
    assert.deepEqual([signup.status, signup.body.error.code], [403, "password_sign_in_disabled"]);

    const page = await signInPage();
    await page.getByRole("link", { name: "Sign in with Corp ID" }).waitFor();
    assert.equal(await page.getByLabel("Password").count(), 0);
    assert.equal(await page.getByRole("link", { name: "Sign up" }).count(), 0);
    await page.context().close();
  });

  test("a first sign-in through the provider creates the account on the configured plan", async () => {
    const page = await signInPage();
    await viaProvider(page, "Corp ID", "alice");
    await page.waitForURL(`${url}/`);
    const { status, user } = await me(page);
    assert.equal(status, 200);
    assert.deepEqual([user!.username, user!.email, user!.role, user!.plan_id], ["alice", "alice@corp.example", "user", "team"]);
    await screenshot(page, "sso-signed-in.png");
    await page.context().close();
    const identities = await service.store.db.selectFrom("oidc_identities").selectAll().where("user_id", "=", user!.id).execute();
    assert.deepEqual(
      identities.map((i) => [i.provider_id, i.subject, i.issuer]),
      [["corp", "alice", corp.issuer]],
    );
  });

  test("a member of an admin group signs in as an admin", async () => {
    const page = await signInPage();
    await viaProvider(page, "Corp ID", "olga");
    await page.waitForURL(`${url}/`);
    const { user } = await me(page);
    assert.deepEqual([user!.username, user!.role], ["olga", "admin"]);
    const admins = await page.evaluate(async () => (await fetch("/api/admin/users?role=admin")).status);
    assert.equal(admins, 200);
    await page.context().close();
  });

  test("the same sub from a second provider is another account, never merged into the first", async () => {
    const alice = await findUserByLogin(service.store.db, "alice");
    const page = await signInPage();
    await viaProvider(page, "Partner ID", "alice");
    await page.waitForURL(`${url}/`);
    const { user } = await me(page);
    assert.notEqual(user!.id, alice!.id);
    assert.equal(user!.username, "alice-2");
    assert.equal(user!.email, null, "alice's verified address at the partner links nothing and is not copied");
    assert.equal(user!.role, "user", "the partner provider maps no groups");
    await page.context().close();
    const unchanged = await findUserByLogin(service.store.db, "alice");
    assert.deepEqual(unchanged, { ...alice, last_login_at: unchanged!.last_login_at });
    const rows = await service.store.db.selectFrom("oidc_identities").select(["provider_id", "user_id"]).where("subject", "=", "alice").orderBy("provider_id").execute();
    assert.deepEqual(rows, [
      { provider_id: "corp", user_id: alice!.id },
      { provider_id: "partner", user_id: user!.id },
    ]);
  });

  test("a tampered state, a tampered nonce, a forged ID token and one for another audience or issuer are refused", async () => {
    // The state the provider sends back is not the one this browser's sign-in was started with.
    let page = await signInPage();
    await tamperAuthorizationRequest(page, "corp", "state", "state-chosen-by-an-attacker");
    await viaProvider(page, "Corp ID", "mallory");
    await refusedWith(page, /could not be matched to this browser/);
    // A callback with no sign-in started in the browser at all (a login-CSRF attempt).
    const forgedCallback = await page.goto(`${url}/api/auth/sso/corp/callback?code=stolen-code&state=anything`);
    assert.equal(new URL(forgedCallback!.url()).pathname, "/login");
    await refusedWith(page, /could not be matched to this browser/);
    await page.context().close();

    // The provider signs a nonce other than the one Sputnik made for this sign-in.
    page = await signInPage();
    await tamperAuthorizationRequest(page, "corp", "nonce", "nonce-chosen-by-an-attacker");
    await viaProvider(page, "Corp ID", "mallory");
    await refusedWith(page, /failed Sputnik's security checks/);
    await page.context().close();

    // An ID token whose signature the provider's published keys do not vouch for.
    page = await signInPage();
    await viaProvider(page, "Rogue ID", "eve");
    await refusedWith(page, /failed Sputnik's security checks/);
    await screenshot(page, "sso-refused.png");
    await page.context().close();

    // Validly signed by the provider's own key, but made out to another client, or claiming another
    // issuer: the audience and the issuer are pinned, not only the signature.
    for (const [name, login] of [["Stray Audience ID", "trent"], ["Stray Issuer ID", "victor"]] as const) {
      page = await signInPage();
      await viaProvider(page, name, login);
      await refusedWith(page, /failed Sputnik's security checks/);
      await page.context().close();
    }

    for (const name of ["mallory", "eve", "trent", "victor"]) assert.equal(await findUserByLogin(service.store.db, name), undefined, `${name} got no account`);
    const linked = await service.store.db.selectFrom("oidc_identities").select("subject").where("subject", "in", ["mallory", "eve", "trent", "victor"]).execute();
    assert.deepEqual(linked, []);
  });

  test("sign-up modes apply: approval leaves a new account pending, closed refuses new ones but not linked ones", async () => {
    await setSignupModeForTests(service.store.db, "approval");
    let page = await signInPage();
    await viaProvider(page, "Corp ID", "pat");
    await refusedWith(page, /waiting for an administrator's approval/);
    assert.equal((await findUserByLogin(service.store.db, "pat"))?.status, "pending");
    await page.context().close();

    await setSignupModeForTests(service.store.db, "closed");
    page = await signInPage();
    await viaProvider(page, "Corp ID", "mallory");
    await refusedWith(page, /not creating new accounts/);
    await page.context().close();
    page = await signInPage();
    await viaProvider(page, "Corp ID", "alice");
    await page.waitForURL(`${url}/`);
    assert.equal((await me(page)).user!.username, "alice");
    await page.context().close();
    assert.equal((await findUserByLogin(service.store.db, "root"))!.id, root.id);
  });
});
