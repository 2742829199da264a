/**
 * `sputnik pull` and `sputnik models` as a user runs them: the real CLI in a child process
 * (output not a TTY, so plain progress lines) against a real local HTTP server.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { FakeHub } from "../../../test/support/hubServer.ts";
import { writeTinyModel } from "../../../test/support/modelFixtures.ts";

const BIN = fileURLToPath(new URL("../../../bin/sputnik.js", import.meta.url));
const hub = new FakeHub();
let work: string;
let modelsDir: string;
let model: Buffer;

before(async () => {
  work = await mkdtemp(join(tmpdir(), "sputnik-cli-pull-"));
  modelsDir = join(work, "models");
  await writeTinyModel(join(work, "m.gguf"));
  model = await readFile(join(work, "m.gguf"));
  await hub.start();
});

after(async () => {
  await hub.close();
  await rm(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sputnik(args: string[], whileRunning?: (pid: number) => Promise<void>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "--models-dir", modelsDir, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, SPUTNIK_HF_ENDPOINT: hub.baseUrl },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    whileRunning?.(child.pid!).catch(reject);
  });
}

async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((r) => setTimeout(r, 100));
}

test("pull prints progress lines and the result; models lists it", async () => {
  hub.files.set("/u/tiny/resolve/main/tiny-F32.gguf", model);
  hub.repos.set("u/tiny", ["tiny-F32.gguf"]);
  const run = await sputnik(["pull", "hf:u/tiny:F32", "--allow-private-network", "--allow-http"]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /download: 100\.0% 77\.\d KiB \/ 77\.\d KiB/);
  assert.match(run.stdout, /pulled tiny-F32 \(77\.\d KiB, llama, F32, 19K params, ctx 256\)/);

  const table = await sputnik(["models"]);
  assert.match(table.stdout, /^NAME\s+SIZE\s+ARCH\s+QUANT\s+PARAMS\s+CONTEXT\ntiny-F32\s+77\.\d KiB\s+llama\s+F32\s+19K\s+256\n$/);
  const json = JSON.parse((await sputnik(["models", "--json"])).stdout);
  assert.equal(json[0].name, "tiny-F32");
  assert.equal(json[0].contextLength, 256);
});

test("Ctrl-C keeps the partial download; running the command again resumes it", async () => {
  hub.files.set("/files/cli.gguf", model);
  hub.stallNextAt = 25_000;
  const partial = join(modelsDir, "cli.gguf.partial");
  const args = ["pull", `${hub.baseUrl}/files/cli.gguf`, "--allow-private-network", "--allow-http"];
  const interrupted = await sputnik(args, async (pid) => {
    await waitFor(async () => ((await stat(partial).catch(() => null))?.size ?? 0) === 25_000);
    process.kill(pid, "SIGINT");
  });
  assert.equal(interrupted.code, 130);
  assert.match(interrupted.stderr, /partial download is kept/);
  assert.equal((await stat(partial)).size, 25_000);

  const resumed = await sputnik(args);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /pulled cli .*, resumed/);
  assert.deepEqual(await readFile(join(modelsDir, "cli.gguf")), model);
  assert.ok(!(await readdir(modelsDir)).some((f) => f.startsWith("cli.gguf.")), "no partial, state or lock file left");
});

test("errors are one clear line and a non-zero exit", async () => {
  const run = await sputnik(["pull", `${hub.baseUrl}/files/other.gguf`, "--allow-http"]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^error: Refusing to connect to 127\.0\.0\.1 .*--allow-private-network/);
});
