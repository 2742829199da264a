import { getLlama, LlamaLogLevel, type Llama } from "node-llama-cpp";

let llamaPromise: Promise<Llama> | null = null;

/**
 * The process-wide llama.cpp binding. `build: "never"` because compiling llama.cpp from source
 * on a user's machine takes many minutes and may fail; the prebuilt binaries are what we support.
 * `gpu: "auto"` picks CUDA/Vulkan/Metal when a prebuilt binary for it works, else the CPU.
 */
export function sharedLlama(options: { gpu?: "auto" | false } = {}): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: options.gpu ?? (process.env.SPUTNIK_GPU === "off" ? false : "auto"),
    build: "never",
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
  });
  return llamaPromise;
}
