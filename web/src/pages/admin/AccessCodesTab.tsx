import { useEffect, useState, type FormEvent } from "react";
import { createAccessCode, listAccessCodes, revokeAccessCode, type AccessCode } from "../../api/admin.ts";
import { listPlans, type Plan } from "../../api/billing.ts";
import { describeError } from "../../api/http.ts";
import { DataTable } from "../../components/DataTable.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";
import { ShownOnce } from "../../components/ShownOnce.tsx";
import { formatTime } from "../../components/time.ts";
import { useRemoteList } from "../../components/useRemoteList.ts";

const STATUS_BADGE: Record<AccessCode["status"], string> = { active: "badge-ok", used_up: "", expired: "badge-warn", revoked: "badge-bad" };

export function AccessCodesTab() {
  const codes = useRemoteList(listAccessCodes, []);
  const [created, setCreated] = useState<string | null>(null);
  const [maxUses, setMaxUses] = useState("1");
  const [days, setDays] = useState("");
  const [plan, setPlan] = useState("");
  const [credit, setCredit] = useState("");
  const [note, setNote] = useState("");
  // The plan is picked from the stored plans (not typed), so a code never names a plan that is not there.
  const [plans, setPlans] = useState<Plan[] | null>(null);
  useEffect(() => {
    listPlans().then(
      (r) => setPlans(r.plans),
      (e) => codes.setError(`The plans could not be read: ${describeError(e)}`),
    );
  }, []);

  const create = (event: FormEvent) => {
    event.preventDefault();
    void codes.change(async () => {
      const code = await createAccessCode({
        max_uses: Number(maxUses) || 1,
        expires_in_days: days ? Number(days) : null,
        plan_id: plan || null,
        // Entered in currency units; the API counts micro-units.
        credit_micros: credit ? Math.round(Number(credit) * 1_000_000) : 0,
        note: note.trim() || null,
      });
      setCreated(code.code);
      setNote("");
    });
  };

  return (
    <>
      <section className="card">
        <h2>Create an access code</h2>
        {created ? <ShownOnce label="New access code:" secret={created} onDone={() => setCreated(null)} /> : null}
        <form className="form" onSubmit={create}>
          <div className="row">
            <LabelledInput label="Uses" type="number" min={1} value={maxUses} onValue={setMaxUses} aria-label="Maximum uses" />
            <LabelledInput label="Expires after (days)" type="number" min={1} value={days} onValue={setDays} aria-label="Expires after days" />
          </div>
          <div className="row">
            <label>
              Plan
              <select value={plan} onChange={(e) => setPlan(e.target.value)} aria-label="Plan" disabled={plans === null}>
                <option value="">default plan</option>
                {(plans ?? []).map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.name} ({p.id})
                  </option>
                ))}
              </select>
            </label>
            <LabelledInput label="Starting credit (optional)" type="number" min={0} step="0.01" value={credit} onValue={setCredit} aria-label="Starting credit" />
          </div>
          <LabelledInput label="Note" value={note} onValue={setNote} maxLength={200} aria-label="Note" placeholder="who it is for" />
          <div>
            <button type="submit" className="btn-primary">
              Create code
            </button>
          </div>
        </form>
      </section>
      <section className="card">
        <h2>Access codes</h2>
        <DataTable
          list={codes}
          empty="No codes yet."
          testId="codes-table"
          columns={["Code", "Status", "Uses", "Grants", "Expires", "Note", ""]}
          row={(c) => (
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
                  <button type="button" className="btn-ghost btn-small" onClick={() => void codes.change(() => revokeAccessCode(c.id))}>
                    Revoke
                  </button>
                ) : null}
              </td>
            </tr>
          )}
        />
      </section>
    </>
  );
}
