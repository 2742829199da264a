/**
 * Billing in the app, in a real browser against one real service: an admin's credit grant in the
 * Billing area reaches the user's balance and credit ledger; prices set in the admin form (with an
 * off-peak window) show in every user's price list with the window in force now; a bad price is
 * named and changes nothing; the usage CSV parses and matches the table; access codes pick their
 * plan from a list of the stored plans.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { ADMIN, newPage, screenshot, sendMessage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

let e2e: E2E;
let admin: Page;
let adminSeen: Watch;
let userContext: BrowserContext;
let user: Page;
let userSeen: Watch;

const USER = { username: "payer", password: "payer-password-1" };

before(async () => {
  e2e = await startE2E(["scripted"]);
  const mode = await e2e.admin.put("/api/admin/signup-mode", { mode: "open" });
  assert.equal(mode.status, 200, mode.text);
  ({ page: admin, seen: adminSeen } = await newPage(e2e));
  await admin.goto(e2e.url);
  await admin.getByLabel("User name or e-mail").fill(ADMIN.username);
  await admin.getByLabel("Password").fill(ADMIN.password);
  await admin.getByRole("button", { name: "Sign in" }).click();
  await admin.getByText("How can I help you today?").waitFor();
  ({ context: userContext, page: user, seen: userSeen } = await newPage(e2e));
  await signUpInBrowser(user, e2e.url, USER);
  await user.getByText("How can I help you today?").waitFor();
});
after(async () => {
  await userContext?.close();
  await e2e?.close();
});

async function openBilling(): Promise<void> {
  await admin.goto(`${e2e.url}/admin/billing`);
  await admin.getByTestId("billing-overview").getByTestId("usage-chart").waitFor();
}

test("an admin's credit grant shows in the user's balance and credit ledger; a bad amount is refused", { timeout: 120_000 }, async () => {
  await openBilling();
  const accounts = admin.getByTestId("billing-accounts");
  await accounts.getByLabel("Find a user").fill(USER.username);
  await accounts.getByTestId("billing-users").locator(`tr[data-username="${USER.username}"]`).getByRole("button", { name: "Manage" }).click();
  const panel = admin.getByTestId("account-billing");
  await panel.getByTestId("account-balance").getByText("0.00").waitFor();

  // A negative amount is named and sends nothing.
  await panel.getByLabel("Credit amount").fill("-3");
  await panel.getByRole("button", { name: "Add credit" }).click();
  await panel.getByRole("alert").getByText(/Amount: "-3" is not an amount/).waitFor();
  assert.equal(await panel.getByTestId("account-credits").count(), 0, "no credit was written");

  await panel.getByLabel("Credit amount").fill("12.5");
  await panel.getByLabel("Credit note").fill("welcome credit");
  await panel.getByRole("button", { name: "Add credit" }).click();
  await panel.getByTestId("account-balance").getByText("12.50").waitFor();
  const row = panel.getByTestId("account-credits").locator("tbody tr");
  // The balance and the credit list load separately: wait for the list too.
  await row.first().waitFor();
  assert.equal(await row.count(), 1);
  assert.match(await row.innerText(), /granted\s+12\.50\s+admin\s+welcome credit/);

  // The user sees it: balance and their own credit ledger.
  await user.getByRole("link", { name: "Usage & billing" }).click();
  await user.getByTestId("balance").getByText("12.50 USD").waitFor();
  const credits = user.getByTestId("credit-history").locator("tbody tr");
  await credits.first().waitFor();
  assert.equal(await credits.count(), 1);
  assert.match(await credits.innerText(), /granted\s+12\.50\s+by an administrator\s+welcome credit/);

  // The command wrote its audit row.
  const audit = await e2e.admin.get("/api/admin/audit");
  assert.ok(
    (audit.body.data as Array<{ action: string; details: { amount_micros?: number } }>).some((a) => a.action === "billing.credit.add" && a.details.amount_micros === 12_500_000),
    "audit row for the grant",
  );
});

test("prices set in the admin form show in the user's price list with the off-peak window", { timeout: 120_000 }, async () => {
  await openBilling();
  const editor = admin.getByTestId("prices-editor");
  await editor.getByLabel("Price model").fill("scripted");
  await editor.getByLabel("Input, cache hit price", { exact: true }).fill("0.14");
  await editor.getByLabel("Input, cache miss price", { exact: true }).fill("0.55");
  await editor.getByLabel("Output price", { exact: true }).fill("2.19");
  await editor.getByRole("button", { name: "Add off-peak window" }).click();
  await editor.getByLabel("Window 1 start").fill("16:30");
  await editor.getByLabel("Window 1 end").fill("00:30");
  await editor.getByLabel("Window 1 input, cache hit price").fill("0.035");
  await editor.getByLabel("Window 1 input, cache miss price").fill("0.135");
  await editor.getByLabel("Window 1 output price").fill("0.55");
  await editor.getByRole("button", { name: "Save prices" }).click();
  await editor.getByRole("status").getByText("Prices of scripted saved.").waitFor();
  await editor.getByTestId("prices-table").locator('tr[data-model="scripted"]').waitFor();

  await user.goto(`${e2e.url}/usage`);
  const list = user.getByTestId("price-list");
  const standard = list.locator('tr[data-model="scripted"][data-window="standard"]');
  const offPeak = list.locator('tr[data-model="scripted"][data-window="16:30-00:30"]');
  await standard.waitFor();
  assert.match(await standard.innerText(), /scripted\s+standard.*0\.14\s+0\.55\s+2\.19/s);
  assert.match(await offPeak.innerText(), /off-peak 16:30–00:30.*0\.035\s+0\.135\s+0\.55/s);
  assert.match(await list.innerText(), /per million tokens/);

  // "now" marks the prices in force, as the server reckons it in the billing time zone.
  const prices = await e2e.admin.get("/api/billing/prices");
  const current = (prices.body.prices as Array<{ model: string; current_window: string | null }>).find((p) => p.model === "scripted")!.current_window;
  const marked = current === null ? standard : offPeak;
  const unmarked = current === null ? offPeak : standard;
  assert.equal(await marked.locator(".badge", { hasText: "now" }).count(), 1, `now on ${current ?? "standard"}`);
  assert.equal(await unmarked.locator(".badge").count(), 0);
});

test("a price with an invalid value is named and changes nothing", { timeout: 120_000 }, async () => {
  const before = await e2e.admin.get("/api/admin/billing/prices");
  await openBilling();
  const editor = admin.getByTestId("prices-editor");
  await editor.getByTestId("prices-table").locator('tr[data-model="scripted"]').getByRole("button", { name: "Edit" }).click();
  assert.equal(await editor.getByLabel("Output price", { exact: true }).inputValue(), "2.19");

  // Caught in the form: the field is named.
  await editor.getByLabel("Output price", { exact: true }).fill("2.1.9");
  await editor.getByRole("button", { name: "Save prices" }).click();
  await editor.getByRole("alert").getByText(/Output price: "2\.1\.9" is not an amount/).waitFor();

  // Caught by the server (windows that overlap): its words, and still nothing stored.
  await editor.getByLabel("Output price", { exact: true }).fill("9.99");
  await editor.getByRole("button", { name: "Add off-peak window" }).click();
  await editor.getByLabel("Window 2 start").fill("00:00");
  await editor.getByLabel("Window 2 end").fill("17:00");
  await editor.getByRole("button", { name: "Save prices" }).click();
  await editor.getByRole("alert").getByText(/overlap/).waitFor();

  const afterwards = await e2e.admin.get("/api/admin/billing/prices");
  assert.deepEqual(afterwards.body, before.body, "the stored prices did not change");
  await admin.reload();
  const row = admin.getByTestId("prices-editor").getByTestId("prices-table").locator('tr[data-model="scripted"]');
  assert.match(await row.innerText(), /2\.19/);
  assert.doesNotMatch(await row.innerText(), /9\.99/);
});

/** RFC 4180 records (quoted fields with "" escapes, CRLF line ends). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") record.push(field), (field = "");
    else if (c === "\r" && text[i + 1] === "\n") {
      record.push(field);
      records.push(record);
      (record = []), (field = ""), i++;
    } else field += c;
  }
  assert.equal(field + record.join(""), "", "the document ends with a line break");
  return records;
}

test("the usage CSV parses and matches the requests shown", { timeout: 180_000 }, async () => {
  await user.goto(e2e.url);
  for (const text of ["First billed question", "Second billed question"]) {
    await user.getByRole("button", { name: "+ New chat" }).click();
    await sendMessage(user, "scripted", text);
    await user.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  }
  await user.getByRole("link", { name: "Usage & billing" }).click();
  const table = user.getByTestId("usage-table");
  await table.locator("tbody tr").nth(1).waitFor();
  const shown = await table.locator("tbody tr").evaluateAll((rows) =>
    rows.map((r) => ({ id: r.getAttribute("data-id"), cells: [...r.querySelectorAll("td")].map((td) => td.textContent ?? "") })),
  );
  assert.equal(shown.length, 2);

  const href = await user.getByTestId("usage-csv").getAttribute("href");
  assert.ok(href);
  const response = await user.request.get(new URL(href, e2e.url).toString());
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-type"] ?? "", /^text\/csv/);
  const [header, ...records] = parseCsv(await response.text());
  assert.ok(header);
  const rows = records.map((r) => Object.fromEntries(header.map((name, i) => [name, r[i]!])));
  assert.equal(rows.length, shown.length, "one CSV line per request shown");
  const number = (text: string) => Number(text.replace(/[^\d]/g, ""));
  for (const { id, cells } of shown) {
    const row = rows.find((r) => r.id === id);
    assert.ok(row, `request ${id} is in the CSV`);
    const [, model, status, cached, fresh, reasoning, answer, searches, , cost, charged] = cells;
    assert.equal(row.model, model);
    assert.equal(row.status, status);
    assert.equal(Number(row.cache_hit_tokens), number(cached!));
    assert.equal(Number(row.cache_miss_tokens), number(fresh!));
    assert.equal(Number(row.reasoning_tokens), number(reasoning!));
    assert.equal(Number(row.answer_tokens), number(answer!));
    assert.equal(row.cost, cost);
    assert.equal(row.charged, charged);
    assert.equal(row.searches, searches === "" ? "0" : searches, "web searches");
    assert.ok(Number.isFinite(Date.parse(row.started_at!)), "ISO time");
    assert.equal(row.price_output_per_million, row.price_window ? "0.55" : "2.19", "priced at the list");
    assert.ok(Number(row.cost) > 0, "priced requests cost something");
  }
});

test("access codes pick their plan from a list of the stored plans", { timeout: 120_000 }, async () => {
  // A plan made in the Billing area…
  await openBilling();
  const plans = admin.getByTestId("plans-editor");
  await plans.getByLabel("Plan id").fill("pro");
  await plans.getByLabel("Plan name").fill("Pro");
  await plans.getByLabel("Daily token quota").fill("many");
  await plans.getByRole("button", { name: "Create plan" }).click();
  await plans.getByRole("alert").getByText(/Daily token quota: "many" is not a whole number/).waitFor();
  await plans.getByLabel("Daily token quota").fill("500000");
  await plans.getByRole("button", { name: "Create plan" }).click();
  await plans.getByTestId("plans-table").locator('tr[data-plan="pro"]').waitFor();

  // …is offered by the access-code form, which has no free-text plan any more.
  await admin.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Access codes" }).click();
  const select = admin.getByLabel("Plan", { exact: true });
  assert.equal(await select.evaluate((el) => el.tagName), "SELECT");
  await select.locator('option[value="pro"]').waitFor({ state: "attached" });
  const options = await select.locator("option").evaluateAll((os) => os.map((o) => o.getAttribute("value") ?? ""));
  assert.ok(options.includes("") && options.includes("pro"), `options: ${options.join(", ")}`);
  await select.selectOption("pro");
  await admin.getByLabel("Note").fill("pro code");
  await admin.getByRole("button", { name: "Create code" }).click();
  await admin.getByTestId("secret-value").waitFor();
  const row = admin.getByTestId("codes-table").locator("tr", { hasText: "pro code" });
  assert.match(await row.innerText(), /\bpro\b/);
  const stored = await e2e.admin.get("/api/admin/access-codes");
  assert.equal((stored.body.data as Array<{ note: string; plan_id: string | null }>).find((c) => c.note === "pro code")?.plan_id, "pro");

  // The accounts panel moves a user to it, and the user's page shows the plan with its quota.
  await openBilling();
  // The overview's axis labels fit even for fractions of a cent (priced requests above cost ~0.00002).
  const fit = (await admin.evaluate(`(() => {
    const svg = document.querySelector('[data-testid="billing-overview"] svg').getBoundingClientRect();
    return [...document.querySelectorAll('[data-testid="billing-overview"] svg text')].map((t) => {
      const r = t.getBoundingClientRect();
      return { text: t.textContent, inside: r.left >= svg.left - 0.5 && r.right <= svg.right + 0.5 };
    });
  })()`)) as Array<{ text: string; inside: boolean }>;
  assert.ok(fit.some((l) => /^0\.0000\d+$/.test(l.text)), `a readable cost label: ${fit.map((l) => l.text).join(", ")}`);
  for (const label of fit) assert.ok(label.inside, `label "${label.text}" inside the chart`);
  const accounts = admin.getByTestId("billing-accounts");
  await accounts.getByLabel("Find a user").fill(USER.username);
  await accounts.getByTestId("billing-users").locator(`tr[data-username="${USER.username}"]`).getByRole("button", { name: "Manage" }).click();
  await admin.getByLabel(`Plan of ${USER.username}`).selectOption("pro");
  await accounts.getByTestId("billing-users").locator(`tr[data-username="${USER.username}"]`).getByText("pro").waitFor();
  await user.goto(`${e2e.url}/usage`);
  await user.getByTestId("usage-page").getByText("Pro", { exact: true }).waitFor();
  assert.match(await user.getByTestId("quota-daily").innerText(), /left · resets/);
  await screenshot(user, "usage-billing.png");
  await screenshot(admin, "admin-billing.png");

  for (const seen of [adminSeen, userSeen]) {
    assert.deepEqual(seen.dialogs, []);
    assert.deepEqual(seen.foreign, []);
    assert.deepEqual(seen.errors, []);
  }
});
