import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ModelError } from "./errors.ts";
import { listModels, resolveModelPath, validateModelName } from "./registry.ts";
import { writeTinyModel } from "../../test/support/modelFixtures.ts";

let work: string;
let modelsDir: string;
let outside: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "sputnik-registry-"));
  modelsDir = join(work, "models");
  await mkdir(modelsDir);
  outside = join(work, "outside.gguf");
  await writeTinyModel(outside, { name: "outside" });
  await writeTinyModel(join(modelsDir, "tiny-F32.gguf"), { name: "tiny" });
  await writeFile(join(modelsDir, "broken.gguf"), "not a gguf at all");
  await writeFile(join(modelsDir, "pending.gguf.partial"), "half a download");
  await writeFile(join(modelsDir, "notes.txt"), "hello");
  await symlink(outside, join(modelsDir, "escape.gguf"));
  await symlink(join(modelsDir, "tiny-F32.gguf"), join(modelsDir, "alias.gguf"));
});

after(() => rm(work, { recursive: true, force: true }));

function withCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof ModelError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  };
}

describe("listModels", () => {
  test("lists .gguf files with header metadata, flags unusable ones, ignores the rest", async () => {
    const models = await listModels(modelsDir);
    assert.deepEqual(
      models.map((m) => m.name),
      ["alias", "broken", "escape", "tiny-F32"],
    );
    const tiny = models.find((m) => m.name === "tiny-F32")!;
    assert.equal(tiny.error, undefined);
    assert.equal(tiny.architecture, "llama");
    assert.equal(tiny.quantization, "F32");
    assert.equal(tiny.contextLength, 256);
    assert.equal(tiny.displayName, "tiny");
    assert.ok(tiny.parameterCount! > 10_000);
    assert.ok(tiny.sizeBytes > 50_000);
    assert.equal(models.find((m) => m.name === "alias")!.architecture, "llama", "a link inside the directory is fine");
    assert.match(models.find((m) => m.name === "broken")!.error!, /unreadable GGUF header/);
    assert.match(models.find((m) => m.name === "escape")!.error!, /outside the models directory/);
  });

  test("a missing directory has no models", async () => {
    assert.deepEqual(await listModels(join(work, "nope")), []);
  });
});

describe("resolveModelPath", () => {
  test("resolves a name, with or without .gguf", () => {
    assert.equal(resolveModelPath(modelsDir, "tiny-F32"), join(modelsDir, "tiny-F32.gguf"));
    assert.equal(resolveModelPath(modelsDir, "tiny-F32.gguf"), join(modelsDir, "tiny-F32.gguf"));
    assert.equal(resolveModelPath(modelsDir, "alias"), join(modelsDir, "alias.gguf"));
  });

  test("refuses names that could leave the directory", () => {
    for (const name of ["../outside", "..", ".", "a/b", "a\\b", "/etc/passwd", join(work, "outside"), "nul\0byte", "", ".hidden", "-flag"]) {
      assert.throws(() => resolveModelPath(modelsDir, name), withCode("invalid_name"), JSON.stringify(name));
    }
    assert.throws(() => validateModelName(42), withCode("invalid_name"));
  });

  test("refuses a symlink that points outside the directory", () => {
    assert.throws(() => resolveModelPath(modelsDir, "escape"), withCode("outside_models_dir"));
  });

  test("a model that is not there is not_found", () => {
    assert.throws(() => resolveModelPath(modelsDir, "missing"), withCode("not_found"));
  });
});
