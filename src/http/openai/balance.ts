import type { FastifyInstance } from "fastify";
import { getBalance } from "../../billing/balances.ts";
import { resolvePlan } from "../../billing/plans.ts";
import { presentDeepSeekBalance } from "../../presenters/billing.ts";
import { unauthenticated } from "../../policies/index.ts";
import type { Store } from "../../store/database.ts";

export interface BalanceRouteDeps {
  store: Store;
  currency: string;
  defaultPlanId: string;
}

/**
 * GET /v1/user/balance, as DeepSeek answers it:
 *   {"is_available": true, "balance_infos": [{"currency": "USD", "total_balance": "110.00",
 *    "granted_balance": "10.00", "topped_up_balance": "100.00"}]}
 * The local operator (single-user mode, or no auth layer at all) is never billed: zero balances,
 * always available.
 */
export function registerBalance(app: FastifyInstance, deps: BalanceRouteDeps): void {
  app.get("/v1/user/balance", async (request) => {
    const actor = request.actor;
    if (!actor || actor.kind === "local") {
      return presentDeepSeekBalance({ currency: deps.currency, balance: { userId: "", grantedMicros: 0, toppedUpMicros: 0, reservedMicros: 0 }, billed: false });
    }
    if (actor.kind !== "user") throw unauthenticated();
    const [balance, plan] = await Promise.all([getBalance(deps.store.db, actor.userId), resolvePlan(deps.store.db, actor.planId, deps.defaultPlanId)]);
    return presentDeepSeekBalance({ currency: deps.currency, balance, billed: plan.billed });
  });
}
