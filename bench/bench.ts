/**
 * `npm run bench`: Sputnik's speed on the generated benchmark model, through its HTTP API, and
 * optionally the same workload against another OpenAI-compatible server serving the same GGUF.
 *
 *   npm run bench -- [--threads 2] [--parallel 8] [--runs 3] [--vs-url http://127.0.0.1:8081]
 *                    [--model file.gguf] [--json results.json]
 *
 * Figures are printed, never asserted: the machine is shared and timings are noisy.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { ensureModel } from "../src/gguf/catalog.ts";
import { SputnikProcess } from "./sputnikProcess.ts";
import { textOfTokens } from "./text.ts";
import { runWorkload, type Figures, type WorkloadOptions } from "./workload.ts";

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
    json: { type: "string" },
    "skip-direct": { type: "boolean", default: false },
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
const log = (line: string) => console.log(line);

const modelPath = path.resolve(args.model ?? (await ensureModel("bench")));
const modelId = path.basename(modelPath).replace(/\.gguf$/i, "");
// The machine may be shared: the load average before and after says how much to trust the figures.
const loadAverage = () => os.loadavg().map((v) => v.toFixed(2)).join(" ");
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

const workload: WorkloadOptions = {
  runs,
  ingestTokens: 512,
  decodeTokens,
  streams: [4, 8],
  userTurnTokens: 230,
  answerTokens: 250,
  lastUserTokens: 60,
  count,
  log,
};

const direct: Record<string, number> = {};
if (!args["skip-direct"]) {
  const prompt = textOfTokens(1, 32, count);
  for (const pool of ["1", "default"]) {
    const result = await runDirect(prompt, pool === "1" ? "1" : undefined);
    direct[pool] = result.rate;
    log(`  node-llama-cpp direct (no HTTP), UV_THREADPOOL_SIZE=${pool}: decode ${result.rate.toFixed(1)} tok/s`);
  }
}

log(`## Sputnik`);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-bench-"));
const sputnik = new SputnikProcess({ models: [modelPath], threads, parallel, contextSize: 4096, pullDefaultModel: false }, dataDir);
let ours: Figures;
try {
  const url = await sputnik.start();
  ours = await runWorkload({ label: "sputnik", url, model: modelId, restart: () => sputnik.restart() }, workload, 1000);
} finally {
  await sputnik.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

let other: Figures | null = null;
if (args["vs-url"]) {
  const url = args["vs-url"].replace(/\/+$/, "").replace(/\/v1$/, "");
  log(`## other: ${url}`);
  other = await runWorkload({ label: "other", url, model: args["vs-model"] ?? modelId }, workload, 1000);
}

printTable(ours, other);
log(`load average at the end: ${loadAverage()}`);
if (args.json) fs.writeFileSync(args.json, JSON.stringify({ modelPath, threads, parallel, runs, decodeTokens, direct, sputnik: ours, other }, null, 2));
await vocab.dispose();

function printTable(a: Figures, b: Figures | null): void {
  type Row = [label: string, ours: number | null, theirs: number | null, unit: "tok/s" | "ms"];
  const rows: Row[] = [
    [`prompt ingest (${a.promptTokens.ingest}-token prompt)`, a.ingestTokPerS, b?.ingestTokPerS ?? null, "tok/s"],
    ["decode, 1 stream", a.decodeTokPerS, b?.decodeTokPerS ?? null, "tok/s"],
    ...workload.streams.map((n): Row => [`decode, ${n} streams (aggregate)`, a.aggregateTokPerS[n]!, b?.aggregateTokPerS[n] ?? null, "tok/s"]),
    [`TTFT 5th turn, cold (${a.promptTokens.conversation} tokens)`, a.ttftColdMs, b?.ttftColdMs ?? null, "ms"],
    ["TTFT 5th turn, warm (history in memory)", a.ttftWarmMs, b?.ttftWarmMs ?? null, "ms"],
    ["TTFT 5th turn after a generated answer", a.ttftNextTurnMs, b?.ttftNextTurnMs ?? null, "ms"],
    // Another server is not restarted by the bench; without a disk cache its restart is its cold case.
    ["TTFT 5th turn, after restart (disk cache)", a.ttftRestartMs, b ? b.ttftColdMs : null, "ms"],
  ];
  const pad = (s: string, n: number) => s.padEnd(n);
  const fmt = (v: number | null, unit: string) => (v === null ? "n/a" : `${v.toFixed(unit === "ms" ? 0 : 1)} ${unit}`);
  log("");
  log(`${pad("figure", 44)}${pad("sputnik", 14)}${b ? pad("other", 14) + "sputnik ÷ other (speed)" : ""}`);
  for (const [label, x, y, unit] of rows) {
    // Speed ratio: tok/s divide directly; for times the faster one has the smaller number.
    const ratio = x !== null && y !== null ? (unit === "ms" ? y / x : x / y) : null;
    log(`${pad(label, 44)}${pad(fmt(x, unit), 14)}${b ? pad(fmt(y, unit), 14) + (ratio === null ? "n/a" : `${ratio.toFixed(2)}×`) : ""}`);
  }
  log("");
  log(`warm speed-up over cold: ${(a.ttftColdMs / a.ttftWarmMs).toFixed(1)}× ; after restart: ${a.ttftRestartMs ? (a.ttftColdMs / a.ttftRestartMs).toFixed(1) + "×" : "n/a"}`);
  log(`prompt tokens evaluated (cache misses reported by sputnik): cold ${a.evaluated.cold}, warm ${a.evaluated.warm}, after an answer ${a.evaluated.nextTurn}, after restart ${a.evaluated.restart}`);
  if (direct["1"] !== undefined) {
    log(`node-llama-cpp direct decode, 1 stream: ${direct["1"].toFixed(1)} tok/s (UV_THREADPOOL_SIZE=1), ${direct.default!.toFixed(1)} tok/s (default pool); API ÷ direct: ${(a.decodeTokPerS / direct["1"]).toFixed(2)}×`);
  }
  if (b) log("other server after restart: not restarted by the bench; compared with its cold figure (no cache survives a restart there).");
}

async function runDirect(prompt: string, pool: string | undefined): Promise<{ rate: number }> {
  const env = { ...process.env };
  if (pool) env.UV_THREADPOOL_SIZE = pool;
  else delete env.UV_THREADPOOL_SIZE;
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "bench/direct.ts"), JSON.stringify({ model: modelPath, threads, tokens: decodeTokens, prompt })], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bench/direct.ts exited with ${code}`);
  return JSON.parse(out.trim().split("\n").pop()!) as { rate: number };
}
