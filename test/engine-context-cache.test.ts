import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test, type TestContext } from "node:test";
import type { ChatMessage } from "../src/engines/types.ts";
import type { LocalModel } from "../src/engines/local/localModel.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { collect, loadTestModel } from "./support/engine.ts";

const scripted = MODEL_SCRIPTS.scripted!;
const history: ChatMessage[] = [
  { role: "system", content: "You are a patient assistant. ".repeat(12) + "Keep every answer short, friendly and exact." },
  { role: "user", content: "Here is a long question about the weather, the sea, the mountains and the old harbor town. ".repeat(3) },
];

async function cacheDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), "sputnik-kv-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const withCache = (dir: string, maxBytes = 256 * 1024 * 1024) => ({ contextCache: { dir, maxBytes, minTokens: 32 } });

/** The state files of one model's cache folder. */
function stateFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .flatMap((e) => fs.readdirSync(path.join(dir, e.name)).filter((n) => n.endsWith(".kv")).map((n) => path.join(dir, e.name, n)));
}

/** Runs the first turn and shuts the model down, which saves what its sequences hold. */
async function firstTurnThenStop(t: TestContext, dir: string): Promise<{ promptTokens: number; answer: string }> {
  const model = await loadTestModel(t, "scripted", withCache(dir));
  const first = await collect(model, history);
  await model.dispose();
  return { promptTokens: first.usage.prompt_tokens, answer: first.content };
}

async function secondTurn(model: LocalModel, answer: string) {
  return collect(model, [...history, { role: "assistant", content: answer }, { role: "user", content: "And then?" }]);
}

test("after a restart the disk cache serves a known prefix", async (t) => {
  const dir = await cacheDir(t);
  const first = await firstTurnThenStop(t, dir);
  assert.ok(first.promptTokens > 100, `a prefix worth caching (${first.promptTokens} tokens)`);
  assert.equal(stateFiles(dir).length, 1, "the state was saved at shutdown");

  const restarted = await loadTestModel(t, "scripted", withCache(dir));
  const second = await secondTurn(restarted, first.answer);
  assert.equal(second.content, scripted.answer);
  assert.ok(second.usage.prompt_cache_hit_tokens >= first.promptTokens - 1, `hit ${second.usage.prompt_cache_hit_tokens} of ${first.promptTokens}`);
  assert.equal(restarted.stats().contextCache?.loads, 1);
  assert.equal(restarted.stats().contextCache?.rejected, 0);
});

const damages: Array<[string, (file: string) => void]> = [
  ["a flipped byte in the KV data", (file) => {
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 100] ^= 0xff;
    fs.writeFileSync(file, bytes);
  }],
  ["a truncated file", (file) => fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2))],
  ["a foreign header", (file) => {
    const bytes = fs.readFileSync(file);
    bytes.write("GGUF", 0);
    fs.writeFileSync(file, bytes);
  }],
  ["a directory in its place", (file) => {
    fs.rmSync(file);
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, "inside"), "x");
  }],
  // Opened the usual way, a FIFO would block the reading thread (and the process) forever.
  ["a FIFO in its place", (file) => {
    fs.rmSync(file);
    execFileSync("mkfifo", [file]);
  }],
];

for (const [what, damage] of damages) {
  test(`a damaged cache file (${what}) is ignored and removed`, async (t) => {
    const dir = await cacheDir(t);
    const first = await firstTurnThenStop(t, dir);
    const [file] = stateFiles(dir);
    assert.ok(file);
    damage(file);

    const restarted = await loadTestModel(t, "scripted", withCache(dir));
    const second = await secondTurn(restarted, first.answer);
    assert.equal(second.content, scripted.answer, "the request is served anyway");
    assert.ok(second.usage.prompt_cache_hit_tokens <= 1, "nothing was reused from the damaged file");
    assert.equal(second.usage.prompt_cache_miss_tokens + second.usage.prompt_cache_hit_tokens, second.usage.prompt_tokens);
    assert.equal(restarted.stats().contextCache?.rejected, 1);
    assert.ok(!fs.existsSync(file), "the damaged file was deleted");
  });
}

test("entries of another model and stray files are ignored at start", async (t) => {
  const dir = await cacheDir(t);
  // A real entry written by another model, moved into this model's folder.
  const other = await loadTestModel(t, "scripted-long", withCache(dir));
  await collect(other, history, { maxTokens: 4 });
  await other.dispose();
  const [foreign] = stateFiles(dir);
  assert.ok(foreign);

  const model = await loadTestModel(t, "scripted", withCache(dir));
  const ownFolder = fs.readdirSync(dir).map((n) => path.join(dir, n)).find((p) => fs.statSync(p).isDirectory() && p !== path.dirname(foreign))!;
  assert.ok(ownFolder, "the model has its own folder");
  await model.dispose();
  for (const ext of [".kv", ".json"]) fs.copyFileSync(foreign.replace(/\.kv$/, ext), path.join(ownFolder, path.basename(foreign).replace(/\.kv$/, ext)));
  fs.writeFileSync(path.join(ownFolder, "junk.json"), "{not json");
  fs.writeFileSync(path.join(ownFolder, "orphan.kv"), "no meta for me");

  const restarted = await loadTestModel(t, "scripted", withCache(dir));
  assert.equal(restarted.stats().contextCache?.entries, 0);
  assert.equal(restarted.stats().contextCache?.rejected, 2, "the foreign entry and the junk meta");
  assert.deepEqual(fs.readdirSync(ownFolder), [], "all removed");
  const answer = await collect(restarted, history);
  assert.equal(answer.content, scripted.answer);
});

test("the cache stays under its size limit, dropping the least recently used", async (t) => {
  const dir = await cacheDir(t);
  const probe = await loadTestModel(t, "scripted", withCache(dir));
  await collect(probe, history);
  await probe.dispose();
  const [oldest] = stateFiles(dir);
  const entryBytes = fs.statSync(oldest!).size;

  // Room for two entries. One sequence, so each new conversation pushes the previous one out to disk.
  const model = await loadTestModel(t, "scripted", { ...withCache(dir, Math.floor(entryBytes * 2.5)), parallel: 1 });
  for (const topic of ["rivers", "forests", "deserts"]) {
    await collect(model, [{ ...history[0]! }, { role: "user", content: `Now a long question about ${topic}. `.repeat(8) }]);
  }
  const stats = model.stats().contextCache!;
  assert.ok(stats.saves >= 2, `saved ${stats.saves} conversations pushed out of memory`);
  assert.ok(stats.bytes <= entryBytes * 2.5, `${stats.bytes} bytes kept`);
  assert.equal(stats.entries, 2);
  assert.equal(stateFiles(dir).length, 2);
  assert.ok(!fs.existsSync(oldest!), "the least recently used entry was dropped");
});

/** Replaces `folder` by a plain file, as a careless script or a bad restore might. */
function fileInPlaceOf(folder: string): void {
  fs.rmSync(folder, { recursive: true, force: true });
  fs.writeFileSync(folder, "not a folder");
}

test("a directory at an entry's .kv path, at request time: the request is served and the entry dropped, the next start is clean", async (t) => {
  const dir = await cacheDir(t);
  const first = await firstTurnThenStop(t, dir);
  const restarted = await loadTestModel(t, "scripted", withCache(dir));
  assert.equal(restarted.stats().contextCache?.entries, 1);
  const [file] = stateFiles(dir);
  fs.rmSync(file!);
  fs.mkdirSync(file!);
  fs.writeFileSync(path.join(file!, "inside"), "x");

  const second = await secondTurn(restarted, first.answer);
  assert.equal(second.content, scripted.answer, "the request is served");
  assert.ok(second.usage.prompt_cache_hit_tokens <= 1, "nothing was loaded from it");
  assert.equal(restarted.stats().contextCache?.rejected, 1);
  assert.ok(!fs.existsSync(file!), "the directory was removed");
  await restarted.dispose();

  // A stray directory with an entry's name (no meta) at start, as the old code left behind.
  const folder = path.dirname(file!);
  fs.mkdirSync(path.join(folder, "orphan.kv"));
  const again = await loadTestModel(t, "scripted", withCache(dir));
  assert.ok(!fs.existsSync(path.join(folder, "orphan.kv")), "removed at start");
  assert.equal((await collect(again, history)).content, scripted.answer);
});

test("a file where the model's cache folder should be: the start moves it aside and caches again", async (t) => {
  const dir = await cacheDir(t);
  await firstTurnThenStop(t, dir);
  const folder = path.dirname(stateFiles(dir)[0]!);
  fileInPlaceOf(folder);

  const warnings: string[] = [];
  const restarted = await loadTestModel(t, "scripted", { ...withCache(dir), warn: (m) => warnings.push(m) });
  assert.ok(fs.statSync(folder).isDirectory(), "the folder is a folder again");
  const aside = fs.readdirSync(dir).filter((n) => n.startsWith(`${path.basename(folder)}.damaged-`));
  assert.equal(aside.length, 1, "the file was moved aside, not deleted");
  assert.match(warnings.join("\n"), /was not a folder; moved it aside/);
  assert.equal((await collect(restarted, history)).content, scripted.answer);
  assert.equal(restarted.stats().contextCache?.disabled, false);
  await restarted.dispose();
  assert.equal(stateFiles(dir).length, 1, "states are saved again");
});

test("a file where the cache root should be: the start goes on without the cache, with a warning", async (t) => {
  const dir = await cacheDir(t);
  const root = path.join(dir, "cache");
  fs.writeFileSync(root, "not a folder");
  const warnings: string[] = [];
  const model = await loadTestModel(t, "scripted", { ...withCache(root), warn: (m) => warnings.push(m) });
  assert.equal(model.stats().contextCache?.disabled, true);
  assert.match(warnings.join("\n"), /context cache disabled until the next start: .*cache is not a folder/);
  assert.equal((await collect(model, history)).content, scripted.answer);
  await model.dispose();
  assert.equal(fs.readFileSync(root, "utf8"), "not a folder", "the operator's file is left alone");
});

test("the cache folder replaced by a file while serving: requests are served, the folder comes back", async (t) => {
  const dir = await cacheDir(t);
  const warnings: string[] = [];
  // One sequence: each new conversation pushes the previous one out to the disk cache.
  const model = await loadTestModel(t, "scripted", { ...withCache(dir), parallel: 1, warn: (m) => warnings.push(m) });
  const conversation = (topic: string): ChatMessage[] => [{ ...history[0]! }, { role: "user", content: `Now a long question about ${topic}. `.repeat(8) }];
  await collect(model, conversation("rivers"));
  const folder = fs.readdirSync(dir).map((n) => path.join(dir, n)).find((p) => fs.statSync(p).isDirectory())!;
  assert.ok(folder);
  fileInPlaceOf(folder);

  assert.equal((await collect(model, conversation("forests"))).content, scripted.answer, "served while the save failed");
  assert.match(warnings.join("\n"), /could not save a context state/);
  assert.ok(fs.statSync(folder).isDirectory(), "the folder was set up again");
  const savesBefore = model.stats().contextCache!.saves;
  assert.equal((await collect(model, conversation("deserts"))).content, scripted.answer);
  assert.equal(model.stats().contextCache!.saves, savesBefore + 1, "and the cache saves again");
  assert.equal(model.stats().contextCache?.disabled, false);
});
