import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { writeTinyModel } from "../../test/support/modelFixtures.ts";
import { verifyGguf } from "./verify.ts";

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "sputnik-verify-"));
});
after(() => rm(work, { recursive: true, force: true }));

test("a valid model passes and reports its header", async () => {
  const path = join(work, "good.gguf");
  await writeTinyModel(path);
  const result = await verifyGguf(path);
  assert.deepEqual(result.ok && { arch: result.info.architecture, ctx: result.info.contextLength }, { arch: "llama", ctx: 256 });
});

test("duplicate token texts (a llama.cpp abort) are a verdict, not a crash", async () => {
  const path = join(work, "dup.gguf");
  await writeTinyModel(path, { duplicateToken: true });
  const result = await verifyGguf(path);
  assert.equal(result.ok, false);
  assert.match(!result.ok ? result.reason : "", /aborted.*GGML_ASSERT/);
});

test("a file that is not GGUF is rejected from its header", async () => {
  const path = join(work, "text.gguf");
  await writeFile(path, "definitely not a model");
  const result = await verifyGguf(path);
  assert.match(!result.ok ? result.reason : "", /not a readable GGUF file/);
});

test("a verifier that does not finish in time is killed and reported", async () => {
  const path = join(work, "slow.gguf");
  await writeTinyModel(path);
  const result = await verifyGguf(path, { timeoutMs: 1 });
  assert.match(!result.ok ? result.reason : "", /did not finish within 0.001 s/);
});
