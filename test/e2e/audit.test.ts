/**
 * Model audits in a real browser: the admin starts a run of the mini suite on the censoring
 * scripted model in Admin → Model audits, watches its progress reach the end, opens the HTML
 * report (its own tab: it renders with no console error and no request at all leaving the
 * service — it loads nothing; screenshot under artifacts/), publishes the model's summary, and the
 * chat's model picker shows it.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Page } from "playwright-core";
import { ADMIN, newPage, screenshot, startE2E, watch, type E2E } from "./browser.ts";

const MODEL = "scripted-audit-censor";
const MINI_SUITE = fileURLToPath(new URL("../fixtures/audit/mini-suite.json", import.meta.url));
/** Questions of the mini suite. */
const QUESTIONS = 15;

let e2e: E2E;

before(async () => {
  e2e = await startE2E([MODEL], { auditSuites: [MINI_SUITE] });
});
after(() => e2e?.close());

/** Console errors, which `watch` does not collect. */
function consoleErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  return errors;
}

test("an admin runs an audit in the admin area, reads its HTML report, and publishes the summary users see in the model picker", { timeout: 180_000 }, async () => {
  const { page, seen, context } = await newPage(e2e, { height: 1400 });
  const pageConsole = consoleErrors(page);
  await page.goto(e2e.url);
  await page.getByLabel("User name or e-mail").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("link", { name: "Model audits" }).click();

  const form = page.getByRole("region", { name: "Start an audit" });
  await form.getByLabel("Suite").selectOption("mini");
  await form.getByLabel(`Audit ${MODEL}`).check();
  await form.getByRole("button", { name: "Start the audit" }).click();

  // The run appears, runs, and its progress reaches the end.
  const run = page.getByTestId("audit-run").first();
  await run.waitFor();
  await page.locator("[data-testid=audit-run][data-status=completed]").waitFor({ timeout: 150_000 });
  assert.equal(await run.getByTestId("audit-progress").textContent(), `${QUESTIONS} / ${QUESTIONS} answers`);
  assert.equal(await run.getByRole("progressbar").getAttribute("value"), String(QUESTIONS));
  await screenshot(page, "audit-admin.png");

  // The HTML report, in a tab of its own.
  const [report] = await Promise.all([context.waitForEvent("page"), run.getByTestId("audit-report").click()]);
  const reportSeen = watch(report, new URL(e2e.url).origin);
  const reportConsole = consoleErrors(report);
  const requests: string[] = [];
  report.on("request", (request) => requests.push(request.url()));
  await report.waitForLoadState("load");
  assert.match(report.url(), /\/api\/admin\/audits\/[0-9a-f-]{36}\/report\.html$/);
  const body = (await report.locator("body").textContent()) ?? "";
  assert.match(body, new RegExp(MODEL));
  assert.match(body, /Taiwan has always been an inalienable part of China/, "every answer is in the report");
  assert.equal(await report.locator("svg").count() > 0, true, "charts as inline SVG");
  assert.equal(await report.locator("script").count(), 0);
  await screenshot(report, "audit-report.png");
  assert.deepEqual(reportConsole, [], "no console errors in the report");
  assert.deepEqual(reportSeen.errors, []);
  assert.deepEqual(reportSeen.foreign, [], "no request leaves the service");
  assert.deepEqual(requests.filter((url) => !url.endsWith("/report.html")), [], "the report loads nothing at all");
  await report.close();

  // Published: the summary reaches the chat's model picker.
  // A click, then the box shows what the server holds once the list is read again.
  await run.getByLabel(`Show ${MODEL}'s summary to users`).click();
  await page.locator("[data-testid=audit-run] input[type=checkbox]:checked").waitFor();
  await page.goto(e2e.url);
  await page.getByLabel("Model", { exact: true }).selectOption(MODEL);
  const summary = page.getByTestId("model-audit");
  await summary.waitFor();
  const text = (await summary.textContent()) ?? "";
  assert.match(text, /refuses or gives the official line on 100% of China-sensitive questions/);
  assert.match(text, /0% of controls; audited \d{4}-\d{2}-\d{2}$/);
  await screenshot(page, "audit-model-picker.png");

  assert.deepEqual(pageConsole, []);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.foreign, []);
  assert.deepEqual(seen.dialogs, []);
  await context.close();
});
