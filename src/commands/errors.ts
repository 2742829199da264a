import { AccountTakenError } from "../auth/users.ts";
import { retryLater, ServiceError } from "../errors.ts";

/**
 * Rate-limited, retry after whole seconds (rounded up, at least 1). The words say how long too
 * ("Try again in 3 minutes."), from the same figure as Retry-After: people read the message,
 * not the header, and "try again later" leaves them guessing.
 */
export function retryAfter(waitMs: number, message: string, code: string): ServiceError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  return retryLater("rate_limited", seconds * 1000, `${message} Try again in ${waitWords(seconds)}.`, code);
}

/** A wait in words, never shorter than the wait: 45 → "45 seconds", 61 → "2 minutes", 3601 → "2 hours". */
export function waitWords(seconds: number): string {
  const unit = (n: number, name: string) => `${n} ${name}${n === 1 ? "" : "s"}`;
  const whole = Math.max(1, Math.ceil(seconds));
  if (whole < 60) return unit(whole, "second");
  const minutes = Math.ceil(whole / 60);
  return minutes < 60 ? unit(minutes, "minute") : unit(Math.ceil(whole / 3600), "hour");
}

/** Turns AccountTakenError into a conflict naming the field; passes anything else through. */
export function accountTaken(error: unknown): unknown {
  if (error instanceof AccountTakenError) return new ServiceError("conflict", error.message, { code: `${error.field}_taken`, param: error.field });
  return error;
}
