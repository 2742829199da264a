import { z } from "zod";
import type { FeaturePriceDefaults } from "./featurePrices.ts";
import { METER_PATTERN, TOKEN_METERS } from "./lineItems.ts";
import { isTimeZone } from "./zonedTime.ts";

const unitPriceSchema = z
  .object({
    /** Micro-units for every `per` units. */
    unitPriceMicros: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    per: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER).default(1),
  })
  .strict();

/** Billing settings (config key `billing`). Prices and plans live in the database: admins change them at runtime. */
export const billingConfigSchema = z
  .object({
    /** IANA time zone in which price windows (off-peak hours) and quota days/months are read. */
    timeZone: z.string().default("UTC").refine(isTimeZone, "billing.timeZone must be an IANA time zone such as UTC or Asia/Shanghai"),
    /** ISO 4217 code shown with balances; amounts are stored in its micro-units. */
    currency: z.string().regex(/^[A-Z]{3}$/, "billing.currency must be an ISO 4217 code such as USD").default("USD"),
    /** Plan of users whose own plan is unset or no longer exists. */
    defaultPlan: z.string().min(1).default("free"),
    /** How long a reservation outlives its process before it is released (ms); see billing/meter.ts. */
    reservationLeaseMs: z.number().int().min(300).max(3_600_000).default(60_000),
    /** Output tokens reserved and imposed as max_tokens when neither the request nor the model bounds the output. */
    defaultMaxOutputTokens: z.number().int().min(1).max(1_048_576).default(8192),
    /** Price of one search (a ledger line item), in micro-units, until an admin sets one in the app. */
    searchPriceMicros: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    /** Default prices of other non-token meters (e.g. stored_bytes per 1_000_000), overridable by admins. */
    featurePrices: z
      .record(
        z.string().regex(METER_PATTERN).refine((m) => !TOKEN_METERS.includes(m), "token meters are priced by model price sets"),
        unitPriceSchema,
      )
      .default({}),
  })
  .prefault({});

export type BillingConfig = z.infer<typeof billingConfigSchema>;

/** The configured feature prices: `featurePrices` with the search price (unless listed there too). */
export function featurePriceDefaults(config: Pick<BillingConfig, "searchPriceMicros" | "featurePrices">): FeaturePriceDefaults {
  return { search: { unitPriceMicros: config.searchPriceMicros, per: 1 }, ...config.featurePrices };
}
