import { spawn, type ChildProcess } from "node:child_process";

/**
 * The other server of a fair comparison, started from the operator's command line for its own
 * turn only (e.g. `llama-server -m bench.gguf --port 8081 -np 8 -t 2`), so it is not alive, and
 * cannot use CPU, while Sputnik is measured.
 */
export class PeerProcess {
  private child: ChildProcess | null = null;

  constructor(
    private readonly command: string,
    private readonly url: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts it and waits (up to 5 minutes) until `GET /v1/models` answers 200. */
  async start(): Promise<void> {
    // Its own process group: stopping it also stops whatever the shell started.
    const child = spawn(this.command, { shell: true, detached: true, stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`the peer exited with ${child.exitCode} before it was ready:\n${stderr}`);
      const ok = await fetch(`${this.url}/v1/models`).then((r) => r.ok, () => false);
      if (ok) return;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await this.stop();
    throw new Error(`the peer did not answer ${this.url}/v1/models within 5 minutes:\n${stderr}`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    process.kill(-child.pid, "SIGTERM");
    const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, "SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
    this.child = null;
  }
}
