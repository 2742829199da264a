import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { openTestStore, DIALECTS } from "../../../test/support/databases.ts";
import { createFile, getFile } from "../store/files.ts";
import { FileIndexer } from "./indexer.ts";

const logger = pino({ level: "silent" });
const config = { indexConcurrency: 1, maxFileBytes: 1_000_000, staleIndexingMs: 60_000 };
const markdown = (title: string) => new TextEncoder().encode(`# ${title}\n\n${"A paragraph about orbits and satellites. ".repeat(40)}\n\n## Second part\n\n${"Another paragraph on telemetry. ".repeat(40)}\n`);

for (const dialect of DIALECTS) {
  test(`indexer: files a dead process left 'processing' are indexed again at start [${dialect}]`, async (t) => {
    const store = await openTestStore(t, dialect);
    if (!store) return;
    const now = Date.now();
    // Left by a process that died an hour ago (PostgreSQL only picks up what is stale), with half its chunks written.
    const leftover = await createFile(store.db, { userId: "u1", filename: "left.md", mime: "text/markdown", purpose: "assistants", content: markdown("Left over") }, now - 2 * 60 * 60_000);
    await store.db.updateTable("files").set({ chunks_total: 99, chunks_indexed: 3 }).where("id", "=", leftover.id).execute();
    // A fresh upload another gateway may be indexing right now: on PostgreSQL it is not ours to take.
    const fresh = await createFile(store.db, { userId: "u1", filename: "fresh.md", mime: "text/markdown", purpose: "assistants", content: markdown("Fresh") }, now);

    const indexer = new FileIndexer({ db: store.db, dialect, config, logger });
    await indexer.start();
    await indexer.idle();
    indexer.close();

    const done = (await getFile(store.db, leftover.id))!;
    assert.equal(done.status, "processed");
    assert.ok(done.chunks_total! >= 2, "cut at the headings");
    assert.equal(done.chunks_indexed, done.chunks_total, "progress counts this run only");
    const chunks = await store.db.selectFrom("file_chunks").select(["ordinal", "heading"]).where("file_id", "=", leftover.id).orderBy("ordinal").execute();
    assert.equal(chunks.length, done.chunks_total);
    assert.equal((await getFile(store.db, fresh.id))!.status, dialect === "sqlite" ? "processed" : "processing");
  });
}

test("indexer: one file at a time, a failing file ends 'error' with the extractor's words, a deleted one is skipped", async (t) => {
  const store = await openTestStore(t, "sqlite");
  if (!store) return;
  const indexer = new FileIndexer({ db: store.db, dialect: "sqlite", config, logger });
  const broken = await createFile(store.db, { userId: "u1", filename: "broken.pdf", mime: "application/pdf", purpose: "assistants", content: new TextEncoder().encode("%PDF-1.7\nthis is not really a pdf\n%%EOF") });
  const good = await createFile(store.db, { userId: "u1", filename: "good.md", mime: "text/markdown", purpose: "assistants", content: markdown("Good") });
  const gone = await createFile(store.db, { userId: "u1", filename: "gone.md", mime: "text/markdown", purpose: "assistants", content: markdown("Gone") });
  indexer.enqueue(broken.id);
  indexer.enqueue(good.id);
  indexer.enqueue(good.id);
  assert.equal(indexer.pending, 2, "at most indexConcurrency running, the rest queued once each");
  await store.db.deleteFrom("files").where("id", "=", gone.id).execute();
  indexer.enqueue(gone.id);
  await indexer.idle();
  indexer.close();
  const failed = (await getFile(store.db, broken.id))!;
  assert.equal(failed.status, "error");
  assert.ok(failed.error && failed.error.length > 0 && !/stack|at \w+ \(/.test(failed.error), `a message for the user: ${failed.error}`);
  assert.equal((await getFile(store.db, good.id))!.status, "processed");
});
