import { ServiceError, type ErrorKind } from "../errors.ts";

/**
 * A refusal before generation: 402 balance, 403 model or feature not in the plan, 429 quota. A
 * ServiceError (kind insufficient_balance, forbidden or rate_limited), so any transport can show
 * it; `status` and `headers` remain for callers that read them directly.
 */
export class BillingRefusal extends ServiceError {
  constructor(
    readonly status: 402 | 403 | 429,
    message: string,
    override readonly code: "insufficient_balance" | "model_not_allowed" | "quota_exceeded" | "feature_not_allowed",
    param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    const { "retry-after": retryAfter, ...meta } = headers;
    super(KIND_OF_STATUS[status], message, { code, param, meta, ...(retryAfter !== undefined ? { retryAfterS: Number(retryAfter) } : {}) });
    this.name = "BillingRefusal";
  }
}

const KIND_OF_STATUS: Record<402 | 403 | 429, ErrorKind> = { 402: "insufficient_balance", 403: "forbidden", 429: "rate_limited" };
