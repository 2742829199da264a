/**
 * Moderation in a real browser: nothing shown is ever removed silently. The scripted model answers
 * "Hello! I am the scripted test model. The answer is 42." and the policy `no-42` withholds on the
 * sentence with "42": the reasoning and the first two sentences reach the page first. A watcher in
 * the page records every text the answer and the reasoning showed while streaming; after the stream
 * ends, and after a reload, each of them is still on the page — folded behind the notice, one click
 * away — and the notice says which policy and why. A policy that trips before anything was shown
 * leaves only its notice. A refused question says so too, and the admin area lists the
 * interventions and the active policies.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { ADMIN, newPage, screenshot, sendMessage, startE2E, type E2E, type Watch } from "./browser.ts";

const scripted = MODEL_SCRIPTS.scripted!;
const SHOWN = "Hello! I am the scripted test model.";
const NOTICE = "Withheld by this server's policy 'no-42': No answers about 42.";

let e2e: E2E;
let page: Page;
let seen: Watch;

before(async () => {
  e2e = await startE2E(["scripted", "scripted-unicode"], {
    moderation: {
      policies: [
        { name: "no-42", applyTo: "output", blockWords: ["42"], reason: "No answers about 42." },
        // Trips on scripted-unicode's very first window (its reasoning): nothing may be shown.
        { name: "no-unicode", applyTo: "output", models: ["scripted-unicode"], blockPatterns: ["\\buni\\w*code\\b"], reason: "Not today." },
        { name: "no-zanzibar", applyTo: "input", blockWords: ["zanzibar"], reason: "Zanzibar is off-topic here." },
      ],
    },
  });
  ({ page, seen } = await newPage(e2e));
});
after(() => e2e?.close());

/** Records, in `window.shownTexts`, every text the streaming answer and its reasoning showed. */
const RECORD_SHOWN = `(() => {
  const shown = { answer: [], reasoning: [] };
  window.shownTexts = shown;
  const note = (list, text) => { if (text && list[list.length - 1] !== text) list.push(text); };
  new MutationObserver(() => {
    const live = document.querySelector('[data-testid="assistant-message"][data-status="streaming"]');
    if (!live) return;
    note(shown.answer, live.querySelector('[data-testid="answer"]')?.textContent || "");
    note(shown.reasoning, live.querySelector('[data-testid="reasoning-text"]')?.textContent || "");
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
})()`;

const answerMessage = (p: Page) => p.getByTestId("assistant-message").last();

/** The withheld answer as the page shows it once it ended: the notice, then what was shown, folded. */
async function checkWithheld(p: Page, shownWhileStreaming: { answer: string[]; reasoning: string[] }) {
  const message = answerMessage(p);
  await message.getByTestId("moderation-notice").waitFor();
  assert.equal((await message.getByTestId("moderation-notice").innerText()).trim(), NOTICE);
  assert.equal(await message.getByTestId("moderation-notice").getAttribute("data-action"), "withhold");
  const folded = message.getByTestId("moderation-shown");
  assert.equal(await folded.getAttribute("open"), null, "folded behind the notice");
  assert.equal(await message.getByTestId("answer").isVisible(), false);
  await folded.getByTestId("moderation-shown-toggle").click();
  const answer = (await message.getByTestId("answer").innerText()).trim();
  assert.equal(answer, SHOWN, "exactly what was shown before the trip is kept");
  await message.getByTestId("reasoning-toggle").click();
  const reasoning = await message.getByTestId("reasoning-text").innerText();
  assert.equal(reasoning, scripted.reasoning);
  // Nothing the page showed while streaming was taken away: each text is still there, in full.
  for (const text of shownWhileStreaming.answer) assert.ok(SHOWN.startsWith(text.trim()) && answer.includes(text.trim()), `answer text shown while streaming is kept: ${JSON.stringify(text)}`);
  for (const text of shownWhileStreaming.reasoning) assert.ok(reasoning.includes(text), `reasoning shown while streaming is kept: ${JSON.stringify(text)}`);
  assert.ok(!answer.includes("42"), "the withheld sentence never reached the page");
}

async function signIn(p: Page): Promise<void> {
  await p.goto(e2e.url);
  await p.getByLabel("User name or e-mail").fill(ADMIN.username);
  await p.getByLabel("Password").fill(ADMIN.password);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.getByText("How can I help you today?").waitFor();
}

test("a withhold after text was shown keeps that text, folded behind the notice, after the stream and after a reload", { timeout: 120_000 }, async () => {
  await signIn(page);
  await page.evaluate(RECORD_SHOWN);
  await sendMessage(page, "scripted", "What is the answer?");
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  const shown = (await page.evaluate("window.shownTexts")) as { answer: string[]; reasoning: string[] };
  assert.ok(shown.answer.length > 0 && shown.answer.at(-1)!.trim().length > 0, `the answer showed text while streaming: ${JSON.stringify(shown.answer)}`);
  assert.ok(shown.reasoning.length > 0, "the reasoning showed while streaming");
  await checkWithheld(page, shown);
  await screenshot(page, "moderation-withheld.png");

  await page.reload();
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  await checkWithheld(page, shown);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.foreign, []);
});

test("a withhold before any text shows only the notice: no answer or reasoning ever reached the page, also after a reload", { timeout: 60_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.evaluate(RECORD_SHOWN);
  await sendMessage(page, "scripted-unicode", "Greet me");
  const check = async () => {
    const message = answerMessage(page);
    await message.getByTestId("moderation-notice").waitFor();
    assert.equal((await message.getByTestId("moderation-notice").innerText()).trim(), "Withheld by this server's policy 'no-unicode': Not today.");
    assert.equal(await message.getByTestId("moderation-notice").getAttribute("data-action"), "withhold");
    // Nothing to fold away: no answer, no reasoning text, no "what was shown" section.
    assert.equal(await message.getByTestId("answer").count(), 0);
    assert.equal(await message.getByTestId("moderation-shown").count(), 0);
    const text = await message.innerText();
    for (const withheld of [MODEL_SCRIPTS["scripted-unicode"]!.reasoning.slice(0, 20), "你好"]) assert.equal(text.includes(withheld), false, `${withheld} is nowhere on the page`);
  };
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  await check();
  assert.deepEqual(await page.evaluate("window.shownTexts"), { answer: [], reasoning: [] }, "no text was shown while streaming");
  await page.reload();
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  await check();
  assert.deepEqual(seen.errors, []);
});

test("a refused question says which policy refused it and why", { timeout: 60_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, "scripted", "Plan a trip to Zanzibar");
  const notice = page.getByTestId("notice");
  await notice.waitFor();
  assert.match(await notice.innerText(), /Withheld by this server's policy 'no-zanzibar': Zanzibar is off-topic here\./);
  // Users see what they are talking to: the picked model's active policies, by name.
  assert.equal((await page.getByTestId("model-moderation").innerText()).trim(), "Moderated by this server's policies: no-42, no-zanzibar");
});

test("admins see the active policies and every intervention in Admin → Moderation", { timeout: 60_000 }, async () => {
  await page.goto(`${e2e.url}/admin/moderation`);
  const policies = page.getByTestId("moderation-policies");
  await policies.waitFor();
  assert.match(await policies.innerText(), /no-42[\s\S]*output[\s\S]*withhold[\s\S]*No answers about 42\./);
  const events = page.getByTestId("moderation-events");
  await events.waitFor();
  const rows = await events.locator("tbody tr").allInnerTexts();
  assert.ok(rows.some((r) => /no-42[\s\S]*withhold[\s\S]*content after 36 characters[\s\S]*words: 42/.test(r)), rows.join("\n"));
  assert.ok(rows.some((r) => /no-zanzibar[\s\S]*question/.test(r)), rows.join("\n"));
  assert.deepEqual(seen.errors, []);
});
