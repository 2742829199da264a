import { loadAverage, type CpuGuard, type GuardedServer } from "./cpu.ts";
import { streamChat, type ChatMessage, type StreamResult } from "./stream.ts";
import { textOfTokens, type CountTokens } from "./text.ts";

/** A server under test. `restart` is there only when the bench started the server itself. */
export interface Target extends GuardedServer {
  label: string;
  url: string;
  model: string;
  /** Sent as `Authorization: Bearer …` (Sputnik's local key; anything for servers that ignore it). */
  apiKey?: string;
  restart?: () => Promise<string>;
}

export interface WorkloadOptions {
  runs: number;
  ingestTokens: number;
  decodeTokens: number;
  /** Tokens each stream generates in the concurrent figures. */
  streamTokens: number;
  streams: number[];
  /** How long the "reader" waits after an answer before sending the next turn. */
  readPauseMs: number;
  /** Tokens in each of the 4 earlier user messages and assistant answers of the conversation. */
  userTurnTokens: number;
  answerTokens: number;
  lastUserTokens: number;
  count: CountTokens;
  log: (line: string) => void;
  /** Figure keys to measure; absent: all. */
  only?: string[];
  /** Measures each server with the others quiet (see cpu.ts). */
  guard?: CpuGuard;
}

export interface Measurement {
  value: number;
  /** Prompt tokens the server evaluated (its reported cache misses), where that matters. */
  evaluated?: number | null;
  promptTokens?: number | null;
}

export interface FigureResult {
  key: string;
  label: string;
  unit: "tok/s" | "ms";
  /** Median per target label; absent when the figure does not apply to a target. */
  values: Record<string, Measurement | undefined>;
}

const median = (values: Measurement[]): Measurement => {
  const sorted = [...values].sort((a, b) => a.value - b.value);
  return sorted[(sorted.length - 1) >> 1]!;
};

/**
 * `n` streams at once, each on a fresh prompt: the aggregate rate from the first token of any
 * stream to the last token of all (every token after the first of each stream).
 */
export async function streamsAggregate(target: Target, n: number, maxTokens: number, prompt: () => string): Promise<{ rate: number; tokens: number }> {
  const results = await Promise.all(
    Array.from({ length: n }, () => streamChat(target.url, { model: target.model, messages: [{ role: "user", content: prompt() }], max_tokens: maxTokens }, target.apiKey)),
  );
  const first = Math.min(...results.map((r) => r.ttftMs));
  const last = Math.max(...results.map((r) => r.endMs));
  const tokens = results.reduce((sum, r) => sum + (r.completionTokens ?? 0) - 1, 0);
  return { rate: tokens / ((last - first) / 1000), tokens };
}

const missOf = (r: StreamResult) => (r.promptTokens !== null && r.cacheHitTokens !== null ? r.promptTokens - r.cacheHitTokens : null);

/**
 * The same workload for every server, measured figure by figure with the servers taking turns
 * run by run: on a shared machine the load drifts, and alternating keeps a passing burst from
 * landing on one server's figures only. Prompts are unique per measurement (fresh seeds), so a
 * figure meant to be cold really is cold on any server.
 */
export async function runWorkload(targets: Target[], options: WorkloadOptions): Promise<FigureResult[]> {
  const { count, log } = options;
  // A fresh seed range per bench run: a server still holding prompts of an earlier run (in RAM or
  // on disk) must not get cache hits on this one.
  let seed = Math.floor(Math.random() * 2 ** 30);
  const text = (tokens: number) => textOfTokens(seed++, tokens, count);
  const user = (content: string): ChatMessage => ({ role: "user", content });
  const chat = (target: Target, messages: ChatMessage[], maxTokens: number) =>
    streamChat(target.url, { model: target.model, messages, max_tokens: maxTokens }, target.apiKey);
  const history = (): ChatMessage[] => {
    const out: ChatMessage[] = [];
    for (let turn = 0; turn < 4; turn++) {
      out.push(user(text(options.userTurnTokens)));
      out.push({ role: "assistant", content: text(options.answerTokens) });
    }
    return out;
  };
  const lastUser = () => user(text(options.lastUserTokens));

  // Warm-up: the first requests of a process pay one-time costs (allocations, page faults).
  for (const target of targets) await chat(target, [user(text(16))], 4);

  const results: FigureResult[] = [];
  const figure = async (
    key: string,
    label: string,
    unit: "tok/s" | "ms",
    runs: number,
    measure: (target: Target, run: number) => Promise<Measurement | undefined>,
  ) => {
    if (options.only && !options.only.includes(key)) return;
    const samples: Record<string, Measurement[]> = {};
    for (let run = 0; run < runs; run++) {
      for (const target of targets) {
        const m = options.guard ? await options.guard.measure(target, label, () => measure(target, run)) : await measure(target, run);
        if (m) (samples[target.label] ??= []).push(m);
      }
    }
    const values: Record<string, Measurement | undefined> = {};
    for (const target of targets) {
      const list = samples[target.label];
      values[target.label] = list ? median(list) : undefined;
      if (list) log(`  ${label}, ${target.label}: ${list.map((m) => m.value.toFixed(unit === "ms" ? 0 : 1)).join(", ")} ${unit} (load average ${loadAverage()})`);
    }
    results.push({ key, label, unit, values });
  };

  await figure("ingest", `prompt ingest (${options.ingestTokens}-token prompt)`, "tok/s", options.runs, async (target) => {
    const r = await chat(target, [user(text(options.ingestTokens))], 1);
    const prompt = r.promptTokens ?? options.ingestTokens;
    return { value: prompt / (r.ttftMs / 1000), promptTokens: prompt };
  });

  await figure("decode1", "decode, 1 stream", "tok/s", options.runs, async (target) => {
    const r = await chat(target, [user(text(32))], options.decodeTokens);
    if ((r.completionTokens ?? 0) < options.decodeTokens / 2) log(`  warning: ${target.label} generated only ${r.completionTokens} tokens`);
    return { value: ((r.completionTokens ?? 0) - 1) / ((r.endMs - r.ttftMs) / 1000) };
  });

  for (const n of options.streams) {
    await figure(`decode${n}`, `decode, ${n} streams (aggregate)`, "tok/s", options.runs, async (target) => {
      return { value: (await streamsAggregate(target, n, options.streamTokens, () => text(32))).rate };
    });
  }

  // A conversation: 4 earlier turns (~2k tokens of history), then the 5th user message.
  await figure("cold", "TTFT 5th turn, cold", "ms", 1, async (target) => {
    const r = await chat(target, [...history(), lastUser()], 1);
    return { value: r.ttftMs, evaluated: missOf(r), promptTokens: r.promptTokens };
  });

  // Warm: the history is already evaluated (another 5th message was answered on it, as after an
  // edited or regenerated message); only the new 5th message should be evaluated.
  const warmHistory = new Map<string, ChatMessage[]>();
  await figure("warm", "TTFT 5th turn, warm (history in memory)", "ms", Math.max(2, options.runs), async (target) => {
    let past = warmHistory.get(target.label);
    if (!past) {
      warmHistory.set(target.label, (past = history()));
      await chat(target, [...past, lastUser()], 1);
    }
    const r = await chat(target, [...past, lastUser()], 1);
    return { value: r.ttftMs, evaluated: missOf(r), promptTokens: r.promptTokens };
  });

  // The real next turn: the server answers the 4th message; the client sends that answer back
  // (its `content`; DeepSeek's rule drops the reasoning) with the 5th message. What is left to
  // evaluate depends on what each server returned as content, so this one is not a like-for-like
  // comparison between servers.
  // Sent at once (a script), and after a reader's pause: Sputnik re-reads each answer in the form
  // the next turn sends it back while no request needs the sequence, which takes a moment.
  for (const [key, pauseMs] of [["nextTurn", 0], ["nextTurnRead", options.readPauseMs]] as const) {
    const label = pauseMs === 0 ? "TTFT 5th turn sent at once after an answer" : `TTFT 5th turn ${pauseMs / 1000} s after an answer`;
    // A median of runs like the speeds: one sample of a next turn was seen anywhere from 0.9× to
    // 1.8× the paused one on this machine.
    await figure(key, label, "ms", options.runs, async (target) => {
      const turns = history().slice(0, 7);
      const fourth = await chat(target, turns, options.answerTokens);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      const r = await chat(target, [...turns, { role: "assistant", content: fourth.content }, lastUser()], 1);
      return { value: r.ttftMs, evaluated: missOf(r), promptTokens: r.promptTokens };
    });
  }

  // After a restart: only a server the bench started can be restarted.
  await figure("restart", "TTFT 5th turn, after restart (disk cache)", "ms", 1, async (target) => {
    if (!target.restart) return undefined;
    const past = history();
    await chat(target, [...past, lastUser()], 1);
    target.url = await target.restart();
    await chat(target, [user(text(16))], 4); // the same warm-up as any fresh process, on an unrelated prompt
    const r = await chat(target, [...past, lastUser()], 1);
    return { value: r.ttftMs, evaluated: missOf(r), promptTokens: r.promptTokens };
  });

  return results;
}
