import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { RemoteModelConfig } from "./config.ts";
import { EventChannel } from "../eventChannel.ts";
import { StreamTidy } from "../streamTidy.ts";
import {
  EngineError,
  emptyUsage,
  type Engine,
  type EngineEvent,
  type EngineHealth,
  type FinishReason,
  type EngineActivity,
  type GenerationRequest,
  type ModelInfo,
  type PreparedRequest,
  type Usage,
} from "../types.ts";
import { ThinkTagSplitter } from "./thinkTagSplitter.ts";

/**
 * Any OpenAI-compatible upstream (vLLM, SGLang, llama-server, the DeepSeek API, another Sputnik).
 * Upstream URLs and keys come from operator config only; a request names a model id, never a URL.
 * Reasoning is read from `reasoning_content` (DeepSeek, SGLang), `reasoning` (vLLM) or inline
 * `<think>` tags in `content` (servers without a reasoning parser).
 */
export class RemoteEngine implements Engine {
  readonly kind = "remote";

  constructor(private readonly upstreams: RemoteModelConfig[]) {}

  models(): ModelInfo[] {
    return this.upstreams.map((u) => this.info(u));
  }

  generate(request: GenerationRequest): AsyncIterable<EngineEvent> {
    return this.stream(this.upstream(request.model), request);
  }

  /**
   * The upstream's tokenizer is not here, so the prompt size is an upper bound: a byte-level
   * tokenizer never makes more tokens than UTF-8 bytes, plus room for the chat template's tokens.
   * The upstream checks its own context.
   */
  prepare(request: GenerationRequest): PreparedRequest {
    const upstream = this.upstream(request.model);
    return { model: this.info(upstream), promptTokens: promptTokenBound(request.messages), exact: false, room: undefined };
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
    return { id: u.id, engine: this.kind, ownedBy: new URL(u.baseUrl).host, reasoning: u.reasoning };
  }

  private async *stream(upstream: RemoteModelConfig, request: GenerationRequest): AsyncGenerator<EngineEvent> {
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    request.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => controller.abort(new Error("upstream timeout")), upstream.timeoutMs);
    try {
      const response = await this.post(upstream, request, controller.signal);
      if (!response.ok || !response.body) throw await upstreamError(response);
      yield* this.readStream(response.body, controller.signal);
    } finally {
      clearTimeout(timer);
      request.signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }

  private async post(upstream: RemoteModelConfig, request: GenerationRequest, signal: AbortSignal): Promise<Response> {
    const body: Record<string, unknown> = {
      model: upstream.upstreamModel ?? upstream.id,
      // Earlier turns' reasoning is never sent upstream either (DeepSeek rejects it outright).
      messages: request.messages.map(({ role, content, name }) => (name ? { role, content, name } : { role, content })),
      stream: true,
      stream_options: { include_usage: true },
    };
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    if (request.temperature !== undefined) body.temperature = request.temperature;
    if (request.topP !== undefined) body.top_p = request.topP;
    if (request.seed !== undefined) body.seed = request.seed;
    if (request.stop?.length) body.stop = request.stop;
    if (request.responseFormat) body.response_format = request.responseFormat;
    if (request.thinkingBudget !== undefined) body.thinking = { type: "enabled", budget_tokens: request.thinkingBudget };
    try {
      return await fetch(new URL("chat/completions", withSlash(upstream.baseUrl)), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "text/event-stream",
          ...(upstream.apiKey ? { authorization: `Bearer ${upstream.apiKey}` } : {}),
        },
        body: JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal.aborted) throw new EngineError("The request was cancelled", 499, "cancelled");
      throw new EngineError(`Upstream for '${upstream.id}' is unreachable: ${(error as Error).message}`, 502, "upstream_unreachable");
    }
  }

  private async *readStream(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<EngineEvent> {
    const channel = new EventChannel<EngineEvent>();
    const tidy = new StreamTidy((kind, text) => channel.push({ type: kind, text }));
    const splitter = new ThinkTagSplitter((kind, text) => tidy.push(kind, text));
    let usage: Usage | null = null;
    let finishReason: FinishReason = "stop";
    let upstreamFailure: EngineError | null = null;

    const parser = createParser({
      onEvent: (message: EventSourceMessage) => {
        if (message.data === "[DONE]") return;
        let chunk: UpstreamChunk;
        try {
          chunk = JSON.parse(message.data) as UpstreamChunk;
        } catch {
          return; // Not JSON: keep-alives and comments from proxies.
        }
        if (chunk.error) {
          upstreamFailure = new EngineError(`Upstream error: ${chunk.error.message ?? "unknown"}`, 502, "upstream_error");
          return;
        }
        const choice = chunk.choices?.[0];
        const reasoning = choice?.delta?.reasoning_content ?? choice?.delta?.reasoning;
        if (reasoning) tidy.push("reasoning", reasoning);
        if (choice?.delta?.content) splitter.push(choice.delta.content);
        if (choice?.finish_reason) finishReason = choice.finish_reason === "length" ? "length" : "stop";
        if (chunk.usage) usage = normalizeUsage(chunk.usage);
      },
    });

    const reading = (async () => {
      const decoder = new TextDecoder(); // stream mode: never splits a character across chunks
      try {
        for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
          parser.feed(decoder.decode(bytes, { stream: true }));
        }
        parser.feed(decoder.decode());
        splitter.flush();
        if (upstreamFailure) throw upstreamFailure;
        channel.push({ type: "usage", usage: usage ?? emptyUsage() });
        channel.push({ type: "done", finishReason });
        channel.close();
      } catch (error) {
        if (signal.aborted) {
          channel.push({ type: "done", finishReason: "abort" });
          channel.close();
        } else {
          channel.close(error instanceof EngineError ? error : new EngineError(`Upstream stream broke: ${(error as Error).message}`, 502, "upstream_error"));
        }
      }
    })();
    try {
      yield* channel;
    } finally {
      await reading;
    }
  }

  async health(): Promise<EngineHealth> {
    const results = await Promise.all(
      this.upstreams.map(async (u) => {
        try {
          const response = await fetch(new URL("models", withSlash(u.baseUrl)), {
            headers: u.apiKey ? { authorization: `Bearer ${u.apiKey}` } : {},
            signal: AbortSignal.timeout(5000),
          });
          return { ok: response.ok, detail: `${u.id}: upstream answered ${response.status}` };
        } catch (error) {
          return { ok: false, detail: `${u.id}: ${(error as Error).message}` };
        }
      }),
    );
    return { ok: results.every((r) => r.ok), detail: results.map((r) => r.detail).join("; ") || "no remote models" };
  }

  async close(): Promise<void> {}
}

interface UpstreamChunk {
  choices?: Array<{
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null };
    finish_reason?: string | null;
  }>;
  usage?: Partial<Usage> & { prompt_tokens_details?: { cached_tokens?: number } };
  error?: { message?: string };
}

function normalizeUsage(raw: NonNullable<UpstreamChunk["usage"]>): Usage {
  const prompt = raw.prompt_tokens ?? 0;
  const completion = raw.completion_tokens ?? 0;
  // Upstreams report cache hits as DeepSeek's field or as OpenAI's cached_tokens; both are theirs to measure.
  const hit = raw.prompt_cache_hit_tokens ?? raw.prompt_tokens_details?.cached_tokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: raw.total_tokens ?? prompt + completion,
    prompt_cache_hit_tokens: hit,
    prompt_cache_miss_tokens: raw.prompt_cache_miss_tokens ?? prompt - hit,
    completion_tokens_details: { reasoning_tokens: raw.completion_tokens_details?.reasoning_tokens ?? 0 },
    prompt_tokens_details: { cached_tokens: hit },
  };
}

async function upstreamError(response: Response): Promise<EngineError> {
  let message = `Upstream answered ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    if (body.error?.message) message += `: ${body.error.message}`;
  } catch {
    // keep the status-only message
  }
  // Client errors upstream are the client's (bad params); anything else is a gateway failure.
  if (response.status === 429 || response.status === 503) return new EngineError(message, 503, "upstream_busy");
  if (response.status >= 400 && response.status < 500 && response.status !== 401 && response.status !== 403) {
    return new EngineError(message, response.status, "upstream_rejected");
  }
  return new EngineError(message, 502, "upstream_error");
}

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

const TEMPLATE_TOKENS_PER_MESSAGE = 16;

/** An upper bound on the tokens any byte-level tokenizer makes of `messages` in a chat template. */
export function promptTokenBound(messages: GenerationRequest["messages"]): number {
  let bound = TEMPLATE_TOKENS_PER_MESSAGE;
  for (const m of messages) bound += Buffer.byteLength(m.content, "utf8") + Buffer.byteLength(m.name ?? "", "utf8") + TEMPLATE_TOKENS_PER_MESSAGE;
  return bound;
}
