/**
 * `sputnik serve` in its own process, as operators run it (crash and failure tests kill it):
 *
 *   const server = await startServeProcess(configFile);
 *   t.after(() => server.kill("SIGKILL"));
 *   … fetch(`${server.url}/v1/…`) …
 *
 * Resolves with its URL once it listens; rejects with its output if it exits first.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface ServeProcess {
  url: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  alive(): boolean;
  /** Its exit code once it has exited by itself (null while it runs, or when a signal ended it). */
  exitCode(): number | null;
  /** Everything it logged so far (stdout and stderr). */
  output(): string;
  /** Signals the process if it still runs (by its PID only). */
  kill(signal: NodeJS.Signals): void;
}

export async function startServeProcess(configFile: string): Promise<ServeProcess> {
  const child: ChildProcess = spawn(process.execPath, [join(root, "bin/sputnik.js"), "-c", configFile, "serve"], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  let output = "";
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = "";
    child.stdout!.on("data", (data: Buffer) => {
      buffered += data.toString();
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        output += `${line}\n`;
        const found = /"url":"(http:[^"]+)"/.exec(line)?.[1];
        if (found) resolve(found);
      }
    });
    child.once("exit", (code) => reject(new Error(`sputnik exited with ${code} before listening:\n${output}`)));
  });
  return { url, exited, alive, exitCode: () => child.exitCode, output: () => output, kill: (signal) => void (alive() && child.kill(signal)) };
}

/**
 * Writes a `sputnik serve` config for a test process: loopback, a free port, one thread, no default
 * model pull, info logs (startServeProcess reads the URL from the "listening" line); `config` adds
 * or overrides keys (dataDir and models at least).
 */
export async function writeServeConfig(configFile: string, config: Record<string, unknown>): Promise<void> {
  const base = { host: "127.0.0.1", port: 0, threads: 1, pullDefaultModel: false, logLevel: "info" };
  await writeFile(configFile, JSON.stringify({ ...base, ...config }));
}
