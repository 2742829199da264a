import type { ModelInfo } from "../engines/types.ts";
import { DASHBOARD_METRICS, type HistoryView } from "../metrics/history.ts";

/** Six significant digits: a rate of 0.1666666… need not cost 18 bytes per point, a total stays exact. */
function compact(value: number | null): number | null {
  return value === null ? null : Number(value.toPrecision(6));
}

/** GET /api/admin/dashboard: the sampled series (src/metrics/history.ts) and which engine serves each model. */
export function presentDashboard(view: HistoryView, models: readonly ModelInfo[]) {
  return {
    interval_ms: view.intervalMs,
    window_ms: view.windowMs,
    sample_ms: Number(view.sampleMs.toFixed(3)),
    models: models.map((m) => ({ id: m.id, engine: m.engine })),
    times: view.times,
    series: view.series.map((s) => ({
      key: s.key,
      metric: s.metric,
      unit: DASHBOARD_METRICS[s.metric],
      model: s.scope.model ?? null,
      replica: s.scope.replica ?? null,
      reason: s.scope.reason ?? null,
      values: s.values.map(compact),
      total: s.total,
    })),
  };
}
