import type { Kysely } from "kysely";
import { writeAudit } from "../auth/audit.ts";
import { findUserById, updateUser, type UserRow } from "../auth/users.ts";
import { addCredit, type Balance, type CreditKind } from "../billing/balances.ts";
import { deleteFeaturePrice, saveFeaturePrice, type FeaturePrice } from "../billing/featurePrices.ts";
import type { UnitPrice } from "../billing/lineItems.ts";
import { getPlan, PLAN_ID_PATTERN, savePlan, type Plan } from "../billing/plans.ts";
import { presentPlan, presentPriceSet } from "../presenters/billing.ts";
import { deletePriceSet, savePriceSet } from "../billing/priceBook.ts";
import type { PriceSet } from "../billing/pricing.ts";
import { ServiceError } from "../errors.ts";
import type { Database } from "../store/schema.ts";

/**
 * Admins' billing changes: each one transaction with its audit row, so a change is recorded
 * exactly when it happens. Callers have authorised the actor already (policy `billing.manage`).
 * Validation failures of the billing core (RangeError) come out as `invalid_request`.
 */

/** Who acts: the admin's user id (null for the local operator or the command line) and address. */
export interface BillingAdmin {
  userId: string | null;
  ip: string | null;
}

/** Replaces a model's price set (base and windows); "*" is the default set. */
export async function setModelPrices(db: Kysely<Database>, by: BillingAdmin, set: PriceSet, now = Date.now()): Promise<PriceSet> {
  return invalidAsRequest(() =>
    db.transaction().execute(async (trx) => {
      await savePriceSet(trx, set, by.userId, now);
      await writeAudit(trx, { actorUserId: by.userId, action: "billing.price.set", targetType: "model", targetId: set.model, details: presentPriceSet(set), ip: by.ip }, now);
      return set;
    }),
  );
}

/** Removes a model's price set; `not_found` when it had none. */
export async function removeModelPrices(db: Kysely<Database>, by: BillingAdmin, model: string, now = Date.now()): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (!(await deletePriceSet(trx, model))) throw new ServiceError("not_found", `No prices are set for '${model}'.`, { code: "not_found", param: "model" });
    await writeAudit(trx, { actorUserId: by.userId, action: "billing.price.delete", targetType: "model", targetId: model, ip: by.ip }, now);
  });
}

/** Creates or replaces a plan. */
export async function putPlan(db: Kysely<Database>, by: BillingAdmin, plan: Plan, now = Date.now()): Promise<Plan> {
  if (!PLAN_ID_PATTERN.test(plan.id)) {
    throw new ServiceError("invalid_request", "A plan id is 1–64 lowercase letters, digits, '_' or '-'.", { code: "invalid_parameter", param: "id" });
  }
  return invalidAsRequest(() =>
    db.transaction().execute(async (trx) => {
      await savePlan(trx, plan, now);
      await writeAudit(trx, { actorUserId: by.userId, action: "billing.plan.set", targetType: "plan", targetId: plan.id, details: presentPlan(plan), ip: by.ip }, now);
      return plan;
    }),
  );
}

/** Puts a user on a plan; `not_found` for no such user, `invalid_request` for no such plan. */
export async function setUserPlan(db: Kysely<Database>, by: BillingAdmin, userId: string, planId: string, now = Date.now()): Promise<{ user: UserRow; plan: Plan }> {
  return db.transaction().execute(async (trx) => {
    const user = await mustFindUser(trx, userId);
    const plan = await getPlan(trx, planId);
    if (!plan) throw new ServiceError("invalid_request", `There is no plan '${planId}'.`, { code: "invalid_parameter", param: "plan_id" });
    await updateUser(trx, user.id, { plan_id: planId }, now);
    await writeAudit(trx, { actorUserId: by.userId, action: "user.plan", targetType: "user", targetId: user.id, details: { from: user.plan_id, to: planId }, ip: by.ip }, now);
    return { user: { ...user, plan_id: planId, updated_at: now }, plan };
  });
}

export interface CreditChange {
  userId: string;
  kind: CreditKind;
  amountMicros: number;
  note: string | null;
}

/** Adds credit to a user's balance (recorded as a credit by this admin); returns the new balance. */
export async function creditUser(db: Kysely<Database>, by: BillingAdmin, change: CreditChange, now = Date.now()): Promise<Balance> {
  if (change.amountMicros === 0) throw new ServiceError("invalid_request", "A credit must be more than zero.", { code: "invalid_parameter", param: "amount" });
  return invalidAsRequest(() =>
    db.transaction().execute(async (trx) => {
      const user = await mustFindUser(trx, change.userId);
      const balance = await addCredit(
        trx,
        { userId: user.id, kind: change.kind, amountMicros: change.amountMicros, source: "admin", note: change.note, createdBy: by.userId },
        now,
      );
      await writeAudit(
        trx,
        { actorUserId: by.userId, action: "billing.credit.add", targetType: "user", targetId: user.id, details: { kind: change.kind, amount_micros: change.amountMicros }, ip: by.ip },
        now,
      );
      return balance;
    }),
  );
}

/** Sets the price of a non-token meter (search, stored_bytes…). */
export async function setFeaturePrice(db: Kysely<Database>, by: BillingAdmin, meter: string, price: UnitPrice, now = Date.now()): Promise<FeaturePrice> {
  return invalidAsRequest(() =>
    db.transaction().execute(async (trx) => {
      const saved = await saveFeaturePrice(trx, meter, price, by.userId, now);
      await writeAudit(
        trx,
        { actorUserId: by.userId, action: "billing.feature_price.set", targetType: "meter", targetId: meter, details: { unit_price_micros: price.unitPriceMicros, per: price.per }, ip: by.ip },
        now,
      );
      return saved;
    }),
  );
}

/** Removes a meter's stored price (its configured default applies again); `not_found` when none was stored. */
export async function removeFeaturePrice(db: Kysely<Database>, by: BillingAdmin, meter: string, now = Date.now()): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (!(await deleteFeaturePrice(trx, meter))) throw new ServiceError("not_found", `No price is stored for '${meter}'.`, { code: "not_found", param: "meter" });
    await writeAudit(trx, { actorUserId: by.userId, action: "billing.feature_price.delete", targetType: "meter", targetId: meter, ip: by.ip }, now);
  });
}

async function mustFindUser(db: Kysely<Database>, id: string): Promise<UserRow> {
  const user = await findUserById(db, id);
  if (!user) throw new ServiceError("not_found", "User not found", { code: "not_found" });
  return user;
}

/** The billing core refuses bad values with RangeError: that is the caller's mistake. */
async function invalidAsRequest<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof RangeError) throw new ServiceError("invalid_request", error.message, { code: "invalid_parameter", cause: error });
    throw error;
  }
}
