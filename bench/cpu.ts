/**
 * Keeps a comparison fair on a small machine: a server measured while another one burns CPU in
 * the background (Sputnik re-reading its answers, say) gets depressed figures. The guard reads the
 * other servers' CPU time from /proc/<pid>/stat, waits until they are quiet before a measurement,
 * repeats a measurement during which one of them used CPU, and totals what each server spent
 * outside its own turns, so a confound shows in the output.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";

let ticksPerSecond = 100;
try {
  ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
} catch {
  // Linux's usual value.
}

/** CPU time (user + system, all threads) of a process in milliseconds; null when it is gone or not on Linux. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return null;
  }
}

/** The process listening on a local TCP port (from /proc/net/tcp*), for a server the bench did not start. */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = fs.readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const localPort = parseInt(cols[1]!.split(":")[1] ?? "", 16);
      if (localPort === port && cols[3] === "0A") inodes.add(cols[9]!);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const link = fs.readlinkSync(`/proc/${entry}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode && inodes.has(inode)) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}

export const loadAverage = (): string => os.loadavg().map((v) => v.toFixed(2)).join(" ");

export interface GuardedServer {
  label: string;
  /** The server's process id, when known (the bench started it, or found it by its port). */
  pid?: () => number | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class CpuGuard {
  /** CPU milliseconds each server used while another one was being measured. */
  readonly outsideMs: Record<string, number> = {};
  /** Measurements repeated because another server used CPU during them. */
  repeats = 0;

  constructor(
    private readonly servers: GuardedServer[],
    private readonly log: (line: string) => void,
    /** CPU a quiet server may still use in one measurement (timers, logging): a few clock ticks. */
    private readonly thresholdMs = 50,
    private readonly retries = 2,
  ) {
    for (const s of servers) this.outsideMs[s.label] = 0;
  }

  /** Runs `measure` for `server` with the others quiet; repeats it (up to `retries` times) when they were not. */
  async measure<T>(server: GuardedServer, what: string, measure: () => Promise<T>): Promise<T> {
    const others = this.servers.filter((s) => s !== server && s.pid?.() !== undefined);
    for (let attempt = 0; ; attempt++) {
      await this.quiet(others);
      const before = others.map((s) => cpuMs(s.pid!()!) ?? 0);
      const result = await measure();
      let worst = 0;
      let who = "";
      others.forEach((s, i) => {
        const used = (cpuMs(s.pid!()!) ?? before[i]!) - before[i]!;
        this.outsideMs[s.label] = (this.outsideMs[s.label] ?? 0) + used;
        if (used > worst) [worst, who] = [used, s.label];
      });
      if (worst <= this.thresholdMs) return result;
      if (attempt >= this.retries) {
        this.log(`  warning: ${who} used ${worst.toFixed(0)} ms of CPU during ${server.label}'s ${what}; kept after ${attempt + 1} tries`);
        return result;
      }
      this.repeats++;
      this.log(`  repeating ${server.label}'s ${what}: ${who} used ${worst.toFixed(0)} ms of CPU during it`);
    }
  }

  /** Waits (up to 20 s) until none of `others` uses CPU over a 300 ms window. */
  private async quiet(others: GuardedServer[]): Promise<void> {
    if (others.length === 0) return;
    const deadline = performance.now() + 20_000;
    while (performance.now() < deadline) {
      const before = others.map((s) => cpuMs(s.pid!()!) ?? 0);
      await sleep(300);
      const busy = others.some((s, i) => (cpuMs(s.pid!()!) ?? 0) - before[i]! > 10);
      if (!busy) return;
    }
  }
}

/**
 * CPU time the whole machine spent busy (all processes, all cores: user, nice, system, irq,
 * softirq, steal from /proc/stat) in milliseconds; null when not on Linux. Less the measured
 * server's and the bench's own CPU, it is what other processes took during a measurement.
 */
export function machineBusyMs(): number | null {
  try {
    const fields = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return ((user + nice + system + irq + softirq + steal) * 1000) / ticksPerSecond;
  } catch {
    return null;
  }
}
