import { useCallback, useEffect, useState, type FormEvent } from "react";
import { listUsers } from "../../api/admin.ts";
import { addAccountCredit, formatMicros, getAccountBilling, setAccountPlan, type AccountBilling, type Credit, type Plan } from "../../api/billing.ts";
import { describeError } from "../../api/http.ts";
import { DataTable } from "../../components/DataTable.tsx";
import { ErrorText } from "../../components/ErrorText.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";
import { useRemoteList } from "../../components/useRemoteList.ts";
import { amountProblem } from "./billingForms.ts";

/**
 * Users' plans and credit: find a user, then see their plan, balance and credits (the credit
 * ledger), move them to another plan, or add credit. Every change is one command on the server
 * (src/commands/billing.ts) with its audit row; the panel re-reads the account afterwards, so what
 * it shows is what was stored.
 */
export function BillingAccounts({ plans }: { plans: Plan[] }) {
  const [q, setQ] = useState("");
  const [picked, setPicked] = useState<string | null>(null);
  const users = useRemoteList((cursor) => listUsers({ q: q.trim() || undefined, cursor }), [q]);

  return (
    <section className="card" data-testid="billing-accounts">
      <h2>Accounts</h2>
      <div className="form">
        <LabelledInput label="Find a user" type="search" value={q} onValue={setQ} placeholder="user name or e-mail" aria-label="Find a user" />
      </div>
      <DataTable
        list={users}
        empty="No user matches."
        testId="billing-users"
        columns={["User", "Plan", ""]}
        row={(u) => (
          <tr key={u.id} data-username={u.username}>
            <td>{u.username}</td>
            <td>{u.plan_id ?? "default"}</td>
            <td>
              <button type="button" className="btn-secondary btn-small" aria-pressed={picked === u.id} onClick={() => setPicked(u.id)}>
                Manage
              </button>
            </td>
          </tr>
        )}
      />
      {picked ? <AccountPanel key={picked} userId={picked} plans={plans} onPlanChanged={users.reload} /> : null}
    </section>
  );
}

const KIND_LABEL: Record<Credit["kind"], string> = { granted: "granted", topped_up: "top-up" };

function AccountPanel({ userId, plans, onPlanChanged }: { userId: string; plans: Plan[]; onPlanChanged: () => void }) {
  const [account, setAccount] = useState<AccountBilling | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [amount, setAmount] = useState("");
  const [kind, setKind] = useState<Credit["kind"]>("granted");
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);

  const load = useCallback(() => {
    getAccountBilling(userId).then(setAccount, (e) => setError(describeError(e)));
  }, [userId]);
  useEffect(load, [load]);

  const run = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
      load();
      return true;
    } catch (e) {
      setError(describeError(e));
      return false;
    } finally {
      setBusy(false);
    }
  };

  const credit = async (event: FormEvent) => {
    event.preventDefault();
    const problem = amountProblem("Amount", amount, { positive: true });
    if (problem) return setError(problem);
    if (await run(() => addAccountCredit(userId, { amount: amount.trim(), kind, note: note.trim() || null }))) {
      setAmount("");
      setNote("");
    }
  };

  if (!account) return error ? <ErrorText error={error} /> : <div className="muted">Loading…</div>;
  const b = account.balance;
  return (
    <div className="card" data-testid="account-billing" data-user={account.username}>
      <h2>{account.username}</h2>
      <div className="row form">
        <label>
          Plan
          <select
            aria-label={`Plan of ${account.username}`}
            value={account.plan.id}
            disabled={busy}
            onChange={(e) => {
              const planId = e.target.value;
              void run(() => setAccountPlan(userId, planId)).then((ok) => ok && onPlanChanged());
            }}
          >
            {plans.some((p) => p.id === account.plan.id) ? null : <option value={account.plan.id}>{account.plan.name}</option>}
            {plans.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name} ({p.id})
              </option>
            ))}
          </select>
        </label>
        <div>
          <div className="small muted">Balance</div>
          <strong data-testid="account-balance">{b.total}</strong>
          <div className="small muted">
            granted {formatMicros(b.granted_micros)} · topped up {formatMicros(b.topped_up_micros)}
            {b.reserved_micros > 0 ? ` · ${formatMicros(b.reserved_micros)} held` : ""}
          </div>
        </div>
      </div>
      <form className="form" onSubmit={(e) => void credit(e)} aria-label="Add credit" noValidate>
        <div className="row">
          <LabelledInput label="Amount" inputMode="decimal" value={amount} onValue={setAmount} placeholder="10.00" aria-label="Credit amount" />
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind(e.target.value as Credit["kind"])} aria-label="Credit kind">
              <option value="granted">Grant (free credit)</option>
              <option value="topped_up">Top-up (paid)</option>
            </select>
          </label>
          <LabelledInput label="Note" value={note} onValue={setNote} maxLength={500} aria-label="Credit note" placeholder="why" />
        </div>
        <div>
          <button type="submit" className="btn-primary" disabled={busy}>
            Add credit
          </button>
        </div>
      </form>
      <ErrorText error={error} />
      {account.credits.length === 0 ? (
        <p className="muted small">No credits yet.</p>
      ) : (
        <div className="table-scroll">
          <table className="table" data-testid="account-credits">
            <thead>
              <tr>
                <th>Date</th>
                <th>Kind</th>
                <th>Amount</th>
                <th>Source</th>
                <th>Note</th>
              </tr>
            </thead>
            <tbody>
              {account.credits.map((c) => (
                <tr key={c.id}>
                  <td>{new Date(c.created_at).toLocaleString()}</td>
                  <td>{KIND_LABEL[c.kind]}</td>
                  <td>{c.amount}</td>
                  <td>{c.source.replace(/_/g, " ")}</td>
                  <td>{c.note ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
