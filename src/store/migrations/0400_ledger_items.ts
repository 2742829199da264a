import { sql, type Kysely } from "kysely";

// Ledger line items: a ledger row's cost becomes the sum of its items (tokens of each kind,
// searches, stored bytes…), and a price list for the meters that are not tokens. Existing settled
// rows are converted: one item per token kind they used, priced at the row's frozen prices, with
// the amounts split so they add up to the row's cost_micros exactly.
//
// Self-contained on purpose (no imports from billing/): a migration must do the same thing forever,
// whatever the application code becomes.

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("ledger_items")
    .addColumn("entry_id", "text", (c) => c.notNull().references("usage_ledger.id").onDelete("cascade"))
    // Position in the row: tokens first (cache hit, cache miss, output), then other meters.
    .addColumn("ordinal", "integer", (c) => c.notNull())
    .addColumn("meter", "text", (c) => c.notNull())
    .addColumn("quantity", "bigint", (c) => c.notNull())
    // The price of `per` units, frozen when the request started: tokens per 1_000_000, a search per 1.
    .addColumn("unit_price_micros", "bigint", (c) => c.notNull())
    .addColumn("per", "bigint", (c) => c.notNull())
    .addColumn("amount_micros", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("ledger_items_pk", ["entry_id", "ordinal"])
    .addCheckConstraint("ledger_items_quantity", sql`quantity >= 0`)
    .addCheckConstraint("ledger_items_per", sql`per >= 1`)
    .execute();

  await db.schema
    .createTable("feature_prices")
    .addColumn("meter", "text", (c) => c.primaryKey())
    .addColumn("unit_price_micros", "bigint", (c) => c.notNull())
    .addColumn("per", "bigint", (c) => c.notNull().defaultTo(1))
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("updated_by", "text")
    .addCheckConstraint("feature_prices_price", sql`unit_price_micros >= 0`)
    .addCheckConstraint("feature_prices_per", sql`per >= 1`)
    .execute();

  // Keyset batches keep memory flat on a large ledger; all of it is one migration transaction.
  let after = "";
  for (;;) {
    const rows: OldRow[] = await db
      .selectFrom("usage_ledger")
      .select([
        "id",
        "price_input_cache_hit",
        "price_input_cache_miss",
        "price_output",
        "cache_hit_tokens",
        "cache_miss_tokens",
        "reasoning_tokens",
        "answer_tokens",
        "cost_micros",
      ])
      .where("status", "!=", "open")
      .where("id", ">", after)
      .orderBy("id")
      .limit(BATCH)
      .execute();
    const items = rows.flatMap(itemsOf);
    for (let i = 0; i < items.length; i += INSERT_CHUNK) {
      await db.insertInto("ledger_items").values(items.slice(i, i + INSERT_CHUNK)).execute();
    }
    if (rows.length < BATCH) break;
    after = rows[rows.length - 1]!.id;
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("feature_prices").execute();
  await db.schema.dropTable("ledger_items").execute();
}

const BATCH = 1000;
// 7 parameters per item: under SQLite's and PostgreSQL's bound-parameter limits.
const INSERT_CHUNK = 2000;
const PER_MILLION = 1_000_000n;

interface OldRow {
  id: string;
  price_input_cache_hit: number;
  price_input_cache_miss: number;
  price_output: number;
  cache_hit_tokens: number;
  cache_miss_tokens: number;
  reasoning_tokens: number;
  answer_tokens: number;
  cost_micros: number;
}

/**
 * A settled row's items: its token kinds with a quantity, their exact amounts floored, and the
 * micros the row was rounded up by handed to the largest remainders — the rule the ledger uses
 * from now on. Should a row's cost not be what its tokens and prices give (a row written by hand,
 * an engine that reported more reasoning than output), an `adjustment` item carries the
 * difference, so cost_micros = Σ amounts holds for every row.
 */
function itemsOf(row: OldRow) {
  const quantities = [
    { meter: "input_cache_hit_tokens", quantity: Number(row.cache_hit_tokens), price: Number(row.price_input_cache_hit) },
    { meter: "input_cache_miss_tokens", quantity: Number(row.cache_miss_tokens), price: Number(row.price_input_cache_miss) },
    { meter: "output_tokens", quantity: Number(row.reasoning_tokens) + Number(row.answer_tokens), price: Number(row.price_output) },
  ].filter((q) => q.quantity > 0);
  const numerators = quantities.map((q) => BigInt(q.quantity) * BigInt(q.price));
  const exact = numerators.reduce((a, b) => a + b, 0n);
  const total = (exact + PER_MILLION - 1n) / PER_MILLION;
  const amounts = numerators.map((n) => n / PER_MILLION);
  let left = total - amounts.reduce((a, b) => a + b, 0n);
  const order = numerators.map((n, i) => ({ i, r: n % PER_MILLION })).sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i, r } of order) {
    if (left === 0n || r === 0n) break;
    amounts[i]! += 1n;
    left -= 1n;
  }
  const items = quantities.map((q, i) => ({
    entry_id: row.id,
    ordinal: i,
    meter: q.meter,
    quantity: q.quantity,
    unit_price_micros: q.price,
    per: 1_000_000,
    amount_micros: Number(amounts[i]!),
  }));
  const difference = Number(row.cost_micros) - Number(total);
  if (difference !== 0) {
    items.push({ entry_id: row.id, ordinal: items.length, meter: "adjustment", quantity: 1, unit_price_micros: difference, per: 1, amount_micros: difference });
  }
  return items;
}
