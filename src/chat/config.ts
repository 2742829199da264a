import { z } from "zod";

/** Conversation storage settings (config key `conversations`). */
export const conversationsConfigSchema = z
  .object({
    /**
     * A streaming answer whose row has not been written for this long belongs to a process that
     * died, and is shown as interrupted (ms). On SQLite a restart marks every leftover stream at
     * once; on PostgreSQL other replicas may be streaming, so only this staleness tells.
     */
    staleStreamMs: z.number().int().min(1_500).max(3_600_000).default(30_000),
    /** How often a streaming answer's text is written to the store (ms): a crash loses at most this much. */
    flushIntervalMs: z.number().int().min(10).max(10_000).default(500),
  })
  .prefault({});

export type ConversationsConfig = z.infer<typeof conversationsConfigSchema>;
