import type { FastifyInstance } from "fastify";
import type { ModelRouter } from "../engines/router.ts";
import type { Lifecycle } from "../serving/lifecycle.ts";
import type { Store } from "../store/database.ts";

/**
 * GET /health (readiness): probes every engine for real and checks the database (answers within
 * `database.healthTimeoutMs`, still holds Sputnik's tables); 503 naming what failed when anything
 * does, so load balancers stop sending traffic here until it recovers.
 *
 * GET /health/live (liveness): the process is up and serving HTTP, nothing else. An orchestrator
 * restarting on /health would restart every replica during a database outage, which fixes nothing.
 *
 * GET /readyz and GET /livez: the two probes as Kubernetes expects them, cheap and without
 * probing anything. /readyz is 503 until the models are loaded and the server listens, and 503
 * again from the moment a drain begins (SIGTERM), so traffic stops arriving while running answers
 * finish; /livez is 200 as long as the process serves HTTP, draining included (a liveness failure
 * would have the orchestrator kill the process before its answers finish).
 */
export function registerHealth(app: FastifyInstance, deps: { router: ModelRouter; store?: Store | undefined; lifecycle?: Lifecycle | undefined }): void {
  app.get("/health", { config: { access: "public" } }, async (_request, reply) => {
    const [engines, database] = await Promise.all([deps.router.health(), deps.store?.ping()]);
    // Fleet models' replicas, by name (never URL: this route is public).
    // With `metrics` configured, each replica's last load reading (its error text stays in the logs).
    const replicas = deps.router.stats().flatMap((a) =>
      (a.replicas ?? []).map(({ name, probe, breaker, inRotation, inFlight, signals }) => ({
        model: a.model,
        name,
        probe,
        breaker,
        inRotation,
        inFlight,
        ...(signals ? { signals: { source: signals.source, waiting: signals.waiting, running: signals.running, kvUsage: signals.kvUsage, ageMs: signals.ageMs } } : {}),
      })),
    );
    const failing = [...(engines.ok ? [] : ["engines"]), ...(database && !database.ok ? ["database"] : [])];
    return reply.status(failing.length === 0 ? 200 : 503).send({
      status: failing.length === 0 ? "ok" : "degraded",
      ...(failing.length > 0 ? { failing } : {}),
      engines: engines.detail,
      ...(replicas.length > 0 ? { replicas } : {}),
      ...(database ? { database } : {}),
    });
  });
  app.get("/health/live", { config: { access: "public" } }, async () => ({ status: "ok" }));
  app.get("/livez", { config: { access: "public" } }, async () => ({ status: "ok" }));
  app.get("/readyz", { config: { access: "public" } }, async (_request, reply) => {
    // Without a lifecycle (a server built around engines already loaded) it is ready once it answers.
    const state = deps.lifecycle?.state ?? "ready";
    return reply.status(state === "ready" ? 200 : 503).send({ status: state });
  });
}
