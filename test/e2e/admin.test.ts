/**
 * The admin pages drive the accounts API end to end, in a real browser: sign-up mode, an access
 * code shown once and then used, a pending account approved, a user disabled (their session ends
 * at once), attack mode, and the audit log of it all.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { ADMIN, newPage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

let e2e: E2E;
let admin: Page;
let seen: Watch;

before(async () => {
  e2e = await startE2E(["scripted"]);
  ({ page: admin, seen } = await newPage(e2e));
});
after(() => e2e?.close());

async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.goto(e2e.url);
  await page.getByLabel("User name or e-mail").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

const userRow = (page: Page, username: string) => page.getByTestId("users-table").locator(`tr[data-username="${username}"]`);

test("an admin sets sign-up to codes, creates a code shown once, and a visitor signs up with it", { timeout: 120_000 }, async () => {
  await signIn(admin, ADMIN.username, ADMIN.password);
  await admin.getByRole("link", { name: "Admin" }).click();
  await admin.getByRole("link", { name: "Sign-up & attack mode" }).click();
  await admin.getByLabel("Sign-up mode").selectOption("code");
  await admin.getByTestId("effective-mode").getByText("code").waitFor();

  await admin.getByRole("link", { name: "Access codes" }).click();
  await admin.getByLabel("Note").fill("for the visitor");
  await admin.getByRole("button", { name: "Create code" }).click();
  const code = (await admin.getByTestId("secret-value").innerText()).trim();
  assert.ok(code.length >= 8, `a code was shown: ${code}`);
  const row = admin.getByTestId("codes-table").locator("tr", { hasText: "for the visitor" });
  assert.match(await row.innerText(), /0 \/ 1/);
  assert.ok(!(await admin.getByTestId("codes-table").innerText()).includes(code), "the list never shows the code itself");
  await admin.getByRole("button", { name: "Done" }).click();
  assert.equal(await admin.getByTestId("secret-value").count(), 0, "shown once");

  const { context, page: visitor } = await newPage(e2e);
  try {
    await signUpInBrowser(visitor, e2e.url, { username: "visitor", password: "visitor-pass-1", code });
    await visitor.getByText("How can I help you today?").waitFor();
  } finally {
    await context.close();
  }
  await admin.reload();
  assert.match(await row.innerText(), /1 \/ 1/);
  assert.match(await row.innerText(), /used up/);
});

test("a pending account waits for approval, then signs in", { timeout: 120_000 }, async () => {
  await admin.getByRole("link", { name: "Sign-up & attack mode" }).click();
  await admin.getByLabel("Sign-up mode").selectOption("approval");
  await admin.getByTestId("effective-mode").getByText("approval").waitFor();

  const { context, page: waiting } = await newPage(e2e);
  try {
    await signUpInBrowser(waiting, e2e.url, { username: "patient", password: "patient-pass-1" });
    await waiting.getByTestId("pending").waitFor();
    await waiting.getByRole("button", { name: "Back to sign in" }).click();
    await signIn(waiting, "patient", "patient-pass-1");
    await waiting.getByRole("alert").getByText(/waiting for an administrator/).waitFor();

    await admin.getByRole("link", { name: "Users" }).click();
    await userRow(admin, "patient").getByRole("button", { name: "Approve" }).click();
    await userRow(admin, "patient").getByText("active").waitFor();

    await waiting.getByRole("button", { name: "Sign in" }).click();
    await waiting.getByText("How can I help you today?").waitFor();
  } finally {
    await context.close();
  }
});

test("disabling a user ends their session at once", { timeout: 120_000 }, async () => {
  const { context, page: user } = await newPage(e2e);
  try {
    await signIn(user, "visitor", "visitor-pass-1");
    await user.getByText("How can I help you today?").waitFor();

    await admin.getByRole("link", { name: "Users" }).click();
    await userRow(admin, "visitor").getByRole("button", { name: "Disable" }).click();
    await userRow(admin, "visitor").getByText("disabled").waitFor();

    // The user's next request finds no session: the open page says why (it keeps what was on it);
    // a new page load shows the sign-in form.
    await user.getByRole("link", { name: "Settings" }).click();
    await user.getByTestId("account-disabled").getByText("Your account was disabled by an administrator.").waitFor();
    await user.reload();
    await user.getByRole("button", { name: "Sign in" }).waitFor();
    await signIn(user, "visitor", "visitor-pass-1");
    await user.getByRole("alert").getByText(/disabled/).waitFor();
  } finally {
    await context.close();
  }
});

test("attack mode is switched and shown, and the audit log records every action", { timeout: 120_000 }, async () => {
  await admin.getByRole("link", { name: "Sign-up & attack mode" }).click();
  await admin.getByRole("button", { name: "Turn attack mode on" }).click();
  await admin.getByTestId("attack-banner").waitFor();
  await admin.getByRole("button", { name: "Turn attack mode off" }).click();
  await admin.getByTestId("attack-banner").waitFor({ state: "detached" });

  await admin.getByRole("link", { name: "Audit log" }).click();
  const log = await admin.getByTestId("audit-table").innerText();
  for (const action of ["access_code", "approve", "disable", "attack"]) assert.match(log, new RegExp(action, "i"), action);

  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.foreign, []);
  assert.deepEqual(seen.errors, []);
});
