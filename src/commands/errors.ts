import { AccountTakenError } from "../auth/users.ts";
import { ApiError } from "../http/errors.ts";

/** 429 with Retry-After (whole seconds, rounded up). */
export function retryAfter(waitMs: number, message: string, code: string): ApiError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return new ApiError(429, message, code, null, { "retry-after": String(seconds) });
}

/** Turns AccountTakenError into a 409 naming the field; passes anything else through. */
export function accountTaken(error: unknown): unknown {
  if (error instanceof AccountTakenError) return new ApiError(409, error.message, `${error.field}_taken`, error.field);
  return error;
}
