import { useEffect, useState } from "react";
import { api, describeError } from "../api/http.ts";
import { formatMicros } from "../api/billing.ts";

/** Admins: usage, cost and balance per user over a period (GET /api/admin/billing/overview); a tab of the admin area. */

interface UserTotals {
  user_id: string | null;
  username: string | null;
  plan_id: string | null;
  requests: number;
  tokens: number;
  cost_micros: number;
  charged_micros: number;
  cache_saved_micros: number;
  last_request_at: number | null;
  balance: { total: string; available: string } | null;
}

const RANGES = [7, 30, 90] as const;
const count = new Intl.NumberFormat();

export function UsageAdminPage() {
  const [range, setRange] = useState<(typeof RANGES)[number]>(30);
  const [data, setData] = useState<{ currency: string; users: UserTotals[] } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const from = Date.now() - range * 86_400_000;
    api<{ currency: string; users: UserTotals[] }>("GET", `/api/admin/billing/overview?from=${from}`).then(setData, (e) => setError(describeError(e)));
  }, [range]);

  if (error) return <p role="alert">{error}</p>;
  if (!data) return <p>Loading…</p>;
  const cell = { padding: "6px 8px", borderBottom: "1px solid var(--border)", whiteSpace: "nowrap" as const };
  const num = { ...cell, textAlign: "right" as const, fontVariantNumeric: "tabular-nums" };
  return (
    <section data-testid="admin-usage">
      <h2>Usage by user</h2>
      <div style={{ display: "flex", gap: 8, marginBottom: 12 }}>
        {RANGES.map((r) => (
          <button key={r} type="button" aria-pressed={range === r} onClick={() => setRange(r)}>
            {r} days
          </button>
        ))}
        <span style={{ flex: 1 }} />
        <a href={`/api/admin/billing/usage.csv?from=${Date.now() - range * 86_400_000}`} download="usage.csv">
          Export CSV
        </a>
      </div>
      <div className="table-scroll">
        <table style={{ width: "100%", borderCollapse: "collapse", fontSize: 13 }}>
          <thead>
            <tr>
              {["User", "Plan", "Requests", "Tokens", `Cost (${data.currency})`, "Charged", "Cache saved", "Balance", "Last request"].map((h) => (
                <th key={h} style={{ ...cell, textAlign: "left" }}>
                  {h}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {data.users.map((u) => (
              <tr key={u.user_id ?? "local"}>
                <td style={cell}>{u.username ?? (u.user_id === null ? "local operator" : u.user_id)}</td>
                <td style={cell}>{u.plan_id ?? "—"}</td>
                <td style={num}>{count.format(u.requests)}</td>
                <td style={num}>{count.format(u.tokens)}</td>
                <td style={num}>{formatMicros(u.cost_micros)}</td>
                <td style={num}>{formatMicros(u.charged_micros)}</td>
                <td style={num}>{formatMicros(u.cache_saved_micros)}</td>
                <td style={num}>{u.balance?.total ?? "—"}</td>
                <td style={cell}>{u.last_request_at ? new Date(u.last_request_at).toLocaleString() : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {data.users.length === 0 && <p>No usage in this period.</p>}
    </section>
  );
}
