import type { Kysely } from "kysely";
import { recordRequest } from "../store/requestLog.ts";
import type { Database } from "../store/schema.ts";
import type { CompletionRecord } from "./types.ts";

/** The request log row of a completion, written in its settlement transaction. */
export async function writeRequestLog(db: Kysely<Database>, entry: CompletionRecord): Promise<void> {
  await recordRequest(db, {
    // A billed request's log row shares its ledger row's id.
    ...(entry.charge
      ? { id: entry.charge.id, user_id: entry.charge.userId, api_key_id: entry.charge.subject.kind === "user" ? entry.charge.subject.apiKeyId : null }
      : {}),
    model: entry.model,
    engine: entry.engine,
    status: entry.status,
    error_code: entry.errorCode,
    stream: entry.stream ? 1 : 0,
    prompt_tokens: entry.usage.prompt_tokens,
    completion_tokens: entry.usage.completion_tokens,
    reasoning_tokens: entry.usage.completion_tokens_details.reasoning_tokens,
    cache_hit_tokens: entry.usage.prompt_cache_hit_tokens,
    cache_miss_tokens: entry.usage.prompt_cache_miss_tokens,
    queue_ms: entry.queueMs,
    ttft_ms: entry.ttftMs,
    total_ms: entry.totalMs,
    client_ip: entry.clientIp,
  });
}
