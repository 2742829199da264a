import { createParser, type EventSourceMessage } from "eventsource-parser";
import { EventChannel } from "../eventChannel.ts";
import { StreamTidy } from "../streamTidy.ts";
import { EngineError, emptyUsage, type EngineEvent, type FinishReason, type GenerationRequest, type TokenLogprob, type Usage } from "../types.ts";
import { upstreamBody, upstreamPath } from "./requestBody.ts";
import { ThinkTagSplitter } from "./thinkTagSplitter.ts";
import { InlineToolCalls, StreamedToolCalls, ToolCallCounter, type ToolCallDelta } from "./toolCalls.ts";

/** One OpenAI-compatible upstream endpoint (a whole remote model, or one replica of a fleet). */
export interface UpstreamTarget {
  /** Public model id, for messages. */
  model: string;
  baseUrl: string;
  apiKey?: string | undefined;
  /** Model name sent upstream. */
  upstreamModel: string;
  /** Whole request, headers to last byte. */
  timeoutMs: number;
  /** Until the response headers; undefined: only `timeoutMs`. A fleet sets it to fail over quickly. */
  headersTimeoutMs?: number | undefined;
}

/**
 * Where an upstream request failed, so a fleet can tell a dead replica (connect, timeout, 5xx,
 * broken stream) from a client's mistake (4xx) and from the client leaving (cancelled).
 */
export type UpstreamFailure = "connect" | "timeout" | "status" | "stream" | "cancelled";

export class UpstreamError extends EngineError {
  constructor(
    message: string,
    status: number,
    code: string,
    readonly failure: UpstreamFailure,
    /** The upstream's own HTTP status, when it answered with one. */
    readonly upstreamStatus: number | null = null,
  ) {
    super(message, status, code);
  }
}

export interface StreamHooks {
  /** The upstream answered 2xx with a body: it is alive, whatever happens to the stream next. */
  onHeaders?: () => void;
  /** The answer's usage arrived: `cacheReported` says whether it carried any prompt-cache field. */
  onUsage?: (cacheReported: boolean) => void;
}

/**
 * Talks to one OpenAI-compatible upstream (vLLM, SGLang, llama-server, the DeepSeek API, another
 * Sputnik): one streamed chat completion at a time per call, and a health probe. Reasoning is read
 * from `reasoning_content` (DeepSeek, SGLang), `reasoning` (vLLM) or inline `<think>` tags; tool
 * calls from `tool_calls` deltas, or from the text when the upstream left them inline
 * (src/engines/remote/toolCalls.ts).
 */
export class UpstreamClient {
  constructor(readonly target: UpstreamTarget) {}

  /**
   * Streams one completion. Throws UpstreamError before the first event (no answer, a non-2xx
   * status, a stream that broke before any event); later failures end the stream with a thrown
   * UpstreamError after a `usage` event of what was delivered (see `deliveredUsage`).
   */
  async *stream(request: GenerationRequest, hooks: StreamHooks = {}): AsyncGenerator<EngineEvent> {
    const target = this.target;
    const controller = new AbortController();
    let timedOut = false;
    const onAbort = () => controller.abort();
    request.signal?.addEventListener("abort", onAbort, { once: true });
    if (request.signal?.aborted) controller.abort();
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error("upstream timeout"));
    }, target.timeoutMs);
    let headersTimer: NodeJS.Timeout | undefined;
    if (target.headersTimeoutMs !== undefined) {
      headersTimer = setTimeout(() => {
        timedOut = true;
        controller.abort(new Error("no response headers in time"));
      }, target.headersTimeoutMs);
    }
    const cancelled = () => request.signal?.aborted === true;
    try {
      const response = await this.post(request, controller.signal, cancelled, () => timedOut);
      clearTimeout(headersTimer);
      if (!response.ok || !response.body) throw await upstreamError(response);
      hooks.onHeaders?.();
      yield* readStream(response.body, request, controller.signal, cancelled, () => timedOut, hooks);
    } finally {
      clearTimeout(timer);
      clearTimeout(headersTimer);
      request.signal?.removeEventListener("abort", onAbort);
      controller.abort();
    }
  }

  /** GET `<baseUrl>/<path>` (default `models`): up when it answers 2xx within `timeoutMs`. */
  async probe(timeoutMs: number, path = "models"): Promise<{ ok: boolean; status: number | null; detail: string }> {
    try {
      const response = await fetch(new URL(path, withSlash(this.target.baseUrl)), {
        headers: this.target.apiKey ? { authorization: `Bearer ${this.target.apiKey}` } : {},
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel().catch(() => undefined);
      return { ok: response.ok, status: response.status, detail: `upstream answered ${response.status}` };
    } catch (error) {
      return { ok: false, status: null, detail: (error as Error).message };
    }
  }

  /**
   * GET the upstream's Prometheus metrics: `path` from the host root when it starts with `/`
   * (vLLM, SGLang, llama-server and Sputnik serve `/metrics` beside `/v1`), else relative to the
   * base URL. Throws on no answer, a non-2xx status or a timeout.
   */
  async metrics(path: string, timeoutMs: number, token?: string): Promise<string> {
    const bearer = token ?? this.target.apiKey;
    const response = await fetch(new URL(path, withSlash(this.target.baseUrl)), {
      headers: { accept: "text/plain", ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw new Error(`metrics answered ${response.status}`);
    }
    return readTextBounded(response, MAX_METRICS_BYTES);
  }

  private async post(request: GenerationRequest, signal: AbortSignal, cancelled: () => boolean, timedOut: () => boolean): Promise<Response> {
    const target = this.target;
    const body = upstreamBody(request, target.upstreamModel);
    try {
      return await fetch(new URL(upstreamPath(request), withSlash(target.baseUrl)), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "text/event-stream",
          ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}),
        },
        body: JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (cancelled()) throw new UpstreamError("The request was cancelled", 499, "cancelled", "cancelled");
      if (timedOut()) throw new UpstreamError(`Upstream for '${target.model}' did not answer in time`, 504, "upstream_timeout", "timeout");
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new UpstreamError(`Upstream for '${target.model}' is unreachable: ${why}`, 502, "upstream_unreachable", "connect");
    }
  }
}

async function* readStream(
  body: ReadableStream<Uint8Array>,
  request: GenerationRequest,
  signal: AbortSignal,
  cancelled: () => boolean,
  timedOut: () => boolean,
  hooks: StreamHooks = {},
): AsyncGenerator<EngineEvent> {
  const channel = new EventChannel<EngineEvent>();
  const tidy = new StreamTidy((kind, text) => channel.push({ type: kind, text }));
  const calls = new ToolCallCounter({
    call: (index, id, name) => channel.push({ type: "tool_call", index, id, name }),
    arguments: (index, text) => channel.push({ type: "tool_call_arguments", index, text }),
  });
  const streamedCalls = new StreamedToolCalls(calls);
  const raw = request.completion !== undefined;
  // Calls an upstream left in the text are looked for only when the request offered tools.
  const inline = request.tools?.length && request.toolChoice !== "none" ? new InlineToolCalls((text) => tidy.push("content", text), calls) : null;
  const splitter = new ThinkTagSplitter((kind, text) => (kind === "content" && inline ? inline.push(text) : tidy.push(kind, text)));
  let usage: Usage | null = null;
  let finishReason: FinishReason = "stop";
  let stopSequence: string | undefined;
  let upstreamFailure: UpstreamError | null = null;
  let cacheReported = false;
  const delivered = { chunks: 0, reasoningChunks: 0 };

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
        upstreamFailure = new UpstreamError(`Upstream error: ${chunk.error.message ?? "unknown"}`, 502, "upstream_error", "stream");
        return;
      }
      const choice = chunk.choices?.[0];
      // A raw-text completion (legacy shape): its text is the model's output as it is — no
      // reasoning split, no trimming (whitespace is code in a fill-in-the-middle).
      if (raw) {
        const legacy = choice?.logprobs as LegacyLogprobs | null | undefined;
        if (legacy?.tokens?.length) channel.push({ type: "logprobs", channel: "content", tokens: fromLegacyLogprobs(legacy) });
        if (choice?.text) {
          delivered.chunks++;
          channel.push({ type: "content", text: choice.text });
        }
      }
      // Log-probabilities go out before (or with) the text they describe, as the contract says.
      const logprobs = raw ? null : (choice?.logprobs as ChatLogprobs | null | undefined);
      if (logprobs?.reasoning_content?.length) channel.push({ type: "logprobs", channel: "reasoning", tokens: logprobs.reasoning_content.map(tokenLogprob) });
      if (logprobs?.content?.length) channel.push({ type: "logprobs", channel: "content", tokens: logprobs.content.map(tokenLogprob) });
      const reasoning = choice?.delta?.reasoning_content ?? choice?.delta?.reasoning;
      if (reasoning) {
        delivered.chunks++;
        delivered.reasoningChunks++;
        tidy.push("reasoning", reasoning);
      }
      if (choice?.delta?.content) {
        delivered.chunks++;
        splitter.push(choice.delta.content);
      }
      if (choice?.delta?.tool_calls?.length) {
        delivered.chunks++;
        streamedCalls.push(choice.delta.tool_calls);
      }
      if (choice?.finish_reason) {
        finishReason = choice.finish_reason === "length" ? "length" : choice.finish_reason === "tool_calls" ? "tool_calls" : "stop";
        // vLLM names the stop string that matched; Anthropic's surface reports it.
        if (typeof choice.stop_reason === "string" && request.stop?.includes(choice.stop_reason)) stopSequence = choice.stop_reason;
      }
      if (chunk.usage) {
        usage = normalizeUsage(chunk.usage, chunk);
        cacheReported ||= reportsCache(chunk.usage, chunk);
      }
    },
  });

  const reading = (async () => {
    const decoder = new TextDecoder(); // stream mode: never splits a character across chunks
    try {
      for await (const bytes of body as unknown as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(bytes, { stream: true }));
        if (upstreamFailure) break;
      }
      parser.feed(decoder.decode());
      splitter.flush();
      inline?.flush();
      if (upstreamFailure) throw upstreamFailure;
      if (usage) hooks.onUsage?.(cacheReported);
      channel.push({ type: "usage", usage: usage ?? emptyUsage() });
      // An answer that made calls ends for them, also from upstreams that say "stop" (inline calls).
      if (calls.count > 0 && finishReason === "stop") finishReason = "tool_calls";
      channel.push({ type: "done", finishReason, ...(stopSequence !== undefined && finishReason === "stop" ? { stopSequence } : {}) });
      channel.close();
    } catch (error) {
      if (signal.aborted && cancelled()) {
        // Ended by our side (the client left, Stop, a revoked key, the shutdown drain's cut): what
        // was delivered is billed, as for a local model's tokens, never nothing for work done.
        if (delivered.chunks > 0) channel.push({ type: "usage", usage: usage ?? deliveredUsage(delivered) });
        channel.push({ type: "done", finishReason: "abort" });
        channel.close();
        return;
      }
      const failure =
        error instanceof UpstreamError
          ? error
          : timedOut()
            ? new UpstreamError("Upstream took longer than its timeout", 504, "upstream_timeout", "stream")
            : new UpstreamError(`Upstream stream broke: ${(error as Error).message}`, 502, "upstream_error", "stream");
      // What the client already received is billed (the rule for answers cut short upstream).
      if (delivered.chunks > 0) channel.push({ type: "usage", usage: usage ?? deliveredUsage(delivered) });
      channel.close(failure);
    }
  })();
  try {
    yield* channel;
  } finally {
    await reading;
  }
}

/**
 * The usage of an answer that broke mid-stream before the upstream reported its own: the output
 * the client received, one token per streamed delta (vLLM, SGLang, llama-server and Sputnik send
 * one token a chunk), and no prompt tokens, because the upstream never said how many it read.
 * The client is charged for what it was delivered, never for a guess at what it was not.
 */
export function deliveredUsage(delivered: { chunks: number; reasoningChunks: number }): Usage {
  return {
    ...emptyUsage(),
    completion_tokens: delivered.chunks,
    total_tokens: delivered.chunks,
    completion_tokens_details: { reasoning_tokens: delivered.reasoningChunks },
  };
}

interface UpstreamUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  /** DeepSeek, Sputnik. */
  prompt_cache_hit_tokens?: number;
  prompt_cache_miss_tokens?: number;
  /** OpenAI, vLLM (`--enable-prompt-tokens-details`), SGLang, Sputnik. */
  prompt_tokens_details?: { cached_tokens?: number | null } | null;
  /** Some SGLang versions put it beside the usage counts. */
  cached_tokens?: number;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

interface UpstreamTokenLogprob {
  token?: string;
  logprob?: number;
  bytes?: number[] | null;
  top_logprobs?: Array<{ token?: string; logprob?: number; bytes?: number[] | null }> | null;
}

/** OpenAI's chat shape; `reasoning_content` is Sputnik's own, for reasoning tokens. */
interface ChatLogprobs {
  content?: UpstreamTokenLogprob[] | null;
  reasoning_content?: UpstreamTokenLogprob[] | null;
}

/** OpenAI's legacy completions shape. */
interface LegacyLogprobs {
  tokens?: string[];
  token_logprobs?: Array<number | null>;
  top_logprobs?: Array<Record<string, number> | null> | null;
}

interface UpstreamChunk {
  choices?: Array<{
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null; tool_calls?: ToolCallDelta[] | null };
    /** Chat: ChatLogprobs; legacy completions: LegacyLogprobs. */
    logprobs?: ChatLogprobs | LegacyLogprobs | null;
    /** Legacy completions' text. */
    text?: string | null;
    finish_reason?: string | null;
    /** vLLM: the stop string (or token id) that ended the answer. */
    stop_reason?: string | number | null;
  }>;
  usage?: UpstreamUsage;
  /** llama-server's per-request timings: `cache_n` prompt tokens came from its cache. */
  timings?: { cache_n?: number };
  error?: { message?: string };
}

function fromLegacyLogprobs(legacy: LegacyLogprobs): TokenLogprob[] {
  const bytes = (token: string) => [...Buffer.from(token, "utf8")];
  return (legacy.tokens ?? []).map((token, i) => ({
    token,
    logprob: legacy.token_logprobs?.[i] ?? 0,
    bytes: bytes(token),
    top: Object.entries(legacy.top_logprobs?.[i] ?? {}).map(([alt, logprob]) => ({ token: alt, logprob, bytes: bytes(alt) })),
  }));
}

function tokenLogprob(raw: UpstreamTokenLogprob): TokenLogprob {
  const token = raw.token ?? "";
  return {
    token,
    logprob: raw.logprob ?? 0,
    bytes: raw.bytes ?? [...Buffer.from(token, "utf8")],
    top: (raw.top_logprobs ?? []).map((t) => ({ token: t.token ?? "", logprob: t.logprob ?? 0, bytes: t.bytes ?? [...Buffer.from(t.token ?? "", "utf8")] })),
  };
}

/**
 * Usage as the upstream measured it. Cache hits are the upstream's to measure, from whichever
 * field it reports them in; an upstream that reports none is billed every prompt token as a miss.
 */
export function normalizeUsage(raw: UpstreamUsage, chunk: { timings?: { cache_n?: number } } = {}): Usage {
  const prompt = raw.prompt_tokens ?? 0;
  const completion = raw.completion_tokens ?? 0;
  const reported = raw.prompt_cache_hit_tokens ?? raw.prompt_tokens_details?.cached_tokens ?? raw.cached_tokens ?? chunk.timings?.cache_n ?? 0;
  const hit = Math.max(0, Math.min(prompt, reported));
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: raw.total_tokens ?? prompt + completion,
    prompt_cache_hit_tokens: hit,
    prompt_cache_miss_tokens: prompt - hit,
    completion_tokens_details: { reasoning_tokens: raw.completion_tokens_details?.reasoning_tokens ?? 0 },
    prompt_tokens_details: { cached_tokens: hit },
  };
}

/** Whether a usage report says anything about the prompt cache (a zero counts; a missing or null field does not). */
export function reportsCache(raw: UpstreamUsage, chunk: { timings?: { cache_n?: number } } = {}): boolean {
  const known = (v: unknown) => typeof v === "number";
  return known(raw.prompt_cache_hit_tokens) || known(raw.prompt_tokens_details?.cached_tokens) || known(raw.cached_tokens) || known(chunk.timings?.cache_n);
}

export async function upstreamError(response: Response): Promise<UpstreamError> {
  let message = `Upstream answered ${response.status}`;
  try {
    const body = JSON.parse(await readTextBounded(response, MAX_ERROR_BODY_BYTES)) as { error?: { message?: string } };
    if (body.error?.message) message += `: ${body.error.message}`;
  } catch {
    // keep the status-only message
  }
  const status = response.status;
  // Client errors upstream are the client's (bad params); anything else is a gateway failure.
  if (status === 429 || status === 503) return new UpstreamError(message, 503, "upstream_busy", "status", status);
  if (status >= 400 && status < 500 && status !== 401 && status !== 403) {
    return new UpstreamError(message, status, "upstream_rejected", "status", status);
  }
  return new UpstreamError(message, 502, "upstream_error", "status", status);
}

export function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

/** A metrics exposition larger than this is refused (vLLM's is ~100 KiB): it is parsed on the event loop every interval. */
const MAX_METRICS_BYTES = 4 * 1024 * 1024;
/** Only the message of an upstream's error body is kept. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The body as text, refusing (and cancelling) one over `maxBytes`: an upstream's body size is not ours to trust. */
export async function readTextBounded(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`the upstream's body is over ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
