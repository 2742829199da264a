import os from "node:os";
import { z } from "zod";

/** A model served by an OpenAI-compatible upstream. The client never chooses the URL: only operators do. */
export const remoteModelSchema = z.object({
  id: z.string().min(1).max(128),
  baseUrl: z.string().url(),
  apiKey: z.string().optional(),
  /** Model name sent upstream; defaults to `id`. */
  upstreamModel: z.string().optional(),
  reasoning: z.boolean().default(true),
  timeoutMs: z.number().int().positive().default(600_000),
});

export const configSchema = z.object({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8080),
  dataDir: z.string().default("./data"),
  /** Defaults to `<dataDir>/models`. */
  modelsDir: z.string().optional(),
  /**
   * Local models to load: a name in the models directory, a path to a .gguf file, or "demo".
   * Empty means the first-run default (pull the default model, fall back to the demo model).
   */
  models: z.array(z.string().min(1)).default([]),
  /** Source pulled on first run when no model is configured. */
  defaultModelSource: z.string().default("hf:unsloth/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M"),
  /** Whether first run may pull the default model from the network. */
  pullDefaultModel: z.boolean().default(true),
  remoteModels: z.array(remoteModelSchema).default([]),
  /** llama.cpp compute threads; defaults to the physical core count. */
  threads: z.number().int().min(1).max(256).default(Math.max(1, os.availableParallelism())),
  /** Parallel sequences per local model (requests decoded in one batch). */
  parallel: z.number().int().min(1).max(64).default(4),
  /** Context size per sequence, in tokens. */
  contextSize: z.number().int().min(256).max(1_048_576).default(4096),
  databaseUrl: z.string().optional(),
  redisUrl: z.string().optional(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  hfEndpoint: z.string().url().default("https://huggingface.co"),
  /** Allow outbound fetches (pulls, upstreams) to private/loopback addresses. */
  allowPrivateNetwork: z.boolean().default(false),
  /** Largest request body accepted, in bytes. */
  bodyLimit: z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
});

export type Config = z.infer<typeof configSchema>;
export type RemoteModelConfig = z.infer<typeof remoteModelSchema>;
