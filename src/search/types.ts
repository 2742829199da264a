import type { Actor } from "../auth/actor.ts";
import type { MeteredItem } from "../billing/lineItems.ts";
import type { ChatMessage, GenerationRequest, ModelInfo } from "../engines/types.ts";
import type { Searched, Source } from "./source.ts";

/**
 * The contract between the serving pipeline's `retrieve` stage (src/serving/completion.ts) and
 * search: what a request asks for, what the stage hands over, what comes back. It lives here,
 * below serving, so the pipeline imports search and never the other way round.
 */

/** What a request asks retrieval for (API: `web_search_options`, `file_ids`; web app: `search`, `file_ids`). */
export interface RetrievalRequest {
  /** Search the web. */
  web: boolean;
  /** OpenAI's `search_context_size`: how much of the context the passages may take (default medium). */
  contextSize?: "low" | "medium" | "high";
  /** The caller's documents to read (others' are 404); empty: none. */
  fileIds: string[];
}

/** What the `retrieve` stage hands the retriever. */
export interface RetrievalInput {
  actor: Actor;
  request: RetrievalRequest;
  /** The request as it stands: its last user message is the question; the passages go into it. */
  generation: GenerationRequest;
  model: ModelInfo;
  signal: AbortSignal;
}

/** What retrieval found, and the prompt with the passages in it. */
export interface Retrieval {
  /** The request's messages with the numbered passages inserted (unchanged when nothing was found). */
  messages: ChatMessage[];
  /** Numbered as the answer cites them; empty when nothing was found. */
  sources: Source[];
  searched: Searched;
  /** Metered quantities (`{ meter: "search", quantity: 1 }` per web search): reserved, then settled as line items. */
  items: MeteredItem[];
  /** The searches run, for the user's search history. */
  queries: Array<{ kind: "web" | "documents"; query: string; results: number }>;
}

/**
 * Retrieval for the pipeline (src/search/retrieve.ts implements it), as a hook injected into
 * serving so the pipeline holds no search provider, index or HTTP code. Runs after admission and before the prompt is tokenized: a slow provider
 * holds a place in line, never an engine sequence.
 */
export interface Retriever {
  retrieve(input: RetrievalInput): Promise<Retrieval>;
}

