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

export interface Database {
  users: UserTable;
  sessions: SessionTable;
  api_keys: ApiKeyTable;
  access_codes: AccessCodeTable;
  access_code_redemptions: AccessCodeRedemptionTable;
  settings: SettingTable;
  audit_log: AuditLogTable;
  auth_throttle: AuthThrottleTable;
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
  messages: MessageTable;
}
