import fs from "node:fs";
import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import { modelsDirOf } from "../config/load.ts";
import type { Config } from "../config/schema.ts";
import { ModelRouter } from "../engines/router.ts";
import { isAttackMode } from "../auth/signupMode.ts";
import { featurePriceDefaults } from "../billing/config.ts";
import { Meter } from "../billing/meter.ts";
import { planWeight, resolvePlan } from "../billing/plans.ts";
import { startLimits } from "../limits/runtime.ts";
import { describeError } from "../http/errors.ts";
import { buildServer } from "../http/server.ts";
import { Serving } from "../serving/completion.ts";
import { openDatabase, type Store } from "../store/database.ts";
import { assertSafeBinding } from "../auth/localMode.ts";
import { createEngines } from "./engines.ts";

export interface RunningService {
  url: string;
  app: FastifyInstance;
  router: ModelRouter;
  /** The serving pipeline every completion runs through. */
  serving: Serving;
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

  const store = await openDatabase({ ...config.database, url: config.databaseUrl, dataDir: config.dataDir, logger });
  // Never serve the network before any account exists (src/auth/localMode.ts).
  await assertSafeBinding(store.db, config.host).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  const engines = await createEngines(config, logger).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  const router = new ModelRouter(engines);
  // Rate limits, admission queue and metrics. A configured Redis that is down stops the start here.
  const guard = await startLimits(config, {
    logger,
    capacityOf: (model) => router.capacity(model),
    weightOf: async (planId) => planWeight(await resolvePlan(store.db, planId, config.billing.defaultPlan)),
    attackMode: () => isAttackMode(store.db),
  }).catch(async (error: unknown) => {
    await router.close();
    await store.close();
    throw error;
  });
  guard.metrics.readEngineActivityFrom(() => router.stats());
  // Billing: releases reservations that dead processes left open, then keeps live ones leased.
  const meter = new Meter(store.db, {
    timeZone: config.billing.timeZone,
    defaultPlanId: config.billing.defaultPlan,
    leaseMs: config.billing.reservationLeaseMs,
    exclusiveDatabase: store.dialect === "sqlite",
    defaultMaxOutputTokens: config.billing.defaultMaxOutputTokens,
    featurePrices: featurePriceDefaults(config.billing),
    onError: (err, what) => logger.error({ err }, `billing could not ${what}`),
  });
  await meter.start();
  // The one pipeline every completion runs through (src/serving/completion.ts).
  const serving = new Serving({
    router,
    limits: guard.limits,
    meter,
    db: store.db,
    planOf: async (actor) => (actor.kind === "user" ? resolvePlan(store.db, actor.planId, config.billing.defaultPlan) : null),
    describeError,
    observe: (record) => guard.metrics.observeCompletion(record),
    logger,
  });
  const app = await buildServer({
    store,
    config,
    router,
    serving,
    logger,
    bodyLimit: config.bodyLimit,
    limits: guard.limits,
    metrics: guard.metrics,
    metricsToken: config.metricsToken,
    billing: { store, currency: config.billing.currency, timeZone: config.billing.timeZone, defaultPlanId: config.billing.defaultPlan, featurePrices: featurePriceDefaults(config.billing) },
  });
  const address = await app.listen({ host: config.host, port: config.port });
  const url = address.replace("[::1]", "localhost");
  logger.info({ url, models: router.models().map((m) => m.id) }, `Sputnik is listening on ${url}`);

  let closing: Promise<void> | null = null;
  return {
    url,
    app,
    router,
    serving,
    store,
    logger,
    config,
    close: () =>
      (closing ??= (async () => {
        // Waiting requests are refused first: the server's close waits for every open request.
        guard.drain();
        await app.close();
        serving.close();
        await guard.close();
        await meter.close();
        await router.close();
        await store.close();
      })()),
  };
}
