import { sql, type Kysely } from "kysely";

// Billing: plans, prices (with time-of-day windows), balances, credits and the usage ledger.
// Money columns are bigint micro-units (1 unit of currency = 1_000_000); prices are micros per
// million tokens. user_id columns are plain text (no foreign key): billing rows outlive nothing
// and must not block the accounts tables from evolving.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("plans")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull())
    // 0: usage is metered but never charged (no balance needed); 1: requests draw on the balance.
    .addColumn("billed", "integer", (c) => c.notNull().defaultTo(0))
    // JSON array of model ids, or null for every model.
    .addColumn("allowed_models", "text")
    .addColumn("daily_token_quota", "bigint")
    .addColumn("monthly_token_quota", "bigint")
    .addColumn("max_thinking_budget", "integer")
    .addColumn("concurrency_weight", "integer", (c) => c.notNull().defaultTo(1))
    // JSON array of feature names, e.g. ["search"].
    .addColumn("features", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addCheckConstraint("plans_weight_positive", sql`concurrency_weight >= 1`)
    .execute();
  // A fresh install meters everyone and charges no one until an operator sets up billed plans.
  const now = Date.now();
  await db
    .insertInto("plans")
    .values({ id: "free", name: "Free", billed: 0, allowed_models: null, features: "[]", concurrency_weight: 1, created_at: now, updated_at: now })
    .execute();

  await db.schema
    .createTable("prices")
    .addColumn("model", "text", (c) => c.primaryKey())
    .addColumn("input_cache_hit_micros", "bigint", (c) => c.notNull())
    .addColumn("input_cache_miss_micros", "bigint", (c) => c.notNull())
    .addColumn("output_micros", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("updated_by", "text")
    .execute();

  await db.schema
    .createTable("price_windows")
    .addColumn("model", "text", (c) => c.notNull().references("prices.model").onDelete("cascade"))
    // Minutes since local midnight in the billing time zone; end <= start runs across midnight.
    .addColumn("start_minute", "integer", (c) => c.notNull())
    .addColumn("end_minute", "integer", (c) => c.notNull())
    .addColumn("input_cache_hit_micros", "bigint", (c) => c.notNull())
    .addColumn("input_cache_miss_micros", "bigint", (c) => c.notNull())
    .addColumn("output_micros", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("price_windows_pk", ["model", "start_minute"])
    .execute();

  await db.schema
    .createTable("balances")
    .addColumn("user_id", "text", (c) => c.primaryKey())
    // Credit granted for free (access codes, admin grants): spent first, as DeepSeek does.
    .addColumn("granted_micros", "bigint", (c) => c.notNull().defaultTo(0))
    // Credit paid for.
    .addColumn("topped_up_micros", "bigint", (c) => c.notNull().defaultTo(0))
    // Held by requests in flight: available = granted + topped_up - reserved.
    .addColumn("reserved_micros", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    // The last line of defence for "a balance never goes below zero".
    .addCheckConstraint("balances_granted_nonnegative", sql`granted_micros >= 0`)
    .addCheckConstraint("balances_topped_up_nonnegative", sql`topped_up_micros >= 0`)
    .addCheckConstraint("balances_reserved_covered", sql`reserved_micros >= 0 and reserved_micros <= granted_micros + topped_up_micros`)
    .execute();

  await db.schema
    .createTable("credits")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("amount_micros", "bigint", (c) => c.notNull())
    // Where it came from: "access_code", "admin", …
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("note", "text")
    .addColumn("created_by", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addCheckConstraint("credits_kind", sql`kind in ('granted', 'topped_up')`)
    .addCheckConstraint("credits_amount_positive", sql`amount_micros > 0`)
    .execute();
  await db.schema.createIndex("credits_user_idx").on("credits").columns(["user_id", "created_at"]).execute();

  await db.schema
    .createTable("usage_ledger")
    .addColumn("id", "text", (c) => c.primaryKey())
    // Null for the local single-user mode.
    .addColumn("user_id", "text")
    .addColumn("api_key_id", "text")
    .addColumn("plan_id", "text")
    .addColumn("model", "text", (c) => c.notNull())
    .addColumn("engine", "text", (c) => c.notNull())
    // open → completed | stopped | failed | interrupted
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("billed", "integer", (c) => c.notNull())
    // The prices in force when the request started.
    .addColumn("price_input_cache_hit", "bigint", (c) => c.notNull())
    .addColumn("price_input_cache_miss", "bigint", (c) => c.notNull())
    .addColumn("price_output", "bigint", (c) => c.notNull())
    .addColumn("price_source", "text")
    .addColumn("price_window", "text")
    .addColumn("cache_hit_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("cache_miss_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reasoning_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("answer_tokens", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reserved_micros", "bigint", (c) => c.notNull())
    // What the tokens cost at the quoted prices; charged_micros is what left the balance.
    .addColumn("cost_micros", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("charged_micros", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("started_at", "bigint", (c) => c.notNull())
    .addColumn("ended_at", "bigint")
    // While open: which process holds the reservation, and until when (renewed while it lives).
    .addColumn("holder", "text")
    .addColumn("lease_until", "bigint")
    .addCheckConstraint("usage_ledger_status", sql`status in ('open', 'completed', 'stopped', 'failed', 'interrupted')`)
    .addCheckConstraint("usage_ledger_charge", sql`charged_micros >= 0 and charged_micros <= reserved_micros`)
    .execute();
  await db.schema.createIndex("usage_ledger_user_idx").on("usage_ledger").columns(["user_id", "started_at"]).execute();
  await db.schema.createIndex("usage_ledger_started_idx").on("usage_ledger").columns(["started_at", "id"]).execute();
  await db.schema.createIndex("usage_ledger_open_idx").on("usage_ledger").columns(["status", "lease_until"]).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ["usage_ledger", "credits", "balances", "price_windows", "prices", "plans"]) {
    await db.schema.dropTable(table).execute();
  }
}
