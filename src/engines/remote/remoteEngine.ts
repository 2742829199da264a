import type { RemoteModelConfig } from "./config.ts";
import {
  EngineError,
  type EmbeddingRequest,
  type Embeddings,
  type Engine,
  type EngineActivity,
  type EngineEvent,
  type EngineHealth,
  type GenerationRequest,
  type ModelInfo,
  type PreparedRequest,
} from "../types.ts";
import { CacheReportTracker } from "./cacheReporting.ts";
import { checkAgainstContext } from "./contextCheck.ts";
import { upstreamEmbeddings } from "./embeddings.ts";
import { UpstreamClient } from "./upstream.ts";

/**
 * Any OpenAI-compatible upstream (vLLM, SGLang, llama-server, the DeepSeek API, another Sputnik),
 * one URL per model; the talking is UpstreamClient's (src/engines/remote/upstream.ts), which a
 * fleet (src/engines/fleet/) also uses once per replica. Upstream URLs and keys come from operator
 * config only; a request names a model id, never a URL.
 */
export class RemoteEngine implements Engine {
  readonly kind = "remote";
  private readonly clients = new Map<string, UpstreamClient>();
  private readonly cacheReports = new Map<string, CacheReportTracker>();

  constructor(private readonly upstreams: RemoteModelConfig[]) {
    for (const u of upstreams) {
      this.clients.set(
        u.id,
        new UpstreamClient({ model: u.id, baseUrl: u.baseUrl, apiKey: u.apiKey, upstreamModel: u.upstreamModel ?? u.id, timeoutMs: u.timeoutMs }),
      );
      this.cacheReports.set(u.id, new CacheReportTracker());
    }
  }

  models(): ModelInfo[] {
    return this.upstreams.map((u) => this.info(u));
  }

  generate(request: GenerationRequest): AsyncIterable<EngineEvent> {
    this.upstream(request.model);
    const tracker = this.cacheReports.get(request.model)!;
    return this.clients.get(request.model)!.stream(request, { onUsage: (reported) => tracker.note(reported) });
  }

  /**
   * The upstream's tokenizer is not here, so the prompt size is an upper bound: a byte-level
   * tokenizer never makes more tokens than UTF-8 bytes, plus room for the chat template's tokens.
   * The upstream checks its own context.
   */
  prepare(request: GenerationRequest): PreparedRequest {
    const upstream = this.upstream(request.model);
    checkAgainstContext(request, upstream.contextLength);
    return { model: this.info(upstream), promptTokens: promptTokenBound(request.messages, request.tools, request.completion), exact: false, room: undefined };
  }

  /** A max_tokens that cannot fit the configured context is refused before limits and admission. */
  inspect(request: GenerationRequest): void {
    checkAgainstContext(request, this.upstream(request.model).contextLength);
  }

  /** Passed through to the upstream's `/embeddings` (models configured with `embeddings: true`). */
  embed(request: EmbeddingRequest): Promise<Embeddings> {
    const upstream = this.upstream(request.model);
    if (!upstream.embeddings) throw new EngineError(`The model '${upstream.id}' does not create embeddings.`, 400, "model_not_embedding", "model");
    return upstreamEmbeddings(this.clients.get(upstream.id)!.target, request);
  }

  /** The operator's `maxConcurrency` for the upstream; undefined: unbounded. */
  capacity(model: string): number | undefined {
    return this.upstreams.find((u) => u.id === model)?.maxConcurrency;
  }

  /** No engine-side figures for upstreams (their own servers export them). */
  stats(): EngineActivity[] {
    return [];
  }

  private upstream(id: string): RemoteModelConfig {
    const upstream = this.upstreams.find((u) => u.id === id);
    if (!upstream) throw new EngineError(`The model '${id}' does not exist`, 404, "model_not_found", "model");
    return upstream;
  }

  private info(u: RemoteModelConfig): ModelInfo {
    const cacheReporting = this.cacheReports.get(u.id)?.state;
    return {
      id: u.id,
      engine: this.kind,
      ownedBy: new URL(u.baseUrl).host,
      reasoning: u.reasoning,
      ...(u.contextLength !== undefined ? { contextLength: u.contextLength } : {}),
      ...(cacheReporting ? { cacheReporting } : {}),
      ...(u.embeddings ? { embedding: {} } : {}),
    };
  }

  async health(): Promise<EngineHealth> {
    const results = await Promise.all(
      this.upstreams.map(async (u) => {
        const probe = await this.clients.get(u.id)!.probe(5000);
        return { ok: probe.ok, detail: `${u.id}: ${probe.detail}` };
      }),
    );
    return { ok: results.every((r) => r.ok), detail: results.map((r) => r.detail).join("; ") || "no remote models" };
  }

  async close(): Promise<void> {}
}

const TEMPLATE_TOKENS_PER_MESSAGE = 16;

/**
 * An upper bound on the tokens any byte-level tokenizer makes of `messages` in a chat template,
 * tool calls and offered tools included (templates render them as JSON text; the template's own
 * words around each are covered by the per-message allowance), or of a raw completion's prompt
 * and suffix (plus room for FIM's marker tokens).
 */
export function promptTokenBound(
  messages: GenerationRequest["messages"],
  tools: GenerationRequest["tools"] = [],
  completion?: GenerationRequest["completion"],
): number {
  let bound = TEMPLATE_TOKENS_PER_MESSAGE;
  if (completion) bound += Buffer.byteLength(completion.prompt, "utf8") + Buffer.byteLength(completion.suffix ?? "", "utf8");
  for (const m of messages) {
    bound += Buffer.byteLength(m.content, "utf8") + Buffer.byteLength(m.name ?? "", "utf8") + TEMPLATE_TOKENS_PER_MESSAGE;
    if (m.tool_calls?.length) bound += Buffer.byteLength(JSON.stringify(m.tool_calls), "utf8");
    if (m.tool_call_id !== undefined) bound += Buffer.byteLength(m.tool_call_id, "utf8");
  }
  if (tools.length > 0) bound += Buffer.byteLength(JSON.stringify(tools), "utf8") + TEMPLATE_TOKENS_PER_MESSAGE;
  return bound;
}
