import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { readLocalKey } from "../src/auth/localMode.ts";
import { ensureModel } from "../src/gguf/catalog.ts";

const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));

/** Starts `sputnik serve`, runs one completion, and returns the process's thread count. */
async function threadsOfServer(env: NodeJS.ProcessEnv): Promise<number> {
  const dataDir = await mkdtemp(path.join(tmpdir(), "sputnik-uv-"));
  const model = await ensureModel("scripted");
  const child = spawn(process.execPath, [bin, "--data-dir", dataDir, "serve", "--port", "0", "-m", model, "-t", "1", "--parallel", "1", "--no-pull"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let log = "";
      child.stdout!.on("data", (d: Buffer) => {
        log += d.toString();
        const match = /"url":"([^"]+)"/.exec(log);
        if (match) resolve(match[1]!);
      });
      child.once("exit", (code) => reject(new Error(`exited with ${code}: ${log}`)));
    });
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      // Local single-user mode: the data dir's key is the API key.
      headers: { "content-type": "application/json", authorization: `Bearer ${await readLocalKey(dataDir)}` },
      body: JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(response.status, 200);
    return fs.readdirSync(`/proc/${child.pid}/task`).length;
  } finally {
    child.kill("SIGTERM");
    await new Promise((resolve) => child.once("exit", resolve));
    await rm(dataDir, { recursive: true, force: true });
  }
}

test("the launcher runs libuv's pool with one thread unless the operator sets a size", { skip: !fs.existsSync("/proc/self/task") }, async () => {
  const env = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  const byDefault = await threadsOfServer(env);
  const withFour = await threadsOfServer({ ...env, UV_THREADPOOL_SIZE: "4" });
  // libuv starts every pool thread at once; nothing else differs between the two processes.
  assert.equal(withFour - byDefault, 3, `default ${byDefault} threads, with a pool of 4: ${withFour}`);
});
