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
import { MetricsHistory } from "../metrics/history.ts";
import { Moderation } from "../moderation/moderation.ts";
import { describeError } from "../http/errors.ts";
import { buildServer } from "../http/server.ts";
import { listenWhileStarting, type StartupListener } from "../http/startupListener.ts";
import { Serving } from "../serving/completion.ts";
import { openDatabase, type Store } from "../store/database.ts";
import { startTracing } from "../tracing/setup.ts";
import { assertSafeBinding } from "../auth/localMode.ts";
import { createEngines } from "./engines.ts";
import { Lifecycle } from "../serving/lifecycle.ts";
import { ModelManager } from "./modelManager.ts";
import { FileIndexer } from "../search/files/indexer.ts";
import { SearchRetriever } from "../search/retrieve.ts";
import { createSemanticSearch, type SemanticSearch } from "../search/semantic.ts";
import { createWebSearchDeps, searchWeb } from "../search/web/webSearch.ts";

export interface RunningService {
  url: string;
  app: FastifyInstance;
  router: ModelRouter;
  /** The serving pipeline every completion runs through. */
  serving: Serving;
  store: Store;
  logger: Logger;
  config: Config;
  /** Ready, then draining: what /readyz, the shutdown gate and `sputnik_draining` read. */
  lifecycle: Lifecycle;
  /**
   * Graceful drain, then close: /readyz turns 503 and new and queued requests are refused (503 +
   * Retry-After) at once; running answers get `shutdownTimeoutMs` to finish, the rest are cut
   * (an error event; billed for what they generated); then everything closes.
   */
  close(): Promise<void>;
}

/** Wires config, store, engines and HTTP into a running service. */
export async function startService(
  config: Config,
  options: {
    logger?: Logger;
    /** Origins whose result pages may be on private addresses: tests' local web site only, never configuration. */
    trustedPageOrigins?: readonly string[];
  } = {},
): Promise<RunningService> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: "sputnik" } });
  fs.mkdirSync(config.dataDir, { recursive: true });
  fs.mkdirSync(modelsDirOf(config), { recursive: true });

  const store = await openDatabase({ ...config.database, url: config.databaseUrl, dataDir: config.dataDir, logger });
  // Never serve the network before any account exists (src/auth/localMode.ts).
  await assertSafeBinding(store.db, config.host).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  // The port answers the probes while the models load (/livez 200, /readyz 503 "starting").
  const startup = await listenWhileStarting(config.host, config.port).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  const stopStartup = async (error: unknown) => {
    await startup.close();
    throw error;
  };
  const engines = await createEngines(config, logger).catch(async (error: unknown) => {
    await store.close();
    return stopStartup(error);
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
    return stopStartup(error);
  });
  guard.metrics.readEngineActivityFrom(() => router.stats());
  // Moderation policies (compiled and checked at start: a classifier model that is not served stops it).
  let moderation: Moderation;
  try {
    moderation = new Moderation(config.moderation, {
      router,
      onIntervention: (i) => guard.metrics.moderationInterventions.inc({ policy: i.policy, action: i.action, stage: i.stage }),
      logger,
    });
  } catch (error) {
    await guard.close();
    await router.close();
    await store.close();
    return stopStartup(error);
  }
  // Admins pull, load and unload local models while the service runs (Admin → Models).
  const models = new ModelManager({
    config,
    logger,
    engines,
    admitted: (model) => guard.limits.load().reduce((sum, q) => sum + (q.model === model ? q.queued + q.running : 0), 0),
  });
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
  // Semantic retrieval (search.embeddingModel): the model must be served and embed, checked now
  // like the moderation classifiers, so a typo stops the start instead of every search.
  let semantic: SemanticSearch | undefined;
  try {
    semantic = config.search.embeddingModel ? createSemanticSearch({ db: store.db, router }, config.search.embeddingModel) : undefined;
  } catch (error) {
    await meter.close();
    await guard.close();
    await router.close();
    await store.close();
    return stopStartup(error);
  }
  // Uploaded documents are indexed in the background, a few at a time; files a dead process left
  // half-indexed are picked up again (src/search/files/indexer.ts). Embedding their passages
  // yields to requests queued for the embedding model.
  const fileIndexer = new FileIndexer({
    db: store.db,
    dialect: store.dialect,
    config: config.documents,
    logger,
    ...(semantic ? { semantic: { search: semantic, busy: () => guard.limits.load().some((q) => q.model === semantic.model && q.queued > 0) } } : {}),
  });
  await fileIndexer.start().catch((err: unknown) => logger.warn({ err }, "could not look for files left unindexed"));
  // Search: the user's documents, and the web when a provider is configured (src/search/retrieve.ts).
  const web = config.search.web ? createWebSearchDeps(config.search.web, { logger, trustedPageOrigins: options.trustedPageOrigins ?? [] }) : null;
  const retriever = new SearchRetriever({
    db: store.db,
    dialect: store.dialect,
    ...(semantic ? { semantic } : {}),
    ...(web ? { web: (query, o) => searchWeb(web, query, o) } : {}),
    logger,
  });
  // The one pipeline every completion runs through (src/serving/completion.ts).
  const serving = new Serving({
    router,
    limits: guard.limits,
    meter,
    db: store.db,
    planOf: async (actor) => (actor.kind === "user" ? resolvePlan(store.db, actor.planId, config.billing.defaultPlan) : null),
    describeError,
    observe: (record) => guard.metrics.observeCompletion(record),
    moderation,
    retriever,
    logger,
  });
  // The admin dashboard's last hour, read from the same registry as /metrics.
  const history = new MetricsHistory(guard.metrics.registry, {
    intervalMs: config.dashboardSampleMs,
    models: () => router.models().map((m) => m.id),
    onError: (err) => logger.warn({ err }, "the dashboard could not sample the metrics"),
  });
  // Traces (off unless tracing.otlpEndpoint is set), before the server: its request span hooks need them.
  const tracing = await startTracing(config.tracing, { logger });
  // Not ready until listening with every model loaded; draining from the first signal on.
  const lifecycle = new Lifecycle();
  guard.metrics.readDrainingFrom(() => lifecycle.draining);
  const app = await buildServer({
    store,
    config,
    router,
    serving,
    lifecycle,
    logger,
    bodyLimit: config.bodyLimit,
    limits: guard.limits,
    metrics: guard.metrics,
    metricsToken: config.metricsToken,
    history,
    moderation,
    models,
    files: { db: store.db, config: config.documents, defaultPlanId: config.billing.defaultPlan, indexer: fileIndexer },
    billing: { store, currency: config.billing.currency, timeZone: config.billing.timeZone, defaultPlanId: config.billing.defaultPlan, featurePrices: featurePriceDefaults(config.billing) },
  });
  const address = await takeOverPort(app, config.host, startup);
  const url = address.replace("[::1]", "localhost");
  lifecycle.markReady();
  logger.info({ url, models: router.models().map((m) => m.id) }, `Sputnik is listening on ${url}`);
  history.start();

  let closing: Promise<void> | null = null;
  return {
    url,
    app,
    router,
    serving,
    store,
    logger,
    config,
    lifecycle,
    close: () =>
      (closing ??= (async () => {
        // Not ready any more, and the gate refuses new requests, while the server still listens:
        // a client that reaches it before the load balancer notices gets a 503 to retry elsewhere.
        lifecycle.beginDrain();
        // Waiting requests are refused next; running ones get shutdownTimeoutMs, then are cut.
        guard.drain();
        const drained = await serving.drain(config.shutdownTimeoutMs);
        if (drained.finished + drained.cut > 0) logger.info(drained, "drained: running answers finished or were cut at shutdownTimeoutMs");
        await history.stop();
        // Connections kept alive by clients would hold the close up until they time out: each is
        // closed as soon as its last response is sent.
        const idle = setInterval(() => app.server.closeIdleConnections(), 50);
        await app.close().finally(() => clearInterval(idle));
        serving.close();
        fileIndexer.close();
        await models.close();
        // The page fetcher's HTML extraction worker.
        await web?.fetcher.close();
        await guard.close();
        await meter.close();
        await router.close();
        await store.close();
        // Last, so the spans of the requests that just finished are exported (flushed) too.
        await tracing.shutdown();
      })()),
  };
}

/**
 * Hands the startup listener's port to the real server: closed, then listened on at once (Node
 * sets SO_REUSEADDR, so the port is free again immediately). A connection arriving in that
 * instant is refused, which a client retries like any other.
 */
async function takeOverPort(app: FastifyInstance, host: string, startup: StartupListener): Promise<string> {
  await startup.close();
  return app.listen({ host, port: startup.port });
}
