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

export const PALETTE = ["#4d6bfe", "#16a394", "#e8a33d", "#d1498b", "#7b61ff", "#3aa0d8", "#8c9a2f", "#c2603a"];
/** Drawing units (the SVG scales to its box's width): room on the left for the value axis, below for dates. */
const WIDTH = 720;
const HEIGHT = 180;
const MIN_LEFT = 56;
/** A generous width of one label character in drawing units (digits and "." at FONT size). */
const CHAR_WIDTH = 7;
const RIGHT = 24;
const TOP = 10;
const BOTTOM = 22;
const BAR_GAP = 3;
const FONT = 11;
/** At most this many date labels, evenly spaced, so they never overlap. */
const MAX_DATE_LABELS = 8;

function valueOf(day: DailyUsage, metric: ChartMetric): number {
  return metric === "cost" ? day.cost_micros : day.cache_hit_tokens + day.cache_miss_tokens + day.reasoning_tokens + day.answer_tokens;
}

const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
/** Small amounts keep two significant digits, so cents and fractions of a cent do not all read "0". */
const small = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 2 });
/** A short axis label: 12K tokens, 0.35 or 0.000023 (currency units from micro-units). */
function axisLabel(value: number, metric: ChartMetric): string {
  if (metric === "tokens") return compact.format(value);
  const units = value / 1_000_000;
  return units < 1 ? small.format(units) : compact.format(units);
}

/**
 * Stacked bars per day, one colour per model, for tokens or cost, with a value axis and date labels
 * drawn inside the SVG's own margins (nothing is clipped at any width). Plain SVG: no chart library,
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
  const ticks = [0, 0.5, 1].map((f) => ({ value: max * f, label: axisLabel(max * f, metric) }));
  // The value axis is as wide as its longest label (0.000046 needs more room than 12K).
  const left = Math.max(MIN_LEFT, 10 + Math.max(...ticks.map((t) => t.label.length)) * CHAR_WIDTH);
  const plotWidth = WIDTH - left - RIGHT;
  const slot = plotWidth / Math.max(1, dates.length);
  const barWidth = Math.max(1, slot - BAR_GAP);
  const labelEvery = Math.max(1, Math.ceil(dates.length / MAX_DATE_LABELS));
  const y = (value: number) => TOP + HEIGHT - (value / max) * HEIGHT;

  return (
    <figure style={{ margin: 0 }}>
      <svg viewBox={`0 0 ${WIDTH} ${TOP + HEIGHT + BOTTOM}`} width="100%" style={{ maxHeight: 320 }} role="img" aria-label={`${metric} per day by model`} data-testid="usage-chart">
        {ticks.map((tick) => (
          <g key={tick.value}>
            <line x1={left} x2={WIDTH - RIGHT} y1={y(tick.value)} y2={y(tick.value)} stroke="var(--border)" strokeWidth={1} />
            <text x={left - 6} y={y(tick.value) + FONT / 3} fontSize={FONT} textAnchor="end" fill="var(--fg-muted)" data-axis="value">
              {tick.label}
            </text>
          </g>
        ))}
        {dates.map((date, i) => {
          let top = TOP + HEIGHT;
          const x = left + i * slot + BAR_GAP / 2;
          const labelled = i % labelEvery === 0 || i === dates.length - 1;
          // The first and last labels align to their bar's outer edge, so they stay inside the plot.
          const anchor = i === 0 && dates.length > 1 ? "start" : i === dates.length - 1 && dates.length > 1 ? "end" : "middle";
          const labelX = anchor === "start" ? x : anchor === "end" ? x + barWidth : x + barWidth / 2;
          return (
            <g key={date} onMouseEnter={() => setHovered(date)} onMouseLeave={() => setHovered(null)}>
              <rect x={x} y={TOP} width={barWidth} height={HEIGHT} fill={hovered === date ? "var(--bg-hover)" : "transparent"} />
              {(byDate.get(date) ?? []).map((d) => {
                const h = (valueOf(d, metric) / max) * HEIGHT;
                top -= h;
                return (
                  <rect key={d.model} x={x} y={top} width={barWidth} height={h} fill={PALETTE[models.indexOf(d.model) % PALETTE.length]}>
                    <title>{`${date} · ${d.model}: ${format(valueOf(d, metric))} (${d.requests} requests)`}</title>
                  </rect>
                );
              })}
              {labelled && (i === dates.length - 1 || dates.length - 1 - i >= labelEvery / 2) ? (
                <text x={labelX} y={TOP + HEIGHT + BOTTOM - 6} fontSize={FONT} textAnchor={anchor} fill="var(--fg-muted)" data-axis="date">
                  {date.slice(5)}
                </text>
              ) : null}
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
