/**
 * The admin dashboard, live, in a real browser: an admin opens it, a small load of completions
 * (the scripted model, through the `openai` SDK) and one refused request run, the charts move, and
 * the figures the page shows are the ones GET /metrics reports — they come from the same registry.
 * Sampling every second (`dashboardSampleMs`) keeps the file quick.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import OpenAI from "openai";
import type { Page } from "playwright-core";
import { AppClient } from "../support/appClient.ts";
import { ADMIN, newPage, screenshot, startE2E, type E2E } from "./browser.ts";

let e2e: E2E;

before(async () => {
  e2e = await startE2E(["scripted"], { dashboardSampleMs: 1000, limits: { maxMessageChars: 4000 } });
});
after(() => e2e?.close());

const TOKENS = 'tokens_per_second{model="scripted"}';
const COMPLETIONS = 'completions_per_second{model="scripted"}';
const REFUSED = 'refusals_per_second{reason="message_too_long"}';

/** The legend entry of one series: its latest value and its counter total as data attributes. */
async function figure(page: Page, key: string, attribute: "data-latest" | "data-total"): Promise<number | null> {
  const value = await page.locator(`[data-series='${key}']`).getAttribute(attribute);
  return value === null || value === "" ? null : Number(value);
}

/**
 * Waits, in the page, until a series' attribute is above `min` or equal to `exactly`. (The page's
 * CSP forbids string scripts here, and the project's type-check has no DOM library: hence `globalThis`.)
 */
function attributeHolds(page: Page, key: string, attribute: "data-latest" | "data-total", want: { min: number } | { exactly: number }, timeout: number) {
  return page.waitForFunction(
    ({ selector, attribute, want }) => {
      const page = globalThis as unknown as { document: { querySelector(s: string): { getAttribute(name: string): string | null } | null } };
      const raw = page.document.querySelector(selector)?.getAttribute(attribute);
      const value = raw === null || raw === undefined || raw === "" ? NaN : Number(raw);
      return "min" in want ? value > want.min : value === want.exactly;
    },
    { selector: `[data-series='${key}']`, attribute, want },
    { timeout },
  );
}

/** Waits until the page shows `expected` for a series' total, then asserts it (a mismatch fails with both numbers). */
async function totalBecomes(page: Page, key: string, expected: number): Promise<void> {
  await attributeHolds(page, key, "data-total", { exactly: expected }, 10_000).catch(() => undefined);
  assert.equal(await figure(page, key, "data-total"), expected, `${key}: the dashboard's total is the one /metrics reports`);
}

async function scrape(pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${e2e.url}/metrics`)).text();
  const values = [...text.matchAll(new RegExp(pattern.source, "gm"))].map((m) => Number(m[1]));
  assert.ok(values.length > 0, `/metrics has ${pattern}`);
  return values.reduce((a, b) => a + b, 0);
}

test("the dashboard API is for admins only", async () => {
  assert.equal((await new AppClient(e2e.url).get("/api/admin/dashboard")).status, 401);
  const user = new AppClient(e2e.url);
  assert.equal((await user.post("/api/auth/signup", { username: "viewer", password: "viewer-pass-1" })).status, 201);
  const refused = await user.get("/api/admin/dashboard");
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, "forbidden");
  const bad = await e2e.admin.get("/api/admin/dashboard?since=yesterday");
  assert.equal(bad.status, 400);
  const ok = await e2e.admin.get("/api/admin/dashboard");
  assert.equal(ok.status, 200);
  assert.equal(ok.body.interval_ms, 1000);
  assert.deepEqual(ok.body.models, [{ id: "scripted", engine: "local" }]);
});

test("an admin watches the charts move under a small load, with the numbers /metrics reports", { timeout: 120_000 }, async () => {
  // Tall enough for the whole dashboard in the screenshot.
  const { page, seen } = await newPage(e2e, { height: 1800 });
  await page.goto(e2e.url);
  await page.getByLabel("User name or e-mail").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("link", { name: "Dashboard" }).click();
  await page.getByRole("heading", { name: "Live dashboard" }).waitFor();
  const model = page.getByRole("region", { name: "Model scripted" });
  await model.getByText("local engine").waitFor();
  // Rates appear from the second sample on; nothing has run yet.
  await page.locator(`[data-series='${TOKENS}']`).waitFor();
  const before = await figure(page, COMPLETIONS, "data-total");

  const created = await e2e.admin.post("/api/keys", { name: "dashboard load" });
  assert.equal(created.status, 201);
  const client = new OpenAI({ baseURL: `${e2e.url}/v1`, apiKey: created.body.key, maxRetries: 0 });
  // Two clients in a loop until the page shows tokens flowing (bounded: at most 40 requests each).
  let running = true;
  const worker = async () => {
    for (let i = 0; running && i < 40; i++) {
      const answer = await client.chat.completions.create({ model: "scripted", messages: [{ role: "user", content: `hello ${i}` }] });
      assert.ok((answer.usage?.completion_tokens ?? 0) > 0);
    }
  };
  const load = Promise.all([worker(), worker()]);
  try {
    await attributeHolds(page, TOKENS, "data-latest", { min: 0 }, 30_000);
    await attributeHolds(page, COMPLETIONS, "data-latest", { min: 0 }, 10_000);
  } finally {
    running = false;
    await load;
  }
  // One request refused by the hygiene limit: its reason gets a line of its own.
  await assert.rejects(client.chat.completions.create({ model: "scripted", messages: [{ role: "user", content: "x".repeat(4001) }] }), /4001 characters/);

  // Same source: once the page has the samples after the load, its totals are /metrics' values.
  const tokens = await scrape(/^sputnik_completion_tokens_total\{model="scripted"\} (\d+)$/);
  const completions = await scrape(/^sputnik_completions_total\{model="scripted",status="\d+"\} (\d+)$/);
  assert.ok(tokens > 0 && completions >= 2);
  await totalBecomes(page, TOKENS, tokens);
  await totalBecomes(page, COMPLETIONS, completions);
  await totalBecomes(page, REFUSED, await scrape(/^sputnik_rejected_requests_total\{reason="message_too_long"\} (\d+)$/));
  assert.ok(completions > (before ?? 0), "the request count rose");
  // The last five minutes, where the load is wide enough to see: the TTFT chart drew what it
  // measured, and names its lines in text.
  await page.getByRole("button", { name: "5 min", exact: true }).click();
  const ttft = model.getByTestId("chart-scripted-ttft");
  assert.ok((await ttft.locator('path[d^="M"], circle').count()) > 0, "TTFT points are drawn");
  assert.match((await ttft.locator("svg").getAttribute("aria-label")) ?? "", /^Time to first token, last 5 minutes\. Latest: p50 .*, p95 /);

  const file = await screenshot(page, "admin-dashboard.png");
  assert.ok(file.endsWith("admin-dashboard.png"));
  assert.deepEqual(seen, { dialogs: [], foreign: [], errors: [] });
});
