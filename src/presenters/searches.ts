import type { SearchRow } from "../search/history.ts";
import { isoTime } from "./time.ts";

/** One search of the user's history, as the web app shows it. */
export function presentSearch(row: SearchRow) {
  return {
    id: row.id,
    query: row.query,
    kind: row.kind,
    results: row.results,
    conversation_id: row.conversation_id,
    message_id: row.message_id,
    created_at: isoTime(row.created_at),
  };
}
