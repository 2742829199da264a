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
import { isAttackMode } from "../auth/signupMode.ts";
import { Meter } from "../billing/meter.ts";
import { planWeight, resolvePlan } from "../billing/plans.ts";
import { modelCapacities } from "../limits/capacity.ts";
import { startLimits } from "../limits/runtime.ts";
import { buildServer } from "../http/server.ts";
import { createCompletionMetering, settledStatus } from "../http/openai/metering.ts";
import type { CompletionRecord } from "../http/openai/chatCompletions.ts";
import { openDatabase, type Store } from "../store/database.ts";
import { assertSafeBinding } from "../auth/localMode.ts";
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
  // Never serve the network before any account exists (src/auth/localMode.ts).
  await assertSafeBinding(store.db, config.host).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
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
  // Rate limits, admission queue and metrics. A configured Redis that is down stops the start here.
  const guard = await startLimits(config, {
    logger,
    capacityOf: modelCapacities(engines, config.remoteModels),
    weightOf: async (planId) => planWeight(await resolvePlan(store.db, planId, config.billing.defaultPlan)),
    attackMode: () => isAttackMode(store.db),
  }).catch(async (error: unknown) => {
    await router.close();
    await store.close();
    throw error;
  });
  guard.metrics.readEngineActivityFrom(() => engines.flatMap((e) => (e instanceof LocalEngine ? e.activity() : [])));
  // Billing: releases reservations that dead processes left open, then keeps live ones leased.
  const meter = new Meter(store.db, {
    timeZone: config.billing.timeZone,
    defaultPlanId: config.billing.defaultPlan,
    leaseMs: config.billing.reservationLeaseMs,
    exclusiveDatabase: store.dialect === "sqlite",
    defaultMaxOutputTokens: config.billing.defaultMaxOutputTokens,
    onError: (err, what) => logger.error({ err }, `billing could not ${what}`),
  });
  await meter.start();
  const metering = createCompletionMetering({ meter, router, store });
  const app = await buildServer({
    store,
    config,
    router,
    logger,
    bodyLimit: config.bodyLimit,
    admit: metering.admit,
    // The ledger row, the balance change and the request log row commit together.
    record: (entry) => {
      guard.metrics.observeCompletion(entry);
      return metering.record(entry, recordCompletion);
    },
    settle: async (trx, charge, outcome) => {
      await meter.settle(trx, charge, { status: settledStatus(outcome.status), usage: outcome.usage });
    },
    limits: guard.limits,
    metrics: guard.metrics,
    metricsToken: config.metricsToken,
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
        // Waiting requests are refused first: the server's close waits for every open request.
        guard.drain();
        await app.close();
        await guard.close();
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
    queue_ms: entry.queueMs,
    ttft_ms: entry.ttftMs,
    total_ms: entry.totalMs,
    client_ip: entry.clientIp,
  });
}
