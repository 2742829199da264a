/**
 * Answers that belong to the server, in a real browser: an answer goes on while its page is away
 * and is there, whole, on return; a reload re-attaches to the live stream; the queue line moves as
 * the requests ahead finish; a disabled user's page says why and keeps the typed text.
 *
 * One sequence (parallel: 1), so other users' answers ahead make this one wait in line; the
 * stored copy of a streaming answer is written every 20 ms, so the test can watch it grow.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { findMessage } from "../../src/chat/conversations.ts";
import { MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { AppClient } from "../support/appClient.ts";
import { newPage, sendMessage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

const MODEL = "scripted-long";
const SCRIPT = MODEL_SCRIPTS[MODEL];

let e2e: E2E;
let page: Page;
let seen: Watch;
const others: AppClient[] = [];

before(async () => {
  e2e = await startE2E([MODEL], {
    parallel: 1,
    conversations: { flushIntervalMs: 20 },
    limits: {
      perIp: { requestsPerMinute: 0, tokensPerMinute: 0 },
      httpPerIpPerMinute: 0,
      maxConcurrentPerIp: 0,
      queue: { keepAliveMs: 200, assumedServiceMs: 600 },
    },
  });
  for (const name of ["ahead-one", "ahead-two", "ahead-three"]) {
    const client = new AppClient(e2e.url);
    const signup = await client.post("/api/auth/signup", { username: name, password: `${name}-pass-1` });
    assert.equal(signup.status, 201, signup.text);
    others.push(client);
  }
  ({ page, seen } = await newPage(e2e));
  await signUpInBrowser(page, e2e.url, { username: "reader", password: "reader-pass-1" });
  await page.getByText("How can I help you today?").waitFor();
});
after(() => e2e?.close());

/** Other users' answers, started one after another so they queue in this order (not awaited). */
async function busyAhead(count: number): Promise<Promise<unknown>[]> {
  const running: Promise<unknown>[] = [];
  for (const client of others.slice(0, count)) {
    const conv = await client.post("/api/conversations", { model: MODEL });
    running.push(client.post(`/api/conversations/${conv.body.id}/messages`, { content: "Go first", parent_id: null, model: MODEL }));
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  return running;
}

/** Every distinct text of the queue line, recorded in the page from the moment it is installed. */
const RECORD_QUEUE = `(() => {
  const texts = [];
  window.queueTexts = texts;
  new MutationObserver(() => {
    const t = document.querySelector('[data-testid="queue-position"]')?.textContent;
    if (t && texts[texts.length - 1] !== t) texts.push(t);
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
})()`;

test("the queue line shows the place and the wait, and both change as the line moves", { timeout: 120_000 }, async () => {
  await page.evaluate(RECORD_QUEUE);
  const ahead = await busyAhead(3);
  await sendMessage(page, MODEL, "Wait your turn");
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor({ timeout: 60_000 });
  await Promise.all(ahead);
  const texts = (await page.evaluate("window.queueTexts")) as string[];
  const places = texts.map((t) => {
    const m = /^You are #(\d+) in line, about (\d+) s$/.exec(t);
    assert.ok(m, `queue line: ${t}`);
    return { position: Number(m[1]), wait: Number(m[2]) };
  });
  assert.ok(places.length >= 2, `the line changed while waiting: ${texts.join(" | ")}`);
  assert.ok(new Set(places.map((p) => p.position)).size >= 2, `the place moved: ${texts.join(" | ")}`);
  for (let i = 1; i < places.length; i++) assert.ok(places[i]!.position <= places[i - 1]!.position, `never further back: ${texts.join(" | ")}`);
  assert.equal((await page.getByTestId("answer").innerText()).trim(), SCRIPT.answer);
});

test("an answer goes on while its page is away and is there, whole, on return", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  const ahead = await busyAhead(2);
  await sendMessage(page, MODEL, "Leave and come back");
  const streaming = page.locator('[data-testid="assistant-message"][data-status="streaming"]');
  await streaming.waitFor();
  const id = (await streaming.getAttribute("data-message-id"))!;

  // Leave while the answer waits its turn / is being written: a new page load, as when the tab is
  // closed and opened again, drops every connection the old page had.
  await page.goto(`${e2e.url}/`);
  await page.getByText("How can I help you today?").waitFor();
  const db = e2e.service.store.db;
  const atLeave = (await findMessage(db, id))!;
  assert.equal(atLeave.status, "streaming", "the page left before the answer ended");

  // Nobody watches it now: the stored copy still grows, to the whole answer.
  const lengths: number[] = [];
  let stored = atLeave;
  const deadline = Date.now() + 60_000;
  while (stored.status === "streaming" && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    stored = (await findMessage(db, id))!;
    lengths.push(stored.reasoning.length + stored.content.length);
  }
  assert.equal(stored.status, "complete");
  assert.equal(stored.reasoning, SCRIPT.reasoning);
  assert.equal(stored.content, SCRIPT.answer);
  const full = SCRIPT.reasoning.length + SCRIPT.answer.length;
  assert.ok(
    lengths.some((n) => n > atLeave.reasoning.length + atLeave.content.length && n < full),
    `the text grew while no page was attached (lengths seen: ${[...new Set(lengths)].join(", ")})`,
  );
  await Promise.all(ahead);

  // Back to it (the list as a fresh page loads it): the whole answer, with its title.
  await page.reload();
  await page.getByTestId("conversation-list").getByText("Leave and come back").click();
  const done = page.locator(`[data-testid="assistant-message"][data-message-id="${id}"][data-status="complete"]`);
  await done.waitFor();
  assert.equal((await done.getByTestId("answer").innerText()).trim(), SCRIPT.answer);
  await done.getByTestId("reasoning-toggle").click();
  assert.equal(await done.getByTestId("reasoning-text").innerText(), SCRIPT.reasoning);
});

test("a reload mid-answer re-attaches to the live stream", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  // Records the reasoning panel's states from the first moment of every page load.
  await page.addInitScript(`document.addEventListener("DOMContentLoaded", () => {
    const states = [];
    window.panelStates = states;
    new MutationObserver(() => {
      // The newest answer's panel: a try made again adds its answer below the earlier ones.
      const answers = document.querySelectorAll('[data-testid="assistant-message"]');
      const panel = answers[answers.length - 1]?.querySelector('[data-testid="reasoning"]');
      if (!panel) return;
      const entry = { state: panel.getAttribute("data-state") || "", text: panel.querySelector('[data-testid="reasoning-text"]')?.textContent || "" };
      const last = states[states.length - 1];
      if (!last || last.state !== entry.state || last.text !== entry.text) states.push(entry);
    }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  });`);
  // The reload must land while most of the reasoning is still to come, which depends on how fast
  // this machine runs the answers ahead and the reload: a try where the reloaded page first saw
  // more than half of the reasoning proves nothing either way, and is made again (at most 4 tries).
  const tries: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const ahead = await busyAhead(2);
    await sendMessage(page, MODEL, `Reload me (${attempt})`);
    const streaming = page.locator('[data-testid="assistant-message"][data-status="streaming"]');
    await streaming.waitFor();
    const id = await streaming.getAttribute("data-message-id");
    await page.reload();
    await page.locator(`[data-testid="assistant-message"][data-message-id="${id}"][data-status="complete"]`).waitFor({ timeout: 60_000 });
    await Promise.all(ahead);
    const states = (await page.evaluate("window.panelStates")) as Array<{ state: string; text: string }>;
    const live = states.filter((s) => s.state === "thinking" && s.text.length < SCRIPT.reasoning.length);
    const firstSeen = states.find((s) => s.text.length > 0)?.text.length ?? SCRIPT.reasoning.length;
    if (firstSeen * 2 > SCRIPT.reasoning.length && attempt < 4) {
      tries.push(`try ${attempt}: the reloaded page first saw ${firstSeen} of ${SCRIPT.reasoning.length} characters`);
      continue;
    }
    const partial = live.filter((s) => s.text.length > 0);
    assert.ok(firstSeen * 2 <= SCRIPT.reasoning.length, `no reload landed early enough in 4 tries: ${tries.join("; ")}`);
    assert.ok(partial.length >= 2, `after the reload the reasoning streamed live (${partial.length} partial states; ${tries.join("; ") || "first try"})`);
    assert.ok(partial.every((s) => SCRIPT.reasoning.startsWith(s.text)), "each live state is a prefix of the reasoning: nothing lost or doubled");
    assert.equal((await page.locator(`[data-message-id="${id}"]`).getByTestId("answer").innerText()).trim(), SCRIPT.answer);
    break;
  }
});

test("a disabled user's open page says why and keeps the typed text", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  const box = page.getByLabel("Message", { exact: true });
  await box.fill("Words I typed before");

  const users = await e2e.admin.get("/api/admin/users?q=reader");
  const reader = (users.body.data as Array<{ id: string; username: string }>).find((u) => u.username === "reader")!;
  assert.equal((await e2e.admin.post(`/api/admin/users/${reader.id}/disable`)).status, 200);

  await box.press("Enter");
  await page.getByTestId("account-disabled").getByText("Your account was disabled by an administrator.").waitFor();
  assert.equal(await box.inputValue(), "Words I typed before");
  assert.equal(await page.getByRole("button", { name: "Sign in" }).count(), 0, "the page did not drop to the sign-in form");
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
});
