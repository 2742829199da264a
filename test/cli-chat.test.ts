/**
 * `sputnik chat --url` as a real CLI process against one real running service (local single-user
 * mode, the scripted model): colour rules, a closed pipe, a wrong model or key reported before
 * the first prompt, and the chat's own commands kept away from the model.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { startTestService, type TestService } from "./support/service.ts";

const bin = fileURLToPath(new URL("../bin/sputnik.js", import.meta.url));
const SGR = /\x1b\[[0-9;]*m/;
let service: TestService;

before(async () => {
  service = await startTestService({ models: ["scripted"] });
});
after(() => service?.stop());

/** The CLI's environment: nothing of the caller's that would change what is tested. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, SPUTNIK_GPU: "off" };
  delete base.NO_COLOR;
  delete base.SPUTNIK_API_KEY;
  delete base.FORCE_COLOR;
  return { ...base, ...extra };
}

function chatArgs(extra: string[] = []): string[] {
  return [bin, "--data-dir", service.dataDir, "chat", "--url", `${service.url}/v1`, ...extra];
}

/** Collects stdout and stderr until the process exits. */
function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

function waitFor(child: ChildProcess, pattern: RegExp, ms = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; output so far:\n${seen}`)), ms);
    const onData = (data: Buffer) => {
      seen += data.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        resolve(seen);
      }
    };
    child.stdout?.on("data", onData);
  });
}

/** Runs the chat in a pseudo-terminal (util-linux `script`): stdout is a TTY there. */
function inTerminal(extraEnv: Record<string, string>): ChildProcess {
  const command = [process.execPath, ...chatArgs()].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  return spawn("script", ["-qec", command, "/dev/null"], { env: env(extraEnv) });
}

test("colour on a terminal only, and never with NO_COLOR", { timeout: 120_000 }, async () => {
  const coloured = inTerminal({});
  const shown = await waitFor(coloured, />>> /);
  coloured.kill("SIGKILL");
  assert.match(shown, SGR, "a terminal gets dim text");
  assert.match(shown, /Chatting with scripted/);

  const plain = inTerminal({ NO_COLOR: "1" });
  const noColour = await waitFor(plain, />>> /);
  plain.kill("SIGKILL");
  assert.match(noColour, /Chatting with scripted/);
  assert.doesNotMatch(noColour, SGR, "NO_COLOR: no colour codes");

  // Piped: no TTY, so no colour either, through a whole answer (reasoning is dim on a terminal).
  const piped = spawn(process.execPath, chatArgs(), { env: env() });
  piped.stdin!.end("Hello\n");
  const { code, stdout } = await finished(piped);
  assert.equal(code, 0);
  assert.ok(stdout.includes(MODEL_SCRIPTS.scripted!.answer), stdout);
  assert.doesNotMatch(stdout, SGR, "no colour codes in a pipe");
});

test("piped into head: exits quietly when the reader goes away, no stack trace", { timeout: 120_000 }, async () => {
  const command = [process.execPath, ...chatArgs()].map((a) => `'${a}'`).join(" ");
  // head leaves after the banner; the chat still has the prompt and a whole answer to write.
  const shell = spawn("bash", ["-c", `printf 'Hello\\nHello again\\n' | ${command} 2>"$ERR" | head -n 1; echo "status=\${PIPESTATUS[1]}"`], {
    env: env({ ERR: join(service.dataDir, "chat-stderr.txt") }),
  });
  const { stdout } = await finished(shell);
  const { readFile } = await import("node:fs/promises");
  const stderr = await readFile(join(service.dataDir, "chat-stderr.txt"), "utf8");
  assert.match(stdout, /^Chatting with scripted/);
  assert.match(stdout, /status=0\n$/, `exit status 0 (stderr: ${stderr})`);
  assert.equal(stderr, "", "nothing on stderr");
});

test("an unknown model is reported before the first prompt, with the served ones", { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, chatArgs(["-m", "no-such-model"]), { env: env() });
  const { code, stdout, stderr } = await finished(child);
  assert.equal(code, 1);
  assert.doesNotMatch(stdout, />>> /, "no prompt shown");
  assert.match(stderr, /model "no-such-model" is not served by http:\/\/127\.0\.0\.1:\d+\/v1\. It serves: scripted\./);
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
});

test("a bad key says what to do: SPUTNIK_API_KEY, --api-key, the local key's file", { timeout: 60_000 }, async () => {
  for (const how of [{ args: ["--api-key", "sk-wrong"], says: "--api-key" }, { env: { SPUTNIK_API_KEY: "sk-wrong" }, says: "SPUTNIK_API_KEY" }]) {
    const child = spawn(process.execPath, chatArgs(how.args ?? []), { env: env(how.env ?? {}) });
    const { code, stdout, stderr } = await finished(child);
    assert.equal(code, 1);
    assert.doesNotMatch(stdout, />>> /);
    assert.match(stderr, new RegExp(`refused the API key (given with|in) ${how.says} \\(HTTP 401\\)`));
    assert.match(stderr, /Set SPUTNIK_API_KEY \(or pass --api-key\)/);
    assert.ok(stderr.includes(join(service.dataDir, "local-key")), `names the local key's file: ${stderr}`);
    assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  }
});

test("/help, /new and unknown commands are answered locally, never sent to the model", { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, chatArgs(), { env: env() });
  const done = finished(child);
  child.stdin!.end("/help\n/new\n/nonsense\n/bye\n");
  const { code, stdout } = await done;
  assert.equal(code, 0);
  assert.match(stdout, /Commands:\n\s+\/help/);
  assert.match(stdout, /New conversation\./);
  assert.match(stdout, /Unknown command \/nonsense\. Type \/help/);
  assert.ok(!stdout.includes("Thinking…") && !stdout.includes(MODEL_SCRIPTS.scripted!.answer), "the model was never asked");
});
