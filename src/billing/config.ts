import { z } from "zod";
import { isTimeZone } from "./zonedTime.ts";

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
  })
  .prefault({});

export type BillingConfig = z.infer<typeof billingConfigSchema>;
