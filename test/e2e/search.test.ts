/**
 * Search and documents in a real browser (issue 15): the Search toggle and the attach button follow
 * the plan's features; an attached document uploads, shows its indexing, and can be removed; a
 * question with Search on and a document attached shows "Searched N pages · read N documents"
 * while the answer is written and numbered source chips after it, its `[n]` are links to the
 * sources, and all of it is back after a reload. A citation followed by markup in model output
 * stays text: no element is injected, nothing runs.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";
import { pageWithNavigation, startLocalSite, type LocalSite } from "../support/localSite.ts";
import { newPage, screenshot, sendMessage, signUpInBrowser, startE2E, type E2E, type Watch } from "./browser.ts";

let site: LocalSite;
let e2e: E2E;
let page: Page;
let seen: Watch;
const USER = { username: "searcher", password: "searcher-pass-1" };

/**
 * The search server: a local route answering SearXNG's JSON format (test/search-web.test.ts runs the
 * real searx), and the result pages on the same local site, read through the egress guard (the
 * site's origin is trusted by startService's test option, never by config).
 */
before(async () => {
  site = await startLocalSite({
    "/search": (_req, res) =>
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          query: "",
          results: [
            { url: `${site.origin}/launch`, title: "Sputnik 1 launch", content: "The first satellite.", engine: "local" },
            { url: `${site.origin}/laika`, title: "Laika", content: "A dog in orbit.", engine: "local" },
          ],
        }),
      ),
    "/launch": (_req, res) =>
      res.writeHead(200, { "content-type": "text/html" }).end(pageWithNavigation("Sputnik 1 launch", ["Sputnik 1 was launched on 4 October 1957 from the Baikonur Cosmodrome."])),
    "/laika": (_req, res) => res.writeHead(200, { "content-type": "text/html" }).end(pageWithNavigation("Laika", ["Laika, a dog from Moscow, flew on Sputnik 2 in November 1957."])),
  });
  e2e = await startE2E(
    ["scripted", "scripted-cite", "scripted-cite-xss"],
    {
      // Passages make prompts long, and the scripted tokenizer spells unknown words byte by byte.
      contextSize: 8192,
      search: { web: { provider: "searxng", url: site.origin, allowPrivateNetwork: true, allowHttp: true, pagesToRead: 2, cacheTtlMs: 0 } },
    },
    { trustedPageOrigins: [site.origin] },
  );
  ({ page, seen } = await newPage(e2e));
  await signUpInBrowser(page, e2e.url, USER);
  await page.getByText("How can I help you today?").waitFor();
});
after(async () => {
  await e2e?.close();
  await site?.stop();
});

const searchToggle = () => page.getByTestId("search-toggle");
const attachButton = () => page.getByRole("button", { name: "Attach files" });
const chips = () => page.getByTestId("attachment");

/** Sets the default plan's features through the admin API (the plan of every account without one). */
async function setPlanFeatures(features: string[]): Promise<void> {
  const listed = await e2e.admin.get("/api/admin/billing/plans");
  assert.equal(listed.status, 200, listed.text);
  const plan = (listed.body.plans as Array<Record<string, unknown>>).find((p) => p.id === "free");
  assert.ok(plan, "the default plan exists");
  const { id: _id, ...rest } = plan;
  const saved = await e2e.admin.put("/api/admin/billing/plans/free", { ...rest, features });
  assert.equal(saved.status, 200, saved.text);
}

/** Picks files through the attach button's file chooser, as a user does. */
async function attach(files: Array<{ name: string; mimeType: string; text: string }>): Promise<void> {
  const chooser = page.waitForEvent("filechooser");
  await attachButton().click();
  await (await chooser).setFiles(files.map((f) => ({ name: f.name, mimeType: f.mimeType, buffer: Buffer.from(f.text) })));
}

test("Search and attach are offered only when the plan includes them", { timeout: 60_000 }, async () => {
  // The default plan has no features: both are greyed out (once the page has read the plan), and say why.
  await page.locator('[data-testid="search-toggle"]:disabled').waitFor();
  assert.equal(await searchToggle().getAttribute("aria-pressed"), "false");
  assert.equal(await page.locator("span", { has: searchToggle() }).getAttribute("title"), "Your plan does not include web search");
  assert.equal(await attachButton().isDisabled(), true);
  assert.equal(await page.locator("span", { has: attachButton() }).getAttribute("title"), "Your plan does not include documents");

  await setPlanFeatures(["search", "documents"]);
  await page.reload();
  await page.getByText("How can I help you today?").waitFor();
  await page.locator('[data-testid="search-toggle"]:not(:disabled)').waitFor();
  assert.equal(await attachButton().isDisabled(), false);

  // A toggle reachable from the keyboard, saying its state; remembered across a reload, as DeepThink is.
  await searchToggle().focus();
  await page.keyboard.press("Space");
  assert.equal(await searchToggle().getAttribute("aria-pressed"), "true");
  await page.reload();
  await page.locator('[data-testid="search-toggle"][aria-pressed="true"]').waitFor();
  await searchToggle().focus();
  await page.keyboard.press("Enter");
  assert.equal(await searchToggle().getAttribute("aria-pressed"), "false");
});

test("an attached document uploads, shows its indexing until ready, and can be removed", { timeout: 60_000 }, async () => {
  await attach([{ name: "notes.md", mimeType: "text/markdown", text: "# Notes\n\nThe tower is 330 metres tall.\n" }]);
  const chip = chips().filter({ hasText: "notes.md" });
  await chip.waitFor();
  await page.locator('[data-testid="attachment"][data-state="processed"]').waitFor();
  assert.equal((await chip.getByTestId("attachment-status").innerText()).trim(), "Ready");

  // Removed: the chip goes, and so does the stored file (nothing else uses it yet).
  await chip.getByRole("button", { name: "Remove notes.md" }).click();
  await chip.waitFor({ state: "detached" });
  for (let i = 0; i < 50; i++) {
    const left = await e2e.service.store.db.selectFrom("files").select("id").where("filename", "=", "notes.md").execute();
    if (left.length === 0) break;
    await page.waitForTimeout(100);
  }
  assert.deepEqual(await e2e.service.store.db.selectFrom("files").select("id").where("filename", "=", "notes.md").execute(), []);
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
});

const NOTES = "# Sputnik notes\n\nSputnik 1 was launched in October 1957 and beeped for three weeks.\n";
const QUESTION = "When was Sputnik 1 launched, and who flew later?";
const latest = () => page.getByTestId("assistant-message").last();

/** Records, from inside the page, how the first "Searched…" line looked and what state its answer was in. */
async function watchSearchedLine(): Promise<void> {
  await page.evaluate(`(() => {
    window.searchedSeen = null;
    const observer = new MutationObserver(() => {
      const line = document.querySelector('[data-testid="searched"]');
      if (!line || window.searchedSeen) return;
      const message = line.closest('[data-testid="assistant-message"]');
      window.searchedSeen = {
        status: message && message.getAttribute("data-status"),
        summary: line.querySelector('[data-testid="searched-summary"]').textContent,
        chips: document.querySelectorAll('[data-testid="source-chips"]').length,
      };
      observer.disconnect();
    });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true });
  })()`);
}

/** A link's address, absolute. */
const hrefOf = async (link: ReturnType<Page["locator"]>) => new URL((await link.getAttribute("href"))!, e2e.url).href;

/** Follows a source link as a user would: a web page opens in a new tab, a document downloads. Returns what arrived. */
async function follow(link: ReturnType<Page["locator"]>): Promise<{ url: string; text: string }> {
  const href = await hrefOf(link);
  if (new URL(href).pathname.startsWith("/api/files/")) {
    const download = page.waitForEvent("download");
    await link.click();
    const file = await download;
    const stream = await file.createReadStream();
    const parts: Buffer[] = [];
    for await (const part of stream) parts.push(part as Buffer);
    return { url: file.url(), text: Buffer.concat(parts).toString("utf8") };
  }
  assert.equal(await link.getAttribute("target"), "_blank");
  assert.deepEqual((await link.getAttribute("rel"))?.split(/\s+/).filter((r) => r === "noopener" || r === "noreferrer").sort(), ["noopener", "noreferrer"]);
  const opened = page.context().waitForEvent("page");
  await link.click();
  const tab = await opened;
  await tab.waitForLoadState();
  const result = { url: tab.url(), text: await tab.locator("body").innerText() };
  await tab.close();
  return result;
}

test("with Search on and a document attached, the answer shows what it read while written and cites it after", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.getByText("How can I help you today?").waitFor();
  await attach([{ name: "sputnik-notes.md", mimeType: "text/markdown", text: NOTES }]);
  await page.locator('[data-testid="attachment"][data-state="processed"]').waitFor();
  if ((await searchToggle().getAttribute("aria-pressed")) !== "true") await searchToggle().click();
  assert.equal(await searchToggle().getAttribute("aria-pressed"), "true");

  await watchSearchedLine();
  await sendMessage(page, "scripted-cite", QUESTION);
  // The chips left the composer with the message.
  await page.getByTestId("attachments").waitFor({ state: "detached" });
  await latest().and(page.locator('[data-status="complete"]')).waitFor();

  // While the answer was being written the line was there already, before any source chip.
  const first = (await page.evaluate("window.searchedSeen")) as { status: string; summary: string; chips: number } | null;
  assert.ok(first, "the searched line showed");
  assert.equal(first.status, "streaming");
  assert.equal(first.chips, 0);
  assert.equal(first.summary, "Searched 2 pages · read 1 document");

  // The line opens into the list of sources, numbered, with their hosts and file names.
  const answer = latest();
  await answer.getByTestId("searched-toggle").click();
  const listed = answer.getByTestId("searched-list").locator("li");
  const sources = await listed.allInnerTexts();
  assert.ok(sources.length >= 2, sources.join(" | "));
  assert.ok(sources.some((s) => s.includes("Sputnik 1 launch") && s.includes(new URL(site.origin).host)), sources.join(" | "));
  assert.ok(sources.some((s) => s.includes("sputnik-notes.md")), sources.join(" | "));

  // Numbered chips under the answer, one per source, as links to them.
  const chipLinks = answer.getByTestId("source-chips").locator("a");
  assert.equal(await chipLinks.count(), sources.length);
  const chipTexts = await chipLinks.allInnerTexts();
  chipTexts.forEach((t, i) => assert.ok(t.trim().startsWith(String(i + 1)), t));

  // [1] and [2] in the answer are links to sources 1 and 2 — the chips' addresses — and lead there.
  const citations = answer.getByTestId("answer").locator("sup.citation a");
  assert.deepEqual(await citations.allInnerTexts(), ["1", "2"]);
  for (const n of [1, 2]) {
    const cited = answer.getByTestId("answer").locator(`a[data-citation="${n}"]`);
    const chip = chipLinks.nth(n - 1);
    assert.equal(await hrefOf(cited), await hrefOf(chip));
    const arrived = await follow(cited);
    if (arrived.url.includes("/api/files/")) assert.equal(arrived.text, NOTES);
    else assert.match(arrived.text, /Sputnik 1 was launched|Laika, a dog/);
  }
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);

  // After a reload the stored answer has the same line, chips and links.
  await page.reload();
  await latest().getByTestId("source-chips").waitFor();
  assert.match(await latest().getByTestId("searched-summary").innerText(), /^Searched \d pages? · read 1 document$/);
  assert.deepEqual(await latest().getByTestId("source-chips").locator("a").allInnerTexts(), chipTexts);
  assert.equal(await latest().getByTestId("answer").locator("sup.citation a").count(), 2);
  await latest().getByTestId("searched-toggle").click();
  await screenshot(page, "search.png");
});

test("a citation followed by markup in model output stays text: no element, nothing runs", { timeout: 120_000 }, async () => {
  await page.getByRole("button", { name: "+ New chat" }).click();
  await page.getByText("How can I help you today?").waitFor();
  assert.equal(await searchToggle().getAttribute("aria-pressed"), "true");
  await sendMessage(page, "scripted-cite-xss", "Cite your sources");
  await latest().and(page.locator('[data-status="complete"]')).waitFor();
  const answer = latest().getByTestId("answer");
  await answer.locator(".markdown:not([data-pending])").waitFor();
  const text = await answer.innerText();
  assert.ok(text.includes("<img src=x onerror=alert(1)>"), text);
  assert.ok(text.includes("<script>alert(2)</script>"), text);
  assert.equal(await answer.locator("img, script, iframe, object, embed").count(), 0);
  // Only the numbers became links.
  assert.deepEqual(await answer.locator("sup.citation a").allInnerTexts(), ["1", "2"]);
  assert.equal(await answer.locator("a").count(), 2);
  await page.waitForTimeout(300);
  assert.deepEqual(seen.dialogs, []);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.foreign, []);
});

test("at phone width the composer's controls and the source chips fit the screen", { timeout: 60_000 }, async () => {
  await page.setViewportSize({ width: 390, height: 800 });
  try {
    // The sidebar becomes a closed drawer (it slides away): measure once it has.
    await page.locator(".sidebar").waitFor({ state: "hidden" });
    await latest().getByTestId("source-chips").waitFor();
    for (const control of [searchToggle(), attachButton(), page.getByTestId("deepthink"), page.getByTestId("send")]) {
      const box = await control.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${await control.getAttribute("data-testid")} at ${JSON.stringify(box)}`);
    }
    assert.ok(((await page.evaluate("document.documentElement.scrollWidth")) as number) <= 390, "nothing scrolls sideways");
    const chips = await latest().getByTestId("source-chips").boundingBox();
    assert.ok(chips && chips.x + chips.width <= 390, JSON.stringify(chips));
    await screenshot(page, "search-phone.png");
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 });
  }
});

test("a send the plan refuses gives back its text and its documents, with the server's reason", { timeout: 90_000 }, async () => {
  // The plan loses `search` while the page, read before, still offers it: the server decides.
  await setPlanFeatures(["documents"]);
  try {
    await page.getByRole("button", { name: "+ New chat" }).click();
    await page.getByText("How can I help you today?").waitFor();
    assert.equal(await searchToggle().getAttribute("aria-pressed"), "true");
    await attach([{ name: "refused.txt", mimeType: "text/plain", text: "Nothing to see here." }]);
    await page.locator('[data-testid="attachment"][data-state="processed"]').waitFor();
    await sendMessage(page, "scripted-cite", "Search this for me");
    await page.getByTestId("notice").getByText(/does not include search/).waitFor();
    assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), "Search this for me");
    await chips().filter({ hasText: "refused.txt" }).waitFor();
    assert.equal(await chips().count(), 1);
    assert.equal(await page.getByTestId("assistant-message").count(), 0);
  } finally {
    await setPlanFeatures(["search", "documents"]);
  }
});
