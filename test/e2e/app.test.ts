/**
 * The app around the chat, in a real browser against one real service: the usage page reachable
 * from the sidebar with a chart whose labels fit and a table that is not cut at 1280 px, the admin's
 * usage tab, the model picker following the opened conversation, and a refused send that keeps the
 * typed text and leaves no empty conversation behind.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { newPage, screenshot, sendMessage, startE2E, ADMIN, type E2E, type Watch } from "./browser.ts";

let e2e: E2E;
let page: Page;
let seen: Watch;

before(async () => {
  e2e = await startE2E(["scripted", "scripted-long"]);
  ({ page, seen } = await newPage(e2e, { width: 1280, height: 900 }));
  await page.goto(e2e.url);
  await page.getByLabel("User name or e-mail").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("How can I help you today?").waitFor();
});
after(() => e2e?.close());

const complete = (p: Page) => p.locator('[data-testid="assistant-message"][data-status="complete"]');
const picked = (p: Page) => p.getByLabel("Model", { exact: true }).inputValue();
/** Waits until the model picker shows `model` (polled from here: the page's CSP forbids evaluating strings). */
async function pickerShows(p: Page, model: string): Promise<void> {
  for (let i = 0; i < 100 && (await picked(p)) !== model; i++) await p.waitForTimeout(100);
  assert.equal(await picked(p), model);
}

test("opening an older conversation selects the model it was answered with", { timeout: 120_000 }, async () => {
  await sendMessage(page, "scripted", "Older chat on the first model");
  await complete(page).waitFor();
  const older = page.url();
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, "scripted-long", "Newer chat on the second model");
  await complete(page).waitFor();
  const newer = page.url();
  assert.equal(await picked(page), "scripted-long");

  await page.getByTestId("conversation-list").getByText("Older chat on the first model").click();
  await page.waitForURL(older);
  await page.getByTestId("user-message").getByText("Older chat on the first model").waitFor();
  await pickerShows(page, "scripted");
  assert.equal(await picked(page), "scripted");

  // A reload of the newer one picks its model again; a new chat goes back to the one picked by hand.
  await page.goto(newer);
  await page.getByTestId("user-message").getByText("Newer chat on the second model").waitFor();
  await pickerShows(page, "scripted-long");
  await page.getByTestId("conversation-list").getByText("Older chat on the first model").click();
  await pickerShows(page, "scripted");
  await page.getByRole("button", { name: "+ New chat" }).click();
  await pickerShows(page, "scripted-long");
});

test("a too-long message is refused with a clear message, keeps the typed text and leaves no empty conversation", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.getByText("How can I help you today?").waitFor();
  const list = page.getByTestId("conversation-list");
  const before = await list.locator(".conversation-link").count();
  const tooLong = `${"long words ".repeat(9_091)}end`; // 100,004 characters
  assert.ok(tooLong.length > 100_000);
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(tooLong);
  await box.press("Enter");
  const notice = page.getByTestId("notice");
  await notice.waitFor();
  const text = await notice.innerText();
  assert.match(text, /too long/i);
  assert.doesNotMatch(text, /expected string|<=/, "no validator jargon");
  assert.equal(await box.inputValue(), tooLong, "the typed text is still there");
  assert.equal(new URL(page.url()).pathname, "/", "no conversation was opened");
  await page.waitForTimeout(300); // the sidebar refreshes on its own: give a wrong entry the chance to show
  assert.equal(await list.locator(".conversation-link").count(), before, "no empty conversation in the sidebar");

  // The server says it as clearly to any other client.
  const conversation = await e2e.admin.post("/api/conversations", { model: "scripted" });
  assert.equal(conversation.status, 201, conversation.text);
  const refused = await e2e.admin.post(`/api/conversations/${conversation.body.id}/messages`, { content: tooLong, model: "scripted" });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.param, "content");
  assert.match(refused.body.error.message, /The message is too long: at most 100,000 characters/);
  await e2e.admin.delete(`/api/conversations/${conversation.body.id}`);

  // Shortened, it goes through from the same box.
  await box.fill("Short enough now");
  await box.press("Enter");
  await complete(page).waitFor();
  assert.equal(await box.inputValue(), "");
});

test("the usage page is reachable from the sidebar; its chart labels fit and its table is not cut at 1280 px", { timeout: 120_000 }, async () => {
  await page.getByRole("link", { name: "Usage & billing" }).click();
  await page.waitForURL(/\/usage$/);
  const usage = page.getByTestId("usage-page");
  await usage.getByRole("heading", { name: "Usage & billing" }).waitFor();
  const chart = usage.getByTestId("usage-chart");
  await chart.waitFor();
  // Requests made above show as rows.
  await usage.getByTestId("usage-table").locator("tbody tr").first().waitFor();

  const fit = (await page.evaluate(`(() => {
    const svg = document.querySelector('[data-testid="usage-chart"]').getBoundingClientRect();
    const labels = [...document.querySelectorAll('[data-testid="usage-chart"] text')].map((t) => {
      const r = t.getBoundingClientRect();
      return { text: t.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom };
    });
    const wrap = document.querySelector('[data-testid="usage-table"]');
    const table = wrap.querySelector("table").getBoundingClientRect();
    return {
      svg: { left: svg.left, right: svg.right, top: svg.top, bottom: svg.bottom },
      labels,
      table: { right: table.right, scrollWidth: wrap.scrollWidth, clientWidth: wrap.clientWidth },
      viewport: window.innerWidth,
      pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
    };
  })()`)) as {
    svg: { left: number; right: number; top: number; bottom: number };
    labels: Array<{ text: string; left: number; right: number; top: number; bottom: number }>;
    table: { right: number; scrollWidth: number; clientWidth: number };
    viewport: number;
    pageOverflow: number;
  };
  assert.ok(fit.labels.length >= 4, `axis labels drawn: ${fit.labels.map((l) => l.text).join(", ")}`);
  for (const label of fit.labels) {
    assert.ok(
      label.left >= fit.svg.left - 0.5 && label.right <= fit.svg.right + 0.5 && label.top >= fit.svg.top - 0.5 && label.bottom <= fit.svg.bottom + 0.5,
      `label "${label.text}" inside the chart: ${JSON.stringify(label)} in ${JSON.stringify(fit.svg)}`,
    );
  }
  assert.ok(fit.table.scrollWidth <= fit.table.clientWidth, `the table fits its box (${fit.table.scrollWidth} > ${fit.table.clientWidth})`);
  assert.ok(fit.table.right <= fit.viewport, "the table ends inside the window");
  assert.equal(fit.pageOverflow, 0, "nothing wider than the window");
  await screenshot(page, "usage.png");

  // Admins have the per-user usage in the admin area.
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Usage" }).click();
  await page.waitForURL(/\/admin\/usage$/);
  await page.getByTestId("admin-usage").getByText(ADMIN.username).waitFor();
  assert.deepEqual(seen.errors, []);
});
