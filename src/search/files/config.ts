import { z } from "zod";

const MiB = 1024 * 1024;

/** Uploaded documents (config key `documents`; src/commands/files.ts, issue 15). */
export const documentsConfigSchema = z
  .object({
    /**
     * Largest upload accepted, in bytes (413 beyond it). The upload is read into memory up to this
     * bound and no further, and extraction works on it, so it bounds both per request.
     */
    maxFileBytes: z.number().int().min(1024).max(512 * MiB).default(20 * MiB),
    /**
     * Bytes of documents one user may keep stored (429 beyond it) when their plan sets no
     * `storedBytesQuota` of its own: the bytes live in the database, which is the operator's disk.
     * The local single-user operator is not limited.
     */
    maxStoredBytesPerUser: z.number().int().min(0).max(1024 * 1024 * MiB).default(200 * MiB),
    /** Files one user may keep at once (429 beyond it); null: no count limit. */
    maxFilesPerUser: z.number().int().min(1).max(1_000_000).nullable().default(1000),
    /**
     * Files extracted and indexed at the same time in this process: each extraction is a worker
     * thread with its own memory, so a burst of uploads waits its turn rather than taking every core.
     */
    indexConcurrency: z.number().int().min(1).max(8).default(1),
    /**
     * On PostgreSQL (several gateways may share the database), a file still 'processing' this long
     * after its upload belongs to a process that died: it is indexed again. On SQLite (one process)
     * every leftover is picked up at start.
     */
    staleIndexingMs: z.number().int().min(60_000).max(7 * 24 * 3_600_000).default(3_600_000),
  })
  .prefault({});

export type DocumentsConfig = z.infer<typeof documentsConfigSchema>;
