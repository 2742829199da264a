/**
 * The personal library in a real browser (issue 15): the Documents page lists the user's files with
 * their indexing, uploads by button and by drop, deletes after a confirm; "Use in chat" puts a file
 * on the composer as a chip (removing the chip keeps the file) and the answer cites it. Regenerating
 * that answer and editing its question read the same documents again, after a reload too. A shared
 * link shows the answer's numbered sources, a document by its name only: no download link, no id.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { newPage, sendMessage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

let e2e: E2E;
let page: Page;
let seen: Watch;
/** The bodies of the message requests the page sent (POST /api/conversations/:id/messages). */
const sent: Array<Record<string, unknown>> = [];
const USER = { username: "librarian", password: "librarian-pass-1" };
const KEEP = { name: "tower.md", text: "# The tower\n\nThe tower is 330 metres tall and was finished in 1889.\n" };
const GONE = { name: "gone.txt", text: "This one will be deleted.\n" };
let keepId = "";

before(async () => {
  e2e = await startE2E(["scripted-cite"], { contextSize: 8192 });
  // The default plan gets `documents` (the plan of every account without one of its own).
  const listed = await e2e.admin.get("/api/admin/billing/plans");
  assert.equal(listed.status, 200, listed.text);
  const { id: _id, ...plan } = (listed.body.plans as Array<Record<string, unknown>>).find((p) => p.id === "free")!;
  const saved = await e2e.admin.put("/api/admin/billing/plans/free", { ...plan, features: ["documents"] });
  assert.equal(saved.status, 200, saved.text);

  ({ page, seen } = await newPage(e2e));
  page.on("request", (request) => {
    if (request.method() === "POST" && /\/api\/conversations\/[^/]+\/messages$/.test(new URL(request.url()).pathname)) sent.push(request.postDataJSON() as Record<string, unknown>);
  });
  await signUpInBrowser(page, e2e.url, USER);
  await page.getByText("How can I help you today?").waitFor();
});
after(async () => {
  await e2e?.close();
});

const rows = () => page.getByTestId("document-row");
const row = (name: string) => rows().filter({ hasText: name });
const latest = () => page.getByTestId("assistant-message").last();
const storedNamed = (name: string) => e2e.service.store.db.selectFrom("files").select("id").where("filename", "=", name).execute();

async function openLibrary(): Promise<void> {
  await page.getByRole("navigation", { name: "Account" }).getByRole("link", { name: "Documents" }).click();
  await page.getByRole("heading", { name: "Documents", exact: true }).waitFor();
}

test("the library uploads by button and by drop, lists the files with their status, and deletes after a confirm", { timeout: 90_000 }, async () => {
  await openLibrary();
  await page.getByText("No documents yet.").waitFor();

  const chooser = page.waitForEvent("filechooser");
  await page.getByTestId("documents-upload").click();
  await (await chooser).setFiles([{ name: KEEP.name, mimeType: "text/markdown", buffer: Buffer.from(KEEP.text) }]);
  await row(KEEP.name).and(page.locator('[data-status="processed"]')).waitFor();

  // Dropped on the page: the same upload.
  const dropped = await page.evaluateHandle(`(() => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([${JSON.stringify(GONE.text)}], ${JSON.stringify(GONE.name)}, { type: "text/plain" }));
    return transfer;
  })()`);
  await page.getByTestId("documents-drop").dispatchEvent("drop", { dataTransfer: dropped });
  await row(GONE.name).and(page.locator('[data-status="processed"]')).waitFor();
  assert.equal(await rows().count(), 2);

  // Name (a download link), size, type, status, date.
  [{ id: keepId }] = await storedNamed(KEEP.name);
  const cells = await row(KEEP.name).locator("td").allInnerTexts();
  assert.equal(cells[0], KEEP.name);
  assert.equal(cells[1], `${Buffer.byteLength(KEEP.text)} B`);
  assert.equal(cells[2], "Markdown");
  assert.equal(cells[3], "Ready");
  assert.ok(cells[4] && cells[4] !== "—", cells[4]);
  assert.equal(await row(KEEP.name).getByTestId("document-download").getAttribute("href"), `/api/files/${keepId}/content`);
  const total = Buffer.byteLength(KEEP.text) + Buffer.byteLength(GONE.text);
  assert.equal(await page.getByTestId("documents-storage").innerText(), `${total} B in 2 files`);

  // Delete asks first: "Keep" leaves it, "Delete" removes the file from the list and the store.
  await page.getByRole("button", { name: `Delete ${GONE.name}` }).click();
  await row(GONE.name).getByRole("button", { name: "Keep" }).click();
  await page.getByRole("button", { name: `Delete ${GONE.name}` }).click();
  await row(GONE.name).getByRole("button", { name: "Delete", exact: true }).click();
  await row(GONE.name).waitFor({ state: "detached" });
  assert.deepEqual(await storedNamed(GONE.name), []);
  assert.equal(await rows().count(), 1);
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
});

test("'Use in chat' puts the file on the composer (removing the chip keeps it) and the answer cites it", { timeout: 90_000 }, async () => {
  await row(KEEP.name).getByRole("button", { name: "Use in chat" }).click();
  const chip = page.getByTestId("attachment").filter({ hasText: KEEP.name });
  await chip.and(page.locator('[data-state="processed"]')).waitFor();
  assert.equal(new URL(page.url()).pathname, "/");

  // A library file is not the message's own upload: taking the chip away leaves it stored.
  await chip.getByRole("button", { name: `Remove ${KEEP.name}` }).click();
  await chip.waitFor({ state: "detached" });
  await page.waitForTimeout(300);
  assert.equal((await storedNamed(KEEP.name)).length, 1);

  await openLibrary();
  await row(KEEP.name).getByRole("button", { name: "Use in chat" }).click();
  await chip.and(page.locator('[data-state="processed"]')).waitFor();
  await sendMessage(page, "scripted-cite", "How tall is the tower?");
  await latest().and(page.locator('[data-status="complete"]')).waitFor();
  assert.deepEqual(sent.at(-1)?.file_ids, [keepId]);
  const chips = await latest().getByTestId("source-chips").locator("a").allInnerTexts();
  assert.ok(chips.length >= 1 && chips.every((c) => c.includes(KEEP.name)), chips.join(" | "));
  assert.equal(await latest().getByTestId("answer").locator('a[data-citation="1"]').getAttribute("href"), new URL(`/api/files/${keepId}/content`, e2e.url).href);
});

test("regenerating an answer and editing its question read the same documents again, after a reload too", { timeout: 120_000 }, async () => {
  // A reload: the page forgets what it sent; the answer's stored sources still say which documents.
  await page.reload();
  await latest().getByTestId("source-chips").waitFor();
  const before = sent.length;
  await latest().getByRole("button", { name: "Regenerate" }).click();
  await latest().getByTestId("branch-nav").waitFor();
  await latest().and(page.locator('[data-status="complete"]')).waitFor();
  assert.equal(sent.length, before + 1);
  assert.equal(typeof sent.at(-1)?.regenerate, "string");
  assert.deepEqual(sent.at(-1)?.file_ids, [keepId]);
  assert.equal((await latest().getByTestId("branch-nav").innerText()).replace(/\s+/g, ""), "‹2/2›");
  assert.ok((await latest().getByTestId("source-chips").innerText()).includes(KEEP.name));

  await page.getByTestId("user-message").getByRole("button", { name: "Edit" }).click();
  const edit = page.getByLabel("Edit message");
  await edit.fill("And when was the tower finished?");
  await edit.press("Enter");
  await page.getByTestId("user-message").getByText("And when was the tower finished?").waitFor();
  await latest().and(page.locator('[data-status="complete"]')).waitFor();
  assert.equal(sent.at(-1)?.content, "And when was the tower finished?");
  assert.deepEqual(sent.at(-1)?.file_ids, [keepId]);
  await latest().getByTestId("source-chips").waitFor();
  assert.ok((await latest().getByTestId("source-chips").innerText()).includes(KEEP.name));
  assert.deepEqual(seen.errors, []);
});

test("a shared link shows the answer's source chips, a document by name only: no download link, no id", { timeout: 90_000 }, async () => {
  await page.getByTestId("chat-menu").click();
  await page.getByRole("button", { name: "Share…" }).click();
  const panel = page.getByTestId("share-panel");
  await panel.getByRole("button", { name: "Create link" }).click();
  const link = await panel.getByTestId("share-link").inputValue();

  // What the link's API gives anyone: the file's name, not its id.
  const shared = await (await fetch(`${e2e.url}/api/shared/${new URL(link).pathname.slice(3)}`)).text();
  assert.ok(shared.includes(KEEP.name), shared);
  assert.ok(!shared.includes(keepId), "the shared conversation names no file id");
  assert.ok(!shared.includes("330 metres"), "nor quotes the document's passages");

  const visitor = await newPage(e2e);
  try {
    await visitor.page.goto(link);
    const answer = visitor.page.locator('[data-testid="shared-message"][data-role="assistant"]');
    const chips = answer.getByTestId("source-chips");
    await chips.waitFor();
    const chipTexts = await chips.innerText();
    assert.ok(chipTexts.includes(KEEP.name), chipTexts);
    assert.ok(chipTexts.trim().startsWith("1"), chipTexts);
    assert.equal(await chips.locator("a").count(), 0, "a document's chip is no link");
    await answer.locator(".markdown:not([data-pending])").waitFor();
    assert.equal(await visitor.page.locator('a[href*="/api/files"]').count(), 0, "no download link anywhere");
    assert.equal(await answer.locator("a[data-citation]").count(), 0, "[1] stays text: it has nowhere to lead");
    assert.deepEqual(visitor.seen.errors, []);
    assert.deepEqual(visitor.seen.foreign, []);
  } finally {
    await visitor.context.close();
  }
});
