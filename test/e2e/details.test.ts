/**
 * The chat's smaller details, in a real browser: an error is said once; the reasoning stays open
 * until the answer ends (as DeepSeek does), and after a reload its time counts from when the
 * thinking began; on a phone Send stays on the composer's row and Enter makes a new line; screen
 * readers hear when an answer ends (not every token); the sidebar costs one Tab stop per
 * conversation, with a skip link and keys for rename and delete; a locked-out sign-in says how
 * long to wait.
 *
 * The paced models are remote ones whose upstream (test/support/pacedUpstream.ts) writes a word
 * every 50 ms, so an answer streams for long enough to watch whatever the machine's speed; it
 * refuses a prompt starting with "too long" as a provider refuses one beyond its context (after
 * the answer was started: the failure is stored on the answer).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { startPacedUpstream, type PacedUpstream } from "../support/pacedUpstream.ts";
import { newPage, screenshot, sendMessage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

const PACED = { reasoning: "The user asks for a number. I will think about it for a little while, then answer with it.", answer: "The number you asked for is 42, as always.", tokenMs: 50 };
/** Thinks for about 2.5 s (50 words at 50 ms), so a reload early in the thought leaves most of it to come. */
const SLOW_THINKER = { reasoning: Array.from({ length: 10 }, (_, i) => `Thought ${i + 1} leads to the next.`).join(" "), answer: "So the number is 7, and that is final.", tokenMs: 50 };
const SLOW_ID = "slow-thinker";
const CONTEXT_ERROR = "This model's maximum context length is 8192 tokens. However, you requested 9100 tokens.";
const USER = { username: "details", password: "details-pass-1" };
/** A long id, as real ones are: on a phone the picker must give up room, not push Send to a row of its own. */
const PACED_ID = "deepseek-r1-distill-qwen-7b-paced";

let upstream: PacedUpstream;
let e2e: E2E;
let page: Page;
let seen: Watch;
const contexts: BrowserContext[] = [];

before(async () => {
  upstream = await startPacedUpstream({ [PACED_ID]: PACED, [SLOW_ID]: SLOW_THINKER }, { refuse: { match: /^too long/, status: 400, message: CONTEXT_ERROR } });
  e2e = await startE2E(["scripted"], { remoteModels: [{ id: PACED_ID, baseUrl: upstream.url }, { id: SLOW_ID, baseUrl: upstream.url }] });
  ({ page, seen } = await newPage(e2e));
  await signUpInBrowser(page, e2e.url, USER);
  await page.getByText("How can I help you today?").waitFor();
});
after(async () => {
  for (const context of contexts) await context.close();
  await e2e?.close();
  await upstream?.close();
});

/** How often `text` shows in the chat column (thread, notices, composer), the screen readers' announcer aside. */
const occurrences = async (p: Page, text: string) => {
  const shown = (await p.locator(".chat > :not([data-testid='announcer'])").allInnerTexts()).join("\n");
  return shown.split(text).length - 1;
};

/** Records, in the page, what the last answer and the announcer look like at every change. */
const RECORD = `(() => {
  const states = [];
  window.detailStates = states;
  new MutationObserver(() => {
    const answers = document.querySelectorAll('[data-testid="assistant-message"]');
    const last = answers[answers.length - 1];
    const entry = {
      status: last?.getAttribute("data-status") || "",
      answer: last?.querySelector('[data-testid="answer"]')?.textContent || "",
      open: Boolean(last?.querySelector('[data-testid="reasoning-text"]')),
      label: last?.querySelector('[data-testid="reasoning-toggle"]')?.textContent || "",
      announced: (document.querySelector('[data-testid="announcer"]')?.textContent || "").trim(),
    };
    const prev = states[states.length - 1];
    if (!prev || JSON.stringify(prev) !== JSON.stringify(entry)) states.push(entry);
  }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
})()`;
/** The focused element as `tag|accessible words` (its aria-label, else its text). */
const FOCUSED = `(() => {
  const el = document.activeElement;
  return el.tagName.toLowerCase() + "|" + (el.getAttribute("aria-label") ?? el.textContent.trim());
})()`;
type State = { status: string; answer: string; open: boolean; label: string; announced: string };
const states = async (p: Page) => (await p.evaluate("window.detailStates")) as State[];

test("a context-length error is shown once: under the failed answer, or in the bar when nothing was stored", { timeout: 60_000 }, async () => {
  // Refused by the provider after the answer started: stored on the answer, said there only.
  await page.evaluate(RECORD);
  await sendMessage(page, PACED_ID, "too long: a prompt the provider cannot take");
  const failed = page.locator('[data-testid="assistant-message"][data-status="error"]');
  await failed.waitFor();
  await page.getByTestId("announcer").getByText(/^The answer failed: /).waitFor();
  assert.match(await failed.getByTestId("status-note").innerText(), /maximum context length is 8192 tokens/);
  assert.equal(await occurrences(page, "maximum context length"), 1, await page.locator(".chat").innerText());
  assert.equal(await page.getByTestId("notice").count(), 0, "no notice bar repeating the answer's error");

  // Refused before anything was stored (the local model's own check): said in the bar only.
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, "scripted", "many words ".repeat(2500));
  await page.getByTestId("notice").getByText(/maximum context length is 2048 tokens/).waitFor();
  assert.equal(await occurrences(page, "maximum context length"), 1, await page.locator(".chat").innerText());
  assert.equal(await page.getByTestId("assistant-message").count(), 0);
  await page.getByTestId("notice").getByRole("button", { name: "Dismiss" }).click();
  await page.getByLabel("Message", { exact: true }).fill("");
});

test("the reasoning stays open while the answer is written and folds when it ends", { timeout: 60_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.evaluate(RECORD);
  await sendMessage(page, PACED_ID, "Which number?");
  const done = page.locator('[data-testid="assistant-message"][data-status="complete"]');
  await done.waitFor();
  const seenStates = await states(page);
  const writing = seenStates.filter((s) => s.status === "streaming" && s.answer !== "");
  assert.ok(writing.length >= 3, `the answer was seen being written (${writing.length} states)`);
  assert.ok(
    writing.every((s) => s.open),
    `the reasoning was open in every state while the answer was written: ${JSON.stringify(writing.filter((s) => !s.open))}`,
  );
  assert.ok(writing.every((s) => /^▾\s*Thought for \d+ seconds?$/.test(s.label.trim())), `labelled with the thinking time once the answer started: ${writing[0]?.label}`);
  // Ended: folded, with the time it thought (17 words at 50 ms; a loaded machine may stretch it).
  assert.equal(await done.getByTestId("reasoning-text").count(), 0, "folded once the answer ended");
  assert.match((await done.getByTestId("reasoning-toggle").innerText()).trim(), /^▸\s*Thought for (1 second|2 seconds)$/);
  assert.equal((await done.getByTestId("answer").innerText()).trim(), PACED.answer);
});

test("screen readers hear when an answer ends, once, not its tokens as they stream", { timeout: 60_000 }, async () => {
  const announcer = page.getByTestId("announcer");
  // A live region that is in the page before any answer (one inserted with its text is not read out).
  assert.equal(await announcer.getAttribute("role"), "status");
  assert.equal(await announcer.getAttribute("aria-live"), "polite");
  assert.equal(await page.locator('[data-testid="answer"][aria-live]').count(), 0, "the streaming answer itself is not a live region");

  // The paced answer of the test before: announced once, when it ended, with its text; nothing of
  // it while it streamed (the region still said the failure of the first test then).
  const recorded = await states(page);
  const finished = `Answer finished. ${PACED.answer}`;
  const changes = recorded.map((s) => s.announced).filter((a, i, all) => i === 0 || a !== all[i - 1]);
  assert.deepEqual(changes.slice(-1), [finished], JSON.stringify(changes));
  assert.equal(changes.filter((a) => a === finished).length, 1, JSON.stringify(changes));
  assert.ok(
    recorded.filter((s) => s.status === "streaming").every((s) => !s.announced.includes("42")),
    `nothing of the answer was announced while it streamed: ${JSON.stringify(changes)}`,
  );

  // Another answer in the same page: announced too, and a stop is told as a stop.
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, "scripted", "Hello there");
  await announcer.getByText(`Answer finished. ${MODEL_SCRIPTS.scripted.answer}`).waitFor();
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, PACED_ID, "Stop me");
  await page.locator('[data-testid="assistant-message"][data-status="streaming"] [data-testid="answer"]').waitFor();
  await page.getByTestId("stop").click();
  await announcer.getByText(/^Answer stopped\./).waitFor();
});

test("after a reload mid-thought, the thinking time counts from when the thinking began", { timeout: 60_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, SLOW_ID, "Think slowly");
  await page.locator('[data-testid="assistant-message"][data-status="streaming"] [data-testid="reasoning-text"]').waitFor();
  await page.reload();
  await page.evaluate(RECORD);
  const done = page.locator('[data-testid="assistant-message"][data-status="complete"]');
  await done.waitFor();
  const writing = (await states(page)).filter((s) => s.status === "streaming" && s.answer !== "");
  assert.ok(writing.length >= 3, `the answer was seen being written after the reload (${writing.length} states)`);
  // About 2.5 s of thinking, most of it after the reload: the label never counts from the re-attach.
  for (const state of writing) {
    const seconds = Number(/Thought for (\d+) seconds?/.exec(state.label)?.[1]);
    assert.ok(seconds >= 2, `while the answer was written: ${state.label}`);
  }
  // At least the 2.5 s paced; more only when the machine is slow to pace it (a loaded CI host).
  const final = Number(/Thought for (\d+) seconds/.exec(await done.getByTestId("reasoning-toggle").innerText())?.[1]);
  assert.ok(final >= 2 && final <= 6, `thought for ${final} s`);
});

test("the sidebar costs one Tab stop per conversation; a skip link comes first; keys rename and delete", { timeout: 60_000 }, async () => {
  // At least three entries (the tests before leave some; run alone, this one makes its own).
  await page.evaluate(`(async () => {
    const csrf = document.cookie.match(/sputnik_csrf=([^;]+)/)[1];
    const post = () => fetch("/api/conversations", { method: "POST", headers: { "content-type": "application/json", "x-sputnik-csrf": csrf }, body: "{}" });
    const { data } = await (await fetch("/api/conversations")).json();
    for (let n = data.length; n < 3; n++) await post();
  })()`);
  await page.goto(`${e2e.url}/`);
  const list = page.getByTestId("conversation-list");
  const links = list.locator(".conversation-link");
  await links.nth(2).waitFor();
  const entries = await links.count();

  // From the search box, Tab walks the conversations one stop each, then on to the account links.
  const focused = () => page.evaluate(FOCUSED) as Promise<string>;
  /** Focus moves in the page's next render: wait for it a moment before comparing. */
  const focusIs = async (expected: string) => {
    for (let tries = 0; tries < 50 && (await focused()) !== expected; tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await focused(), expected);
  };
  await page.getByLabel("Search conversations").focus();
  const stops: string[] = [];
  for (let i = 0; i <= entries; i++) {
    await page.keyboard.press("Tab");
    stops.push(await focused());
  }
  const titles = await links.allInnerTexts();
  assert.deepEqual(stops, [...titles.map((t) => `a|${t.trim()}`), "a|Settings"]);

  // The skip link is the page's first stop, before the sidebar, and leads into the main column.
  await page.getByRole("link", { name: "Sputnik", exact: true }).focus();
  await page.keyboard.press("Shift+Tab");
  assert.equal(await focused(), "a|Skip to content");
  assert.ok(await page.getByRole("link", { name: "Skip to content" }).isVisible(), "shown while focused");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate("document.activeElement.id"), "main");

  // An entry's buttons are reached with the arrows and the shortcuts, and focus comes back.
  const first = links.first();
  const title = (await first.innerText()).trim();
  const buttons = await page.locator(".conversation-item").first().locator(".conversation-actions button").evaluateAll((all) => all.map((b) => `button|${b.getAttribute("aria-label")}`));
  assert.ok(buttons.includes(`button|Rename ${title}`) && buttons.includes(`button|Delete ${title}`), JSON.stringify(buttons));
  await first.focus();
  for (const button of buttons) {
    await page.keyboard.press("ArrowRight");
    await focusIs(button);
  }
  await page.keyboard.press("ArrowLeft");
  await focusIs(buttons.at(-2) ?? `a|${title}`);
  await page.keyboard.press("Escape");
  await focusIs(`a|${title}`);
  await page.keyboard.press("ArrowDown");
  await focusIs(`a|${titles[1]!.trim()}`);
  await page.keyboard.press("ArrowUp");

  await page.keyboard.press("F2");
  await focusIs("input|New title");
  await page.keyboard.press("Control+A");
  await page.keyboard.type("Renamed by keyboard");
  await page.keyboard.press("Enter");
  await list.getByRole("link", { name: "Renamed by keyboard" }).waitFor();
  await focusIs("a|Renamed by keyboard");

  await page.keyboard.press("Delete");
  await focusIs("button|Keep");
  await page.keyboard.press("Escape");
  await focusIs("a|Renamed by keyboard");
  await page.keyboard.press("Delete");
  await page.keyboard.press("Shift+Tab");
  await focusIs("button|Delete");
  await page.keyboard.press("Enter");
  await list.getByRole("link", { name: "Renamed by keyboard" }).waitFor({ state: "detached" });
  assert.equal(await links.count(), entries - 1);
  // Deleted: focus goes on to the next conversation.
  await focusIs(`a|${titles[1]!.trim()}`);
});

test("on a phone, Send stays on the composer's row and Enter makes a new line", { timeout: 60_000 }, async () => {
  const context = await e2e.browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  contexts.push(context);
  const phone = await context.newPage();
  phone.setDefaultTimeout(20_000);
  await phone.goto(e2e.url);
  await phone.getByLabel("User name or e-mail").fill(USER.username);
  await phone.getByLabel("Password").fill(USER.password);
  await phone.getByRole("button", { name: "Sign in" }).click();
  await phone.getByText("How can I help you today?").waitFor();
  assert.equal(await phone.evaluate('matchMedia("(pointer: coarse)").matches'), true, "a touch screen");

  // The long model name, so the picker asks for the most room.
  await phone.getByLabel("Model", { exact: true }).selectOption(PACED_ID);
  const box = phone.getByLabel("Message", { exact: true });
  await box.fill("First line");
  await box.press("Enter");
  await box.pressSequentially("second line");
  assert.equal(await box.inputValue(), "First line\nsecond line");
  assert.equal(await phone.getByTestId("user-message").count(), 0, "Enter did not send");

  const send = (await phone.getByTestId("send").boundingBox())!;
  const picker = (await phone.getByLabel("Model", { exact: true }).boundingBox())!;
  const deepthink = (await phone.getByTestId("deepthink").boundingBox())!;
  const bar = (await phone.locator(".composer-bar").boundingBox())!;
  const composer = (await phone.locator(".composer").boundingBox())!;
  const middle = (b: { y: number; height: number }) => b.y + b.height / 2;
  assert.ok(Math.abs(middle(send) - middle(picker)) < 4 && Math.abs(middle(send) - middle(deepthink)) < 4, `one row: ${JSON.stringify({ send, picker, deepthink })}`);
  assert.ok(bar.height < send.height * 1.5, `the bar is one row high (${bar.height} px for a ${send.height} px button)`);
  assert.ok(send.x + send.width <= composer.x + composer.width, "Send is inside the composer");
  await screenshot(phone, "phone-composer.png");

  await phone.getByTestId("send").tap();
  await phone.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor();
  assert.equal(await phone.getByTestId("user-message").locator(".bubble").innerText(), "First line\nsecond line");

  // Editing a sent message works the same way: Enter is a new line, the button sends.
  await phone.getByTestId("user-message").getByRole("button", { name: "Edit" }).tap();
  const edit = phone.getByLabel("Edit message");
  await edit.press("End");
  await edit.press("Enter");
  await edit.pressSequentially("third line");
  assert.equal(await edit.inputValue(), "First line\nsecond line\nthird line");
  assert.equal(await phone.getByTestId("assistant-message").count(), 1, "Enter did not send the edit");

  // On a desktop keyboard Enter sends and Shift+Enter makes the new line.
  const desk = page.getByLabel("Message", { exact: true });
  await desk.fill("One");
  await desk.press("Shift+Enter");
  await desk.pressSequentially("two");
  assert.equal(await desk.inputValue(), "One\ntwo");
  assert.equal(await page.evaluate('matchMedia("(pointer: coarse)").matches'), false);
  await desk.fill("");
});

test("a locked-out sign-in says how long to wait", { timeout: 60_000 }, async () => {
  const context = await e2e.browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const guest = await context.newPage();
  guest.setDefaultTimeout(20_000);
  await guest.goto(e2e.url);
  let answer = "";
  // Five free failures for an account from one address, then growing blocks (1 s, 2 s, …).
  for (let i = 0; i < 12 && !answer.startsWith("Too many"); i++) {
    await guest.getByLabel("User name or e-mail").fill(USER.username);
    await guest.getByLabel("Password").fill(`wrong-password-${i}`);
    await guest.getByRole("button", { name: "Sign in" }).click();
    const alert = guest.getByRole("alert");
    await alert.waitFor();
    answer = (await alert.innerText()).trim();
  }
  assert.match(answer, /^Too many failed sign-in attempts\. Try again in \d+ seconds?\.$/);
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
});
