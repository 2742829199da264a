import { AccountTakenError } from "../auth/users.ts";
import { retryLater, ServiceError } from "../errors.ts";

/** Rate-limited, retry after whole seconds (rounded up, at least 1). */
export function retryAfter(waitMs: number, message: string, code: string): ServiceError {
  return retryLater("rate_limited", waitMs, message, code);
}

/** Turns AccountTakenError into a conflict naming the field; passes anything else through. */
export function accountTaken(error: unknown): unknown {
  if (error instanceof AccountTakenError) return new ServiceError("conflict", error.message, { code: `${error.field}_taken`, param: error.field });
  return error;
}
