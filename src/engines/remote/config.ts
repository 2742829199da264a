import { z } from "zod";

/** One OpenAI-compatible upstream model, from operator config only (a request names an id, never a URL). */
export const remoteModelSchema = z.object({
  id: z.string().min(1).max(128),
  baseUrl: z.string().url(),
  apiKey: z.string().optional(),
  /** Model name sent upstream; defaults to `id`. */
  upstreamModel: z.string().optional(),
  reasoning: z.boolean().default(true),
  /** The upstream's context in tokens: shown in /v1/models and used for the max_tokens bound (see the fleet model's `contextLength`). */
  contextLength: z.number().int().min(16).max(10_000_000).optional(),
  timeoutMs: z.number().int().positive().default(600_000),
  /** Requests sent upstream at once; more wait in Sputnik's admission queue. */
  maxConcurrency: z.number().int().min(1).max(10_000).default(8),
  /** The upstream serves `/embeddings` for this model: Sputnik's /v1/embeddings passes requests through. */
  embeddings: z.boolean().default(false),
});

export type RemoteModelConfig = z.infer<typeof remoteModelSchema>;
