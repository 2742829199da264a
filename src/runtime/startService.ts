import fs from "node:fs";
import type { FastifyInstance } from "fastify";
import type { Kysely } from "kysely";
import pino, { type Logger } from "pino";
import { modelsDirOf } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { LocalEngine } from "../engines/local/localEngine.ts";
import { RemoteEngine } from "../engines/remote/remoteEngine.ts";
import { ModelRouter } from "../engines/router.ts";
import type { Engine } from "../engines/types.ts";
import { Meter } from "../billing/meter.ts";
import { buildServer } from "../http/server.ts";
import { createCompletionMetering } from "../http/openai/metering.ts";
import type { CompletionRecord } from "../http/openai/chatCompletions.ts";
import { openDatabase, type Store } from "../store/database.ts";
import { recordRequest } from "../store/requestLog.ts";
import type { Database } from "../store/schema.ts";
import { loadLocalModels } from "./localModels.ts";

export interface RunningService {
  url: string;
  app: FastifyInstance;
  router: ModelRouter;
  store: Store;
  logger: Logger;
  config: Config;
  close(): Promise<void>;
}

/** Wires config, store, engines and HTTP into a running service. */
export async function startService(config: Config, options: { logger?: Logger } = {}): Promise<RunningService> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: "sputnik" } });
  fs.mkdirSync(config.dataDir, { recursive: true });
  fs.mkdirSync(modelsDirOf(config), { recursive: true });

  const store = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, logger });
  const engines: Engine[] = [];
  try {
    const local = await loadLocalModels(config, logger);
    if (local.length > 0) engines.push(new LocalEngine(local));
    if (config.remoteModels.length > 0) engines.push(new RemoteEngine(config.remoteModels));
  } catch (error) {
    await Promise.all(engines.map((e) => e.close()));
    await store.close();
    throw error;
  }
  const router = new ModelRouter(engines);
  // Billing: releases reservations that dead processes left open, then keeps live ones leased.
  const meter = new Meter(store.db, {
    timeZone: config.billing.timeZone,
    defaultPlanId: config.billing.defaultPlan,
    leaseMs: config.billing.reservationLeaseMs,
    defaultMaxOutputTokens: config.billing.defaultMaxOutputTokens,
    onError: (err, what) => logger.error({ err }, `billing could not ${what}`),
  });
  await meter.start();
  const metering = createCompletionMetering({ meter, router, store });
  const app = await buildServer({
    router,
    logger,
    bodyLimit: config.bodyLimit,
    admit: metering.admit,
    // The ledger row, the balance change and the request log row commit together.
    record: (entry) => metering.record(entry, recordCompletion),
    billing: { store, currency: config.billing.currency, timeZone: config.billing.timeZone, defaultPlanId: config.billing.defaultPlan },
  });
  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace("[::1]", "localhost");
  logger.info({ url, models: router.models().map((m) => m.id) }, `Sputnik is listening on ${url}`);

  let closing: Promise<void> | null = null;
  return {
    url,
    app,
    router,
    store,
    logger,
    config,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await meter.close();
        await router.close();
        await store.close();
      })()),
  };
}

async function recordCompletion(db: Kysely<Database>, entry: CompletionRecord): Promise<void> {
  await recordRequest(db, {
    // A billed request's log row shares its ledger row's id.
    ...(entry.charge ? { id: entry.charge.id, user_id: entry.charge.userId, api_key_id: entry.charge.subject.kind === "user" ? entry.charge.subject.apiKeyId : null } : {}),
    model: entry.model,
    engine: entry.engine,
    status: entry.status,
    error_code: entry.errorCode,
    stream: entry.stream ? 1 : 0,
    prompt_tokens: entry.usage.prompt_tokens,
    completion_tokens: entry.usage.completion_tokens,
    reasoning_tokens: entry.usage.completion_tokens_details.reasoning_tokens,
    cache_hit_tokens: entry.usage.prompt_cache_hit_tokens,
    cache_miss_tokens: entry.usage.prompt_cache_miss_tokens,
    queue_ms: 0,
    ttft_ms: entry.ttftMs,
    total_ms: entry.totalMs,
    client_ip: entry.clientIp,
  });
}
