import { useEffect, useState } from "react";
import { formatMicros, getPriceList, listOwnCredits, type Credit, type PriceList } from "../api/billing.ts";
import { describeError } from "../api/http.ts";
import { ErrorText } from "../components/ErrorText.tsx";

/**
 * Two read-only parts of the usage page: the price list (per million tokens, with the off-peak
 * window and whether it is in force now, as the server reckons it in the billing time zone) and the
 * credits this account received (admin grants, top-ups, access codes).
 */

export function PriceListSection() {
  const [list, setList] = useState<PriceList | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    getPriceList().then(setList, (e) => setError(describeError(e)));
  }, []);

  return (
    <section className="card" data-testid="price-list">
      <h2>Prices</h2>
      <ErrorText error={error} />
      {!list && !error ? <div className="muted">Loading…</div> : null}
      {list && list.prices.length === 0 ? <p className="muted">No prices are set: requests are free.</p> : null}
      {list && list.prices.length > 0 ? (
        <>
          <p className="muted small">
            {list.currency} per million tokens. Off-peak hours are in {list.time_zone}; a request pays the prices in force when it starts.
          </p>
          <div className="table-scroll">
            <table className="table">
              <thead>
                <tr>
                  <th>Model</th>
                  <th>Hours</th>
                  <th>Input, cache hit</th>
                  <th>Input, cache miss</th>
                  <th>Output</th>
                </tr>
              </thead>
              <tbody>
                {list.prices.flatMap((set) => {
                  const name = set.default ? "Other models" : set.model;
                  const now = set.current_window;
                  return [
                    <tr key={set.model} data-model={set.model} data-window="standard">
                      <td>{name}</td>
                      <td>
                        {set.windows.length ? "standard" : "all day"}
                        {set.windows.length > 0 && now === null ? <span className="badge badge-ok"> now</span> : null}
                      </td>
                      <td>{set.input_cache_hit}</td>
                      <td>{set.input_cache_miss}</td>
                      <td>{set.output}</td>
                    </tr>,
                    ...set.windows.map((w) => {
                      const label = `${w.start}-${w.end}`;
                      return (
                        <tr key={`${set.model} ${label}`} data-model={set.model} data-window={label}>
                          <td className="muted">{name}</td>
                          <td>
                            off-peak {w.start}–{w.end}
                            {now === label ? <span className="badge badge-ok"> now</span> : null}
                          </td>
                          <td>{w.input_cache_hit}</td>
                          <td>{w.input_cache_miss}</td>
                          <td>{w.output}</td>
                        </tr>
                      );
                    }),
                  ];
                })}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
      {list && list.feature_prices.length > 0 ? (
        <p className="muted small">
          {list.feature_prices.map((f) => featurePriceText(f, list.currency)).join(" · ")}
        </p>
      ) : null}
    </section>
  );
}

/**
 * One non-token price as users read it. Web searches are quoted per 1,000, the unit Perplexity and
 * OpenAI use, whatever unit the admin priced them in (exact when the price is whole micro-units).
 */
function featurePriceText(f: { meter: string; unit_price: string; unit_price_micros: number; per: number }, currency: string): string {
  if (f.meter === "search") {
    const perThousand = Math.round((f.unit_price_micros * 1000) / f.per);
    return `web search: ${formatMicros(perThousand)} ${currency} per 1,000 searches`;
  }
  return `${f.meter.replace(/_/g, " ")}: ${f.unit_price} ${currency}${f.per === 1 ? " each" : ` per ${f.per}`}`;
}

const KIND: Record<Credit["kind"], string> = { granted: "granted", topped_up: "top-up" };
const SOURCE: Record<string, string> = { admin: "by an administrator", access_code: "with an access code", top_up: "top-up" };

export function CreditHistory() {
  const [credits, setCredits] = useState<{ currency: string; data: Credit[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    listOwnCredits().then(setCredits, (e) => setError(describeError(e)));
  }, []);

  return (
    <section className="card" data-testid="credit-history">
      <h2>Credits received</h2>
      <ErrorText error={error} />
      {credits && credits.data.length === 0 ? <p className="muted">No credit yet.</p> : null}
      {credits && credits.data.length > 0 ? (
        <div className="table-scroll">
          <table className="table">
            <thead>
              <tr>
                <th>Date</th>
                <th>Kind</th>
                <th>Amount ({credits.currency})</th>
                <th>From</th>
                <th>Note</th>
              </tr>
            </thead>
            <tbody>
              {credits.data.map((c) => (
                <tr key={c.id} data-id={c.id}>
                  <td>{new Date(c.created_at).toLocaleString()}</td>
                  <td>{KIND[c.kind]}</td>
                  <td>{c.amount}</td>
                  <td>{SOURCE[c.source] ?? c.source}</td>
                  <td>{c.note ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
