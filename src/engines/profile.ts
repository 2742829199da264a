import fs from "node:fs";

/**
 * Where the wall time of generation goes, for the bench's per-token breakdown. Off unless the
 * process starts with SPUTNIK_PROFILE=<file>: then nothing is wrapped and every hook is one
 * boolean test. On, SIGUSR2 writes a snapshot of the counters to that file (the bench reads one
 * before and one after a measurement).
 *
 * Wall time is split into phases by what is running at each moment, the highest first:
 * llama.cpp decoding a batch, sampling (native, on the thread pool), our JavaScript handling a
 * token (detokenizing and assembling text, writing SSE), a token held at the batching gate while
 * nothing else runs; what is left ("other") is the event loop doing anything else, or nothing.
 */
const file = process.env.SPUTNIK_PROFILE;
export const profiling = typeof file === "string" && file.length > 0;

export type Phase = "decode" | "sample" | "assemble" | "sse" | "gate";
const ORDER: readonly Phase[] = ["decode", "sample", "assemble", "sse", "gate"];

const active: Record<Phase, number> = { decode: 0, sample: 0, assemble: 0, sse: 0, gate: 0 };
const spent: Record<Phase, number> = { decode: 0, sample: 0, assemble: 0, sse: 0, gate: 0 };
const counts = { batches: 0, batchTokens: 0, samples: 0, sseWrites: 0 };
let last = performance.now();
let seq = 0;

function advance(): void {
  const now = performance.now();
  const top = ORDER.find((phase) => active[phase] > 0);
  if (top) spent[top] += now - last;
  last = now;
}

/** Marks a phase as running until the returned call (nested and overlapping calls add up). */
export function enterPhase(phase: Phase): () => void {
  advance();
  active[phase]++;
  let left = false;
  return () => {
    if (left) return;
    left = true;
    advance();
    active[phase]--;
  };
}

export function countBatch(tokens: number): void {
  counts.batches++;
  counts.batchTokens += tokens;
}

export function countSample(): void {
  counts.samples++;
}

export function countSseWrite(): void {
  counts.sseWrites++;
}

export interface ProfileSnapshot {
  seq: number;
  at: number;
  spentMs: Record<Phase, number>;
  counts: typeof counts;
}

export function snapshot(): ProfileSnapshot {
  advance();
  return { seq: ++seq, at: performance.now(), spentMs: { ...spent }, counts: { ...counts } };
}

if (profiling) {
  process.on("SIGUSR2", () => {
    try {
      fs.writeFileSync(file!, JSON.stringify(snapshot()));
    } catch {
      // A profile that cannot be written is no reason to disturb the service.
    }
  });
}
