import { useMemo, useState } from "react";

/** One bar segment's source: what /api/billing/usage/daily returns per local day and model. */
export interface DailyUsage {
  date: string;
  model: string;
  requests: number;
  cache_hit_tokens: number;
  cache_miss_tokens: number;
  reasoning_tokens: number;
  answer_tokens: number;
  cost_micros: number;
  charged_micros: number;
  cache_saved_micros: number;
}

export type ChartMetric = "tokens" | "cost";

const PALETTE = ["#4d6bfe", "#16a394", "#e8a33d", "#d1498b", "#7b61ff", "#3aa0d8", "#8c9a2f", "#c2603a"];
const HEIGHT = 180;
const BAR_GAP = 4;

function valueOf(day: DailyUsage, metric: ChartMetric): number {
  return metric === "cost" ? day.cost_micros : day.cache_hit_tokens + day.cache_miss_tokens + day.reasoning_tokens + day.answer_tokens;
}

/**
 * Stacked bars per day, one colour per model, for tokens or cost. Plain SVG: no chart library,
 * and every bar has a tooltip (<title>) with the exact figures.
 */
export function UsageChart({ days, dates, metric, format }: { days: DailyUsage[]; dates: string[]; metric: ChartMetric; format: (value: number) => string }) {
  const [hovered, setHovered] = useState<string | null>(null);
  const models = useMemo(() => [...new Set(days.map((d) => d.model))].sort(), [days]);
  const byDate = useMemo(() => {
    const map = new Map<string, DailyUsage[]>();
    for (const day of days) map.set(day.date, [...(map.get(day.date) ?? []), day]);
    return map;
  }, [days]);
  const max = Math.max(1, ...dates.map((date) => (byDate.get(date) ?? []).reduce((sum, d) => sum + valueOf(d, metric), 0)));
  const width = Math.max(dates.length * 14, 280);
  const barWidth = width / Math.max(1, dates.length) - BAR_GAP;

  return (
    <figure style={{ margin: 0 }}>
      <svg viewBox={`0 0 ${width} ${HEIGHT + 18}`} width="100%" role="img" aria-label={`${metric} per day by model`}>
        {dates.map((date, i) => {
          let y = HEIGHT;
          const x = i * (barWidth + BAR_GAP);
          return (
            <g key={date} onMouseEnter={() => setHovered(date)} onMouseLeave={() => setHovered(null)}>
              <rect x={x} y={0} width={barWidth} height={HEIGHT} fill={hovered === date ? "var(--bg-hover)" : "transparent"} />
              {(byDate.get(date) ?? []).map((d) => {
                const h = (valueOf(d, metric) / max) * HEIGHT;
                y -= h;
                return (
                  <rect key={d.model} x={x} y={y} width={barWidth} height={h} fill={PALETTE[models.indexOf(d.model) % PALETTE.length]}>
                    <title>{`${date} · ${d.model}: ${format(valueOf(d, metric))} (${d.requests} requests)`}</title>
                  </rect>
                );
              })}
              {(i === 0 || i === dates.length - 1 || dates.length <= 14) && (
                <text x={x + barWidth / 2} y={HEIGHT + 14} fontSize="9" textAnchor="middle" fill="var(--fg-muted)">
                  {date.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption style={{ display: "flex", flexWrap: "wrap", gap: "12px", fontSize: "13px", color: "var(--fg-muted)" }}>
        {models.map((model, i) => (
          <span key={model}>
            <span style={{ display: "inline-block", width: 10, height: 10, borderRadius: 2, marginRight: 4, background: PALETTE[i % PALETTE.length] }} />
            {model}
          </span>
        ))}
        {models.length === 0 && <span>No usage in this period.</span>}
      </figcaption>
    </figure>
  );
}
