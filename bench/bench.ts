/**
 * `npm run bench`: Sputnik's speed on the generated benchmark model, through its HTTP API; the
 * ceiling of this machine's llama.cpp for the same streams (node-llama-cpp in-process, N
 * sequences in one batch per step); a per-token time breakdown of Sputnik at 4 and 8 streams; and
 * optionally the same workload against another OpenAI-compatible server serving the same GGUF.
 *
 *   npm run bench -- [--threads 2] [--parallel 8] [--runs 3] [--stream-tokens 64]
 *                    [--vs-url http://127.0.0.1:8081 [--vs-cmd "llama-server -m … --port 8081 -np 8 -t 2"]]
 *                    [--rereads on|off|both] [--skip-direct] [--skip-ceiling] [--skip-profile]
 *                    [--model file.gguf] [--json results.json] [--smoke] [--only nextTurn,nextTurnRead]
 *
 * A like-for-like llama-server (the same llama.cpp release and the same CPU kernels as
 * node-llama-cpp's prebuilt binaries) comes from `bench/build-llama-server.sh`.
 *
 * Fairness: each server is measured with the machine to itself. With --vs-cmd the bench starts the
 * other server only for its own turn (Sputnik is stopped then); with --vs-url alone, the other
 * server's process (found by its port) must stay quiet while Sputnik is measured and vice versa:
 * a measurement during which the other one used CPU is repeated (bench/cpu.ts), and the CPU each
 * server spent outside its own turns is printed. Figures are medians of --runs, printed with the
 * load average, never asserted: timings on a shared machine are noisy.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { readLocalKey } from "../src/auth/localMode.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { CpuGuard, loadAverage, pidListeningOn } from "./cpu.ts";
import { PeerProcess } from "./peerProcess.ts";
import { SputnikProcess } from "./sputnikProcess.ts";
import { textOfTokens } from "./text.ts";
import { runWorkload, streamsAggregate, type FigureResult, type Target, type WorkloadOptions } from "./workload.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    threads: { type: "string", default: "2" },
    parallel: { type: "string", default: "8" },
    runs: { type: "string", default: "3" },
    "decode-tokens": { type: "string", default: "128" },
    "vs-url": { type: "string" },
    "vs-model": { type: "string" },
    "vs-cmd": { type: "string" },
    "stream-tokens": { type: "string", default: "64" },
    rereads: { type: "string", default: "on" },
    "skip-ceiling": { type: "boolean", default: false },
    "skip-profile": { type: "boolean", default: false },
    /** Small prompts and short pauses: a quick check that every part of the bench runs, not figures. */
    smoke: { type: "boolean", default: false },
    json: { type: "string" },
    "skip-direct": { type: "boolean", default: false },
    /** Only these figures (keys: ingest, decode1, decode4, decode8, cold, warm, nextTurn, nextTurnRead, restart). */
    only: { type: "string" },
  },
});

const int = (name: string, value: string | undefined) => {
  if (!value || !/^\d+$/.test(value) || Number(value) < 1) throw new Error(`--${name} must be a positive whole number`);
  return Number(value);
};
const threads = int("threads", args.threads);
const parallel = int("parallel", args.parallel);
const runs = int("runs", args.runs);
const decodeTokens = int("decode-tokens", args["decode-tokens"]);
const streamTokens = int("stream-tokens", args["stream-tokens"]);
if (!["on", "off", "both"].includes(args.rereads!)) throw new Error("--rereads is on, off or both");
if (args["vs-cmd"] && !args["vs-url"]) throw new Error("--vs-cmd needs --vs-url: where the command's server listens");
const log = (line: string) => console.log(line);

const modelPath = path.resolve(args.model ?? (await ensureModel("bench")));
const modelId = path.basename(modelPath).replace(/\.gguf$/i, "");
// The machine may be shared: the load average before and after says how much to trust the figures.
log(`# Sputnik bench: ${modelPath} (${(fs.statSync(modelPath).size / 1e6).toFixed(0)} MB), threads ${threads}, parallel ${parallel}, ${os.cpus().length} CPUs, load average ${loadAverage()}`);

// The bench counts tokens with the model's own tokenizer so prompts have the sizes it claims.
const llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
const vocab = await llama.loadModel({ modelPath, vocabOnly: true });
const countCache = new Map<string, number>();
const count = (text: string) => {
  let n = countCache.get(text);
  if (n === undefined) countCache.set(text, (n = vocab.tokenize(text).length));
  return n;
};

const smoke = args.smoke;
const workload: WorkloadOptions = {
  runs,
  ingestTokens: smoke ? 64 : 512,
  decodeTokens,
  streamTokens,
  streams: [4, 8].filter((n) => n <= parallel),
  readPauseMs: smoke ? 1000 : 5000,
  userTurnTokens: smoke ? 30 : 230,
  answerTokens: smoke ? 40 : 250,
  lastUserTokens: smoke ? 10 : 60,
  count,
  log,
  ...(args.only ? { only: args.only.split(",").map((k) => k.trim()) } : {}),
};

// node-llama-cpp driven directly, as the ceiling for the API's single-stream figure.
const direct: Record<string, number> = {};
if (!args["skip-direct"]) {
  const prompt = textOfTokens(1, 32, count);
  for (const pool of ["1", "default"]) {
    direct[pool] = await runDirect(prompt, pool === "1" ? "1" : undefined);
    log(`  node-llama-cpp direct (no HTTP), UV_THREADPOOL_SIZE=${pool}: decode ${direct[pool]!.toFixed(1)} tok/s (median of ${runs})`);
  }
  // Sputnik's engine without HTTP, with the pool size the launcher sets: the layer between the two.
  direct.engine = await runDirect(prompt, "1", "bench/engineInProcess.ts");
  log(`  Sputnik's local engine in-process (no HTTP, no serving pipeline), UV_THREADPOOL_SIZE=1: decode ${direct.engine.toFixed(1)} tok/s (median of ${runs})`);
}

// The ceiling for concurrent streams: the same model, threads and context layout, no server.
let ceiling: Record<string, number> | null = null;
if (!args["skip-ceiling"]) {
  const prompts = Array.from({ length: 8 }, (_, i) => textOfTokens(7000 + i, 32, count));
  ceiling = await runCeiling(prompts);
  for (const [n, rate] of Object.entries(ceiling)) log(`  ceiling (node-llama-cpp in-process, ${n} sequences in one batch per step): ${rate.toFixed(1)} tok/s (median of ${runs})`);
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-bench-"));
const profileFile = path.join(dataDir, "profile.json");
const sputnikConfig = (rereads: boolean) => ({
  models: [modelPath],
  threads,
  parallel,
  contextSize: 4096,
  pullDefaultModel: false,
  ...(rereads ? {} : { localEngine: { models: { [modelId]: { rereads: false } } } }),
});
const sputnik = new SputnikProcess(sputnikConfig(args.rereads !== "off"), dataDir, args["skip-profile"] ? {} : { SPUTNIK_PROFILE: profileFile });
const otherUrl = args["vs-url"]?.replace(/\/+$/, "").replace(/\/v1$/, "");
const peer = args["vs-cmd"] && otherUrl ? new PeerProcess(args["vs-cmd"], otherUrl) : null;
const other: Target | null = otherUrl
  ? {
      label: "other",
      url: otherUrl,
      model: args["vs-model"] ?? modelId,
      pid: peer ? () => peer.pid : () => pidListeningOn(Number(new URL(otherUrl).port || 80)),
    }
  : null;
let figures: FigureResult[] = [];
const breakdowns: Breakdown[] = [];
/** The newest profile snapshot read so far: a snapshot file left by an earlier read is not taken for a new one. */
let lastProfileSeq = 0;
let rereadsOff: FigureResult[] | null = null;
let guard: CpuGuard | null = null;
try {
  const url = await sputnik.start();
  // A fresh install in local single-user mode: its data directory's key is the API key.
  const apiKey = (await readLocalKey(dataDir)) ?? undefined;
  const ours: Target = { label: "sputnik", url, model: modelId, apiKey, restart: () => sputnik.restart(), pid: () => sputnik.pid };
  // Without a command to start it, the other server stays up: both take turns under the CPU guard.
  const together = other && !peer ? [ours, other] : [ours];
  guard = new CpuGuard(other ? [ours, other] : [ours], log);
  figures = await runWorkload(together, { ...workload, guard });
  if (!args["skip-profile"]) {
    // Where each token's time goes: one stream, and each concurrent stream count the figures use.
    for (const n of [1, ...workload.streams]) {
      const b = await profileStreams(ours, n);
      if (b) breakdowns.push(b);
    }
  }
  if (args.rereads === "both") {
    // The same streams with re-reads off: what background work costs live streams, if anything.
    await sputnik.stop();
    const noRereads = new SputnikProcess(sputnikConfig(false), dataDir);
    ours.url = await noRereads.start();
    ours.pid = () => noRereads.pid;
    try {
      rereadsOff = await runWorkload([ours], { ...workload, only: workload.streams.map((n) => `decode${n}`), guard });
    } finally {
      await noRereads.stop();
    }
  }
  await sputnik.stop();
  if (peer && other) {
    // The other server's own turn, Sputnik stopped.
    log(`# the other server alone: ${args["vs-cmd"]}`);
    await peer.start();
    try {
      const theirs = await runWorkload([other], { ...workload, guard });
      for (const f of figures) {
        const t = theirs.find((x) => x.key === f.key);
        if (t) f.values.other = t.values.other;
      }
    } finally {
      await peer.stop();
    }
  }
} finally {
  await sputnik.stop();
  await peer?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

printTable(figures, Boolean(other));
printExtras();
log(`load average at the end: ${loadAverage()}`);
if (args.json) fs.writeFileSync(args.json, JSON.stringify({ modelPath, threads, parallel, runs, decodeTokens, streamTokens, direct, ceiling, breakdowns, rereadsOff, figures, cpuOutsideTurnsMs: guard?.outsideMs }, null, 2));
await vocab.dispose();

function printTable(results: FigureResult[], withOther: boolean): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  const fmt = (v: number | undefined, unit: string) => (v === undefined ? "n/a" : `${v.toFixed(unit === "ms" ? 0 : 1)} ${unit}`);
  const byKey = (key: string) => results.find((r) => r.key === key);
  log("");
  log(`${pad("figure", 44)}${pad("sputnik", 14)}${withOther ? pad("other", 14) + "sputnik ÷ other (speed)" : ""}`);
  for (const { key, label, unit, values } of results) {
    const ours = values.sputnik?.value;
    // A server the bench did not start is not restarted: with no cache surviving a restart there,
    // its restart case is its cold case.
    const theirs = key === "restart" ? byKey("cold")?.values.other?.value : values.other?.value;
    // Speed ratio: tok/s divide directly; for times the faster one has the smaller number. The
    // next-turn figure depends on what each server returned as content: no like-for-like ratio.
    const ratio = ours !== undefined && theirs !== undefined && !key.startsWith("nextTurn") ? (unit === "ms" ? theirs / ours : ours / theirs) : undefined;
    const shown = key === "cold" && values.sputnik?.promptTokens ? `${label} (${values.sputnik.promptTokens} tokens)` : label;
    log(`${pad(shown, 44)}${pad(fmt(ours, unit), 14)}${withOther ? pad(fmt(theirs, unit), 14) + (ratio === undefined ? "n/a" : `${ratio.toFixed(2)}×`) : ""}`);
  }
  log("");
  const cold = byKey("cold")?.values.sputnik?.value;
  const warm = byKey("warm")?.values.sputnik?.value;
  const restart = byKey("restart")?.values.sputnik?.value;
  if (cold !== undefined && warm !== undefined) log(`sputnik warm speed-up over cold: ${(cold / warm).toFixed(1)}×; after restart: ${restart ? `${(cold / restart).toFixed(1)}×` : "n/a"}`);
  const evaluated = (key: string) => byKey(key)?.values.sputnik?.evaluated ?? "?";
  log(`prompt tokens sputnik evaluated (its reported cache misses): cold ${evaluated("cold")}, warm ${evaluated("warm")}, after an answer ${evaluated("nextTurn")} (at once) / ${evaluated("nextTurnRead")} (after a pause), after restart ${evaluated("restart")}`);
  const api = byKey("decode1")?.values.sputnik?.value;
  if (direct["1"] !== undefined && api !== undefined) {
    log(`node-llama-cpp direct decode, 1 stream: ${direct["1"].toFixed(1)} tok/s (UV_THREADPOOL_SIZE=1), ${direct.default!.toFixed(1)} tok/s (default pool); sputnik API ÷ direct: ${(api / direct["1"]).toFixed(2)}×`);
    if (direct.engine !== undefined) log(`sputnik's engine in-process ÷ direct: ${(direct.engine / direct["1"]).toFixed(2)}×; sputnik API ÷ its engine in-process (the HTTP serving path's share): ${(api / direct.engine).toFixed(2)}×`);
  }
  if (withOther) log("other server after restart: not restarted by the bench; compared with its cold figure.");
}

function printExtras(): void {
  const value = (key: string, from = figures) => from.find((r) => r.key === key)?.values.sputnik?.value;
  if (ceiling) {
    const parts = Object.entries(ceiling).map(([n, rate]) => {
      const ours = n === "1" ? value("decode1") : value(`decode${n}`);
      return `${n} stream${n === "1" ? "" : "s"} ${ours === undefined ? "n/a" : `${(ours / rate).toFixed(2)}×`} (${ours?.toFixed(1) ?? "?"} of ${rate.toFixed(1)} tok/s)`;
    });
    log(`sputnik ÷ ceiling (in-process, one batch per step): ${parts.join("; ")}`);
  }
  if (rereadsOff) {
    const parts = workload.streams.map((n) => {
      const on = value(`decode${n}`);
      const off = value(`decode${n}`, rereadsOff!);
      return `${n} streams ${on?.toFixed(1) ?? "?"} on / ${off?.toFixed(1) ?? "?"} off tok/s`;
    });
    log(`re-reads on vs off (aggregate): ${parts.join("; ")}`);
  }
  const atOnce = value("nextTurn");
  const paused = value("nextTurnRead");
  if (atOnce !== undefined && paused !== undefined) log(`agent loop: TTFT of a next turn sent at once ÷ after a pause: ${(atOnce / paused).toFixed(2)}× (goal ≤ 1.20×)`);
  for (const b of breakdowns) {
    const per = (ms: number) => `${((ms / b.tokens) * 1000).toFixed(0)} µs`;
    const names: Record<string, string> = { decode: "decode (llama_decode)", sample: "sampling", assemble: "text assembly (ours)", sse: "SSE write", gate: "gate wait", other: "other (LlamaChat detokenize, HTTP, event loop, idle)" };
    log(`per-token time at ${b.streams} streams (${b.tokens} tokens, ${b.rate.toFixed(1)} tok/s, ${b.batches} batches, ${(b.batchTokens / Math.max(1, b.batches)).toFixed(1)} tokens per batch): wall ${per(b.wallMs)} per token =`);
    for (const [phase, ms] of Object.entries(b.spentMs)) log(`    ${names[phase] ?? phase}: ${per(ms)} (${((ms / b.wallMs) * 100).toFixed(0)}%)`);
  }
  if (guard && other) {
    const spent = Object.entries(guard.outsideMs).map(([label, ms]) => `${label} ${ms.toFixed(0)} ms`);
    log(`CPU spent outside its own turns: ${spent.join(", ")}; measurements repeated: ${guard.repeats}${peer ? " (the other server was only running for its own turn)" : ""}`);
  }
}

interface Breakdown {
  streams: number;
  tokens: number;
  rate: number;
  wallMs: number;
  batches: number;
  batchTokens: number;
  spentMs: Record<string, number>;
}

/** One more N-stream measurement with the profile's counters read before and after (src/engines/profile.ts). */
async function profileStreams(target: Target, n: number): Promise<Breakdown | null> {
  const pid = target.pid?.();
  if (pid === undefined) return null;
  type Snap = { seq: number; at: number; spentMs: Record<string, number>; counts: { batches: number; batchTokens: number } };
  const read = async (): Promise<Snap> => {
    process.kill(pid, "SIGUSR2");
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline) {
      try {
        const snap = JSON.parse(fs.readFileSync(profileFile, "utf8")) as Snap;
        if (snap.seq > lastProfileSeq) {
          lastProfileSeq = snap.seq;
          return snap;
        }
      } catch {
        // not written yet
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error("the profile snapshot was not written (SPUTNIK_PROFILE)");
  };
  let seed = 90_000 + Math.floor(Math.random() * 1e6);
  const before = await read();
  const { rate, tokens } = await streamsAggregate(target, n, streamTokens, () => textOfTokens(seed++, 32, count));
  const after = await read();
  const wallMs = after.at - before.at;
  const spentMs: Record<string, number> = {};
  let known = 0;
  for (const phase of Object.keys(after.spentMs)) {
    spentMs[phase] = after.spentMs[phase]! - (before.spentMs[phase] ?? 0);
    known += spentMs[phase]!;
  }
  spentMs.other = wallMs - known;
  return {
    streams: n,
    tokens,
    rate,
    wallMs,
    batches: after.counts.batches - before.counts.batches,
    batchTokens: after.counts.batchTokens - before.counts.batchTokens,
    spentMs,
  };
}

async function runCeiling(prompts: string[]): Promise<Record<string, number>> {
  // Sputnik's launcher runs libuv's pool with one thread (bin/sputnik.js): the same here.
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(root, "bench/ceiling.ts"), JSON.stringify({ model: modelPath, threads, parallel, contextSize: 4096, streams: [1, 4, 8].filter((n) => n <= parallel), tokens: streamTokens, prompts, runs })],
    { cwd: root, env: { ...process.env, UV_THREADPOOL_SIZE: "1" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bench/ceiling.ts exited with ${code}`);
  return (JSON.parse(out.trim().split("\n").pop()!) as { rates: Record<string, number> }).rates;
}

async function runDirect(prompt: string, pool: string | undefined, script = "bench/direct.ts"): Promise<number> {
  const env = { ...process.env };
  if (pool) env.UV_THREADPOOL_SIZE = pool;
  else delete env.UV_THREADPOOL_SIZE;
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, script), JSON.stringify({ model: modelPath, threads, parallel, tokens: decodeTokens, prompt, runs })], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`${script} exited with ${code}`);
  return (JSON.parse(out.trim().split("\n").pop()!) as { rate: number }).rate;
}
