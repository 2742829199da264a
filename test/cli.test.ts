import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ensureModel, MODEL_SCRIPTS } from "../src/gguf/catalog.ts";

const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));
let dataDir: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "sputnik-cli-"));
});
after(() => rm(dataDir, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [bin, "--data-dir", dataDir, ...args], {
    env: { ...process.env, SPUTNIK_GPU: "off", NO_COLOR: "1", ...env },
  });
}

/** Resolves once the accumulated output matches, failing after `ms` with what was seen. */
function waitFor(child: ChildProcessWithoutNullStreams, pattern: RegExp, ms = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${seen}`)), ms);
    const onData = (data: Buffer) => {
      seen += data.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        child.stdout.off("data", onData);
        child.stderr.off("data", onData);
        resolve(seen);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
  });
}

function exited(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

test("sputnik chat streams the reasoning and the answer, and /bye leaves", async () => {
  const model = await ensureModel("scripted");
  const child = run(["chat", "-m", model, "-t", "1"]);
  await waitFor(child, />>> /);
  child.stdin.write("Hello there\n");
  const output = await waitFor(child, /answer is 42\.[\s\S]*>>> /);
  assert.ok(output.includes(MODEL_SCRIPTS.scripted!.reasoning), "reasoning shown");
  assert.ok(output.includes(MODEL_SCRIPTS.scripted!.answer), "answer shown");
  child.stdin.write("/bye\n");
  assert.equal(await exited(child), 0);
});

test("Ctrl-C stops the answer, not the program", async () => {
  const model = await ensureModel("scripted-long");
  const child = run(["chat", "-m", model, "-t", "1"]);
  await waitFor(child, />>> /);
  child.stdin.write("Think hard\n");
  await waitFor(child, /Thinking…/);
  child.kill("SIGINT");
  await waitFor(child, /\[stopped\][\s\S]*>>> /);
  child.stdin.write("Again\n");
  const output = await waitFor(child, new RegExp(MODEL_SCRIPTS["scripted-long"]!.answer.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  assert.ok(output.length > 0);
  child.stdin.end();
  assert.equal(await exited(child), 0);
});

test("sputnik serve: first run offline falls back to the demo model and says so", async () => {
  // A local "Hugging Face" that refuses every request: the default model cannot be pulled.
  const refusing = http.createServer((_req, res) => {
    res.statusCode = 503;
    res.end("offline");
  });
  await new Promise<void>((resolve) => refusing.listen(0, "127.0.0.1", resolve));
  const port = (refusing.address() as { port: number }).port;
  const child = run(["serve", "--port", "0", "-t", "1", "--parallel", "1"], {
    SPUTNIK_HF_ENDPOINT: `http://127.0.0.1:${port}`,
    SPUTNIK_ALLOW_PRIVATE_NETWORK: "true",
  });
  try {
    // The local-mode hint comes right after the "listening" line.
    const log = await waitFor(child, /listening on (http:\/\/\S+?)"[\s\S]*No account yet: open \S+ to create the admin account/);
    assert.match(log, /Serving Sputnik's demo model instead/);
    const url = /listening on (http:\/\/\S+?)"/.exec(log)![1]!;
    // Local single-user mode: /v1 wants the data directory's key; the log says where it is, never what.
    const key = (await readFile(join(dataDir, "local-key"), "utf8")).trim();
    assert.ok(log.includes(join(dataDir, "local-key")) && !log.includes(key), "the hint names the key's file, not the key");
    assert.equal((await fetch(`${url}/v1/models`)).status, 401, "no key, no local mode");
    const auth = { authorization: `Bearer ${key}` };
    const models = (await (await fetch(`${url}/v1/models`, { headers: auth })).json()) as { data: Array<{ id: string; note?: string }> };
    assert.equal(models.data.length, 1);
    assert.equal(models.data[0]!.id, "sputnik-demo");
    assert.match(models.data[0]!.note ?? "", /sputnik pull/);
    const reply = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({ model: "sputnik-demo", messages: [{ role: "user", content: "hi" }] }),
    });
    const body = (await reply.json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(body.choices[0]!.message.content, MODEL_SCRIPTS.demo!.answer);
    // `sputnik chat --url` on the same data directory finds the key by itself.
    const chat = run(["chat", "--url", `${url}/v1`]);
    await waitFor(chat, />>> /);
    chat.stdin.write("hi\n");
    await waitFor(chat, new RegExp(`${MODEL_SCRIPTS.demo!.answer.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[\\s\\S]*>>> `));
    chat.stdin.write("/bye\n");
    assert.equal(await exited(chat), 0);
  } finally {
    child.kill("SIGTERM");
    await exited(child);
    refusing.close();
  }
});
