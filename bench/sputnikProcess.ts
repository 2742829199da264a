import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Sputnik as users run it: `node bin/sputnik.js serve` in its own process, so the bench measures
 * the real launcher (thread pool setup included) and a restart is a real process restart that
 * keeps only what is on disk.
 */
export class SputnikProcess {
  private child: ChildProcess | null = null;

  constructor(
    private readonly config: Record<string, unknown>,
    private readonly dataDir: string,
    /** Extra environment (the profile's SPUTNIK_PROFILE). */
    private readonly env: Record<string, string> = {},
  ) {}

  async start(): Promise<string> {
    const configFile = path.join(this.dataDir, "bench-config.json");
    fs.writeFileSync(configFile, JSON.stringify({ ...this.config, dataDir: this.dataDir, host: "127.0.0.1", port: 0, logLevel: "info" }));
    const env = { ...process.env, ...this.env };
    // The launcher decides the libuv pool size itself; an inherited value would hide what it does.
    delete env.UV_THREADPOOL_SIZE;
    const child = spawn(process.execPath, [path.join(root, "bin/sputnik.js"), "-c", configFile, "serve"], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    return await new Promise<string>((resolve, reject) => {
      let buffered = "";
      const onData = (data: Buffer) => {
        buffered += data.toString();
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          try {
            const entry = JSON.parse(line) as { url?: string };
            if (entry.url) {
              child.stdout!.off("data", onData);
              child.stdout!.resume(); // keep draining the log so the child never blocks on a full pipe
              resolve(entry.url);
            }
          } catch {
            // not a JSON log line
          }
        }
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`sputnik exited with ${code} before listening:\n${stderr}${buffered}`)));
    });
  }

  /** SIGTERM, like an operator stopping the service: the graceful path that writes caches. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }

  async restart(): Promise<string> {
    await this.stop();
    return await this.start();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}
