import { z } from "zod";

const GiB = 1024 ** 3;

/** Speculative decoding for one model: a small draft model, or lookup in the prompt itself. */
export const speculativeSchema = z.discriminatedUnion("type", [
  z
    .object({
      /** Proposes continuations copied from earlier in the context (code, quoted text, JSON). */
      type: z.literal("lookup"),
      /** Tokens proposed per step. */
      maxTokens: z.number().int().min(1).max(64).default(8),
    })
    .strict(),
  z
    .object({
      /** A smaller model with the same vocabulary proposes tokens; the main model verifies them. */
      type: z.literal("draft"),
      /** Path to the draft model's GGUF file. */
      model: z.string().min(1),
      maxTokens: z.number().int().min(1).max(64).default(8),
      /** Tokens the model waits for the draft to propose; 0 lets it go on without waiting. */
      minTokens: z.number().int().min(0).max(64).default(0),
      /** Below this probability the draft stops proposing. */
      minConfidence: z.number().min(0).max(1).default(0.6),
    })
    .strict(),
]);

/** Settings of one local model, keyed by its id (the file name without .gguf). */
export const localModelSettingsSchema = z
  .object({
    /** Operator cap on reasoning tokens: requests may ask for less, never more. */
    maxThinkingTokens: z.number().int().min(0).optional(),
    speculative: speculativeSchema.optional(),
    /**
     * Re-read each answer into a sequence in the form the next turn sends it back (so a next turn
     * evaluates only its new message). Default true; false: never (the bench measures the difference).
     */
    rereads: z.boolean().optional(),
    /**
     * When to prepare that form while the answer is generated, on an idle neighbouring sequence
     * (one token of compute per generated token; see nextTurnAhead.ts): "conversations" (requests
     * with an earlier answer in them: agent and tool loops; the default), "always", or "off" (after the answer only).
     */
    prepareNextTurn: z.enum(["conversations", "always", "off"]).optional(),
    /**
     * Serve this model on /v1/embeddings (a second llama.cpp context, opened on first use). Default:
     * true for a GGUF that declares a pooling type (embedding models do), false otherwise.
     */
    embeddings: z.boolean().optional(),
  })
  .strict();

export const localEngineConfigSchema = z
  .object({
    /** KV states saved to disk so a known prefix is loaded instead of recomputed, also after a restart. */
    contextCache: z
      .object({
        enabled: z.boolean().default(true),
        /** Defaults to `<dataDir>/context-cache`. */
        dir: z.string().optional(),
        /** Total size of the state files kept; least recently used ones are deleted first. */
        maxBytes: z.number().int().min(0).default(4 * GiB),
        /** Prefixes shorter than this are recomputed rather than stored. */
        minTokens: z.number().int().min(1).default(256),
      })
      .strict()
      .prefault({}),
    /** Memory the models may use, in bytes; default: what the system (or container) has available. */
    memoryBudgetBytes: z.number().int().positive().optional(),
    models: z.record(z.string(), localModelSettingsSchema).default({}),
  })
  .strict()
  .prefault({});

export type LocalEngineConfig = z.infer<typeof localEngineConfigSchema>;
export type LocalModelSettings = z.infer<typeof localModelSettingsSchema>;
export type SpeculativeSettings = z.infer<typeof speculativeSchema>;
