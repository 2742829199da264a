import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readLocalKey } from "../src/auth/localMode.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Sputnik under load, as operators run it: `bin/sputnik.js serve` in a child process on a loopback
 * port, quiet (warn-level logs: per-request log lines would cost the server CPU the bench
 * measures), with its resident memory sampled from /proc while it runs.
 */
export class LoadServer {
  private child: ChildProcess | null = null;
  private sampler: NodeJS.Timeout | null = null;
  private stderr = "";
  readonly rss: number[] = [];
  url = "";
  /** The data directory's local single-user key, sent as the API key (the server has no accounts). */
  localKey: string | null = null;

  constructor(
    private readonly config: Record<string, unknown>,
    readonly dataDir: string,
  ) {}

  async start(timeoutMs = 180_000): Promise<string> {
    const port = await freePort();
    const configFile = path.join(this.dataDir, "load-config.json");
    fs.mkdirSync(this.dataDir, { recursive: true });
    fs.writeFileSync(configFile, JSON.stringify({ ...this.config, dataDir: this.dataDir, host: "127.0.0.1", port, logLevel: "warn" }));
    const child = spawn(process.execPath, [path.join(root, "bin/sputnik.js"), "-c", configFile, "serve"], {
      cwd: root,
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.child = child;
    child.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    this.url = `http://127.0.0.1:${port}`;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sputnik exited with ${child.exitCode} before listening:\n${this.stderr}`);
      if (performance.now() > deadline) throw new Error(`sputnik did not answer /health within ${timeoutMs / 1000} s`);
      const healthy = await fetch(`${this.url}/health`).then((r) => r.ok, () => false);
      if (healthy) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    this.localKey = await readLocalKey(this.dataDir);
    this.sampler = setInterval(() => {
      const kb = readRssKb(child.pid);
      if (kb !== null) this.rss.push(kb * 1024);
    }, 500);
    return this.url;
  }

  /** SIGTERM (the graceful path), SIGKILL if it hangs. */
  async stop(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.url}/metrics`)).text();
  }
}

function readRssKb(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** A Prometheus series' value from /metrics text, or undefined. */
export function metricValue(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
