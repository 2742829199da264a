/**
 * Child process of the bench: the ceiling for concurrent streams. node-llama-cpp in-process on the
 * same model, threads and context layout as Sputnik (one context of `parallel` sequences, the same
 * context and batch sizes), N sequences decoded together with no server around them: each step
 * asks every sequence's `evaluate` generator for its next token in the same tick, in sequence-id
 * order, so node-llama-cpp puts the N tokens into one batch and llama.cpp into one forward pass.
 * Greedy sampling, as the bench's clients ask for.
 *
 * Usage: node --import tsx bench/ceiling.ts '{"model":"…","threads":2,"parallel":8,"contextSize":4096,
 *   "streams":[1,4,8],"tokens":64,"prompts":["…",…],"runs":3}'
 * Prints one JSON line: { rates: { "1": tok/s, … }, samples: { "1": [...] } } (medians of `runs`).
 */
import { getLlama, LlamaLogLevel, type Token } from "node-llama-cpp";

const options = JSON.parse(process.argv[2] ?? "{}") as {
  model: string;
  threads: number;
  parallel: number;
  contextSize: number;
  streams: number[];
  tokens: number;
  prompts: string[];
  runs: number;
};

const llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: options.model });
// The same call as LocalModel.load (src/engines/local/localModel.ts), minus the gate.
const context = await model.createContext({
  sequences: options.parallel,
  contextSize: Math.min(options.contextSize, model.trainContextSize),
  threads: options.threads,
  batchSize: 512,
});
const sequences = Array.from({ length: options.parallel }, () => context.getSequence());

/** Aggregate decode rate of `n` streams: tokens after each one's first, over the time they took. */
async function aggregate(n: number, promptOffset: number): Promise<number> {
  const used = sequences.slice(0, n);
  for (const sequence of used) await sequence.clearHistory();
  const generators = used.map((sequence, i) =>
    sequence.evaluate(model.tokenize(options.prompts[(promptOffset + i) % options.prompts.length]!, true) as Token[], { temperature: 0 })[Symbol.asyncIterator](),
  );
  // The first step evaluates the prompts (together) and samples each stream's first token.
  let live = generators.map((g) => g.next());
  let results = await Promise.all(live);
  const started = performance.now();
  let tokens = 0;
  let active = generators.filter((_, i) => !results[i]!.done);
  for (let step = 1; step < options.tokens && active.length > 0; step++) {
    // Asked in the same tick and in sequence order: one batch, one forward pass.
    live = active.map((g) => g.next());
    results = await Promise.all(live);
    const still: typeof active = [];
    results.forEach((r, i) => {
      if (r.done) return;
      tokens++;
      still.push(active[i]!);
    });
    active = still;
  }
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(generators.map((g) => g.return?.(undefined)));
  return tokens / seconds;
}

await aggregate(1, 1000); // first-run allocations
const rates: Record<string, number> = {};
const samples: Record<string, number[]> = {};
let offset = 0;
for (const n of options.streams) {
  const list: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    list.push(await aggregate(n, offset));
    offset += n;
  }
  samples[n] = list;
  const sorted = [...list].sort((a, b) => a - b);
  rates[n] = sorted[(sorted.length - 1) >> 1]!;
}
process.stdout.write(JSON.stringify({ rates, samples, uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? null }) + "\n");
await context.dispose();
await model.dispose();
