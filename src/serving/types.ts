import type { Transaction } from "kysely";
import type { Actor } from "../auth/actor.ts";
import type { Charge } from "../billing/meter.ts";
import type { RetrievalRequest } from "../search/types.ts";
import type { EngineEvent, FinishReason, GenerationRequest, ModelInfo, Usage } from "../engines/types.ts";
import type { QueueUpdate } from "../limits/admissionQueue.ts";
import type { Identity } from "../limits/identity.ts";
import type { ModerationReport } from "../moderation/types.ts";
import type { Database } from "../store/schema.ts";

/** One completion as a surface (the /v1 API, the web app) hands it to the pipeline. */
export interface CompletionInput {
  actor: Actor;
  /** Whom limits count against (src/limits/identity.ts `identityOf`). */
  identity: Identity;
  clientIp: string | null;
  /** What to generate; its `signal` aborts when the client goes away (or presses Stop). */
  generation: GenerationRequest;
  /** How the surface delivers it (for the request log). */
  stream: boolean;
  /** Place in line while waiting, every `queue.keepAliveMs` (see `Completion.position()` for the first). */
  onQueue?: (update: QueueUpdate) => void;
  /** What the surface stores alongside the request (the web app's messages); see CompletionRecorder. */
  recorder?: CompletionRecorder;
  /** Search asked for (web, the user's documents): the `retrieve` stage runs it before `prepare`. */
  retrieval?: RetrievalRequest;
}

/**
 * A surface's own persistence, run by the pipeline at fixed points so it shares the pipeline's
 * transaction: the web app stores its question and answer here.
 */
export interface CompletionRecorder {
  /** Once the request is admitted and reserved (it will run), before it waits for its turn. */
  started?(model: ModelInfo): Promise<void>;
  /** Every engine event, as it arrives. */
  event?(event: EngineEvent): void;
  /** Once, before the settlement transaction opens: finish writes made outside it. */
  beforeSettle?(): Promise<void>;
  /**
   * Inside the settlement transaction, with the outcome: whatever is written here commits with
   * the ledger entry, the balance change and the request log row, or not at all.
   */
  settle?(trx: Transaction<Database>, outcome: CompletionOutcome): Promise<void>;
  /** Where the surface shows moderation interventions (the web app's answer), for the admin list. */
  moderationTarget?(): { conversationId: string; messageId: string | null };
}

/** How a completion ended. */
export interface CompletionOutcome {
  /** The HTTP status it had or would have had: 200, 499 (the client stopped or left), or the error's. */
  status: number;
  errorCode: string | null;
  /** The error that ended it, if one did (not set for a client that left). */
  error: unknown;
  usage: Usage;
  finishReason: FinishReason | null;
  ttftMs: number | null;
  totalMs: number;
  queueMs: number;
  /** What moderation did (src/moderation); null when nothing intervened. */
  moderation: ModerationReport | null;
}

/** The request log's view of a completion, written in the settlement transaction and observed by metrics. */
export interface CompletionRecord {
  model: string;
  /** The engine kind that served it ("none" when the model was unknown). */
  engine: string;
  status: number;
  errorCode: string | null;
  stream: boolean;
  usage: Usage;
  ttftMs: number | null;
  totalMs: number;
  /** Time spent in the admission queue. */
  queueMs: number;
  clientIp: string | null;
  /** The billing charge settled with it, if the request got one. */
  charge: Charge | null;
}
