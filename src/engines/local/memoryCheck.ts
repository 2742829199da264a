import fs from "node:fs";
import os from "node:os";
import { GgufInsights, readGgufFileInfo, type Llama } from "node-llama-cpp";

const MiB = 1024 * 1024;

export interface MemoryEstimate {
  /** Weights and other model buffers in RAM. */
  modelBytes: number;
  /** KV cache and compute buffers for all sequences. */
  contextBytes: number;
  /** What one sequence of `contextSize` tokens adds (for the advice in the error). */
  perSequenceBytes: number;
}

export interface AvailableMemory {
  bytes: number;
  /** Where the figure comes from, for the error message. */
  source: string;
}

/** Thrown before loading when a model and its context would not fit: the message has the numbers. */
export class InsufficientMemoryForModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InsufficientMemoryForModelError";
  }
}

/** llama.cpp's own accounting (via node-llama-cpp's GgufInsights) of what a CPU load would take. */
export async function estimateMemory(
  llama: Llama,
  modelPath: string,
  options: { contextSize: number; sequences: number },
): Promise<MemoryEstimate> {
  return (await memoryEstimator(llama, modelPath))(options);
}

/** Reads a model's metadata once; the returned function estimates any layout of it. */
export async function memoryEstimator(
  llama: Llama,
  modelPath: string,
): Promise<(layout: { contextSize: number; sequences: number }) => MemoryEstimate> {
  const insights = await GgufInsights.from(await readGgufFileInfo(modelPath), llama);
  const model = insights.estimateModelResourceRequirements({ gpuLayers: 0 });
  return (layout) => {
    const contextSize = Math.min(layout.contextSize, insights.trainContextSize ?? layout.contextSize);
    const context = insights.estimateContextResourceRequirements({ contextSize, sequences: layout.sequences, modelGpuLayers: 0 });
    const one = insights.estimateContextResourceRequirements({ contextSize, sequences: 1, modelGpuLayers: 0 });
    return { modelBytes: model.cpuRam, contextBytes: context.cpuRam, perSequenceBytes: one.cpuRam };
  };
}

/** `parallel: "auto"` never goes above this: beyond it a CPU gains little and each sequence costs its KV memory. */
export const AUTO_PARALLEL_MAX = 8;
/**
 * Share of the available memory `parallel: "auto"` lets the model and its contexts take: the rest
 * is for the process itself (database, HTTP buffers, the page cache of the weights' file).
 */
export const AUTO_PARALLEL_MEMORY_SHARE = 0.75;

/**
 * `parallel: "auto"`: the most sequences (up to AUTO_PARALLEL_MAX) whose KV caches fit beside the
 * weights in AUTO_PARALLEL_MEMORY_SHARE of the available memory; at least 1 (if even that does
 * not fit, `assertFits` says so with the numbers).
 */
export function autoParallel(estimate: (sequences: number) => MemoryEstimate, available: AvailableMemory): number {
  const usable = available.bytes * AUTO_PARALLEL_MEMORY_SHARE;
  for (let n = AUTO_PARALLEL_MAX; n > 1; n--) {
    const e = estimate(n);
    if (e.modelBytes + e.contextBytes <= usable) return n;
  }
  return 1;
}

/**
 * Memory this process may still use: the operator's budget when set, else what the kernel
 * reports as available, bounded by the cgroup (container) limit when there is one.
 *
 * `inUseBytes`: what the models already loaded take (by their estimates), when one more is loaded
 * at run time (Admin → Models, src/runtime/modelManager.ts). The budget covers all models, so
 * they are taken off it. The kernel's figure is read live and already leaves out their contexts,
 * so it is not reduced again.
 */
export function availableMemory(budgetBytes?: number, inUseBytes = 0): AvailableMemory {
  if (budgetBytes !== undefined && inUseBytes > 0) {
    return {
      bytes: Math.max(0, budgetBytes - inUseBytes),
      source: `what is left of the configured memory budget (${mib(budgetBytes)} MiB) beside the models already loaded (${mib(inUseBytes)} MiB)`,
    };
  }
  if (budgetBytes !== undefined) return { bytes: budgetBytes, source: "the configured memory budget" };
  const system = memAvailable();
  const cgroup = cgroupHeadroom();
  if (cgroup !== null && cgroup < system) return { bytes: cgroup, source: "the container's memory limit" };
  return { bytes: system, source: "available system memory" };
}

/** Throws InsufficientMemoryForModelError when the estimate exceeds what is available. */
export function assertFits(
  id: string,
  estimate: MemoryEstimate,
  available: AvailableMemory,
  layout: { contextSize: number; sequences: number },
): void {
  const needed = estimate.modelBytes + estimate.contextBytes;
  if (needed <= available.bytes) return;
  const room = available.bytes - estimate.modelBytes;
  const fitting = Math.floor(room / Math.max(1, estimate.perSequenceBytes));
  const advice =
    room <= 0
      ? "The weights alone do not fit: use a smaller quantization or a machine with more memory."
      : fitting >= 1
        ? `Lower parallel to ${Math.min(fitting, layout.sequences - 1)} or the context size.`
        : `Even one sequence of ${layout.contextSize} tokens needs ${mib(estimate.perSequenceBytes)} MiB beside the weights: lower the context size.`;
  throw new InsufficientMemoryForModelError(
    `Model ${id} would need about ${mib(needed)} MiB (weights ${mib(estimate.modelBytes)} MiB + context ${mib(estimate.contextBytes)} MiB ` +
      `for ${layout.sequences} sequence(s) × ${layout.contextSize} tokens), but ${available.source} is ${mib(available.bytes)} MiB. ${advice}`,
  );
}

const mib = (bytes: number) => Math.ceil(bytes / MiB).toLocaleString("en-US");

function memAvailable(): number {
  try {
    const match = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/meminfo", "utf8"));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // not Linux
  }
  return os.freemem();
}

/** cgroup v2: limit minus the working set (usage without reclaimable file cache). */
function cgroupHeadroom(): number | null {
  try {
    const max = fs.readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim();
    if (max === "max") return null;
    const current = Number(fs.readFileSync("/sys/fs/cgroup/memory.current", "utf8").trim());
    const inactiveFile = Number(/^inactive_file (\d+)$/m.exec(fs.readFileSync("/sys/fs/cgroup/memory.stat", "utf8"))?.[1] ?? 0);
    return Math.max(0, Number(max) - (current - inactiveFile));
  } catch {
    return null;
  }
}
