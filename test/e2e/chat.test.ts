/**
 * The chat in a real browser: a new user signs up with an access code, chats with the scripted
 * model, watches the reasoning live, reloads, stops an answer, edits and regenerates.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { PANEL_STATES, RECORD_PANEL_STATES, stopOnFirstReasoning } from "./pageScripts.ts";
import { accessCodeFor, newPage, sendMessage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

let e2e: E2E;
let page: Page;
let seen: Watch;

before(async () => {
  e2e = await startE2E(["scripted", "scripted-long"]);
  ({ page, seen } = await newPage(e2e));
});
after(() => e2e?.close());

const assistant = (p: Page) => p.getByTestId("assistant-message");

test("a new user signs up with an access code and lands in an empty chat", { timeout: 120_000 }, async () => {
  const code = await accessCodeFor(e2e);
  await signUpInBrowser(page, e2e.url, { username: "newcomer", password: "newcomer-pass-1", code });
  await page.getByText("How can I help you today?").waitFor();
  assert.equal(await page.getByTestId("current-user").textContent(), "newcomer");
  // The sidebar loads its list on its own after the page appears: wait for it, then count.
  const empty = page.getByTestId("conversation-list").getByText("No conversations yet.");
  await empty.waitFor();
  assert.equal(await empty.count(), 1);
});

test("an answer shows its reasoning folded to 'Thought for N seconds', with the right text, and survives a reload", { timeout: 120_000 }, async () => {
  const script = MODEL_SCRIPTS.scripted;
  await sendMessage(page, "scripted", "What is the answer?");
  const answer = assistant(page).last();
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  assert.equal((await answer.getByTestId("answer").innerText()).trim(), script.answer);

  const check = async () => {
    const panel = answer.getByTestId("reasoning");
    assert.equal(await panel.getAttribute("data-state"), "done");
    assert.match((await panel.getByTestId("reasoning-toggle").innerText()).trim(), /^▸\s*Thought for \d+ seconds?$/);
    assert.equal(await panel.getByTestId("reasoning-text").count(), 0, "folded once the answer is written");
    await panel.getByTestId("reasoning-toggle").click();
    assert.equal(await panel.getByTestId("reasoning-text").innerText(), script.reasoning);
  };
  await check();
  assert.match(new URL(page.url()).pathname, /^\/c\/[0-9a-f-]+$/);
  await page.getByTestId("conversation-list").getByText("What is the answer?").waitFor();

  await page.reload();
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  assert.equal(await page.getByTestId("user-message").innerText(), "What is the answer?\nCopy\nEdit");
  assert.equal((await answer.getByTestId("answer").innerText()).trim(), script.answer);
  await check();
});

test("the reasoning streams live in a 'Thinking…' panel before it folds", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.evaluate(RECORD_PANEL_STATES);
  await sendMessage(page, "scripted-long", "Think it through");
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  const states = (await page.evaluate(PANEL_STATES)) as Array<{ state: string; label: string; text: string }>;
  const full = MODEL_SCRIPTS["scripted-long"].reasoning;
  const live = states.filter((s) => s.state === "thinking");
  assert.ok(live.length >= 2, `the panel updated while thinking (${live.length} states)`);
  assert.ok(live.every((s) => s.label.includes("Thinking…")));
  assert.ok(live.some((s) => s.text.length > 0 && s.text.length < full.length && full.startsWith(s.text)), "partial reasoning was shown live");
  assert.equal(states.at(-1)?.state, "done");
  assert.match(states.at(-1)!.label, /Thought for \d+ seconds?/);
});

test("stopping an answer keeps the partial text, marked stopped, after a reload", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  // Press Stop as soon as the first reasoning shows: the whole answer takes well under a second.
  await page.evaluate(stopOnFirstReasoning("button"));
  await sendMessage(page, "scripted-long", "Think, then stop");
  const stopped = page.locator('[data-testid="assistant-message"][data-status="stopped"]');
  await stopped.waitFor();
  await page.reload();
  await stopped.waitFor();
  assert.equal(await stopped.getByTestId("status-note").innerText(), "Stopped");
  await stopped.getByTestId("reasoning-toggle").click();
  const kept = await stopped.getByTestId("reasoning-text").innerText();
  const full = MODEL_SCRIPTS["scripted-long"].reasoning;
  assert.ok(kept.length > 0 && kept.length < full.length, `a part of the reasoning was kept (${kept.length} of ${full.length})`);
  assert.ok(full.startsWith(kept));
  // Nothing is being written any more: the composer offers Send again.
  await page.getByTestId("send").waitFor();

  // Esc stops too.
  await page.evaluate(stopOnFirstReasoning("escape"));
  await sendMessage(page, "scripted-long", "Think, then Esc");
  await page.locator('[data-testid="assistant-message"][data-status="stopped"]').nth(1).waitFor();
});

test("editing a message and regenerating an answer keep both branches, with ‹ 1/2 › navigation", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, "scripted", "First version");
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();

  await page.getByTestId("user-message").getByRole("button", { name: "Edit" }).click();
  const edit = page.getByLabel("Edit message");
  await edit.fill("Second version");
  await edit.press("Enter");
  await page.getByTestId("user-message").getByText("Second version").waitFor();
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  const userNav = page.getByTestId("user-message").getByTestId("branch-nav");
  assert.equal((await userNav.innerText()).replace(/\s+/g, ""), "‹2/2›");
  await userNav.getByRole("button", { name: "Previous version" }).click();
  await page.getByTestId("user-message").getByText("First version").waitFor();

  await assistant(page).getByRole("button", { name: "Regenerate" }).click();
  await assistant(page).getByTestId("branch-nav").waitFor();
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  assert.equal((await assistant(page).getByTestId("branch-nav").innerText()).replace(/\s+/g, ""), "‹2/2›");

  // The branch shown is remembered by the server.
  await page.reload();
  await page.getByTestId("user-message").getByText("First version").waitFor();
  assert.equal((await assistant(page).getByTestId("branch-nav").innerText()).replace(/\s+/g, ""), "‹2/2›");
});

test("the sidebar lists conversations newest first, searches titles, renames and deletes", { timeout: 120_000 }, async () => {
  const list = page.getByTestId("conversation-list");
  const titles = async () => (await list.locator(".conversation-link").allInnerTexts()).map((t) => t.trim());
  assert.deepEqual((await titles()).slice(0, 2), ["First version", "Think, then stop"]);

  await page.getByLabel("Search conversations").fill("think");
  await list.getByText("First version").waitFor({ state: "detached" });
  assert.deepEqual((await titles()).sort(), ["Think it through", "Think, then stop"]);
  await page.getByLabel("Search conversations").fill("");
  await list.getByText("First version").waitFor();

  await page.getByRole("button", { name: "Rename First version" }).click({ force: true });
  await page.getByLabel("New title").fill("Renamed chat");
  await page.getByLabel("New title").press("Enter");
  await list.getByText("Renamed chat").waitFor();
  await page.getByRole("button", { name: "Delete Renamed chat" }).click({ force: true });
  await list.getByRole("button", { name: "Delete", exact: true }).click();
  await list.getByText("Renamed chat").waitFor({ state: "detached" });
  assert.equal(new URL(page.url()).pathname, "/");

  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
});
