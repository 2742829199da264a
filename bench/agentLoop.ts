/**
 * `npm run bench:agent`: an agent/tool loop of N steps (default 5), each next request sent the
 * moment the previous answer ends, timed per step (TTFT) on Sputnik and, with --vs-url, on
 * another OpenAI-compatible server (llama-server) serving the same GGUF; and the same loop with a
 * pause before each next step, so "sent at once ÷ after a pause" shows what an agent pays for not
 * waiting (issue 18's goal: within 1.2×).
 *
 *   npm run bench:agent -- [--model file.gguf] [--threads 2] [--parallel 2] [--runs 3] [--steps 5]
 *                          [--max-tokens 48] [--pause-ms 3000] [--echo] [--json out.json] [--smoke]
 *                          [--sputnik-config '{"localEngine": {"models": {"bench": {"rereads": false}}}}']
 *                          [--vs-url http://127.0.0.1:8081 [--vs-cmd "llama-server -m … --port 8081 -t 2 -np 2 -c 8192"]]
 *
 * Like for like: both servers get the same pre-written transcript — a system prompt with the tool
 * definitions as text (a ReAct-style agent: "Action:" / "Action Input:" / "Observation:"), the
 * user's task, then per step the assistant's previous message and the tool's result (a user
 * message) — whatever the model generated, so each step's prompt is the same text on both.
 * Streamed, `temperature: 0`, a fixed `max_tokens` per step. The generated answer is NOT what is
 * sent back (the random-weight model writes gibberish), so a server's work on the answer it just
 * wrote (Sputnik's next-turn form) cannot help the next step here; `--echo` sends each server's
 * own answers back instead — the real agent case, but no longer the same prompt on both servers.
 *
 * Fairness, as in bench.ts: each server runs alone (Sputnik is stopped before --vs-cmd starts the
 * other; with --vs-url alone the other server stays up throughout, and its CPU shows in "other
 * processes" during Sputnik's loops); every loop starts on fresh text (new seeds), so nothing cached by an earlier loop helps
 * it; a loop starts only once the server is idle; the load average and the CPU that other
 * processes used during each loop are printed. Figures are medians of --runs, never asserted.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { readLocalKey } from "../src/auth/localMode.ts";
import { ensureModel } from "../src/gguf/catalog.ts";
import { cpuMs, loadAverage, machineBusyMs, pidListeningOn } from "./cpu.ts";
import { PeerProcess } from "./peerProcess.ts";
import { SputnikProcess } from "./sputnikProcess.ts";
import { streamChat, type ChatMessage, type StreamResult } from "./stream.ts";
import { textOfTokens } from "./text.ts";
import type { Target } from "./workload.ts";

const { values: args } = parseArgs({
  options: {
    model: { type: "string" },
    threads: { type: "string", default: "2" },
    parallel: { type: "string", default: "2" },
    "context-size": { type: "string", default: "4096" },
    runs: { type: "string", default: "3" },
    steps: { type: "string", default: "5" },
    "max-tokens": { type: "string", default: "48" },
    "pause-ms": { type: "string", default: "3000" },
    echo: { type: "boolean", default: false },
    "vs-url": { type: "string" },
    "vs-model": { type: "string" },
    "vs-cmd": { type: "string" },
    /** Small prompts, one run, short pauses: a quick check that the bench runs end to end, not figures. */
    smoke: { type: "boolean", default: false },
    json: { type: "string" },
    /** Extra Sputnik config (JSON), merged over the bench's: e.g. '{"localEngine":{"models":{"bench":{"prepareNextTurn":"off"}}}}'. */
    "sputnik-config": { type: "string" },
  },
});

const int = (name: string, value: string | undefined, min = 1) => {
  if (!value || !/^\d+$/.test(value) || Number(value) < min) throw new Error(`--${name} must be a whole number ≥ ${min}`);
  return Number(value);
};
const smoke = args.smoke;
const threads = int("threads", args.threads);
const parallel = int("parallel", args.parallel);
const contextSize = int("context-size", args["context-size"], 256);
const runs = smoke ? 1 : int("runs", args.runs);
const steps = int("steps", args.steps);
const maxTokens = smoke ? 8 : int("max-tokens", args["max-tokens"]);
const pauseMs = smoke ? 1000 : int("pause-ms", args["pause-ms"], 0);
if (args["vs-cmd"] && !args["vs-url"]) throw new Error("--vs-cmd needs --vs-url: where the command's server listens");
/** Tokens of each seeded part of the transcript (the tool definitions and markers come on top). */
const sizes = smoke ? { system: 40, task: 20, thought: 8, observation: 30 } : { system: 300, task: 100, thought: 40, observation: 250 };
const log = (line: string) => console.log(line);

const modelPath = path.resolve(args.model ?? (await ensureModel("bench")));
const modelId = path.basename(modelPath).replace(/\.gguf$/i, "");
log(
  `# agent-loop bench: ${modelPath} (${(fs.statSync(modelPath).size / 1e6).toFixed(0)} MB), ${steps} steps, max_tokens ${maxTokens}, pause ${pauseMs} ms, ` +
    `threads ${threads}, parallel ${parallel}, runs ${runs}${args.echo ? ", answers echoed" : ", fixed transcript"}, ${os.cpus().length} CPUs, load average ${loadAverage()}`,
);

// Transcript parts are sized with the model's own tokenizer.
const llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
const vocab = await llama.loadModel({ modelPath, vocabOnly: true });
const count = (text: string) => vocab.tokenize(text).length;

const TOOLS = [
  { name: "read_file", description: "Reads a file of the repository.", parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] } },
  { name: "search_code", description: "Finds lines matching a query.", parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"] } },
  { name: "run_tests", description: "Runs the tests matching a pattern.", parameters: { type: "object", properties: { pattern: { type: "string" } }, required: ["pattern"] } },
];

interface Transcript {
  system: string;
  task: string;
  /** Per step: the assistant's message (a tool call) and the tool's result that follows it. */
  turns: Array<{ assistant: string; observation: string }>;
}

/** A transcript of fresh text: its seed starts the system prompt, so no earlier loop shares more than the template's start. */
function transcript(seed: number): Transcript {
  const text = (tokens: number) => textOfTokens(seed++, tokens, count);
  const system =
    `${text(sizes.system)}\n\nYou are a coding agent. Tools:\n${JSON.stringify(TOOLS)}\n` +
    "To call a tool write:\nAction: <tool name>\nAction Input: <JSON arguments>\nIts result comes back as an Observation.";
  const turns = Array.from({ length: steps }, (_, i) => {
    const tool = TOOLS[i % TOOLS.length]!;
    const argument = Object.keys(tool.parameters.properties)[0]!;
    return {
      assistant: `Thought: ${text(sizes.thought)}\nAction: ${tool.name}\nAction Input: ${JSON.stringify({ [argument]: `src/step${i + 1}.ts` })}`,
      observation: `Observation: ${text(sizes.observation)}`,
    };
  });
  return { system, task: text(sizes.task), turns };
}

interface StepResult {
  ttftMs: number;
  endMs: number;
  promptTokens: number | null;
  /** Prompt tokens the server evaluated (its reported cache misses), when it reports cache hits. */
  miss: number | null;
  completionTokens: number | null;
}

interface LoopResult {
  steps: StepResult[];
  wallMs: number;
  /** CPU milliseconds other processes (neither the server nor the bench) used during the loop. */
  othersCpuMs: number | null;
  serverCpuMs: number | null;
  load: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits (up to 30 s) until the server uses no CPU over a 300 ms window: an earlier loop's background work must not land in this one. */
async function idle(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    const before = cpuMs(pid) ?? 0;
    await sleep(300);
    if ((cpuMs(pid) ?? 0) - before <= 10) return;
  }
}

/** One agent loop: step 1 is the task alone; each later step adds the previous call and its result. */
async function agentLoop(target: Target, t: Transcript, pause: number): Promise<LoopResult> {
  const pid = target.pid?.();
  await idle(pid);
  const busy0 = machineBusyMs();
  const server0 = pid !== undefined ? cpuMs(pid) : null;
  const bench0 = process.cpuUsage();
  const started = performance.now();
  const messages: ChatMessage[] = [
    { role: "system", content: t.system },
    { role: "user", content: t.task },
  ];
  const results: StepResult[] = [];
  let previous: StreamResult | null = null;
  for (let step = 0; step < steps; step++) {
    if (previous) {
      const turn = t.turns[step - 1]!;
      messages.push({ role: "assistant", content: args.echo ? previous.content : turn.assistant }, { role: "user", content: turn.observation });
      if (pause > 0) await sleep(pause);
    }
    const r = await streamChat(target.url, { model: target.model, messages, max_tokens: maxTokens }, target.apiKey);
    results.push({
      ttftMs: r.ttftMs,
      endMs: r.endMs,
      promptTokens: r.promptTokens,
      miss: r.promptTokens !== null && r.cacheHitTokens !== null ? r.promptTokens - r.cacheHitTokens : null,
      completionTokens: r.completionTokens,
    });
    previous = r;
  }
  const wallMs = performance.now() - started;
  const busy1 = machineBusyMs();
  const server1 = pid !== undefined ? cpuMs(pid) : null;
  const bench = process.cpuUsage(bench0);
  const serverCpuMs = server0 !== null && server1 !== null ? server1 - server0 : null;
  const othersCpuMs = busy0 !== null && busy1 !== null ? busy1 - busy0 - (serverCpuMs ?? 0) - (bench.user + bench.system) / 1000 : null;
  return { steps: results, wallMs, othersCpuMs, serverCpuMs, load: loadAverage() };
}

type Mode = "atOnce" | "paused";
type Measured = Record<Mode, LoopResult[]>;

/** --runs loops in each mode, the order alternating run by run so drifting load spreads over both. */
async function measure(target: Target, seedBase: number): Promise<Measured> {
  // Warm-up: a fresh process's first request pays one-time costs (allocations, page faults).
  await streamChat(target.url, { model: target.model, messages: [{ role: "user", content: textOfTokens(seedBase - 1, 16, count) }], max_tokens: 4 }, target.apiKey);
  const out: Measured = { atOnce: [], paused: [] };
  let seed = seedBase;
  for (let run = 0; run < runs; run++) {
    const order: Mode[] = run % 2 === 0 ? ["atOnce", "paused"] : ["paused", "atOnce"];
    for (const mode of order) {
      const loop = await agentLoop(target, transcript((seed += 1000)), mode === "atOnce" ? 0 : pauseMs);
      out[mode].push(loop);
      const others = loop.othersCpuMs === null ? "n/a" : `${loop.othersCpuMs.toFixed(0)} ms (${((loop.othersCpuMs / loop.wallMs) * 100).toFixed(0)}% of a core)`;
      log(
        `  ${target.label} run ${run + 1} ${mode === "atOnce" ? "at once    " : "after pause"}: TTFT ${loop.steps.map((s) => s.ttftMs.toFixed(0)).join(", ")} ms; ` +
          `evaluated ${loop.steps.map((s) => s.miss ?? "?").join(", ")} of ${loop.steps.map((s) => s.promptTokens ?? "?").join(", ")} prompt tokens; ` +
          `server CPU ${loop.serverCpuMs?.toFixed(0) ?? "n/a"} ms, other processes ${others}, load average ${loop.load}`,
      );
    }
  }
  return out;
}

const median = (values: number[]): number | undefined => {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[(sorted.length - 1) >> 1];
};
const stepMedian = (loops: LoopResult[], step: number, pick: (s: StepResult) => number | null) =>
  median(loops.map((l) => pick(l.steps[step]!)).filter((v): v is number => v !== null));
const totalMedian = (loops: LoopResult[]) => median(loops.map((l) => l.steps.reduce((sum, s) => sum + s.ttftMs, 0)));

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-agent-bench-"));
const extraConfig = args["sputnik-config"] ? (JSON.parse(args["sputnik-config"]) as Record<string, unknown>) : {};
const sputnik = new SputnikProcess({ models: [modelPath], threads, parallel, contextSize, pullDefaultModel: false, ...extraConfig }, dataDir);
const otherUrl = args["vs-url"]?.replace(/\/+$/, "").replace(/\/v1$/, "");
const peer = args["vs-cmd"] && otherUrl ? new PeerProcess(args["vs-cmd"], otherUrl) : null;
const seedBase = Math.floor(Math.random() * 2 ** 28);
let ours: Measured | null = null;
let theirs: Measured | null = null;
try {
  const url = await sputnik.start();
  const apiKey = (await readLocalKey(dataDir)) ?? undefined;
  ours = await measure({ label: "sputnik", url, model: modelId, apiKey, pid: () => sputnik.pid }, seedBase);
  await sputnik.stop();
  if (otherUrl) {
    // Sputnik is stopped: the other server has the machine to itself (started here with --vs-cmd,
    // or already running; then found by its port for the CPU figures).
    if (peer) {
      log(`# the other server alone: ${args["vs-cmd"]}`);
      await peer.start();
    }
    const port = Number(new URL(otherUrl).port || 80);
    // The same seeds: the other server gets the very same transcripts.
    theirs = await measure({ label: "other", url: otherUrl, model: args["vs-model"] ?? modelId, pid: () => pidListeningOn(port) }, seedBase);
  }
} finally {
  await sputnik.stop();
  await peer?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}

printTable(ours!, theirs);
log(`load average at the end: ${loadAverage()}`);
if (args.json) fs.writeFileSync(args.json, JSON.stringify({ modelPath, threads, parallel, runs, steps, maxTokens, pauseMs, echo: args.echo, sizes, sputnik: ours, other: theirs }, null, 2));
await vocab.dispose();

function printTable(s: Measured, o: Measured | null): void {
  const ms = (v: number | undefined) => (v === undefined ? "n/a" : `${v.toFixed(0)} ms`);
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || b === 0 ? "n/a" : `${(a / b).toFixed(2)}×`);
  const tokens = (v: number | undefined) => (v === undefined ? "?" : String(v));
  const cols = [
    ["step", 6],
    ["prompt tok", 12],
    ["S miss now/paused", 19],
    ["S at once", 11],
    ["S paused", 11],
    ["S now÷paused", 14],
    ...(o ? ([["L at once", 11], ["L paused", 11], ["L now÷paused", 14], ["S÷L at once", 13], ["S÷L paused", 12]] as const) : []),
  ] as const;
  const row = (cells: string[]) => log(cells.map((c, i) => c.padEnd(cols[i]![1])).join(""));
  log("");
  log(`S = sputnik${o ? ", L = the other server (llama-server)" : ""}; medians of ${runs}; "prompt tok" is sputnik's count${o ? " / the other's" : ""}.`);
  row(cols.map(([name]) => name));
  for (let step = 0; step < steps; step++) {
    const sNow = stepMedian(s.atOnce, step, (x) => x.ttftMs);
    const sPaused = stepMedian(s.paused, step, (x) => x.ttftMs);
    const prompt = `${tokens(stepMedian(s.atOnce, step, (x) => x.promptTokens))}${o ? ` / ${tokens(stepMedian(o.atOnce, step, (x) => x.promptTokens))}` : ""}`;
    const miss = `${tokens(stepMedian(s.atOnce, step, (x) => x.miss))} / ${tokens(stepMedian(s.paused, step, (x) => x.miss))}`;
    const cells = [String(step + 1), prompt, miss, ms(sNow), ms(sPaused), ratio(sNow, sPaused)];
    if (o) {
      const oNow = stepMedian(o.atOnce, step, (x) => x.ttftMs);
      const oPaused = stepMedian(o.paused, step, (x) => x.ttftMs);
      cells.push(ms(oNow), ms(oPaused), ratio(oNow, oPaused), ratio(sNow, oNow), ratio(sPaused, oPaused));
    }
    row(cells);
  }
  const sNow = totalMedian(s.atOnce);
  const sPaused = totalMedian(s.paused);
  const total = ["total", "", "", ms(sNow), ms(sPaused), ratio(sNow, sPaused)];
  if (o) {
    const oNow = totalMedian(o.atOnce);
    const oPaused = totalMedian(o.paused);
    total.push(ms(oNow), ms(oPaused), ratio(oNow, oPaused), ratio(sNow, oNow), ratio(sPaused, oPaused));
  }
  row(total);
  log("");
  // Steps 2.. are the ones an agent sends at once; step 1 is the same cold prompt in both modes.
  const later = (m: LoopResult[]) => median(m.map((l) => l.steps.slice(1).reduce((sum, x) => sum + x.ttftMs, 0)));
  log(`steps 2–${steps} (sent right after an answer): sputnik at once ÷ after a pause ${ratio(later(s.atOnce), later(s.paused))} (goal ≤ 1.20×)${o ? `; sputnik ÷ other, at once: ${ratio(later(s.atOnce), later(o.atOnce))} (goal ≤ 1.00×)` : ""}`);
  const others = (m: Measured) => {
    const all = [...m.atOnce, ...m.paused].filter((l) => l.othersCpuMs !== null);
    const worst = Math.max(...all.map((l) => l.othersCpuMs! / l.wallMs));
    return all.length === 0 ? "n/a" : `up to ${(worst * 100).toFixed(0)}% of a core (median ${((median(all.map((l) => l.othersCpuMs! / l.wallMs)) ?? 0) * 100).toFixed(0)}%)`;
  };
  log(`confounders: CPU other processes used during the loops: sputnik's ${others(s)}${o ? `; the other's ${others(o)}` : ""}; ${os.cpus().length} CPUs`);
  if (!args.echo) log("note: the fixed transcript sends back pre-written assistant messages, not what the model generated; --echo sends each server's own answers.");
}
