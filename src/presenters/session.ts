import type { SessionRow } from "../auth/sessions.ts";
import { isoTime } from "./time.ts";

/** A sign-in session as its owner sees it: never the token or its hash. */
export function presentSession(session: SessionRow, currentSessionId: string | null) {
  return {
    id: session.id,
    current: session.id === currentSessionId,
    created_at: isoTime(session.created_at),
    last_seen_at: isoTime(session.last_seen_at),
    expires_at: isoTime(session.expires_at),
    user_agent: session.user_agent,
    ip: session.ip,
  };
}
