import { api } from "./http.ts";

/**
 * The signed-in user's plan features (`search`, `documents`: src/billing/features.ts), read once per
 * page from GET /api/billing/summary, so the composer can grey out what the plan does not include.
 * null: not known (no billing on this server, or the call failed): offer everything and let the
 * server answer (403 with its reason) — the server decides either way.
 */
let features: Promise<ReadonlySet<string> | null> | null = null;

export function planFeatures(): Promise<ReadonlySet<string> | null> {
  features ??= api<{ plan?: { features?: string[] } }>("GET", "/api/billing/summary").then(
    (summary) => (Array.isArray(summary.plan?.features) ? new Set(summary.plan.features) : null),
    () => null,
  );
  return features;
}
