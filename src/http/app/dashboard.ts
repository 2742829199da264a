import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { ModelRouter } from "../../engines/router.ts";
import type { MetricsHistory } from "../../metrics/history.ts";
import { authorize } from "../../policies/index.ts";
import { presentDashboard } from "../../presenters/dashboard.ts";

const dashboardQuery = z.object({
  /** Only samples taken after this time (ms since the epoch): the page polls with its latest one. */
  since: z.coerce.number().int().min(0).optional(),
});

/**
 * GET /api/admin/dashboard: the last hour of load figures, sampled from the registry /metrics
 * serves. The page polls it once per sampling interval with `since`, so each poll carries only the
 * new points (a few hundred bytes) — simpler than a stream, and it survives proxies and restarts.
 */
export function registerDashboardRoutes(app: FastifyInstance, deps: { history: MetricsHistory; router: ModelRouter }): void {
  app.get("/api/admin/dashboard", async (request, reply) => {
    authorize(request.actor, "dashboard.read");
    const query = dashboardQuery.parse(request.query);
    reply.header("cache-control", "no-store");
    return presentDashboard(deps.history.read(query.since), deps.router.models());
  });
}
