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
import { readLocalKey } from "../src/auth/localMode.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { SputnikProcess } from "./sputnikProcess.ts";
import { textOfTokens } from "./text.ts";
import { runWorkload, type FigureResult, type Target, type WorkloadOptions } from "./workload.ts";

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
  streamTokens: 64,
  streams: [4, 8],
  readPauseMs: 5000,
  userTurnTokens: 230,
  answerTokens: 250,
  lastUserTokens: 60,
  count,
  log,
};

// node-llama-cpp driven directly, as the ceiling for the API's single-stream figure.
const direct: Record<string, number> = {};
if (!args["skip-direct"]) {
  const prompt = textOfTokens(1, 32, count);
  for (const pool of ["1", "default"]) {
    direct[pool] = await runDirect(prompt, pool === "1" ? "1" : undefined);
    log(`  node-llama-cpp direct (no HTTP), UV_THREADPOOL_SIZE=${pool}: decode ${direct[pool]!.toFixed(1)} tok/s (median of ${runs})`);
  }
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-bench-"));
const sputnik = new SputnikProcess({ models: [modelPath], threads, parallel, contextSize: 4096, pullDefaultModel: false }, dataDir);
let figures: FigureResult[];
try {
  const url = await sputnik.start();
  // A fresh install in local single-user mode: its data directory's key is the API key.
  const apiKey = (await readLocalKey(dataDir)) ?? undefined;
  const targets: Target[] = [{ label: "sputnik", url, model: modelId, apiKey, restart: () => sputnik.restart() }];
  if (args["vs-url"]) targets.push({ label: "other", url: args["vs-url"].replace(/\/+$/, "").replace(/\/v1$/, ""), model: args["vs-model"] ?? modelId });
  figures = await runWorkload(targets, workload);
} finally {
  await sputnik.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

printTable(figures, Boolean(args["vs-url"]));
log(`load average at the end: ${loadAverage()}`);
if (args.json) fs.writeFileSync(args.json, JSON.stringify({ modelPath, threads, parallel, runs, decodeTokens, direct, figures }, null, 2));
await vocab.dispose();

function printTable(results: FigureResult[], withOther: boolean): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  const fmt = (v: number | undefined, unit: string) => (v === undefined ? "n/a" : `${v.toFixed(unit === "ms" ? 0 : 1)} ${unit}`);
  const byKey = (key: string) => results.find((r) => r.key === key)!;
  log("");
  log(`${pad("figure", 44)}${pad("sputnik", 14)}${withOther ? pad("other", 14) + "sputnik ÷ other (speed)" : ""}`);
  for (const { key, label, unit, values } of results) {
    const ours = values.sputnik?.value;
    // A server the bench did not start is not restarted: with no cache surviving a restart there,
    // its restart case is its cold case.
    const theirs = key === "restart" ? byKey("cold").values.other?.value : values.other?.value;
    // Speed ratio: tok/s divide directly; for times the faster one has the smaller number. The
    // next-turn figure depends on what each server returned as content: no like-for-like ratio.
    const ratio = ours !== undefined && theirs !== undefined && !key.startsWith("nextTurn") ? (unit === "ms" ? theirs / ours : ours / theirs) : undefined;
    const shown = key === "cold" && values.sputnik?.promptTokens ? `${label} (${values.sputnik.promptTokens} tokens)` : label;
    log(`${pad(shown, 44)}${pad(fmt(ours, unit), 14)}${withOther ? pad(fmt(theirs, unit), 14) + (ratio === undefined ? "n/a" : `${ratio.toFixed(2)}×`) : ""}`);
  }
  log("");
  const cold = byKey("cold").values.sputnik!.value;
  const warm = byKey("warm").values.sputnik!.value;
  const restart = byKey("restart").values.sputnik?.value;
  log(`sputnik warm speed-up over cold: ${(cold / warm).toFixed(1)}×; after restart: ${restart ? `${(cold / restart).toFixed(1)}×` : "n/a"}`);
  const evaluated = (key: string) => byKey(key).values.sputnik?.evaluated ?? "?";
  log(`prompt tokens sputnik evaluated (its reported cache misses): cold ${evaluated("cold")}, warm ${evaluated("warm")}, after an answer ${evaluated("nextTurn")} (at once) / ${evaluated("nextTurnRead")} (after a pause), after restart ${evaluated("restart")}`);
  if (direct["1"] !== undefined) {
    const api = byKey("decode1").values.sputnik!.value;
    log(`node-llama-cpp direct decode, 1 stream: ${direct["1"].toFixed(1)} tok/s (UV_THREADPOOL_SIZE=1), ${direct.default!.toFixed(1)} tok/s (default pool); sputnik API ÷ direct: ${(api / direct["1"]).toFixed(2)}×`);
  }
  if (withOther) log("other server after restart: not restarted by the bench; compared with its cold figure.");
}

async function runDirect(prompt: string, pool: string | undefined): Promise<number> {
  const env = { ...process.env };
  if (pool) env.UV_THREADPOOL_SIZE = pool;
  else delete env.UV_THREADPOOL_SIZE;
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "bench/direct.ts"), JSON.stringify({ model: modelPath, threads, tokens: decodeTokens, prompt, runs })], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bench/direct.ts exited with ${code}`);
  return (JSON.parse(out.trim().split("\n").pop()!) as { rate: number }).rate;
}
