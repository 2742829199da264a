/**
 * The chat's conversation features in a real browser, against one real service: date groups and
 * pins in the sidebar, full-text search that finds a word of an answer, the settings panel, export
 * as Markdown and JSON (downloaded and parsed), and a share link that shows the conversation to a
 * signed-out visitor and stops at once when revoked.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { newPage, sendMessage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

let e2e: E2E;
let page: Page;
let seen: Watch;
const USER = { username: "sharer", password: "sharer-pass-1" };
const script = MODEL_SCRIPTS.scripted;

before(async () => {
  e2e = await startE2E(["scripted"]);
  ({ page, seen } = await newPage(e2e));
  await signUpInBrowser(page, e2e.url, USER);
  await page.getByText("How can I help you today?").waitFor();
});
after(() => e2e?.close());

const complete = (p: Page) => p.locator('[data-testid="assistant-message"][data-status="complete"]');
const list = () => page.getByTestId("conversation-list");

async function newChat(text: string): Promise<string> {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.getByText("How can I help you today?").waitFor();
  await sendMessage(page, "scripted", text);
  await complete(page).waitFor();
  await list().getByText(text).waitFor();
  return decodeURIComponent(new URL(page.url()).pathname.slice("/c/".length));
}

async function openMenu(): Promise<void> {
  await page.getByTestId("chat-menu").click();
  await page.getByTestId("chat-tools-menu").waitFor();
}

test("the sidebar groups conversations by date, pinned first", { timeout: 120_000 }, async () => {
  const old = await newChat("An old question");
  await newChat("What is the answer?");
  // One conversation last touched 40 days ago: it goes under its month.
  const fortyDaysAgo = Date.now() - 40 * 86_400_000;
  await e2e.service.store.db.updateTable("conversations").set({ updated_at: fortyDaysAgo }).where("id", "=", old).execute();
  await page.reload();
  await complete(page).waitFor();
  const today = list().getByTestId("group-today");
  await today.getByText("What is the answer?").waitFor();
  const monthGroup = list().locator('[data-testid^="group-20"]');
  await monthGroup.getByText("An old question").waitFor();
  assert.match((await monthGroup.locator("h2").innerText()).trim(), /^[A-Z][a-z]+ \d{4}$/);

  // Pinned from the entry's buttons: first, under "Pinned", and it stays after a reload.
  // The entry's buttons show on hover (or focus), as a pointer user finds them.
  await list().getByText("An old question").hover();
  await list().getByRole("button", { name: "Pin An old question" }).click();
  const pinned = list().getByTestId("group-pinned");
  await pinned.getByText("An old question").waitFor();
  await page.reload();
  await pinned.getByText("An old question").waitFor();
  const headings = (await list().locator("h2").allInnerTexts()).map((t) => t.trim());
  assert.deepEqual(headings, ["Pinned", "Today"]);
  assert.equal((await list().locator(".conversation-link").first().innerText()).trim(), "An old question");
  await list().getByText("An old question").hover();
  await list().getByRole("button", { name: "Unpin An old question" }).click();
  await pinned.waitFor({ state: "detached" });

  // From the keyboard, the focus follows the entry into its new group.
  const current = new URL(page.url()).pathname;
  await list().getByRole("button", { name: "Pin What is the answer?" }).focus();
  await page.keyboard.press("Enter");
  await pinned.getByText("What is the answer?").waitFor();
  const focusedHref = () => page.evaluate("document.activeElement && document.activeElement.getAttribute('href')");
  for (let i = 0; i < 50 && (await focusedHref()) !== current; i++) await page.waitForTimeout(50);
  assert.equal(await focusedHref(), current);
  await list().getByRole("button", { name: "Unpin What is the answer?" }).focus();
  await page.keyboard.press("Enter");
  await pinned.waitFor({ state: "detached" });
});

test("search finds a word of an answer body, saying which message matched", { timeout: 60_000 }, async () => {
  const search = page.getByLabel("Search conversations");
  // "scripted" is in the answers only, never in a title.
  await search.fill("scripted");
  const snippets = list().getByTestId("search-snippet");
  await snippets.nth(1).waitFor();
  assert.equal(await list().locator(".conversation-link").count(), 2);
  const text = (await snippets.first().innerText()).trim();
  assert.ok(text.startsWith("Answer: ") && text.includes(script.answer), text);
  assert.equal((await snippets.first().locator("mark").innerText()).trim(), "scripted");
  await search.fill("");
  await list().getByTestId("group-today").waitFor();
});

test("settings are checked in the panel and saved with the conversation", { timeout: 60_000 }, async () => {
  await openMenu();
  await page.getByRole("button", { name: "Settings…" }).click();
  const panel = page.getByTestId("chat-settings");
  await panel.getByLabel("System prompt").waitFor();
  await panel.getByLabel("Temperature").fill("5");
  await panel.getByRole("button", { name: "Save" }).click();
  await panel.getByRole("alert").getByText(/temperature must be a number from 0 to 2/).waitFor();
  await panel.getByLabel("Temperature").fill("0.5");
  await panel.getByLabel("System prompt").fill("Answer briefly.");
  await panel.getByRole("button", { name: "Save" }).click();
  await panel.getByTestId("settings-saved").waitFor();
  await page.keyboard.press("Escape");
  await panel.waitFor({ state: "detached" });
  const id = decodeURIComponent(new URL(page.url()).pathname.slice("/c/".length));
  const stored = await e2e.service.store.db.selectFrom("conversations").select("settings").where("id", "=", id).executeTakeFirstOrThrow();
  assert.deepEqual(JSON.parse(stored.settings!), { system_prompt: "Answer briefly.", temperature: 0.5, max_tokens: null, thinking_budget: null });
});

test("export downloads Markdown and JSON that parse", { timeout: 60_000 }, async () => {
  await openMenu();
  let download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Export as JSON" }).click();
  const json = JSON.parse(await readFile((await (await download).path())!, "utf8"));
  assert.equal(json.format, "sputnik-conversation/1");
  assert.equal(json.conversation.title, "What is the answer?");
  assert.deepEqual(
    json.messages.map((m: { role: string; content: string }) => [m.role, m.content]),
    [
      ["user", "What is the answer?"],
      ["assistant", script.answer],
    ],
  );
  assert.ok(!("reasoning" in json.messages[1]));

  await openMenu();
  await page.getByLabel("Include reasoning in exports").check();
  download = page.waitForEvent("download");
  await page.getByRole("link", { name: "Export as Markdown" }).click();
  const saved = await download;
  assert.equal(saved.suggestedFilename(), "what-is-the-answer.md");
  const md = await readFile((await saved.path())!, "utf8");
  assert.match(md, /^# What is the answer\?\n/);
  assert.deepEqual(md.match(/^## .+$/gm), ["## System", "## User", "## Assistant"]);
  assert.ok(md.includes(script.answer));
  assert.ok(md.includes(`> ${script.reasoning.split("\n")[0]}`), "reasoning included when asked");
});

test("a share link shows the conversation to a signed-out visitor and stops when revoked", { timeout: 120_000 }, async () => {
  await openMenu();
  await page.getByRole("button", { name: "Share…" }).click();
  const panel = page.getByTestId("share-panel");
  await panel.getByRole("button", { name: "Create link" }).click();
  const link = await panel.getByTestId("share-link").inputValue();
  assert.match(link, new RegExp(`^${e2e.url}/s/[0-9A-Za-z]{43}$`));
  await panel.getByTestId("share-row").waitFor();

  // A new browser context: no cookie, nobody signed in.
  const visitor = await newPage(e2e);
  try {
    await visitor.page.goto(link);
    const shared = visitor.page.getByTestId("shared-page");
    await shared.getByTestId("shared-title").getByText("What is the answer?").waitFor();
    const messages = shared.getByTestId("shared-message");
    await messages.nth(1).getByText(script.answer).waitFor();
    assert.equal(await messages.count(), 2);
    assert.equal(await shared.getByTestId("shared-reasoning").count(), 0, "no reasoning unless chosen");
    const body = await visitor.page.locator("body").innerText();
    assert.ok(!body.includes(USER.username), "the owner's name is not shown unless chosen");
    assert.equal(await visitor.page.getByTestId("conversation-list").count(), 0, "nothing else of the account");

    await panel.getByRole("button", { name: "Revoke" }).click();
    await panel.getByText("No live links.").waitFor();
    await visitor.page.reload();
    await visitor.page.getByTestId("shared-missing").waitFor();
    assert.deepEqual(visitor.seen.errors, []);
    assert.deepEqual(visitor.seen.foreign, []);
  } finally {
    await visitor.context.close();
  }
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.foreign, []);
});
