import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { prunePasswordResets } from "./passwordResets.ts";
import { prunePendingLogins } from "./pendingLogins.ts";
import { pruneSessions } from "./sessions.ts";
import { Throttle } from "./throttle.ts";

const EVERY_MS = 60 * 60_000;
const DAY_MS = 24 * 60 * 60_000;

/**
 * Hourly clean-up of rows that can no longer matter: throttle counters idle for a day (longer
 * than any block or forgiveness window), sessions that ended a week ago, expired half-done
 * two-step sign-ins, and reset links a week past their expiry. Returns a stop function.
 */
export function startAuthHousekeeping(db: Kysely<Database>, log: { warn(obj: object, msg?: string): void }): () => void {
  const run = async () => {
    try {
      await Throttle.prune(db, DAY_MS);
      await pruneSessions(db, 7 * DAY_MS);
      await prunePendingLogins(db);
      await prunePasswordResets(db, 7 * DAY_MS);
    } catch (err) {
      log.warn({ err }, "auth housekeeping failed; will retry in an hour");
    }
  };
  const timer = setInterval(() => void run(), EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
