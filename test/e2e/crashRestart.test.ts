/**
 * The server dies (SIGKILL) or is stopped (SIGTERM) while a browser watches an answer being
 * written, and comes back on the same port and data directory: the page recovers by itself, with
 * no reload. "Connection lost" shows while the server is away and clears when it is back; the cut
 * answer is shown as interrupted (never "Stopped", which is the user's own Stop) with its text so
 * far and the time it really thought; the conversation gets its title; a new message can be sent.
 *
 * `sputnik serve` runs in its own process (test/support/serveProcess.ts). The answers it is killed
 * in run on `paced`, a remote model whose upstream lives in this process and writes a word every
 * 50 ms (test/support/pacedUpstream.ts): the kill lands mid-answer and after a known thinking
 * time whatever the machine's speed (the local scripted-long writes hundreds of tokens a second,
 * and thinks for about a second). The message sent after the recovery goes to scripted-long.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { ensureModel, MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { TEST_PASSWORD_HASHING } from "../support/accountsServer.ts";
import { pieces, startPacedUpstream, type PacedUpstream } from "../support/pacedUpstream.ts";
import { startServeProcess, writeServeConfig, type ServeProcess } from "../support/serveProcess.ts";
import { launchChromium, sendMessage, signUpInBrowser, watch, type Watch } from "./browser.ts";

const WORD_MS = 50;
const THOUGHTS = Array.from({ length: 12 }, (_, i) => `Step ${i + 1}: I weigh the question once more and keep what holds.`).join(" ");
const PACED = { reasoning: THOUGHTS, answer: "After all that thinking, the answer is 42 and nothing else.", tokenMs: WORD_MS };
/** Reasoning words seen in the page before the kill: 2.5 s of thinking at one word per 50 ms. */
const WORDS_BEFORE_KILL = 50;
const LONG = MODEL_SCRIPTS["scripted-long"]!;

let upstream: PacedUpstream;
let dataDir: string;
let configFile: string;
let server: ServeProcess | undefined;
let browser: Browser;
let page: Page;
let seen: Watch;

/** Starts `sputnik serve` on the config file; the first start picks the port, later ones reuse it. */
async function serve(): Promise<ServeProcess> {
  server = await startServeProcess(configFile);
  const config = JSON.parse(await readFile(configFile, "utf8")) as { port: number };
  if (config.port === 0) await writeFile(configFile, JSON.stringify({ ...config, port: Number(new URL(server.url).port) }));
  return server;
}

before(async () => {
  upstream = await startPacedUpstream({ paced: PACED });
  dataDir = await mkdtemp(join(tmpdir(), "sputnik-crash-e2e-"));
  configFile = join(dataDir, "config.json");
  await writeServeConfig(configFile, {
    dataDir,
    models: [await ensureModel("scripted-long")],
    remoteModels: [{ id: "paced", baseUrl: upstream.url }],
    parallel: 2,
    contextSize: 2048,
    // The SIGTERM test's answer cannot finish in this: it is cut by the drain.
    shutdownTimeoutMs: 1000,
    conversations: { flushIntervalMs: 50 },
    localEngine: { contextCache: { enabled: false } },
    auth: { passwordHashing: TEST_PASSWORD_HASHING },
  });
  await serve();
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  seen = watch(page, new URL(server!.url).origin);
  await signUpInBrowser(page, server!.url, { username: "survivor", password: "survivor-pass-1" });
  await page.getByText("How can I help you today?").waitFor();
});
after(async () => {
  await browser?.close();
  server?.kill("SIGKILL");
  await server?.exited;
  await upstream?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const notice = () => page.getByTestId("notice");
const words = (text: string) => pieces(text).length;

/** Waits until the streaming answer's reasoning shows at least `count` words. */
async function reasoningWords(count: number): Promise<void> {
  // Polled from here: the page's CSP forbids the string evaluation waitForFunction would use.
  const shown = `((document.querySelector('[data-testid="assistant-message"][data-status="streaming"] [data-testid="reasoning-text"]')?.textContent || "").match(/\\S+/g) || []).length`;
  const deadline = Date.now() + 20_000;
  while (((await page.evaluate(shown)) as number) < count) {
    if (Date.now() > deadline) throw new Error(`the reasoning did not reach ${count} words`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The page, left alone, clears "Connection lost" once the server is back: no reload. */
async function recovered(): Promise<void> {
  await notice().getByText(/Connection lost/).waitFor({ state: "detached", timeout: 45_000 });
}

test("SIGKILL mid-answer: the page says the connection is lost, then recovers by itself when the server is back", { timeout: 120_000 }, async () => {
  const question = "Think it over, then answer";
  await sendMessage(page, "paced", question);
  const answer = page.locator('[data-testid="assistant-message"]').last();
  await reasoningWords(WORDS_BEFORE_KILL);
  const loadsBefore = await page.evaluate("performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin");
  server!.kill("SIGKILL");
  await server!.exited;

  await notice().getByText(/Connection lost/).waitFor();
  assert.equal(await answer.getAttribute("data-status"), "streaming", "the page does not guess what became of the answer");

  await serve();
  await recovered();

  // The answer as the restarted server stored it: interrupted, not stopped, with its text so far.
  await page.locator('[data-testid="assistant-message"][data-status="interrupted"]').waitFor();
  const note = (await answer.getByTestId("status-note").innerText()).trim();
  assert.match(note, /^Interrupted/);
  assert.doesNotMatch(note, /Stopped/);
  const toggle = answer.getByTestId("reasoning-toggle");
  await toggle.click();
  const kept = await answer.getByTestId("reasoning-text").innerText();
  assert.ok(kept.length > 0 && PACED.reasoning.startsWith(kept.trim()), `the reasoning so far is kept: ${JSON.stringify(kept)}`);
  assert.ok(words(kept) >= WORDS_BEFORE_KILL / 2, `most of what was shown was stored (${words(kept)} words)`);
  // The thinking time stored while it thought, not the time since the page re-attached (a second
  // or less). The last write before the kill may lag what the page showed on a loaded machine, so
  // the shown time is checked against what was stored: the stored time, and at least as long as
  // the stored words took to arrive (one per WORD_MS upstream; half that, as a stalled server may
  // have read the first ones late and together).
  const conversationId = new URL(page.url()).pathname.split("/").pop()!;
  const stored = (await (await page.request.get(new URL(`/api/conversations/${conversationId}`, server!.url).toString())).json()) as {
    messages: Array<{ role: string; reasoning: string; reasoning_ms: number | null }>;
  };
  const storedAnswer = stored.messages.filter((m) => m.role === "assistant").at(-1)!;
  assert.equal(storedAnswer.reasoning.trim(), kept.trim(), "the page shows the stored reasoning");
  const storedMs = storedAnswer.reasoning_ms ?? 0;
  assert.ok(storedMs >= ((words(kept) - 1) * WORD_MS) / 2, `the stored thinking time (${storedMs} ms) covers its ${words(kept)} words`);
  const seconds = Number(/Thought for (\d+) seconds?/.exec(await toggle.innerText())?.[1]);
  assert.equal(seconds, Math.max(1, Math.round(storedMs / 1000)), `thought for ${seconds} s: the time stored before the kill (${storedMs} ms)`);

  // Titled after its first exchange although the answer never ended.
  await page.getByTestId("conversation-list").getByRole("link", { name: question }).waitFor();
  assert.equal(await page.evaluate("performance.getEntriesByType('navigation').length + ':' + performance.timeOrigin"), loadsBefore, "the page was never reloaded");

  // And the chat goes on.
  await sendMessage(page, "scripted-long", "And now?");
  const next = page.locator('[data-testid="assistant-message"]').last();
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').waitFor({ timeout: 60_000 });
  assert.equal((await next.getByTestId("answer").innerText()).trim(), LONG.answer);
  assert.equal(await notice().count(), 0);
});

test("SIGTERM mid-answer (graceful drain): the answer is finished or interrupted, never stopped; the page recovers", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await sendMessage(page, "paced", "Take your time");
  const answer = page.locator('[data-testid="assistant-message"]').last();
  await reasoningWords(5);
  server!.kill("SIGTERM");
  await server!.exited;
  assert.equal(server!.exitCode(), 0, server!.output().slice(-2000));
  await notice().getByText(/Connection lost/).waitFor();
  // Told by the server before it went: the answer is cut for the restart (its text so far kept).
  assert.equal(await answer.getAttribute("data-status"), "interrupted");

  await serve();
  await recovered();
  const status = await answer.getAttribute("data-status");
  assert.ok(status === "interrupted" || status === "complete", `status ${status}`);
  assert.equal(await answer.locator(".status-stopped").count(), 0);
  await page.getByTestId("conversation-list").getByRole("link", { name: "Take your time" }).waitFor();

  await sendMessage(page, "scripted-long", "Still there?");
  await page.locator('[data-testid="assistant-message"][data-status="complete"]').last().waitFor({ timeout: 60_000 });
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
});
