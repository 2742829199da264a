import { api } from "./http.ts";

/**
 * The billing app API (src/http/app/billing.ts, billingAdmin.ts; shapes in src/presenters/billing.ts).
 * Money comes as integer `*_micros` and decimal strings; money goes in as decimal strings, which
 * the server parses exactly, so no amount passes through a float on its way.
 */

export interface Balance {
  total_micros: number;
  granted_micros: number;
  topped_up_micros: number;
  reserved_micros: number;
  available_micros: number;
  total: string;
  available: string;
}

export interface Plan {
  id: string;
  name: string;
  billed: boolean;
  allowed_models: string[] | null;
  daily_token_quota: number | null;
  monthly_token_quota: number | null;
  max_thinking_budget: number | null;
  concurrency_weight: number;
  features: string[];
  /** Bytes of uploaded documents a user may keep (null: the server's default). */
  stored_bytes_quota: number | null;
  /** Web searches a day (null: no daily limit). */
  daily_search_quota: number | null;
}

export interface Credit {
  id: string;
  kind: "granted" | "topped_up";
  amount_micros: number;
  amount: string;
  source: string;
  note: string | null;
  created_by: string | null;
  created_at: number;
}

interface Prices {
  input_cache_hit: string;
  input_cache_miss: string;
  output: string;
}

export interface PriceSet extends Prices {
  model: string;
  windows: Array<Prices & { start: string; end: string }>;
}

export interface PriceList {
  currency: string;
  time_zone: string;
  at: number;
  prices: Array<PriceSet & { default: boolean; current_window: string | null }>;
  feature_prices: Array<{ meter: string; unit_price: string; unit_price_micros: number; per: number }>;
}

export interface AccountBilling {
  user_id: string;
  username: string;
  plan: Plan;
  balance: Balance;
  credits: Credit[];
}

/** The body of PUT /api/admin/billing/prices/:model. */
export interface PriceSetInput extends Prices {
  windows: Array<{ start: string; end: string; discount_percent: number } | (Prices & { start: string; end: string })>;
}

export type PlanInput = Omit<Plan, "id">;

const id = encodeURIComponent;

export const getPriceList = () => api<PriceList>("GET", "/api/billing/prices");
export const listOwnCredits = () => api<{ currency: string; data: Credit[] }>("GET", "/api/billing/credits");

export const listPlans = () => api<{ plans: Plan[] }>("GET", "/api/admin/billing/plans");
export const putPlan = (planId: string, plan: PlanInput) => api<Plan>("PUT", `/api/admin/billing/plans/${id(planId)}`, plan);
export const listPriceSets = () => api<{ currency: string; time_zone: string; prices: PriceSet[] }>("GET", "/api/admin/billing/prices");
export const putPriceSet = (model: string, set: PriceSetInput) => api<PriceSet>("PUT", `/api/admin/billing/prices/${id(model)}`, set);
export const deletePriceSet = (model: string) => api<void>("DELETE", `/api/admin/billing/prices/${id(model)}`);
export const getAccountBilling = (userId: string) => api<AccountBilling>("GET", `/api/admin/billing/users/${id(userId)}`);
export const setAccountPlan = (userId: string, planId: string) => api<{ user_id: string; plan: Plan }>("PUT", `/api/admin/billing/users/${id(userId)}/plan`, { plan_id: planId });
export const addAccountCredit = (userId: string, credit: { amount: string; kind: Credit["kind"]; note: string | null }) =>
  api<{ user_id: string; balance: Balance }>("POST", `/api/admin/billing/users/${id(userId)}/credits`, credit);

/** Micro-units as a decimal string, without floats (as the server formats them). */
export function formatMicros(micros: number, minDecimals = 2): string {
  const sign = micros < 0 ? "-" : "";
  const abs = Math.abs(micros);
  const whole = Math.floor(abs / 1_000_000);
  let fraction = String(abs % 1_000_000).padStart(6, "0");
  while (fraction.length > minDecimals && fraction.endsWith("0")) fraction = fraction.slice(0, -1);
  return `${sign}${whole}.${fraction}`;
}

/** Local dates (YYYY-MM-DD in the billing time zone) from `days - 1` days ago to today. */
export function lastDays(days: number, timeZone: string): string[] {
  const format = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  const out: string[] = [];
  for (let i = days - 1; i >= 0; i--) out.push(format.format(new Date(Date.now() - i * 86_400_000)));
  return [...new Set(out)];
}
