import type { Kysely, Transaction } from "kysely";
import type { Usage } from "../engines/types.ts";
import { newId } from "../store/ids.ts";
import type { Database } from "../store/schema.ts";
import { reserveFunds, settleFunds, getBalance, availableMicros } from "./balances.ts";
import { featurePricesNow, type FeaturePriceDefaults } from "./featurePrices.ts";
import { isGatedFeature, requireFeature } from "./features.ts";
import { abandonedOpenEntries, closeEntry, insertItems, insertOpenEntry, renewLeases, type LedgerRow, type SettledStatus } from "./ledger.ts";
import { FREE_UNIT, mergeItems, priceItems, tokenQuantities, type LineItem, type MeteredItem, type PricedQuantity, type UnitPrice } from "./lineItems.ts";
import { formatMicros } from "./money.ts";
import { resolvePlan, type Plan } from "./plans.ts";
import { priceSetFor } from "./priceBook.ts";
import { quoteAt, type MeteredTokens, type PriceQuote } from "./pricing.ts";
import { exceededQuota, exceededSearchQuota } from "./quotas.ts";
import { BillingRefusal } from "./refusals.ts";

export { BillingRefusal };

/**
 * Who pays for a request. Mirrors `request.actor` (src/auth/actor.ts) without depending on it:
 * - a `user` is metered under their plan, and charged when the plan is billed;
 * - `local` (the loopback single-user mode) and `anonymous` are metered (ledger rows with no
 *   user) but never charged and never limited by a plan: there is nobody to bill.
 */
export type BillingSubject =
  | { kind: "user"; userId: string; apiKeyId: string | null; planId: string | null }
  | { kind: "local" }
  | { kind: "anonymous" };

export interface MeterOptions {
  /** IANA zone in which price windows and quota days/months are read. */
  timeZone: string;
  /** Plan for users whose own plan is unset or gone. */
  defaultPlanId: string;
  /** How long an open reservation survives without its process renewing it. */
  leaseMs: number;
  /**
   * True when no other server shares the database (SQLite): at start, every reservation left open
   * is a dead process's and is released at once instead of when its lease runs out.
   */
  exclusiveDatabase?: boolean;
  /** Output tokens reserved (and imposed as max_tokens) when neither the request nor the model bounds them. */
  defaultMaxOutputTokens: number;
  /** Configured prices of non-token meters (billing.featurePrices, searchPriceMicros); stored ones win. */
  featurePrices?: FeaturePriceDefaults;
  now?: () => number;
  onError?: (error: unknown, what: string) => void;
}

export interface ReservationInput {
  subject: BillingSubject;
  /** The user's plan when the caller has already read it for this request (saves reading it again). */
  plan?: Plan;
  model: string;
  engine: string;
  /** Prompt tokens as the engine will see them (or an upper bound when it cannot count). */
  promptTokens: number;
  /** The request's own max_tokens. */
  maxTokens?: number;
  /** The model's context length, when known: bounds the output when max_tokens is absent. */
  contextLength?: number;
  /**
   * False when `promptTokens` is only an upper bound (an upstream's tokenizer is not here): the
   * output a context leaves is then bounded by the whole context, not by context − that bound.
   */
  promptExact?: boolean;
  /** The request's own thinking budget. */
  thinkingBudget?: number;
  /**
   * Metered features the request may use, with the most of each it may use (`{ search: 3 }`):
   * gated features must be in the plan (403), and the reservation covers their maximum cost.
   */
  features?: Record<string, number>;
}

/** An admitted request: its open ledger row, reservation and frozen prices. Settle it exactly once. */
export interface Charge {
  id: string;
  subject: BillingSubject;
  userId: string | null;
  plan: Plan | null;
  billed: boolean;
  quote: PriceQuote;
  reservedMicros: number;
  startedAt: number;
  /** The output bound the generation must use; tighter than or equal to the request's own. */
  maxTokens: number | undefined;
  /** The thinking budget after the plan's cap. */
  thinkingBudget: number | undefined;
  /** Prices of non-token meters in force when the request started (meter → price); others are free. */
  featurePrices: Readonly<Record<string, UnitPrice>>;
}

export interface Outcome {
  /** completed: finished; stopped: the client stopped or left; failed: an error ended it. */
  status: SettledStatus;
  /** What the engine really did; reasoning tokens are part of completion_tokens. */
  usage: Usage;
  /**
   * Other metered quantities, each a line item priced from the feature prices frozen at admission:
   * a search stage passes `{ meter: "search", quantity: 1 }` per search. Repeated meters add up.
   */
  items?: MeteredItem[];
}

export interface Settlement {
  /** The ledger row as stored, or undefined when the reservation was already released by the sweep. */
  entry: LedgerRow | undefined;
  /** The sum of `items`' amounts. */
  costMicros: number;
  chargedMicros: number;
  /** The line items written (none when the sweep had released the reservation). */
  items: LineItem[];
}

/**
 * Meters requests: admits them against plan, quota and balance (reserving their maximum cost),
 * settles them to their real cost, and keeps reservations of live requests alive.
 *
 * Crash rule: a request whose process dies before it settles is charged NOTHING. Its ledger row
 * stays `open` with a lease its process renews every leaseMs/3; once the lease runs out, any
 * process (the restarted one, or another replica) closes it as `interrupted`, with no tokens and
 * no charge, and releases its reservation — one transaction per row. On SQLite, where one server
 * owns the database, the restarted server does so at once (`exclusiveDatabase`). A charge whose
 * settlement cannot be committed (the database is down) is `abandon`ed: no longer renewed, it is
 * released the same way — never a lease renewed forever.
 */
export class Meter {
  /** Identifies this process's reservations (a restart on SQLite releases every other holder's). */
  readonly holder = newId();
  private readonly now: () => number;
  /**
   * Charges admitted here and not settled yet: the heartbeat renews exactly these, so a charge
   * whose settlement failed stops being renewed and is released by the sweep (charged nothing).
   */
  private readonly live = new Set<string>();
  private renewTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private renewing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Kysely<Database>,
    readonly options: MeterOptions,
  ) {
    if (!(options.leaseMs >= 300)) throw new RangeError("the reservation lease must be at least 300 ms");
    this.now = options.now ?? Date.now;
  }

  /** Releases what dead processes left open, then keeps doing so every lease period. */
  async start(): Promise<void> {
    await this.sweep({ everyOther: this.options.exclusiveDatabase === true });
    this.sweepTimer = setInterval(() => void this.sweep().catch((e) => this.options.onError?.(e, "sweep expired reservations")), this.options.leaseMs);
    this.sweepTimer.unref();
    this.renewTimer = setInterval(() => {
      if (this.live.size === 0) return;
      this.renewing = renewLeases(this.db, [...this.live], this.now() + this.options.leaseMs).catch((e) =>
        this.options.onError?.(e, "renew reservation leases"),
      );
    }, Math.max(100, Math.floor(this.options.leaseMs / 3)));
    this.renewTimer.unref();
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.sweepTimer = this.renewTimer = null;
    await this.renewing;
  }

  /**
   * Admits a request or throws BillingRefusal. For a user: the plan must allow the model (403),
   * no quota may be used up (429), and a billed plan's balance must cover the maximum cost —
   * every prompt token as a cache miss plus the whole output bound, at the prices in force now
   * (402). The check and the hold are one atomic UPDATE, written with the open ledger row.
   */
  async reserve(input: ReservationInput): Promise<Charge> {
    const startedAt = this.now();
    const userId = input.subject.kind === "user" ? input.subject.userId : null;
    let plan: Plan | null = null;
    if (input.subject.kind === "user") {
      plan = input.plan ?? (await resolvePlan(this.db, input.subject.planId, this.options.defaultPlanId));
      const quota = await exceededQuota(this.db, plan, input.subject.userId, startedAt, this.options.timeZone);
      if (quota) {
        const retryAfter = Math.max(1, Math.ceil((quota.resetAt - startedAt) / 1000));
        throw new BillingRefusal(
          429,
          `Your plan's ${quota.period} token quota (${quota.limit} tokens) is used up; it resets at ${new Date(quota.resetAt).toISOString()}.`,
          "quota_exceeded",
          null,
          { "retry-after": String(retryAfter), "x-quota-reset": new Date(quota.resetAt).toISOString() },
        );
      }
    }
    const features = declaredFeatures(input.features);
    if (plan) {
      for (const name of Object.keys(features)) if (features[name]! > 0 && isGatedFeature(name)) requireFeature(plan, name);
    }
    const billed = plan?.billed === true;
    const [priceSet, featurePrices] = await Promise.all([priceSetFor(this.db, input.model), featurePricesNow(this.db, this.options.featurePrices)]);
    const quote = quoteAt(priceSet, startedAt, this.options.timeZone);

    // The output bound the reservation covers. Without max_tokens a local engine stops at the end
    // of its context; an engine with no known context gets the configured bound imposed.
    const imposeBound = billed && input.maxTokens === undefined && input.contextLength === undefined;
    const promptAtLeast = input.promptExact === false ? 1 : input.promptTokens;
    const outputBound =
      input.maxTokens ?? (input.contextLength !== undefined ? Math.max(0, input.contextLength - promptAtLeast) : this.options.defaultMaxOutputTokens);
    // The most the request may cost: every prompt token a miss, the whole output bound, every
    // declared feature used to its maximum — priced like the settlement, so it always covers it.
    const reservedMicros = billed
      ? priceItems([
          ...tokenQuantities({ cacheHit: 0, cacheMiss: input.promptTokens, output: outputBound }, quote),
          ...featureQuantities(Object.entries(features).map(([meter, quantity]) => ({ meter, quantity })), featurePrices),
        ]).totalMicros
      : 0;
    const cap = plan?.maxThinkingBudget ?? null;
    const thinkingBudget = cap === null ? input.thinkingBudget : Math.min(cap, input.thinkingBudget ?? cap);

    const charge: Charge = {
      id: newId(startedAt),
      subject: input.subject,
      userId,
      plan,
      billed,
      quote,
      reservedMicros,
      startedAt,
      maxTokens: imposeBound ? this.options.defaultMaxOutputTokens : input.maxTokens,
      thinkingBudget,
      featurePrices,
    };
    const reserved = await this.db.transaction().execute(async (trx) => {
      await insertOpenEntry(trx, {
        id: charge.id,
        user_id: userId,
        api_key_id: input.subject.kind === "user" ? input.subject.apiKeyId : null,
        plan_id: plan?.id ?? null,
        model: input.model,
        engine: input.engine,
        status: "open",
        billed: billed ? 1 : 0,
        price_input_cache_hit: quote.inputCacheHit,
        price_input_cache_miss: quote.inputCacheMiss,
        price_output: quote.output,
        price_source: quote.source,
        price_window: quote.window,
        cache_hit_tokens: 0,
        cache_miss_tokens: 0,
        reasoning_tokens: 0,
        answer_tokens: 0,
        reserved_micros: reservedMicros,
        cost_micros: 0,
        charged_micros: 0,
        started_at: startedAt,
        ended_at: null,
        holder: this.holder,
        lease_until: startedAt + this.options.leaseMs,
      });
      if (reservedMicros === 0 || userId === null) return true;
      if (await reserveFunds(trx, userId, reservedMicros, startedAt)) return true;
      // Rolls the ledger row back with it: a refused request leaves no trace in the ledger.
      throw new InsufficientBalance();
    }).catch(async (error) => {
      if (!(error instanceof InsufficientBalance)) throw error;
      return false;
    });
    if (!reserved) {
      const available = availableMicros(await getBalance(this.db, userId!));
      throw new BillingRefusal(
        402,
        `Insufficient balance: this request may cost up to ${formatMicros(reservedMicros)} (${input.promptTokens} prompt tokens and up to ${outputBound} output tokens${describeFeatures(features)} at the current prices), and your available balance is ${formatMicros(Math.max(0, available))}. Add credit, or lower max_tokens.`,
        "insufficient_balance",
      );
    }
    this.live.add(charge.id);
    return charge;
  }

  /**
   * The cheap checks of the features a request is about to use, BEFORE it uses them (a search runs
   * before the request is tokenized and reserved, so a plan without `search` must never trigger
   * one): every gated feature must be in the user's plan (403 feature_not_allowed), and the plan's
   * daily search quota must have room (429 quota_exceeded, with the reset time), and a billed
   * plan's available balance must cover the features themselves (402): a search is paid for, so
   * an empty balance does not buy one that `reserve` would then refuse unbilled. `reserve` checks
   * the plan again and covers the whole cost. The local operator and anonymous callers have no plan.
   */
  async admitFeatures(input: { subject: BillingSubject; plan?: Plan; features: Record<string, number> }): Promise<void> {
    if (input.subject.kind !== "user") return;
    const now = this.now();
    const plan = input.plan ?? (await resolvePlan(this.db, input.subject.planId, this.options.defaultPlanId));
    const features = declaredFeatures(input.features);
    for (const name of Object.keys(features)) if (features[name]! > 0 && isGatedFeature(name)) requireFeature(plan, name);
    if ((features.search ?? 0) > 0) {
      const quota = await exceededSearchQuota(this.db, plan, input.subject.userId, now, this.options.timeZone);
      if (quota) {
        const reset = new Date(quota.resetAt).toISOString();
        throw new BillingRefusal(
          429,
          `Your plan's daily search quota (${quota.limit} searches) is used up; it resets at ${reset}.`,
          "quota_exceeded",
          null,
          { "retry-after": String(Math.max(1, Math.ceil((quota.resetAt - now) / 1000))), "x-quota-reset": reset },
        );
      }
    }
    if (plan.billed) {
      const prices = await featurePricesNow(this.db, this.options.featurePrices);
      const cost = priceItems(featureQuantities(Object.entries(features).map(([meter, quantity]) => ({ meter, quantity })), prices)).totalMicros;
      const available = availableMicros(await getBalance(this.db, input.subject.userId));
      if (cost > 0 && available < cost) {
        throw new BillingRefusal(
          402,
          `Insufficient balance: the search this request asks for costs ${formatMicros(cost)} before any tokens, and your available balance is ${formatMicros(Math.max(0, available))}. Add credit.`,
          "insufficient_balance",
        );
      }
    }
  }

  /**
   * Settles `charge` to what the engine really did, inside the caller's transaction `trx` — so the
   * ledger row, the balance change and whatever the caller writes with them (the request log row,
   * the stored assistant message) commit or vanish together. Call exactly once per charge, also
   * for failed requests (their usage is usually zero, which releases the whole reservation).
   */
  async settle(trx: Transaction<Database>, charge: Charge, outcome: Outcome): Promise<Settlement> {
    this.live.delete(charge.id);
    const tokens = meteredTokens(outcome.usage);
    // Items are the source of truth: the cost is the sum of their amounts.
    const { items, totalMicros: cost } = priceItems([
      ...tokenQuantities(tokens, charge.quote),
      ...featureQuantities(mergeItems(outcome.items ?? []), charge.featurePrices ?? {}),
    ]);
    // The output bound makes cost ≤ reservation for every engine that honours max_tokens; an
    // upstream that overruns it is not charged beyond what was reserved (cost_micros keeps the truth).
    const charged = charge.billed ? Math.min(cost, charge.reservedMicros) : 0;
    const entry = await closeEntry(trx, charge.id, {
      status: outcome.status,
      cacheHitTokens: tokens.cacheHit,
      cacheMissTokens: tokens.cacheMiss,
      reasoningTokens: outcome.usage.completion_tokens_details.reasoning_tokens,
      answerTokens: Math.max(0, outcome.usage.completion_tokens - outcome.usage.completion_tokens_details.reasoning_tokens),
      costMicros: cost,
      chargedMicros: charged,
      endedAt: this.now(),
    });
    if (!entry) return { entry: undefined, costMicros: cost, chargedMicros: 0, items: [] };
    await insertItems(trx, charge.id, items);
    if (charge.userId !== null && charge.reservedMicros > 0) {
      await settleFunds(trx, charge.userId, charge.reservedMicros, charged, this.now());
    }
    return { entry, costMicros: cost, chargedMicros: charged, items };
  }

  /** Settles in a transaction of its own, for callers with nothing else to write. */
  async settleAlone(charge: Charge, outcome: Outcome): Promise<Settlement> {
    try {
      return await this.db.transaction().execute((trx) => this.settle(trx, charge, outcome));
    } catch (error) {
      this.abandon(charge);
      throw error;
    }
  }

  /**
   * Gives up on settling `charge` — call it when its settlement could not be committed (the
   * database is down, the transaction failed before `settle` ran). Its lease is no longer renewed,
   * so once it runs out the sweep (this process's or any replica's) closes the row `interrupted`,
   * charging nothing and releasing the reservation: the crash rule, without a crash. Idempotent,
   * needs no database, and harmless after a settlement that did commit.
   */
  abandon(charge: Pick<Charge, "id">): void {
    this.live.delete(charge.id);
  }

  /** Charges whose leases this process renews (admitted, neither settled nor abandoned). */
  liveCharges(): number {
    return this.live.size;
  }

  /**
   * Closes open rows of dead processes as `interrupted`, charging nothing: those whose lease ran
   * out, or with `everyOther`, every row this process does not hold.
   */
  async sweep(options: { everyOther?: boolean } = {}): Promise<number> {
    const now = this.now();
    let released = 0;
    for (;;) {
      const batch = await abandonedOpenEntries(this.db, { now, holder: this.holder, everyOther: options.everyOther === true }, SWEEP_BATCH);
      for (const row of batch) {
        const closed = await this.db.transaction().execute(async (trx) => {
          const entry = await closeEntry(trx, row.id, {
            status: "interrupted",
            cacheHitTokens: 0,
            cacheMissTokens: 0,
            reasoningTokens: 0,
            answerTokens: 0,
            costMicros: 0,
            chargedMicros: 0,
            endedAt: now,
          });
          if (entry && entry.user_id !== null && entry.reserved_micros > 0) {
            await settleFunds(trx, entry.user_id, entry.reserved_micros, 0, now);
          }
          return entry !== undefined;
        });
        if (closed) released++;
      }
      // Every row of a batch leaves the open set (closed here or by another sweeper): no repeats.
      if (batch.length < SWEEP_BATCH) break;
    }
    return released;
  }
}

class InsufficientBalance extends Error {}

const SWEEP_BATCH = 500;

/** Declared feature maxima, checked: known meter names, whole non-negative quantities. */
function declaredFeatures(features: Record<string, number> | undefined): Record<string, number> {
  if (!features) return {};
  const merged = mergeItems(Object.entries(features).map(([meter, quantity]) => ({ meter, quantity })));
  return Object.fromEntries(merged.map((i) => [i.meter, i.quantity]));
}

/** Non-token quantities at the frozen feature prices (a meter without a price is free). */
function featureQuantities(items: readonly MeteredItem[], prices: Readonly<Record<string, UnitPrice>>): PricedQuantity[] {
  return items.map((item) => ({ meter: item.meter, quantity: item.quantity, price: (Object.hasOwn(prices, item.meter) ? prices[item.meter] : undefined) ?? FREE_UNIT }));
}

function describeFeatures(features: Record<string, number>): string {
  const used = Object.entries(features).filter(([, n]) => n > 0);
  return used.map(([meter, n]) => `, up to ${n} × ${meter}`).join("");
}

/** The engine's usage as the ledger prices it: reasoning is output. */
export function meteredTokens(usage: Usage): MeteredTokens {
  return {
    cacheHit: usage.prompt_cache_hit_tokens,
    cacheMiss: usage.prompt_cache_miss_tokens,
    output: usage.completion_tokens,
  };
}
