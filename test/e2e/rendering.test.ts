/**
 * What answers look like in a real browser: markdown, highlighted code, all four LaTeX delimiters
 * and tables render; hostile content (model output and user input) executes nothing and loads
 * nothing from other origins. Leaves a screenshot of a conversation in artifacts/.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { newPage, screenshot, sendMessage, startE2E, ADMIN, type E2E, type Watch } from "./browser.ts";

let e2e: E2E;
let page: Page;
let seen: Watch;

before(async () => {
  e2e = await startE2E(["scripted-markdown", "scripted-xss"]);
  ({ page, seen } = await newPage(e2e));
  await page.goto(e2e.url);
  await page.getByLabel("User name or e-mail").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("How can I help you today?").waitFor();
});
after(() => e2e?.close());

const complete = (p: Page) => p.locator('[data-testid="assistant-message"][data-status="complete"]');
/** KaTeX and highlight.js arrive as chunks of their own when first needed: wait until the answer's markdown has them. */
const rendered = (answer: ReturnType<Page["locator"]>) => answer.locator(".markdown:not([data-pending])").waitFor();

test("markdown, highlighted code, a table and LaTeX in all four delimiters render", { timeout: 120_000 }, async () => {
  await sendMessage(page, "scripted-markdown", "Show me some formatting");
  const answer = complete(page).getByTestId("answer");
  await answer.waitFor();
  await rendered(answer);

  const table = answer.locator("table");
  assert.deepEqual(await table.locator("th").allInnerTexts(), ["Name", "Value"]);
  assert.equal(await table.locator("tbody tr").count(), 2);
  assert.equal(await answer.locator("ul > li").count(), 3);

  const code = answer.locator("pre code");
  assert.equal(await code.count(), 1);
  assert.match(await code.innerText(), /def square\(x\):\n\s+return x \* x/);
  assert.ok((await code.locator(".hljs-keyword").count()) > 0, "the code is highlighted");
  assert.equal(await answer.getByRole("button", { name: "Copy code" }).count(), 1);

  // a^2 ($…$), b^2 ($$…$$), c^2 (\(…\)) and d^2 (\[…\]) all become KaTeX, none stays as source text.
  assert.equal(await answer.locator(".katex").count(), 4);
  const tex = await answer.locator('.katex annotation[encoding="application/x-tex"]').allTextContents();
  assert.deepEqual(tex.map((t) => t.trim()).sort(), ["a^2", "b^2", "c^2", "d^2"]);
  assert.ok((await answer.locator(".katex-display").count()) >= 1, "display math renders as a block");
  const text = await answer.innerText();
  assert.ok(!text.includes("\\(") && !text.includes("\\[") && !text.includes("$"), "no delimiter left as text");

  const file = await screenshot(page, "conversation.png");
  assert.ok(file.endsWith("artifacts/conversation.png"));
});

test("hostile HTML, links and formulas in answers and messages execute and load nothing", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  const payload = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    "[x](javascript:alert(3))",
    "<svg onload=alert(4)>",
    "![y](https://evil.example/user.png)",
    "$\\href{javascript:alert(5)}{z}$ $\\frac{1$",
  ].join("\n");
  await sendMessage(page, "scripted-xss", payload);
  const answer = complete(page).getByTestId("answer");
  await answer.waitFor();
  await rendered(answer);

  // The user's message is shown exactly as typed, as text.
  assert.equal(await page.getByTestId("user-message").locator(".bubble").innerText(), payload);
  // The model's raw HTML is shown as text too, never as elements.
  const answerText = await answer.innerText();
  for (const raw of ["<img src=x onerror=alert(1)>", "<script>alert(2)</script>", "<svg onload=alert(4)>"]) {
    assert.ok(answerText.includes(raw), `shown as text: ${raw}`);
  }
  const thread = page.getByTestId("thread");
  assert.equal(await thread.locator("script, svg, iframe, object, embed").count(), 0);
  assert.equal(await page.locator("img").count(), 0, "no image element at all: nothing is fetched");
  assert.equal(await page.locator("[onerror], [onload], [onclick]").count(), 0);
  assert.equal(await page.locator('a[href^="javascript:" i], a[href^="data:" i]').count(), 0);
  assert.equal(await answer.getByText("click", { exact: true }).evaluate((el) => el.tagName), "SPAN");

  // Images wait for a click, and say where they would come from.
  await answer.getByRole("button", { name: /Click to load image from evil\.example/ }).waitFor();
  // A formula KaTeX cannot parse shows as text.
  assert.match(await answer.locator(".katex-error").first().innerText(), /\\frac\{1/);

  assert.deepEqual(seen.dialogs, [], "no dialog opened");
  assert.deepEqual(seen.foreign, [], "no request left the service's origin");
  assert.deepEqual(seen.errors, []);
  assert.equal(MODEL_SCRIPTS["scripted-xss"].answer.includes("evil.example"), true);
});

test("the app is served with a strict Content-Security-Policy and works at a phone's width in dark mode", { timeout: 120_000 }, async () => {
  const response = await page.goto(e2e.url);
  const headers = response!.headers();
  const csp = headers["content-security-policy"] ?? "";
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(headers["x-content-type-options"], "nosniff");

  const { context, page: phone } = await newPage(e2e, { width: 390, height: 844 });
  try {
    await context.addCookies(await page.context().cookies());
    await phone.emulateMedia({ colorScheme: "dark" });
    await phone.goto(e2e.url);
    await phone.getByText("How can I help you today?").waitFor();
    assert.equal(await phone.evaluate("document.documentElement.dataset.theme"), "dark");
    // The sidebar is a drawer: hidden until the menu button opens it.
    const newChat = phone.getByRole("button", { name: "+ New chat" });
    assert.equal(await newChat.isVisible(), false);
    await phone.getByRole("button", { name: "Open the sidebar" }).click();
    await newChat.waitFor({ state: "visible" });
    const overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth");
    assert.equal(overflow, 0, "nothing wider than the screen");
  } finally {
    await context.close();
  }
});
