import { useState, type FormEvent } from "react";
import { createAccessCode, listAccessCodes, revokeAccessCode, type AccessCode } from "../../api/admin.ts";
import { describeError } from "../../api/http.ts";
import { ShownOnce } from "../../components/ShownOnce.tsx";
import { formatTime } from "../../components/time.ts";
import { usePaged } from "./usePaged.ts";

const STATUS_BADGE: Record<AccessCode["status"], string> = { active: "badge-ok", used_up: "", expired: "badge-warn", revoked: "badge-bad" };

export function AccessCodesTab() {
  const { items, hasMore, more, reload, error, setError } = usePaged((cursor) => listAccessCodes(cursor), []);
  const [created, setCreated] = useState<string | null>(null);
  const [maxUses, setMaxUses] = useState("1");
  const [days, setDays] = useState("");
  const [plan, setPlan] = useState("");
  const [credit, setCredit] = useState("");
  const [note, setNote] = useState("");

  const create = async (event: FormEvent) => {
    event.preventDefault();
    try {
      const code = await createAccessCode({
        max_uses: Number(maxUses) || 1,
        expires_in_days: days ? Number(days) : null,
        plan_id: plan.trim() || null,
        // Entered in currency units; the API counts micro-units.
        credit_micros: credit ? Math.round(Number(credit) * 1_000_000) : 0,
        note: note.trim() || null,
      });
      setCreated(code.code);
      setNote("");
      reload();
    } catch (e) {
      setError(describeError(e));
    }
  };
  const revoke = async (id: string) => {
    try {
      await revokeAccessCode(id);
      reload();
    } catch (e) {
      setError(describeError(e));
    }
  };

  return (
    <>
      <section className="card">
        <h2>Create an access code</h2>
        {created ? <ShownOnce label="New access code:" secret={created} onDone={() => setCreated(null)} /> : null}
        <form className="form" onSubmit={create}>
          <div className="row">
            <label>
              Uses
              <input type="number" min={1} value={maxUses} onChange={(e) => setMaxUses(e.target.value)} aria-label="Maximum uses" />
            </label>
            <label>
              Expires after (days)
              <input type="number" min={1} value={days} onChange={(e) => setDays(e.target.value)} aria-label="Expires after days" />
            </label>
          </div>
          <div className="row">
            <label>
              Plan (optional)
              <input value={plan} onChange={(e) => setPlan(e.target.value)} aria-label="Plan" />
            </label>
            <label>
              Starting credit (optional)
              <input type="number" min={0} step="0.01" value={credit} onChange={(e) => setCredit(e.target.value)} aria-label="Starting credit" />
            </label>
          </div>
          <label>
            Note
            <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={200} aria-label="Note" placeholder="who it is for" />
          </label>
          <div>
            <button type="submit" className="btn-primary">
              Create code
            </button>
          </div>
        </form>
      </section>
      <section className="card">
        <h2>Access codes</h2>
        {error ? (
          <div className="error-text small" role="alert">
            {error}
          </div>
        ) : null}
        {items === null && !error ? <div className="muted">Loading…</div> : null}
        {items?.length === 0 ? <div className="muted">No codes yet.</div> : null}
        {items && items.length > 0 ? (
          <div className="table-scroll">
            <table className="table" data-testid="codes-table">
              <thead>
                <tr>
                  <th>Code</th>
                  <th>Status</th>
                  <th>Uses</th>
                  <th>Grants</th>
                  <th>Expires</th>
                  <th>Note</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {items.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <code>{c.prefix}…</code>
                    </td>
                    <td>
                      <span className={`badge ${STATUS_BADGE[c.status]}`}>{c.status.replace("_", " ")}</span>
                    </td>
                    <td>
                      {c.uses} / {c.max_uses}
                    </td>
                    <td>
                      {c.plan_id ?? "default plan"}
                      {c.credit_micros > 0 ? ` + ${(c.credit_micros / 1_000_000).toFixed(2)} credit` : ""}
                    </td>
                    <td>{formatTime(c.expires_at)}</td>
                    <td>{c.note ?? ""}</td>
                    <td>
                      {c.status === "active" ? (
                        <button type="button" className="btn-ghost btn-small" onClick={() => void revoke(c.id)}>
                          Revoke
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
        {hasMore ? (
          <button type="button" className="btn-secondary" onClick={more}>
            Load more
          </button>
        ) : null}
      </section>
    </>
  );
}
