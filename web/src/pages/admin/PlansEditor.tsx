import { useState, type FormEvent } from "react";
import { putPlan, type Plan } from "../../api/billing.ts";
import { describeError } from "../../api/http.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";
import { listOf, wholeNumber } from "./billingForms.ts";

/**
 * Plans: what a user's requests may use (models, features), their token quotas, the thinking
 * budget cap, whether requests are charged. The form creates a plan or replaces one; the list is
 * the billing tab's (also fed to the accounts' plan pickers), re-read after each save.
 */

interface Draft {
  id: string;
  name: string;
  billed: boolean;
  allowedModels: string;
  daily: string;
  monthly: string;
  thinking: string;
  weight: string;
  features: string;
  /** MiB, as admins think of storage; sent in bytes. */
  storageMib: string;
  searches: string;
}

const EMPTY: Draft = { id: "", name: "", billed: false, allowedModels: "", daily: "", monthly: "", thinking: "", weight: "1", features: "", storageMib: "", searches: "" };
const PLAN_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const count = new Intl.NumberFormat();
const MIB = 1024 * 1024;

export function PlansEditor({ plans, error: loadError, onSaved }: { plans: Plan[] | null; error: string | null; onSaved: () => void }) {
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [editing, setEditing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (change: Partial<Draft>) => setDraft((d) => ({ ...d, ...change }));

  const edit = (p: Plan) => {
    setDraft({
      id: p.id,
      name: p.name,
      billed: p.billed,
      allowedModels: p.allowed_models?.join(", ") ?? "",
      daily: p.daily_token_quota?.toString() ?? "",
      monthly: p.monthly_token_quota?.toString() ?? "",
      thinking: p.max_thinking_budget?.toString() ?? "",
      weight: String(p.concurrency_weight),
      features: p.features.join(", "),
      storageMib: p.stored_bytes_quota === null ? "" : String(Math.round(p.stored_bytes_quota / MIB)),
      searches: p.daily_search_quota?.toString() ?? "",
    });
    setEditing(true);
    setError(null);
    setSaved(null);
  };

  const save = async (event: FormEvent) => {
    event.preventDefault();
    setSaved(null);
    const id = draft.id.trim();
    if (!PLAN_ID.test(id)) return setError(`Plan id: "${id}" is not valid; use 1–64 lowercase letters, digits, "_" or "-".`);
    if (!draft.name.trim()) return setError("Name: enter a name.");
    const daily = wholeNumber("Daily token quota", draft.daily, { min: 0, max: Number.MAX_SAFE_INTEGER });
    const monthly = wholeNumber("Monthly token quota", draft.monthly, { min: 0, max: Number.MAX_SAFE_INTEGER });
    const thinking = wholeNumber("Thinking budget cap", draft.thinking, { min: 0, max: 1_048_576 });
    const weight = wholeNumber("Concurrency weight", draft.weight, { min: 1, max: 1000 });
    const storage = wholeNumber("Storage quota (MiB)", draft.storageMib, { min: 0, max: 8 * 1024 * 1024 });
    const searches = wholeNumber("Daily searches", draft.searches, { min: 0, max: 1_000_000_000 });
    const problem = daily.problem ?? monthly.problem ?? thinking.problem ?? weight.problem ?? storage.problem ?? searches.problem;
    if (problem) return setError(problem);
    const models = listOf(draft.allowedModels);
    setBusy(true);
    setError(null);
    try {
      await putPlan(id, {
        name: draft.name.trim(),
        billed: draft.billed,
        allowed_models: models.length ? models : null,
        daily_token_quota: daily.value,
        monthly_token_quota: monthly.value,
        max_thinking_budget: thinking.value,
        concurrency_weight: weight.value ?? 1,
        features: listOf(draft.features),
        stored_bytes_quota: storage.value === null ? null : storage.value * MIB,
        daily_search_quota: searches.value,
      });
      setSaved(`Plan ${id} saved.`);
      onSaved();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const quota = (n: number | null) => (n === null ? "—" : count.format(n));
  return (
    <section className="card" data-testid="plans-editor">
      <h2>Plans</h2>
      <ErrorText error={loadError} />
      {plans ? (
        <div className="table-scroll">
          <table className="table" data-testid="plans-table">
            <thead>
              <tr>
                <th>Plan</th>
                <th>Charged</th>
                <th>Models</th>
                <th>Daily tokens</th>
                <th>Monthly tokens</th>
                <th>Thinking cap</th>
                <th>Searches a day</th>
                <th>Storage</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {plans.map((p) => (
                <tr key={p.id} data-plan={p.id}>
                  <td>
                    {p.name} <span className="small muted">{p.id}</span>
                  </td>
                  <td>{p.billed ? "yes" : "free"}</td>
                  <td className="small">{p.allowed_models?.join(", ") ?? "all"}</td>
                  <td>{quota(p.daily_token_quota)}</td>
                  <td>{quota(p.monthly_token_quota)}</td>
                  <td>{quota(p.max_thinking_budget)}</td>
                  <td>{quota(p.daily_search_quota)}</td>
                  <td>{p.stored_bytes_quota === null ? "default" : `${count.format(Math.round(p.stored_bytes_quota / MIB))} MiB`}</td>
                  <td>
                    <button type="button" className="btn-secondary btn-small" onClick={() => edit(p)}>
                      Edit
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : loadError ? null : (
        <div className="muted">Loading…</div>
      )}
      <form className="form" onSubmit={(e) => void save(e)} aria-label="Plan" noValidate>
        <div className="row">
          <LabelledInput label="Plan id" value={draft.id} onValue={(id) => set({ id })} disabled={editing} placeholder="pro" aria-label="Plan id" />
          <LabelledInput label="Name" value={draft.name} onValue={(name) => set({ name })} maxLength={100} aria-label="Plan name" />
          <label>
            Charged
            <select value={draft.billed ? "yes" : "no"} onChange={(e) => set({ billed: e.target.value === "yes" })} aria-label="Plan charged">
              <option value="no">free: usage is not charged</option>
              <option value="yes">requests are charged to the balance</option>
            </select>
          </label>
        </div>
        <div className="row">
          <LabelledInput label="Daily token quota" inputMode="numeric" value={draft.daily} onValue={(daily) => set({ daily })} placeholder="none" aria-label="Daily token quota" />
          <LabelledInput label="Monthly token quota" inputMode="numeric" value={draft.monthly} onValue={(monthly) => set({ monthly })} placeholder="none" aria-label="Monthly token quota" />
          <LabelledInput label="Thinking budget cap" inputMode="numeric" value={draft.thinking} onValue={(thinking) => set({ thinking })} placeholder="none" aria-label="Thinking budget cap" />
          <LabelledInput label="Concurrency weight" inputMode="numeric" value={draft.weight} onValue={(weight) => set({ weight })} aria-label="Concurrency weight" />
        </div>
        <div className="row">
          <LabelledInput label="Models (comma-separated; empty: all)" value={draft.allowedModels} onValue={(allowedModels) => set({ allowedModels })} aria-label="Plan models" />
          <LabelledInput label="Features (comma-separated)" value={draft.features} onValue={(features) => set({ features })} placeholder="search, documents" aria-label="Plan features" />
        </div>
        <div className="row">
          <LabelledInput label="Daily searches" inputMode="numeric" value={draft.searches} onValue={(searches) => set({ searches })} placeholder="no limit" aria-label="Daily searches" />
          <LabelledInput label="Storage quota (MiB)" inputMode="numeric" value={draft.storageMib} onValue={(storageMib) => set({ storageMib })} placeholder="server default" aria-label="Storage quota (MiB)" />
        </div>
        <div>
          <button type="submit" className="btn-primary" disabled={busy}>
            {editing ? "Save plan" : "Create plan"}
          </button>{" "}
          <button type="button" className="btn-ghost" onClick={() => (setDraft(EMPTY), setEditing(false), setError(null), setSaved(null))}>
            New plan
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
