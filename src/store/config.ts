import { z } from "zod";

const ms = (min: number, fallback: number) => z.number().int().min(min).max(3_600_000).default(fallback);

/**
 * How Sputnik talks to its database (the URL itself is the top-level `databaseUrl`). Every wait on
 * the database is bounded, so an unreachable or hung server turns into a quick, retryable 503 and
 * a red /health instead of requests (or the start) hanging. Set under "database" in the config
 * file, or as JSON in SPUTNIK_DATABASE.
 */
export const databaseConfigSchema = z
  .object({
    /** PostgreSQL: the schema to use (created if missing); unset: the server's search_path. */
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "use lowercase letters, digits and _").optional(),
    /** PostgreSQL: connections in the pool. */
    poolSize: z.number().int().min(1).max(1000).default(10),
    /** PostgreSQL: how long opening a connection (or waiting for a free one) may take. */
    connectTimeoutMs: ms(100, 5_000),
    /** PostgreSQL: server-side limit on one statement (`statement_timeout`); 0 = none. Migrations are exempt. */
    statementTimeoutMs: ms(0, 30_000),
    /**
     * PostgreSQL: client-side limit on waiting for a query's answer (node-postgres `query_timeout`);
     * catches a server that stopped answering, where `statement_timeout` cannot. 0 = none.
     */
    queryTimeoutMs: ms(0, 35_000),
    /** PostgreSQL: an unused pooled connection is closed after this long; 0 = never. */
    idleTimeoutMs: ms(0, 30_000),
    /** PostgreSQL: TCP keep-alive on connections, so a peer that vanished is noticed. */
    keepAlive: z.boolean().default(true),
    /** PostgreSQL: `application_name` shown in pg_stat_activity. */
    applicationName: z.string().min(1).max(63).default("sputnik"),
    /** SQLite: how long a write waits for another process's lock (`busy_timeout`). */
    busyTimeoutMs: ms(0, 5_000),
    /** /health: how long its database check may take before it counts as failed. */
    healthTimeoutMs: ms(100, 2_000),
  })
  .strict()
  .prefault({});

export type DatabaseConfig = z.infer<typeof databaseConfigSchema>;
