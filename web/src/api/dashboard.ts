import { api } from "./http.ts";

/** src/presenters/dashboard.ts */
export type DashboardUnit = "count" | "seconds" | "per_second" | "ratio";

export interface DashboardSeries {
  /** Stable id, Prometheus-style: `ttft_p95{model="m"}`. */
  key: string;
  metric: string;
  unit: DashboardUnit;
  model: string | null;
  replica: string | null;
  reason: string | null;
  /** One per time; null where the interval had nothing to measure. */
  values: (number | null)[];
  /** Counter-based series: the counter's value at the last sample, as /metrics showed it. */
  total: number | null;
}

export interface DashboardResponse {
  interval_ms: number;
  window_ms: number;
  sample_ms: number;
  models: { id: string; engine: string }[];
  times: number[];
  series: DashboardSeries[];
}

/** The last hour of load figures (admins); with `since`, only the samples taken after it. */
export function getDashboard(since: number | null): Promise<DashboardResponse> {
  return api<DashboardResponse>("GET", since === null ? "/api/admin/dashboard" : `/api/admin/dashboard?since=${since}`);
}

/** What the page holds: the window so far, each series aligned with `times`. */
export interface DashboardState {
  intervalMs: number;
  windowMs: number;
  sampleMs: number;
  models: { id: string; engine: string }[];
  times: number[];
  series: Map<string, DashboardSeries>;
}

/**
 * Appends a poll's new samples to what the page holds and trims to the window. A series the poll
 * does not carry (gone on the server) reads nothing for the new times, and leaves once it has
 * nothing left to show; one that is new reads nothing for the times before it.
 */
export function mergeDashboard(state: DashboardState | null, next: DashboardResponse): DashboardState {
  const oldTimes = state?.times ?? [];
  const allTimes = [...oldTimes, ...next.times];
  const latest = allTimes[allTimes.length - 1] ?? 0;
  const drop = allTimes.findIndex((t) => t > latest - next.window_ms);
  const from = drop < 0 ? allTimes.length : drop;
  const blanks = (n: number) => new Array<number | null>(n).fill(null);
  const fresh = new Map(next.series.map((s) => [s.key, s]));
  const series = new Map<string, DashboardSeries>();
  for (const key of new Set([...(state?.series.keys() ?? []), ...fresh.keys()])) {
    const before = state?.series.get(key);
    const now = fresh.get(key);
    const values = [...(before?.values ?? blanks(oldTimes.length)), ...(now?.values ?? blanks(next.times.length))].slice(from);
    if (!now && values.every((v) => v === null)) continue;
    series.set(key, { ...(now ?? before!), values, total: now?.total ?? before?.total ?? null });
  }
  return {
    intervalMs: next.interval_ms,
    windowMs: next.window_ms,
    sampleMs: next.sample_ms,
    models: next.models,
    times: allTimes.slice(from),
    series,
  };
}
