/**
 * Models in the app, in a real browser, on a service at its first run with no reachable model:
 * the default pull fails (the local "Hugging Face" has no such repository), so the demo model is
 * served, and its note — why, and what to do — shows under the composer. The admin then does what
 * the note (and the demo's answer) says: pulls a model in Admin → Models from the local hub
 * (test/support/hubServer.ts), watches it reach 100%, loads it, and back in the chat the model
 * picker lists it — no restart — and it answers.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { ensureModel, MODEL_SCRIPTS } from "../../src/gguf/catalog.ts";
import { FakeHub } from "../support/hubServer.ts";
import { ADMIN, newPage, screenshot, sendMessage, startE2E, type E2E, type Watch } from "./browser.ts";

const MISSING = "hf:test/Missing-GGUF:Q4_K_M";
const SOURCE = "hf:test/Scripted-GGUF:Q8_0";
const PULLED = "scripted-Q8_0";

let hub: FakeHub;
let e2e: E2E;
let page: Page;
let seen: Watch;

before(async () => {
  hub = new FakeHub();
  await hub.start();
  hub.repos.set("test/Scripted-GGUF", [`${PULLED}.gguf`]);
  hub.files.set(`/test/Scripted-GGUF/resolve/main/${PULLED}.gguf`, await readFile(await ensureModel("scripted")));
  // First run: no model configured, the default source is pulled — and is not there.
  e2e = await startE2E([], {
    models: [],
    pullDefaultModel: true,
    defaultModelSource: MISSING,
    hfEndpoint: hub.baseUrl,
    allowPrivateNetwork: true,
    allowHttpPulls: true,
  });
  ({ page, seen } = await newPage(e2e));
});
after(async () => {
  await e2e?.close();
  await hub?.close();
});

test("the demo model's note says in the chat why it is served and what to do", { timeout: 60_000 }, async () => {
  await page.goto(e2e.url);
  await page.getByLabel("User name or e-mail").fill(ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const picker = page.getByLabel("Model", { exact: true });
  // (Preact sets an option's value as a property, not an attribute: options are found by their text.)
  await picker.locator("option", { hasText: "sputnik-demo" }).waitFor({ state: "attached" });
  assert.equal(await picker.inputValue(), "sputnik-demo");
  const note = page.getByRole("note");
  await note.waitFor();
  const text = await note.innerText();
  assert.match(text, new RegExp(`^Demo model: pulling ${MISSING} failed: `));
  assert.match(text, /Pull a real model .* in the app under Admin → Models/);
  assert.match(await page.getByTestId("model-details").innerText(), /[\d,]+ tokens of context · reasons before it answers/);
});

test("an admin pulls a model in the Models tab, loads it, and the picker lists it without a restart", { timeout: 120_000 }, async () => {
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("link", { name: "Models", exact: true }).click();
  await page.getByRole("heading", { name: "Pull a model" }).waitFor();
  // The demo model is listed as loaded, with its note.
  await page.getByTestId("loaded-models").locator('tr[data-model="sputnik-demo"]').getByText(/^Demo model: pulling/).waitFor();

  await page.getByLabel("Source").fill(SOURCE);
  await page.getByRole("button", { name: "Pull", exact: true }).click();
  const pull = page.getByTestId("pull").filter({ hasText: SOURCE });
  await pull.getByTestId("pull-percent").getByText("100%", { exact: true }).waitFor();
  await pull.getByTestId("pull-state").getByText("done").waitFor();
  assert.equal(await pull.getByRole("progressbar").getAttribute("value"), "100");

  const file = page.getByTestId("model-files").locator(`tr[data-file="${PULLED}"]`);
  await file.getByRole("button", { name: `Load ${PULLED}` }).click();
  await file.getByTestId("file-status").getByText("Loaded", { exact: true }).waitFor();
  await page.getByTestId("loaded-models").locator(`tr[data-model="${PULLED}"]`).waitFor();
  await screenshot(page, "admin-models.png");

  // Back in the chat (no reload): the picker has it, and "choose that model and ask again" works.
  await page.getByRole("link", { name: "Sputnik" }).first().click();
  const picker = page.getByLabel("Model", { exact: true });
  await picker.locator("option", { hasText: PULLED }).waitFor({ state: "attached" });
  await sendMessage(page, PULLED, "Hello");
  await page.getByTestId("answer").getByText(MODEL_SCRIPTS.scripted!.answer).waitFor();
  assert.equal(await page.getByRole("note").count(), 0, "the pulled model has no note");
  assert.deepEqual(seen, { dialogs: [], foreign: [], errors: [] });
});
