import { useEffect, useState } from "react";
import { describeError } from "../../api/http.ts";
import { getDashboard, mergeDashboard, type DashboardSeries, type DashboardState, type DashboardUnit } from "../../api/dashboard.ts";
import { LineChart, type ChartLine } from "./LineChart.tsx";

/**
 * Admins: the service's load over the last hour, per model (grouped by engine) and per fleet
 * replica, from GET /api/admin/dashboard — sampled on the server from the registry /metrics serves,
 * so every figure here is one a Prometheus scrape would give. The page polls once per sampling
 * interval for the new samples only, and not while the tab is hidden.
 */

interface ChartSpec {
  id: string;
  title: string;
  unit: DashboardUnit;
  lines: { metric: string; name: string; dashed?: boolean; totalLabel?: string }[];
}

const MODEL_CHARTS: ChartSpec[] = [
  { id: "sequences", title: "Sequences busy", unit: "count", lines: [{ metric: "sequences_busy", name: "busy" }, { metric: "sequences", name: "capacity", dashed: true }] },
  { id: "queue", title: "Queue length", unit: "count", lines: [{ metric: "queue_length", name: "waiting" }] },
  { id: "queue-wait", title: "Queue wait", unit: "seconds", lines: [{ metric: "queue_wait_p50", name: "p50" }, { metric: "queue_wait_p95", name: "p95" }] },
  { id: "tokens", title: "Tokens per second", unit: "per_second", lines: [{ metric: "tokens_per_second", name: "generated", totalLabel: "tokens since start" }] },
  { id: "completions", title: "Completions per second", unit: "per_second", lines: [{ metric: "completions_per_second", name: "finished", totalLabel: "since start" }] },
  { id: "ttft", title: "Time to first token", unit: "seconds", lines: [{ metric: "ttft_p50", name: "p50" }, { metric: "ttft_p95", name: "p95" }] },
  { id: "cache", title: "Cache-hit ratio", unit: "ratio", lines: [{ metric: "cache_hit_ratio", name: "prompt tokens from cache" }] },
  { id: "errors", title: "Error rate", unit: "ratio", lines: [{ metric: "error_rate", name: "answered 5xx", totalLabel: "failed since start" }] },
];

/** Fleet models: one chart per figure, one line per replica. */
const REPLICA_CHARTS: { id: string; title: string; unit: DashboardUnit; metric: string }[] = [
  { id: "replica-in-flight", title: "Replicas: requests in flight", unit: "count", metric: "replica_in_flight" },
  { id: "replica-requests", title: "Replicas: requests per second", unit: "per_second", metric: "replica_requests_per_second" },
  { id: "replica-failures", title: "Replicas: failure rate", unit: "ratio", metric: "replica_failure_rate" },
  { id: "replica-rotation", title: "Replicas: in rotation (1) or out (0)", unit: "count", metric: "replica_in_rotation" },
  { id: "replica-waiting", title: "Replicas: engine queue", unit: "count", metric: "replica_engine_waiting" },
  { id: "replica-kv", title: "Replicas: KV cache in use", unit: "ratio", metric: "replica_kv_usage" },
];

/** How much of the hour the charts span (minutes): the last few minutes show a fresh load at a readable scale. */
const RANGES = [5, 15, 60] as const;

const GRID = { display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(240px, 1fr))", gap: 10 } as const;

export function DashboardTab() {
  const [state, setState] = useState<DashboardState | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [range, setRange] = useState<(typeof RANGES)[number]>(60);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let held: DashboardState | null = null;
    // One poll at a time, one timer: a poll started while another runs (the tab shown again) is dropped.
    let busy = false;
    const poll = async () => {
      if (busy) return;
      busy = true;
      clearTimeout(timer);
      let wait = 5000;
      if (!document.hidden) {
        try {
          const latest = held?.times[held.times.length - 1] ?? null;
          held = mergeDashboard(held, await getDashboard(latest));
          if (stopped) return;
          setState(held);
          setError(null);
          wait = held.intervalMs;
        } catch (e) {
          if (stopped) return;
          setError(describeError(e));
        }
      }
      busy = false;
      if (!stopped) timer = setTimeout(() => void poll(), wait);
    };
    void poll();
    const onVisible = () => {
      if (!document.hidden) void poll();
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }, []);

  if (!state) return error ? <p role="alert">{error}</p> : <p>Loading…</p>;
  const end = state.times[state.times.length - 1] ?? Date.now();
  const start = end - Math.min(range * 60_000, state.windowMs);
  const first = Math.max(0, state.times.findIndex((t) => t >= start));
  const times = state.times.slice(first);
  const all = [...state.series.values()];
  const chart = (spec: { id: string; title: string; unit: DashboardUnit }, lines: ChartLine[], scope: string) => (
    <LineChart key={spec.id} testId={`chart-${scope}-${spec.id}`} title={spec.title} unit={spec.unit} times={times} start={start} end={end} period={range === 60 ? "last hour" : `last ${range} minutes`} lines={lines} />
  );
  // A counter's total is shown only where it reads as a count of something (totalLabel says what).
  const line = (s: DashboardSeries, name: string, extra: Partial<ChartLine> = {}): ChartLine => ({
    key: s.key,
    name,
    values: s.values.slice(first),
    ...(extra.totalLabel ? { total: s.total } : {}),
    ...extra,
  });

  // Models by engine: the engine list comes with the response; a model only in the series (none today) still shows.
  const engineOf = new Map(state.models.map((m) => [m.id, m.engine]));
  for (const s of all) if (s.model !== null && !engineOf.has(s.model)) engineOf.set(s.model, "unknown");
  const engines = [...new Set(engineOf.values())].sort();

  return (
    <section data-testid="admin-dashboard" style={{ display: "flex", flexDirection: "column", gap: 16 }}>
      <div>
        <h2 style={{ marginBottom: 4 }}>Live dashboard</h2>
        <div role="group" aria-label="Time range" style={{ display: "flex", gap: 8, margin: "4px 0 8px" }}>
          {RANGES.map((r) => (
            <button key={r} type="button" className={range === r ? "toggle toggle-on" : "toggle"} aria-pressed={range === r} onClick={() => setRange(r)}>
              {r === 60 ? "1 hour" : `${r} min`}
            </button>
          ))}
        </div>
        <p className="small muted" style={{ margin: 0 }}>
          The last hour, sampled every {state.intervalMs / 1000} s from the same figures as <code>/metrics</code> (rates and percentiles per interval).
          Updated <time dateTime={new Date(end).toISOString()}>{new Date(end).toLocaleTimeString()}</time>.
        </p>
        {error ? (
          <p role="alert" className="small error-text">
            {error}
          </p>
        ) : null}
      </div>

      <section className="card" aria-labelledby="dashboard-service">
        <h3 id="dashboard-service" style={{ margin: 0 }}>
          Service
        </h3>
        <div style={GRID}>
          {chart(
            { id: "refusals", title: "Refusals by reason", unit: "per_second" },
            all.filter((s) => s.metric === "refusals_per_second").map((s) => line(s, s.reason ?? "", { totalLabel: "since start" })),
            "service",
          )}
          {chart({ id: "http", title: "HTTP requests per second", unit: "per_second" }, all.filter((s) => s.metric === "http_requests_per_second").map((s) => line(s, "all routes", { totalLabel: "since start" })), "service")}
          {chart(
            { id: "http-errors", title: "HTTP error rate", unit: "ratio" },
            all.filter((s) => s.metric === "http_error_rate").map((s) => line(s, "answered 5xx", { totalLabel: "since start" })),
            "service",
          )}
        </div>
      </section>

      {engines.map((engine) => (
        <section key={engine} aria-label={`Engine ${engine}`} style={{ display: "flex", flexDirection: "column", gap: 12 }}>
          {[...engineOf]
            .filter(([, e]) => e === engine)
            .map(([model]) => model)
            .sort()
            .map((model) => {
              const ofModel = all.filter((s) => s.model === model);
              const replicas = ofModel.filter((s) => s.replica !== null);
              return (
                <section key={model} className="card" aria-label={`Model ${model}`} data-model={model}>
                  <h3 style={{ margin: 0 }}>
                    {model} <span className="small muted">· {engine} engine</span>
                  </h3>
                  <div style={GRID}>
                    {MODEL_CHARTS.map((spec) =>
                      chart(
                        spec,
                        spec.lines.flatMap((l) => {
                          const s = ofModel.find((x) => x.metric === l.metric && x.replica === null);
                          return s ? [line(s, l.name, { ...(l.dashed ? { dashed: true } : {}), ...(l.totalLabel ? { totalLabel: l.totalLabel } : {}) })] : [];
                        }),
                        model,
                      ),
                    )}
                  </div>
                  {replicas.length > 0 ? (
                    <>
                      <h4 style={{ margin: "4px 0 0" }}>Replicas</h4>
                      <div style={GRID}>
                        {REPLICA_CHARTS.map((spec) => {
                          const lines = replicas.filter((s) => s.metric === spec.metric).map((s) => line(s, s.replica ?? "", spec.metric === "replica_requests_per_second" ? { totalLabel: "sent since start" } : {}));
                          return lines.length > 0 ? chart(spec, lines, model) : null;
                        })}
                      </div>
                    </>
                  ) : null}
                </section>
              );
            })}
        </section>
      ))}
    </section>
  );
}
