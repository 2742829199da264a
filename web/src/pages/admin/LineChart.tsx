import { useId } from "react";
import type { DashboardUnit } from "../../api/dashboard.ts";
import { PALETTE } from "../UsageChart.tsx";

export interface ChartLine {
  /** The series key (`tokens_per_second{model="m"}`): tests and the legend find the line by it. */
  key: string;
  name: string;
  values: (number | null)[];
  /** A counter's value since start, shown beside the latest rate. */
  total?: number | null;
  totalLabel?: string;
  dashed?: boolean;
}

/** Drawing units (the SVG scales to its box's width), as in UsageChart: room for the value axis on the left. */
const WIDTH = 320;
const HEIGHT = 90;
const LEFT = 44;
const RIGHT = 8;
const TOP = 8;
const BOTTOM = 18;
const FONT = 10;

const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
const count = new Intl.NumberFormat();

/** A value with its unit, short: "12.5/s", "340 ms", "97.1 %", "3". */
export function formatValue(value: number | null, unit: DashboardUnit): string {
  if (value === null) return "—";
  switch (unit) {
    case "per_second":
      return `${value < 10 ? Number(value.toPrecision(3)) : compact.format(value)}/s`;
    case "seconds":
      return value < 1 ? `${Math.round(value * 1000)} ms` : `${Number(value.toPrecision(3))} s`;
    case "ratio":
      return `${Number((value * 100).toPrecision(3))} %`;
    default:
      return Number.isInteger(value) ? count.format(value) : Number(value.toPrecision(3)).toString();
  }
}

/** The top of the value axis: ratios end at 1; anything else at the next 1, 2 or 5 step above the largest value. */
function axisMax(values: number[], unit: DashboardUnit): number {
  if (unit === "ratio") return 1;
  const max = Math.max(0, ...values);
  if (max <= 0) return unit === "seconds" ? 0.1 : 1;
  const step = 10 ** Math.floor(Math.log10(max));
  return ([1, 2, 5, 10].map((f) => f * step).find((m) => m >= max) ?? 10 * step) as number;
}

/**
 * A small line chart of one metric over the window, one line per series: plain SVG (no chart
 * library), gaps where an interval had nothing to measure, and the latest value of every line as
 * text beside it (what a screen reader reads, and what the chart's label says).
 */
export function LineChart({
  title,
  unit,
  times,
  start,
  end,
  period,
  lines,
  testId,
}: {
  title: string;
  unit: DashboardUnit;
  times: number[];
  start: number;
  end: number;
  /** What the span from `start` to `end` is called ("last hour"), for the text alternative. */
  period: string;
  lines: ChartLine[];
  testId: string;
}) {
  const titleId = useId();
  const numbers = lines.flatMap((l) => l.values.filter((v): v is number => v !== null));
  const max = axisMax(numbers, unit);
  const span = Math.max(1, end - start);
  const plotWidth = WIDTH - LEFT - RIGHT;
  const x = (t: number) => LEFT + ((t - start) / span) * plotWidth;
  const y = (v: number) => TOP + HEIGHT - (Math.min(v, max) / max) * HEIGHT;
  const latestOf = (line: ChartLine) => line.values[line.values.length - 1] ?? null;
  const summary = lines.map((l) => `${l.name} ${formatValue(latestOf(l), unit)}`).join(", ");

  return (
    <figure aria-labelledby={titleId} data-testid={testId} style={{ margin: 0, border: "1px solid var(--border)", borderRadius: 8, padding: "8px 10px" }}>
      <div id={titleId} style={{ fontWeight: 600, fontSize: 13 }}>
        {title}
      </div>
      <svg viewBox={`0 0 ${WIDTH} ${TOP + HEIGHT + BOTTOM}`} width="100%" role="img" aria-label={`${title}, ${period}. Latest: ${summary || "no data"}.`}>
        <title>{`${title}: ${summary || "no data"}`}</title>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={LEFT} x2={WIDTH - RIGHT} y1={y(max * f)} y2={y(max * f)} stroke="var(--border)" strokeWidth={1} />
            <text x={LEFT - 4} y={y(max * f) + FONT / 3} fontSize={FONT} textAnchor="end" fill="var(--fg-muted)">
              {formatValue(max * f, unit)}
            </text>
          </g>
        ))}
        <text x={LEFT} y={TOP + HEIGHT + BOTTOM - 4} fontSize={FONT} fill="var(--fg-muted)">
          {new Date(start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}
        </text>
        <text x={WIDTH - RIGHT} y={TOP + HEIGHT + BOTTOM - 4} fontSize={FONT} textAnchor="end" fill="var(--fg-muted)">
          now
        </text>
        {lines.map((line, i) => {
          const colour = PALETTE[i % PALETTE.length];
          // Segments between measured points; an isolated point (one busy interval) is a dot.
          let d = "";
          const dots: [number, number][] = [];
          line.values.forEach((v, j) => {
            if (v === null || times[j] === undefined) return;
            const previous = j > 0 ? line.values[j - 1] : null;
            const next = j + 1 < line.values.length ? line.values[j + 1] : null;
            d += `${previous === null || previous === undefined ? "M" : "L"}${x(times[j]!).toFixed(1)},${y(v).toFixed(1)}`;
            if ((previous === null || previous === undefined) && (next === null || next === undefined)) dots.push([x(times[j]!), y(v)]);
          });
          return (
            <g key={line.key}>
              <path d={d} fill="none" stroke={colour} strokeWidth={1.5} strokeDasharray={line.dashed ? "4 3" : undefined} />
              {dots.map(([cx, cy]) => (
                <circle key={`${cx},${cy}`} cx={cx} cy={cy} r={2} fill={colour} />
              ))}
            </g>
          );
        })}
      </svg>
      <figcaption style={{ display: "flex", flexDirection: "column", gap: 2, fontSize: 12, color: "var(--fg-muted)" }}>
        {lines.length === 0 ? <span>Nothing in the {period}.</span> : null}
        {lines.map((line, i) => {
          const latest = latestOf(line);
          return (
            <span key={line.key} data-series={line.key} data-latest={latest ?? ""} data-total={line.total ?? ""}>
              <span aria-hidden="true" style={{ display: "inline-block", width: 10, height: 3, marginRight: 4, verticalAlign: "middle", background: PALETTE[i % PALETTE.length] }} />
              {line.name}: <strong style={{ color: "var(--fg)", fontVariantNumeric: "tabular-nums" }}>{formatValue(latest, unit)}</strong>
              {line.total !== undefined && line.total !== null ? ` · ${count.format(line.total)} ${line.totalLabel ?? "since start"}` : null}
            </span>
          );
        })}
      </figcaption>
    </figure>
  );
}
