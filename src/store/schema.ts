/**
 * The typed shape of every table, as Kysely sees it. Each table gets an interface here and a key in
 * `Database`; add yours next to the migration that creates it.
 *
 * Portable conventions (the same code runs on SQLite and PostgreSQL):
 * - column names are snake_case, and rows keep them (no camel-case plugin: one shape everywhere);
 * - ids are text, generated in app code with `newId()` from `./ids.ts`;
 * - timestamps are integer milliseconds since the epoch (`bigint` on PostgreSQL, read back as numbers);
 * - booleans are integers 0/1 (better-sqlite3 cannot bind JS booleans);
 * - money is integer micro-units, never floats.
 */

export interface RequestLogTable {
  id: string;
  created_at: number;
  /** Public model name as the client asked for it. */
  model: string;
  /** Which engine served it, e.g. "local" or "remote:<upstream>". */
  engine: string;
  /** HTTP status sent to the client. */
  status: number;
  /** The API error code (`error.code`) when the request failed. */
  error_code: string | null;
  /** 1 when the response was streamed (SSE), else 0. */
  stream: 0 | 1;
  prompt_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
  cache_hit_tokens: number;
  cache_miss_tokens: number;
  /** Time spent in the admission queue. */
  queue_ms: number;
  /** Time to first token; null when no token was produced. */
  ttft_ms: number | null;
  total_ms: number;
  user_id: string | null;
  api_key_id: string | null;
  client_ip: string | null;
}

/** A web-app conversation, owned by one user. */
export interface ConversationTable {
  id: string;
  user_id: string;
  /** Null until the first exchange names it or the user renames it. */
  title: string | null;
  /** Model of the last reply. */
  model: string | null;
  /** Leaf of the branch last shown (messages form a tree: edits and regenerations are siblings). */
  current_message_id: string | null;
  created_at: number;
  updated_at: number;
  /** JSON of the reply settings (src/chat/conversationSettings.ts, migration 0550); null: the model's defaults. */
  settings: string | null;
  /** When the owner pinned it (pinned list first); null: not pinned. */
  pinned_at: number | null;
}

/** A read-only link to a snapshot of one branch of a conversation (migration 0550, src/chat/shares.ts). */
export interface ConversationShareTable {
  id: string;
  conversation_id: string;
  /** The owner (who may list and revoke it). */
  user_id: string;
  /** SHA-256 (hex) of the link's token; the token itself is shown once. */
  token_hash: string;
  /** The branch shared: the path from the first message to this one, as it was at share time. */
  leaf_message_id: string;
  /** The title when shared. */
  title: string | null;
  /** 1: the answers' reasoning is shown too. */
  include_reasoning: 0 | 1;
  /** 1: the owner's user name is shown. */
  show_author: 0 | 1;
  created_at: number;
  revoked_at: number | null;
}

export type MessageRole = "user" | "assistant";
/** `streaming` while generated; `interrupted` when the process died mid-stream (partial text kept). */
export type MessageStatus = "complete" | "streaming" | "stopped" | "error" | "interrupted";

export interface MessageTable {
  id: string;
  conversation_id: string;
  /** The message this one answers or follows; null for the first message of a conversation. */
  parent_id: string | null;
  role: MessageRole;
  content: string;
  /** The model's reasoning (assistant only); shown, never fed back to the model. */
  reasoning: string;
  model: string | null;
  /** 1 when DeepThink (reasoning) was on for this reply. */
  thinking: 0 | 1;
  status: MessageStatus;
  /** What went wrong, in words for the user, when status is `error`. */
  error: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
  /** Time to the first token. */
  ttft_ms: number | null;
  /** From the first reasoning token to the first answer token. */
  reasoning_ms: number | null;
  total_ms: number | null;
  created_at: number;
  updated_at: number;
  /** JSON of the moderation users see on this answer (src/moderation, migration 0540); null when none intervened. */
  moderation: string | null;
  /** JSON array of the sources the answer cites (src/search/source.ts, migration 0570); null without search. */
  sources: string | null;
}

/** One search a user ran (migration 0570): their search history. */
export interface SearchTable {
  id: string;
  user_id: string;
  /** The query as sent (the question, shortened). */
  query: string;
  kind: "web" | "documents";
  /** Results found (pages read, or passages). */
  results: number;
  /** The web app's answer it was for; null for API requests. */
  conversation_id: string | null;
  message_id: string | null;
  created_at: number;
}

/** A billing plan (billing/plans.ts): what its users may use, how much, and whether they pay. */
export interface PlanTable {
  id: string;
  name: string;
  /** 0: metered, never charged; 1: requests draw on the user's balance. */
  billed: 0 | 1;
  /** JSON array of model ids; null allows every model. */
  allowed_models: string | null;
  daily_token_quota: number | null;
  monthly_token_quota: number | null;
  max_thinking_budget: number | null;
  /** Read by the admission queue: how many slots one request of this plan counts for. */
  concurrency_weight: number;
  /** JSON array of feature flags, e.g. ["search"]. */
  features: string;
  /** Bytes of uploaded documents each user may keep (migration 0565); null: `documents.maxStoredBytesPerUser`. */
  stored_bytes_quota: number | null;
  /** Web searches per user per local day (migration 0570); null: unlimited. */
  daily_search_quota: number | null;
  created_at: number;
  updated_at: number;
}

/** Base prices of a model (or "*", the default), in micro-units per million tokens. */
export interface PriceTable {
  model: string;
  input_cache_hit_micros: number;
  input_cache_miss_micros: number;
  output_micros: number;
  updated_at: number;
  updated_by: string | null;
}

/** A time-of-day window with its own prices; minutes in the billing time zone, end <= start wraps midnight. */
export interface PriceWindowTable {
  model: string;
  start_minute: number;
  end_minute: number;
  input_cache_hit_micros: number;
  input_cache_miss_micros: number;
  output_micros: number;
}

/** A user's money, in micro-units; available = granted + topped_up - reserved, never below zero. */
export interface BalanceTable {
  user_id: string;
  granted_micros: number;
  topped_up_micros: number;
  reserved_micros: number;
  updated_at: number;
}

/** One credit added to a balance (access code, admin grant, top-up). */
export interface CreditTable {
  id: string;
  user_id: string;
  kind: "granted" | "topped_up";
  amount_micros: number;
  source: string;
  note: string | null;
  created_by: string | null;
  created_at: number;
}

export type UsageStatus = "open" | "completed" | "stopped" | "failed" | "interrupted";

/** One row per metered request: opened with its reservation, settled with its real usage. */
export interface UsageLedgerTable {
  id: string;
  user_id: string | null;
  api_key_id: string | null;
  plan_id: string | null;
  model: string;
  engine: string;
  status: UsageStatus;
  billed: 0 | 1;
  price_input_cache_hit: number;
  price_input_cache_miss: number;
  price_output: number;
  price_source: string | null;
  price_window: string | null;
  cache_hit_tokens: number;
  cache_miss_tokens: number;
  reasoning_tokens: number;
  answer_tokens: number;
  reserved_micros: number;
  cost_micros: number;
  charged_micros: number;
  started_at: number;
  ended_at: number | null;
  holder: string | null;
  lease_until: number | null;
}

/**
 * One line of a ledger row (billing/lineItems.ts): a meter, its quantity, the price of `per` units
 * frozen at the request's start, and the amount. The row's cost_micros is the sum of its amounts.
 */
export interface LedgerItemTable {
  entry_id: string;
  ordinal: number;
  /** "input_cache_hit_tokens", "input_cache_miss_tokens", "output_tokens", "search", "stored_bytes", … */
  meter: string;
  quantity: number;
  unit_price_micros: number;
  /** Units the price is for: 1_000_000 for tokens, 1 for a search. */
  per: number;
  amount_micros: number;
}

/** The price of a meter other than tokens (search, stored bytes…), set by an admin. */
export interface FeaturePriceTable {
  meter: string;
  unit_price_micros: number;
  per: number;
  updated_at: number;
  updated_by: string | null;
}

/** An account. `username` and `email` are stored lower-cased. */
export interface UserTable {
  id: string;
  username: string;
  email: string | null;
  /** argon2id PHC string; never leaves the auth module. */
  password_hash: string;
  role: "admin" | "user";
  /** `pending` waits for an admin's approval (sign-up mode `approval`); `disabled` can do nothing. */
  status: "active" | "pending" | "disabled";
  /** Billing plan (billing's `plans.id`); set by an access code at sign-up, else "free". */
  plan_id: string | null;
  created_at: number;
  updated_at: number;
  last_login_at: number | null;
}

export interface SessionTable {
  id: string;
  /** SHA-256 (hex) of the cookie token. */
  token_hash: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  revoked_at: number | null;
  user_agent: string | null;
  ip: string | null;
  /** `password` or `sso` (how the person proved who they are; see src/auth/authenticate.ts). */
  sign_in_method: "password" | "sso";
}

export interface ApiKeyTable {
  id: string;
  user_id: string;
  name: string;
  /** Shown to tell keys apart, e.g. "sk-AbCd1234". */
  prefix: string;
  /** SHA-256 (hex) of the whole key. */
  key_hash: string;
  /** JSON array of model ids, or null for every model. */
  models: string | null;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface AccessCodeTable {
  id: string;
  /** SHA-256 (hex) of the normalised code. */
  code_hash: string;
  /** First group of the code, shown in lists. */
  prefix: string;
  note: string | null;
  max_uses: number;
  uses: number;
  expires_at: number | null;
  /** Plan a redemption puts the user on (null: the default plan). */
  plan_id: string | null;
  /** Starting credit each redemption grants, in micro-units. */
  credit_micros: number;
  created_by: string | null;
  created_at: number;
  revoked_at: number | null;
}

/** One use of an access code and exactly what it granted; billing credits `credit_micros`. */
export interface AccessCodeRedemptionTable {
  id: string;
  access_code_id: string;
  user_id: string;
  plan_id: string | null;
  credit_micros: number;
  created_at: number;
}

/** Service-wide settings (sign-up mode, attack mode, the session secret), as key → JSON text. */
export interface SettingTable {
  key: string;
  value: string;
  updated_at: number;
  updated_by: string | null;
}

export interface AuditLogTable {
  id: string;
  created_at: number;
  /** Null when done from the command line. */
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  /** JSON object. */
  details: string;
  ip: string | null;
}

export interface AuthThrottleTable {
  key: string;
  failures: number;
  last_failure_at: number;
  blocked_until: number;
}

/** An OpenID Connect identity (provider id + `sub`) linked to an account (migration 0500). */
export interface OidcIdentityTable {
  /** auth.oidcProviders[].id */
  provider_id: string;
  /** The provider's `sub` claim. */
  subject: string;
  /** The issuer the identity was first seen from; another issuer under the same id is refused. */
  issuer: string;
  user_id: string;
  /** Last e-mail address the provider sent; shown, never used to link. */
  email: string | null;
  created_at: number;
  last_login_at: number | null;
}

/** A TOTP second factor (migration 0510); `confirmed_at` null while enrolment waits for its first code. */
export interface TotpCredentialTable {
  user_id: string;
  /** The base32 secret, sealed with AES-256-GCM (src/auth/secretBox.ts): the server must read it back. */
  secret_enc: string;
  created_at: number;
  confirmed_at: number | null;
  /** The last time step a code was accepted for; codes of that step or earlier are refused (replay). */
  last_used_step: number | null;
}

/** One-time recovery code of a TOTP account; SHA-256 (hex) of the normalised code. */
export interface RecoveryCodeTable {
  id: string;
  user_id: string;
  code_hash: string;
  created_at: number;
  used_at: number | null;
}

/** An admin-issued password-reset link: hashed, expiring, single use. */
export interface PasswordResetTokenTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_by: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** A sign-in whose password was right and that waits for its second factor (httpOnly cookie, hashed here). */
export interface PendingLoginTable {
  id: string;
  token_hash: string;
  user_id: string;
  created_at: number;
  expires_at: number;
  failures: number;
  ip: string | null;
}

/** A model audit run (migration 0530, src/audit): the suite as run, its models, classifiers and settings. */
export interface AuditRunTable {
  id: string;
  suite_id: string;
  suite_version: string;
  suite_title: string;
  /** JSON: the suite as run (its topics and the questions the filter kept). */
  suite: string;
  /** JSON array of model ids. */
  models: string;
  /** JSON array of classifier ids ("rules@1", "judge@1:<model>"). */
  classifiers: string;
  /** JSON object (src/audit/store.ts `AuditSettings`). */
  settings: string;
  /** "running" | "cancelled" | "incomplete" | "completed" | "failed" (a stale heartbeat reads as interrupted). */
  status: string;
  /** Answers asked for in all: models × questions × samples. */
  total: number;
  error: string | null;
  /** The admin who started it; null from the command line. */
  created_by: string | null;
  created_at: number;
  updated_at: number;
  heartbeat_at: number | null;
  finished_at: number | null;
}

/** One answer of an audit run (one model, one question, one sample) with its classifications. */
export interface AuditAnswerTable {
  run_id: string;
  model: string;
  question_id: string;
  sample: number;
  answer: string;
  reasoning: string;
  rule_class: string | null;
  rule_reasoning_class: string | null;
  retracted: 0 | 1;
  /** JSON array of lines. */
  rule_explanation: string;
  rule_classifier: string | null;
  judge_class: string | null;
  judge_reasoning_class: string | null;
  judge_retracted: 0 | 1;
  judge_reason: string | null;
  /** JSON array of lines. */
  judge_explanation: string;
  judge_classifier: string | null;
  finish_reason: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
  error: string | null;
  created_at: number;
}

/** A model's audit summary an admin published (shown with the model in the web app). */
export interface AuditPublicationTable {
  run_id: string;
  model: string;
  /** JSON (src/audit/store.ts `PublishedSummary`). */
  summary: string;
  published_by: string | null;
  published_at: number;
}

/** One intervention of a moderation policy, from any surface (migration 0540, src/moderation/store.ts). */
export interface ModerationEventTable {
  id: string;
  created_at: number;
  model: string;
  policy: string;
  /** `warn` | `withhold` */
  action: string;
  /** `input` | `output` */
  stage: string;
  /** Output: `content` | `reasoning`. */
  channel: string | null;
  /** Output: characters of that channel shown before the intervention. */
  offset_chars: number;
  reason: string;
  /** `words` | `patterns` | `classifier` */
  source: string;
  /** The matched text or the classifier's categories (admins only: it may quote withheld text). */
  matched: string | null;
  user_id: string | null;
  api_key_id: string | null;
  /** Web-app answers: where the intervention is shown. */
  conversation_id: string | null;
  message_id: string | null;
}

/** `processing` while extracted and indexed in the background, then `processed` or `error`. */
export type FileStatus = "processing" | "processed" | "error";

/** An uploaded document (migration 0560, src/search/store/files.ts); its bytes are in `file_blobs`. */
export interface FileTable {
  /** `file-` + a generated id; the bytes are never stored under the user's name. */
  id: string;
  user_id: string;
  /** The name given at upload, cleaned; a label only, never a path. */
  filename: string;
  /** Sniffed from the content, not taken from the name. */
  mime: string;
  bytes: number;
  /** SHA-256 (hex) of the bytes. */
  sha256: string;
  /** What it was uploaded for (OpenAI's `purpose`). */
  purpose: string;
  status: FileStatus;
  /** Why processing failed, in words for the user, when status is `error`. */
  error: string | null;
  /** Chunks the text was cut into; null until then. */
  chunks_total: number | null;
  /** Chunks written to the index so far. */
  chunks_indexed: number;
  created_at: number;
}

/** The bytes of a file, in the database so several gateways share them (migration 0560). */
export interface FileBlobTable {
  file_id: string;
  content: Uint8Array;
}

/**
 * A piece of a file's extracted text (migration 0560, src/search/store/chunks.ts), in the lexical
 * index (SQLite FTS5 table `file_chunks_fts`; PostgreSQL's generated `search_vector` column, which
 * is left out here: only raw SQL reads it).
 */
export interface FileChunkTable {
  id: string;
  file_id: string;
  /** The file's owner, copied so search filters by user first. */
  user_id: string;
  /** 0-based position in the file. */
  ordinal: number;
  heading: string | null;
  text: string;
  /** [start_offset, end_offset): where the chunk is in the extracted text, for citations. */
  start_offset: number;
  end_offset: number;
}

/**
 * A chunk's embedding (migration 0580, src/search/store/vectors.ts): `dims` little-endian float32s
 * by `model`. Deleted with its chunk (cascade).
 */
export interface FileChunkVectorTable {
  chunk_id: string;
  file_id: string;
  /** The file's owner, copied so a user's index is built from this table alone. */
  user_id: string;
  /** The served model id that embedded it (`search.embeddingModel`). */
  model: string;
  dims: number;
  vector: Uint8Array;
}

export interface Database {
  users: UserTable;
  sessions: SessionTable;
  api_keys: ApiKeyTable;
  access_codes: AccessCodeTable;
  access_code_redemptions: AccessCodeRedemptionTable;
  settings: SettingTable;
  audit_log: AuditLogTable;
  auth_throttle: AuthThrottleTable;
  oidc_identities: OidcIdentityTable;
  totp_credentials: TotpCredentialTable;
  recovery_codes: RecoveryCodeTable;
  password_reset_tokens: PasswordResetTokenTable;
  pending_logins: PendingLoginTable;
  plans: PlanTable;
  prices: PriceTable;
  price_windows: PriceWindowTable;
  balances: BalanceTable;
  credits: CreditTable;
  usage_ledger: UsageLedgerTable;
  ledger_items: LedgerItemTable;
  feature_prices: FeaturePriceTable;
  request_log: RequestLogTable;
  conversations: ConversationTable;
  conversation_shares: ConversationShareTable;
  messages: MessageTable;
  searches: SearchTable;
  audit_runs: AuditRunTable;
  audit_answers: AuditAnswerTable;
  audit_publications: AuditPublicationTable;
  moderation_events: ModerationEventTable;
  files: FileTable;
  file_blobs: FileBlobTable;
  file_chunks: FileChunkTable;
  file_chunk_vectors: FileChunkVectorTable;
}
