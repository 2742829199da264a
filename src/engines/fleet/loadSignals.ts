import type { Exposition, Sample } from "./promText.ts";

/** What an upstream's own `/metrics` says about its load, as last read. Null: it exports no such figure. */
export interface LoadSignals {
  /** Which engine's metric names were found. */
  source: "vllm" | "sglang" | "llamacpp" | "sputnik";
  /** Requests waiting in the engine's own queue (not yet running). */
  waiting: number | null;
  /** Requests the engine is running now. */
  running: number | null;
  /** Share of the KV cache in use, 0–1. */
  kvUsage: number | null;
}

interface Family {
  source: LoadSignals["source"];
  waiting: string[];
  running: string[];
  kvUsage: string[];
}

/**
 * The gauges each engine exports, first match wins within a list (older names last):
 *   vLLM (docs, "Production Metrics"): `vllm:num_requests_waiting`, `vllm:num_requests_running`,
 *     `vllm:kv_cache_usage_perc` (a fraction, 1 = full; `vllm:gpu_cache_usage_perc` before v0.10);
 *   SGLang (`--enable-metrics`): `sglang:num_queue_reqs`, `sglang:num_running_reqs`, `sglang:token_usage`;
 *   llama-server (`--metrics`): `llamacpp:requests_deferred`, `llamacpp:requests_processing`,
 *     `llamacpp:kv_cache_usage_ratio`;
 *   Sputnik (src/metrics/metrics.ts): `sputnik_queue_length`, `sputnik_active_sequences`.
 */
const FAMILIES: Family[] = [
  { source: "vllm", waiting: ["vllm:num_requests_waiting"], running: ["vllm:num_requests_running"], kvUsage: ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"] },
  { source: "sglang", waiting: ["sglang:num_queue_reqs"], running: ["sglang:num_running_reqs"], kvUsage: ["sglang:token_usage"] },
  { source: "llamacpp", waiting: ["llamacpp:requests_deferred"], running: ["llamacpp:requests_processing"], kvUsage: ["llamacpp:kv_cache_usage_ratio"] },
  { source: "sputnik", waiting: ["sputnik_queue_length"], running: ["sputnik_active_sequences"], kvUsage: [] },
];

/**
 * The load signals of `model` (the name the gateway sends upstream) in an engine's metrics; null
 * when none of the known gauges is there. Samples labelled with another model (`model_name` in
 * vLLM and SGLang, `model` in Sputnik) are left out; a vLLM or SGLang server whose samples all
 * name one other model (a `--served-model-name` alias) is taken as serving this one. A count
 * gauge that is there (declared or sampled) with no sample for this model reads 0: Sputnik lists
 * a model only once it has had a request. Counts add up over the remaining samples (vLLM labels
 * each data-parallel engine), once per engine; KV usage is the fullest of them.
 */
export function readLoadSignals(exposition: Exposition, model: string): LoadSignals | null {
  for (const family of FAMILIES) {
    const waiting = gauge(exposition, family.waiting, model, "sum");
    const running = gauge(exposition, family.running, model, "sum");
    const kv = gauge(exposition, family.kvUsage, model, "max");
    if (waiting === null && running === null && kv === null) continue;
    return { source: family.source, waiting, running, kvUsage: kv === null ? null : Math.min(1, Math.max(0, kv)) };
  }
  return null;
}

function gauge(exposition: Exposition, names: string[], model: string, combine: "sum" | "max"): number | null {
  for (const name of names) {
    const found = exposition.samples.filter((s) => s.name === name && Number.isFinite(s.value));
    if (found.length === 0 && !exposition.types.has(name)) continue;
    const labelled = (s: Sample) => s.labels.model_name ?? s.labels.model;
    let mine = found.filter((s) => labelled(s) === undefined || labelled(s) === model);
    if (mine.length === 0 && found.length > 0 && found.every((s) => s.labels.model_name !== undefined) && new Set(found.map(labelled)).size === 1) mine = found;
    if (mine.length === 0) return combine === "sum" ? 0 : null;
    if (combine === "max") return Math.max(...mine.map((s) => s.value));
    // Ranks of one tensor/pipeline-parallel engine (SGLang's `tp_rank`, `pp_rank`) report the same
    // scheduler's queue: the largest of them counts once; separate engines (data parallel) add up.
    const engines = new Map<string, number>();
    for (const s of mine) {
      const { tp_rank: _tp, pp_rank: _pp, moe_ep_rank: _ep, ...rest } = s.labels;
      const id = JSON.stringify(Object.entries(rest).sort());
      engines.set(id, Math.max(engines.get(id) ?? -Infinity, s.value));
    }
    return [...engines.values()].reduce((a, b) => a + b, 0);
  }
  return null;
}

/**
 * A replica's load for routing: what this gateway (or every gateway, through the shared state)
 * has in flight on it now, or, when a recent reading is at hand, what the engine itself counted
 * (running + waiting, which includes other routers' and clients' requests) corrected by this
 * gateway's own starts and ends since that reading, whichever is larger. A reading without a
 * running figure counts this gateway's in-flight requests at the time as running.
 */
export function effectiveLoad(live: number, ownInFlight: number, reading: { signals: LoadSignals; ownInFlightAtRead: number } | null): number {
  if (!reading) return live;
  const { signals, ownInFlightAtRead } = reading;
  if (signals.waiting === null && signals.running === null) return live;
  const engineTotal = (signals.running ?? ownInFlightAtRead) + (signals.waiting ?? 0);
  return Math.max(live, engineTotal + ownInFlight - ownInFlightAtRead);
}
