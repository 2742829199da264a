import { useCallback, useEffect, useMemo, useState } from "react";
import { formatMicros, lastDays, listPlans, type Plan } from "../../api/billing.ts";
import { api, describeError } from "../../api/http.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { UsageChart, type DailyUsage } from "../UsageChart.tsx";
import { BillingAccounts } from "./BillingAccounts.tsx";
import { PlansEditor } from "./PlansEditor.tsx";
import { PricesEditor } from "./PricesEditor.tsx";

/**
 * The admin's billing area: what every account spent per day and model, the accounts with their
 * plans and credit, the plans and the token prices. The plan list is read once here and shared by
 * the plans table and the accounts' plan pickers, and re-read when a plan is saved.
 */
export function BillingTab() {
  const [plans, setPlans] = useState<Plan[] | null>(null);
  const [plansError, setPlansError] = useState<string | null>(null);
  const loadPlans = useCallback(() => {
    listPlans().then(
      (r) => {
        setPlans(r.plans);
        setPlansError(null);
      },
      (e) => setPlansError(describeError(e)),
    );
  }, []);
  useEffect(loadPlans, [loadPlans]);

  return (
    <>
      <BillingOverview />
      <BillingAccounts plans={plans ?? []} />
      <PlansEditor plans={plans} error={plansError} onSaved={loadPlans} />
      <PricesEditor />
    </>
  );
}

const DAYS = 30;

function BillingOverview() {
  const [data, setData] = useState<{ currency: string; time_zone: string; days: DailyUsage[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api<{ currency: string; time_zone: string; days: DailyUsage[] }>("GET", `/api/admin/billing/usage/daily?from=${Date.now() - (DAYS - 1) * 86_400_000}`).then(setData, (e) =>
      setError(describeError(e)),
    );
  }, []);
  const dates = useMemo(() => (data ? lastDays(DAYS, data.time_zone) : []), [data]);
  const cost = data?.days.reduce((sum, d) => sum + d.cost_micros, 0) ?? 0;
  const charged = data?.days.reduce((sum, d) => sum + d.charged_micros, 0) ?? 0;

  return (
    <section className="card" data-testid="billing-overview">
      <h2>Spending, last {DAYS} days</h2>
      <ErrorText error={error} />
      {data ? (
        <>
          <UsageChart days={data.days} dates={dates} metric="cost" format={(v) => `${formatMicros(v)} ${data.currency}`} />
          <p className="muted small">
            All accounts: {formatMicros(cost)} {data.currency} at list prices, {formatMicros(charged)} {data.currency} charged (free plans are not charged). Days are in {data.time_zone}.
          </p>
        </>
      ) : error ? null : (
        <div className="muted">Loading…</div>
      )}
    </section>
  );
}
