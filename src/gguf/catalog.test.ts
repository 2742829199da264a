import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { AUDIT_SCRIPTS, buildModel, ensureModel, FEATURE_SCRIPTS, MODEL_NAMES, MODEL_SCRIPTS, modelStamp, TOOL_SCRIPTS, UnknownModelError } from "./catalog.ts";
import { readMetadataString } from "./header.ts";
import { buildScriptedModel } from "./scripted.ts";

const run = promisify(execFile);
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sputnik-models-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const expectedBytes = () => Buffer.concat([...buildModel("scripted").bytes()]);

describe("ensureModel", () => {
  it("lists every scripted model and the benchmark model", () => {
    assert.deepEqual([...MODEL_NAMES].sort(), [...Object.keys(MODEL_SCRIPTS), ...Object.keys(FEATURE_SCRIPTS), ...Object.keys(TOOL_SCRIPTS), ...Object.keys(AUDIT_SCRIPTS), "bench", "embed"].sort());
    for (const name of ["scripted", "demo", "scripted-markdown", "scripted-xss", "scripted-json", "scripted-long", "scripted-unicode", "bench"])
      assert.ok(MODEL_NAMES.includes(name), name);
  });

  it("rejects an unknown name", async () => {
    await assert.rejects(ensureModel("nope", dir), UnknownModelError);
  });

  it("writes a missing model, then reuses it while its stamp is current", async () => {
    const file = await ensureModel("scripted", dir);
    assert.equal(file, path.join(dir, "scripted.gguf"));
    assert.equal(await readMetadataString(file, "sputnik.generator"), modelStamp("scripted"));
    assert.deepEqual(await readFile(file), expectedBytes());
    const before = await stat(file);
    assert.equal(await ensureModel("scripted", dir), file);
    assert.equal((await stat(file)).ino, before.ino, "not rewritten (rename would give a new inode)");
  });

  it("rewrites a stale or broken file", async () => {
    const file = path.join(dir, "scripted.gguf");
    await buildScriptedModel("scripted", MODEL_SCRIPTS.scripted, "sputnik-gguf/0/old").write(file);
    await ensureModel("scripted", dir);
    assert.equal(await readMetadataString(file, "sputnik.generator"), modelStamp("scripted"));
    await writeFile(file, "not a gguf file");
    await ensureModel("scripted", dir);
    assert.deepEqual(await readFile(file), expectedBytes());
  });

  it("changes the stamp when a script changes", () => {
    assert.notEqual(modelStamp("scripted"), modelStamp("scripted-json"));
    assert.match(modelStamp("scripted"), /^sputnik-gguf\/\d+\/scripted\/[0-9a-f]{16}$/);
  });

  it("shares one build among concurrent callers in a process", async () => {
    await rm(path.join(dir, "demo.gguf"), { force: true });
    const paths = await Promise.all(Array.from({ length: 5 }, () => ensureModel("demo", dir)));
    assert.deepEqual(new Set(paths), new Set([path.join(dir, "demo.gguf")]));
    assert.equal(await readMetadataString(paths[0], "sputnik.generator"), modelStamp("demo"));
  });

  it("stays intact when several processes generate it at once", async () => {
    const shared = path.join(dir, "multi");
    const script = `import(${JSON.stringify(path.join(repoRoot, "src/gguf/catalog.ts"))}).then((m) => m.ensureModel("scripted", ${JSON.stringify(shared)}))`;
    await Promise.all(Array.from({ length: 3 }, () => run(process.execPath, ["--import", "tsx", "-e", script], { cwd: repoRoot })));
    assert.deepEqual(await readdir(shared), ["scripted.gguf"], "no temporary files left behind");
    assert.deepEqual(await readFile(path.join(shared, "scripted.gguf")), expectedBytes());
  });
});
