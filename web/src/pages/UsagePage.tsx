import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { formatMicros, lastDays } from "../api/billing.ts";
import { api, describeError } from "../api/http.ts";
import { CreditHistory, PriceListSection } from "./PriceList.tsx";
import { UsageChart, type ChartMetric, type DailyUsage } from "./UsageChart.tsx";

/**
 * The usage page: plan, balance and quotas; tokens or cost per day by model with what the cache
 * saved; the requests themselves, with a CSV export. Reads /api/billing/* (src/http/app/billing.ts).
 */

interface Summary {
  currency: string;
  time_zone: string;
  plan: { id: string; name: string; billed: boolean; allowed_models: string[] | null };
  balance: { total: string; available: string; granted_micros: number; topped_up_micros: number; reserved_micros: number };
  quotas: Record<"daily" | "monthly", { limit: number | null; used: number; resets_at: number }>;
}

interface UsageRow {
  id: string;
  model: string;
  status: string;
  started_at: number;
  cache_hit_tokens: number;
  cache_miss_tokens: number;
  reasoning_tokens: number;
  answer_tokens: number;
  price_window: string | null;
  cost: string;
  charged: string;
  /** Its line items (tokens of each kind, searches…). */
  items?: Array<{ meter: string; quantity: number }>;
}

/** Web searches a request ran (its `search` line items). */
const searchesOf = (r: UsageRow) => (r.items ?? []).filter((i) => i.meter === "search").reduce((n, i) => n + i.quantity, 0);

const RANGES = [7, 30, 90] as const;

const tokens = new Intl.NumberFormat();

export function UsagePage() {
  const [summary, setSummary] = useState<Summary | null>(null);
  const [range, setRange] = useState<(typeof RANGES)[number]>(30);
  const [metric, setMetric] = useState<ChartMetric>("tokens");
  const [days, setDays] = useState<DailyUsage[]>([]);
  const [rows, setRows] = useState<UsageRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const dates = useMemo(() => (summary ? lastDays(range, summary.time_zone) : []), [summary, range]);
  const from = dates[0];

  useEffect(() => {
    api<Summary>("GET", "/api/billing/summary").then(setSummary, (e) => setError(describeError(e)));
  }, []);

  useEffect(() => {
    if (!from) return;
    const query = `from=${from}`;
    api<{ days: DailyUsage[] }>("GET", `/api/billing/usage/daily?${query}`).then((r) => setDays(r.days), (e) => setError(describeError(e)));
    api<{ data: UsageRow[]; next_cursor: string | null }>("GET", `/api/billing/usage?${query}&limit=50`).then(
      (r) => {
        setRows(r.data);
        setCursor(r.next_cursor);
      },
      (e) => setError(describeError(e)),
    );
  }, [from]);

  const loadMore = useCallback(() => {
    if (!cursor || !from) return;
    api<{ data: UsageRow[]; next_cursor: string | null }>("GET", `/api/billing/usage?from=${from}&limit=50&cursor=${encodeURIComponent(cursor)}`).then(
      (r) => {
        setRows((previous) => [...previous, ...r.data]);
        setCursor(r.next_cursor);
      },
      (e) => setError(describeError(e)),
    );
  }, [cursor, from]);

  const totals = useMemo(
    () =>
      days.reduce(
        (t, d) => ({
          tokens: t.tokens + d.cache_hit_tokens + d.cache_miss_tokens + d.reasoning_tokens + d.answer_tokens,
          cost: t.cost + d.cost_micros,
          saved: t.saved + d.cache_saved_micros,
          requests: t.requests + d.requests,
        }),
        { tokens: 0, cost: 0, saved: 0, requests: 0 },
      ),
    [days],
  );

  if (error) return <UsageLayout><p role="alert">{error}</p></UsageLayout>;
  if (!summary) return <UsageLayout><p>Loading…</p></UsageLayout>;
  const currency = summary.currency;

  return (
    <UsageLayout>
      <section style={styles.cards}>
        <div style={styles.card}>
          <div style={styles.label}>Plan</div>
          <div style={styles.figure}>{summary.plan.name}</div>
          <div style={styles.note}>{summary.plan.billed ? "Requests are charged to your balance" : "Usage is free on this plan"}</div>
        </div>
        <div style={styles.card}>
          <div style={styles.label}>Balance</div>
          <div style={styles.figure} data-testid="balance">
            {summary.balance.total} {currency}
          </div>
          <div style={styles.note}>
            granted {formatMicros(summary.balance.granted_micros)} · topped up {formatMicros(summary.balance.topped_up_micros)}
            {summary.balance.reserved_micros > 0 && ` · ${formatMicros(summary.balance.reserved_micros)} held by running requests`}
          </div>
        </div>
        {(["daily", "monthly"] as const).map((period) => {
          const quota = summary.quotas[period];
          return (
            <div style={styles.card} key={period}>
              <div style={styles.label}>{period === "daily" ? "Today" : "This month"}</div>
              <div style={styles.figure}>
                {tokens.format(quota.used)}
                {quota.limit !== null && <span style={styles.note}> / {tokens.format(quota.limit)} tokens</span>}
              </div>
              <div style={styles.note} data-testid={`quota-${period}`}>
                {quota.limit === null
                  ? "no quota"
                  : `${tokens.format(Math.max(0, quota.limit - quota.used))} left · resets ${new Date(quota.resets_at).toLocaleString()}`}
              </div>
            </div>
          );
        })}
      </section>

      <section style={styles.card}>
        <div style={{ display: "flex", gap: 8, alignItems: "center", flexWrap: "wrap", marginBottom: 8 }}>
          {RANGES.map((r) => (
            <button key={r} type="button" aria-pressed={range === r} onClick={() => setRange(r)} style={styles.toggle(range === r)}>
              {r} days
            </button>
          ))}
          <span style={{ flex: 1 }} />
          {(["tokens", "cost"] as const).map((m) => (
            <button key={m} type="button" aria-pressed={metric === m} onClick={() => setMetric(m)} style={styles.toggle(metric === m)}>
              {m === "tokens" ? "Tokens" : "Cost"}
            </button>
          ))}
        </div>
        <UsageChart days={days} dates={dates} metric={metric} format={(v) => (metric === "cost" ? `${formatMicros(v)} ${currency}` : `${tokens.format(v)} tokens`)} />
        <p style={styles.note}>
          {tokens.format(totals.requests)} requests · {tokens.format(totals.tokens)} tokens · {formatMicros(totals.cost)} {currency}. The prompt cache saved{" "}
          <strong>
            {formatMicros(totals.saved)} {currency}
          </strong>{" "}
          (cached prompt tokens cost less than new ones). Days are in {summary.time_zone}.
        </p>
      </section>

      <PriceListSection />

      <section>
        <div style={{ display: "flex", alignItems: "center" }}>
          <h2 style={{ fontSize: "17px", flex: 1 }}>Requests</h2>
          <a href={`/api/billing/usage.csv?from=${from}`} download="usage.csv" data-testid="usage-csv">
            Export CSV
          </a>
        </div>
        <div style={{ overflowX: "auto" }} data-testid="usage-table">
          <table style={styles.table}>
            <thead>
              <tr>
                {["Time", "Model", "Status", "Cached", "New", "Reasoning", "Answer", "Searches", "Price", "Cost", "Charged"].map((h) => (
                  <th key={h} style={styles.cell}>
                    {h}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.id} data-id={r.id}>
                  <td style={styles.cell}>{new Date(r.started_at).toLocaleString()}</td>
                  <td style={styles.cell}>{r.model}</td>
                  <td style={styles.cell}>{r.status}</td>
                  <td style={styles.num}>{tokens.format(r.cache_hit_tokens)}</td>
                  <td style={styles.num}>{tokens.format(r.cache_miss_tokens)}</td>
                  <td style={styles.num}>{tokens.format(r.reasoning_tokens)}</td>
                  <td style={styles.num}>{tokens.format(r.answer_tokens)}</td>
                  <td style={styles.num} data-testid="usage-searches">{searchesOf(r) || ""}</td>
                  <td style={styles.cell}>{r.price_window ? `off-peak ${r.price_window}` : "standard"}</td>
                  <td style={styles.num}>{r.cost}</td>
                  <td style={styles.num}>{r.charged}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {rows.length === 0 && <p style={styles.note}>No requests in this period.</p>}
        {cursor && (
          <button type="button" onClick={loadMore} style={styles.toggle(false)}>
            Load more
          </button>
        )}
      </section>

      <CreditHistory />
    </UsageLayout>
  );
}

/** The page's scrolling area beside the sidebar, wider than the settings pages: the table has eleven columns. */
function UsageLayout({ children }: { children: ReactNode }) {
  return (
    <div className="page">
      <div className="page-inner page-wide" data-testid="usage-page">
        <h1>Usage &amp; billing</h1>
        {children}
      </div>
    </div>
  );
}

const styles = {
  cards: { display: "grid", gridTemplateColumns: "repeat(auto-fit, minmax(200px, 1fr))", gap: 12 },
  card: { background: "var(--bg-soft)", border: "1px solid var(--border)", borderRadius: "var(--radius)", padding: 14 },
  label: { fontSize: 12, color: "var(--fg-muted)", textTransform: "uppercase" as const, letterSpacing: "0.04em" },
  figure: { fontSize: 20, fontWeight: 600, margin: "4px 0" },
  note: { fontSize: 13, color: "var(--fg-muted)" },
  table: { width: "100%", borderCollapse: "collapse" as const, fontSize: 13 },
  cell: { padding: "6px 8px", borderBottom: "1px solid var(--border)", textAlign: "left" as const, whiteSpace: "nowrap" as const },
  num: { padding: "6px 8px", borderBottom: "1px solid var(--border)", textAlign: "right" as const, fontVariantNumeric: "tabular-nums" },
  toggle: (on: boolean) => ({
    border: "1px solid var(--border)",
    borderRadius: 8,
    padding: "4px 10px",
    background: on ? "var(--accent)" : "var(--bg)",
    color: on ? "var(--accent-fg)" : "var(--fg)",
    cursor: "pointer",
  }),
};
