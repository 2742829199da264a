import { useState, type FormEvent } from "react";
import { deletePriceSet, listPriceSets, putPriceSet, type PriceSet } from "../../api/billing.ts";
import { describeError } from "../../api/http.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";
import { useRemoteList } from "../../components/useRemoteList.ts";
import { amountProblem, clockProblem } from "./billingForms.ts";

/**
 * Token prices per million tokens, per model ("*" for every model without its own), each with
 * off-peak windows that have their own prices. The form replaces a model's whole set; bad values
 * are named before sending, and the server's refusals (overlapping windows…) are shown as it words
 * them. Nothing changes unless the server accepted the whole set.
 */

interface WindowDraft {
  start: string;
  end: string;
  input_cache_hit: string;
  input_cache_miss: string;
  output: string;
}

interface Draft {
  model: string;
  input_cache_hit: string;
  input_cache_miss: string;
  output: string;
  windows: WindowDraft[];
}

const EMPTY: Draft = { model: "", input_cache_hit: "", input_cache_miss: "", output: "", windows: [] };
const PRICE_FIELDS = [
  ["input_cache_hit", "Input, cache hit"],
  ["input_cache_miss", "Input, cache miss"],
  ["output", "Output"],
] as const;

export function PricesEditor() {
  const [currency, setCurrency] = useState("");
  const sets = useRemoteList(async () => {
    const r = await listPriceSets();
    setCurrency(r.currency);
    return { data: r.prices };
  }, []);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const edit = (set: PriceSet) => {
    setDraft({
      model: set.model,
      input_cache_hit: set.input_cache_hit,
      input_cache_miss: set.input_cache_miss,
      output: set.output,
      windows: set.windows.map((w) => ({ start: w.start, end: w.end, input_cache_hit: w.input_cache_hit, input_cache_miss: w.input_cache_miss, output: w.output })),
    });
    setError(null);
    setSaved(null);
  };
  const setWindow = (i: number, change: Partial<WindowDraft>) => setDraft((d) => ({ ...d, windows: d.windows.map((w, j) => (j === i ? { ...w, ...change } : w)) }));

  const problem = (): string | null => {
    if (!draft.model.trim()) return "Model: enter a model id, or * for every model without its own prices.";
    for (const [key, label] of PRICE_FIELDS) {
      const p = amountProblem(`${label} price`, draft[key]);
      if (p) return p;
    }
    for (const [i, w] of draft.windows.entries()) {
      const which = `Off-peak window ${i + 1}`;
      const p =
        clockProblem(`${which} start`, w.start) ??
        clockProblem(`${which} end`, w.end) ??
        PRICE_FIELDS.map(([key, label]) => amountProblem(`${which}, ${label.toLowerCase()} price`, w[key])).find(Boolean) ??
        null;
      if (p) return p;
    }
    return null;
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(null);
    const p = problem();
    if (p) return setError(p);
    setBusy(true);
    setError(null);
    try {
      const model = draft.model.trim();
      await putPriceSet(model, {
        input_cache_hit: draft.input_cache_hit.trim(),
        input_cache_miss: draft.input_cache_miss.trim(),
        output: draft.output.trim(),
        windows: draft.windows.map((w) => ({
          start: w.start.trim(),
          end: w.end.trim(),
          input_cache_hit: w.input_cache_hit.trim(),
          input_cache_miss: w.input_cache_miss.trim(),
          output: w.output.trim(),
        })),
      });
      setSaved(`Prices of ${model} saved.`);
      sets.reload();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" data-testid="prices-editor">
      <h2>Prices</h2>
      <p className="muted small">{currency} per million tokens. Off-peak windows are times of day in the billing time zone; a window may run past midnight.</p>
      <ErrorText error={sets.error} />
      {sets.items && sets.items.length === 0 ? <p className="muted">No prices are set: every request is free.</p> : null}
      {sets.items && sets.items.length > 0 ? (
        <div className="table-scroll">
          <table className="table" data-testid="prices-table">
            <thead>
              <tr>
                <th>Model</th>
                <th>Cache hit</th>
                <th>Cache miss</th>
                <th>Output</th>
                <th>Off-peak</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {sets.items.map((s) => (
                <tr key={s.model} data-model={s.model}>
                  <td>{s.model === "*" ? "* (other models)" : s.model}</td>
                  <td>{s.input_cache_hit}</td>
                  <td>{s.input_cache_miss}</td>
                  <td>{s.output}</td>
                  <td className="small">{s.windows.map((w) => `${w.start}–${w.end}: ${w.input_cache_hit} / ${w.input_cache_miss} / ${w.output}`).join("; ") || "—"}</td>
                  <td>
                    <button type="button" className="btn-secondary btn-small" onClick={() => edit(s)}>
                      Edit
                    </button>{" "}
                    <button type="button" className="btn-ghost btn-small" onClick={() => void sets.change(() => deletePriceSet(s.model))}>
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      <form className="form" onSubmit={(e) => void save(e)} aria-label="Prices" noValidate>
        <div className="row">
          <LabelledInput label="Model" value={draft.model} onValue={(model) => setDraft((d) => ({ ...d, model }))} placeholder="model id, or *" aria-label="Price model" />
          {PRICE_FIELDS.map(([key, label]) => (
            <LabelledInput key={key} label={label} inputMode="decimal" value={draft[key]} onValue={(v) => setDraft((d) => ({ ...d, [key]: v }))} aria-label={`${label} price`} />
          ))}
        </div>
        {draft.windows.map((w, i) => (
          <div className="row" key={i} data-testid="window-row">
            <LabelledInput label="Off-peak from" value={w.start} onValue={(start) => setWindow(i, { start })} placeholder="16:30" aria-label={`Window ${i + 1} start`} />
            <LabelledInput label="until" value={w.end} onValue={(end) => setWindow(i, { end })} placeholder="00:30" aria-label={`Window ${i + 1} end`} />
            {PRICE_FIELDS.map(([key, label]) => (
              <LabelledInput key={key} label={label} inputMode="decimal" value={w[key]} onValue={(v) => setWindow(i, { [key]: v })} aria-label={`Window ${i + 1} ${label.toLowerCase()} price`} />
            ))}
            <button type="button" className="btn-ghost btn-small" onClick={() => setDraft((d) => ({ ...d, windows: d.windows.filter((_, j) => j !== i) }))}>
              Remove window
            </button>
          </div>
        ))}
        <div>
          <button
            type="button"
            className="btn-secondary"
            onClick={() => setDraft((d) => ({ ...d, windows: [...d.windows, { start: "", end: "", input_cache_hit: d.input_cache_hit, input_cache_miss: d.input_cache_miss, output: d.output }] }))}
          >
            Add off-peak window
          </button>{" "}
          <button type="submit" className="btn-primary" disabled={busy}>
            Save prices
          </button>{" "}
          <button type="button" className="btn-ghost" onClick={() => (setDraft(EMPTY), setError(null), setSaved(null))}>
            Clear
          </button>
        </div>
        <ErrorText error={error} />
        {saved ? (
          <div className="small muted" role="status">
            {saved}
          </div>
        ) : null}
      </form>
    </section>
  );
}
