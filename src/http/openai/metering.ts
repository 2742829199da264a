import type { FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Actor } from "../../auth/actor.ts";
import { BillingRefusal, type BillingSubject, type Charge, type Meter } from "../../billing/meter.ts";
import type { SettledStatus } from "../../billing/ledger.ts";
import { LocalEngine } from "../../engines/local/localEngine.ts";
import type { ModelRouter } from "../../engines/router.ts";
import type { ChatMessage, GenerationRequest, ModelInfo } from "../../engines/types.ts";
import type { Store } from "../../store/database.ts";
import type { Database } from "../../store/schema.ts";
import { ApiError } from "../errors.ts";
import type { CompletionRecord } from "./chatCompletions.ts";

/**
 * Billing's two hooks into POST /v1/chat/completions:
 * - `admit` before generation: plan (403), quota (429) and balance (402) checks, the reservation,
 *   and the generation request tightened to what was reserved (output bound, thinking budget);
 * - `record` after it: the ledger row, the balance change and the request log row, in ONE
 *   transaction.
 */
export interface CompletionMetering {
  admit(request: FastifyRequest, generation: GenerationRequest, model: ModelInfo | undefined): Promise<Admission>;
  record(entry: CompletionRecord, writeLog: (db: Kysely<Database>, entry: CompletionRecord) => Promise<void>): Promise<void>;
}

export interface Admission {
  generation: GenerationRequest;
  /** The open charge to settle; null when nothing was metered (unknown model: the engine answers 404). */
  charge: Charge | null;
}

export function createCompletionMetering(deps: { meter: Meter; router: ModelRouter; store: Store }): CompletionMetering {
  return {
    async admit(request, generation, model) {
      if (!model) return { generation, charge: null };
      let charge: Charge;
      try {
        charge = await deps.meter.admit({
          subject: billingSubject(request.actor),
          model: model.id,
          engine: model.engine,
          promptTokens: countPromptTokens(deps.router, generation),
          ...(generation.maxTokens !== undefined ? { maxTokens: generation.maxTokens } : {}),
          ...(model.contextLength !== undefined ? { contextLength: model.contextLength } : {}),
          ...(generation.thinkingBudget !== undefined ? { thinkingBudget: generation.thinkingBudget } : {}),
        });
      } catch (error) {
        if (error instanceof BillingRefusal) throw new ApiError(error.status, error.message, error.code, error.param, error.headers);
        throw error;
      }
      const tightened: GenerationRequest = { ...generation };
      if (charge.maxTokens !== undefined) tightened.maxTokens = charge.maxTokens;
      if (charge.thinkingBudget !== undefined) tightened.thinkingBudget = charge.thinkingBudget;
      return { generation: tightened, charge };
    },

    async record(entry, writeLog) {
      const charge = entry.charge;
      if (!charge) return writeLog(deps.store.db, entry);
      await deps.store.db.transaction().execute(async (trx) => {
        await deps.meter.settle(trx, charge, { status: settledStatus(entry.status), usage: entry.usage });
        await writeLog(trx, entry);
      });
    },
  };
}

/**
 * Who pays, from the actor the auth hook set. A request without one (no auth layer in front, as in
 * the bare single-user server) is the local operator: metered, never charged.
 */
export function billingSubject(actor: Actor | undefined): BillingSubject {
  if (!actor || actor.kind === "local") return { kind: "local" };
  if (actor.kind === "anonymous") return { kind: "anonymous" };
  return { kind: "user", userId: actor.userId, apiKeyId: actor.apiKeyId, planId: actor.planId };
}

/** completed (200), stopped (499: the client stopped or left, pays for what was generated), failed. */
export function settledStatus(httpStatus: number): SettledStatus {
  if (httpStatus === 499) return "stopped";
  return httpStatus < 400 ? "completed" : "failed";
}

/**
 * Prompt tokens for the reservation: exact for local models (the same tokenization the engine
 * does), otherwise an upper bound — a byte-level tokenizer never makes more tokens than UTF-8
 * bytes, plus room for the chat template's special tokens.
 */
export function countPromptTokens(router: ModelRouter, generation: GenerationRequest): number {
  const engine = router.engineFor(generation.model);
  const local = engine instanceof LocalEngine ? engine.get(generation.model) : undefined;
  return local ? local.promptTokens(generation).length : promptTokenBound(generation.messages);
}

const TEMPLATE_TOKENS_PER_MESSAGE = 16;

export function promptTokenBound(messages: ChatMessage[]): number {
  let bound = TEMPLATE_TOKENS_PER_MESSAGE;
  for (const m of messages) bound += Buffer.byteLength(m.content, "utf8") + Buffer.byteLength(m.name ?? "", "utf8") + TEMPLATE_TOKENS_PER_MESSAGE;
  return bound;
}
