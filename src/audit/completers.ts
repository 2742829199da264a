import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { ChatMessage } from "../engines/types.ts";
import { ServiceError, type ErrorKind } from "../errors.ts";

/**
 * How an audit talks to a model: one question in, one whole answer out, with the reasoning kept
 * apart from the answer. Two implementations: `PipelineCompleter` (src/serving/auditCompleter.ts) runs
 * in-process through the one serving pipeline (queue, limits, metering — the audit is a client like any other), and
 * `HttpCompleter` asks an OpenAI-compatible server (another Sputnik, or any other) over HTTP.
 */
export interface Completer {
  /** The model ids it can reach (to refuse an unknown model before a run starts). */
  models(): Promise<string[]>;
  complete(request: CompleterRequest): Promise<CompleterResult>;
}

export interface CompleterRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  seed?: number;
  signal?: AbortSignal;
}

export interface CompleterResult {
  content: string;
  reasoning: string;
  finishReason: string | null;
  promptTokens: number;
  completionTokens: number;
  reasoningTokens: number;
}

/**
 * `/v1/chat/completions` of an OpenAI-compatible server, streamed (a queued request hears
 * keep-alives, so proxies keep it open however long it waits). `reasoning_content` deltas are the
 * reasoning; a server that writes `<think>…</think>` into the content instead is split the same way.
 */
export class HttpCompleter implements Completer {
  readonly baseUrl: string;

  /** @param url the server's address, with or without its trailing `/v1` */
  constructor(
    url: string,
    private readonly apiKey: string | undefined,
    private readonly options: { timeoutMs?: number } = {},
  ) {
    this.baseUrl = url.replace(/\/+$/, "").replace(/\/v1$/, "");
  }

  private headers(): Record<string, string> {
    return { "content-type": "application/json", ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}) };
  }

  async models(): Promise<string[]> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/v1/models`, { headers: this.headers(), signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      throw new ServiceError("unavailable", `Cannot reach ${this.baseUrl}: ${(error as Error).message}`, { code: "upstream_unreachable", cause: error });
    }
    if (!response.ok) throw await httpError(response, `${this.baseUrl}/v1/models`);
    const body = (await response.json().catch(() => ({}))) as { data?: Array<{ id?: unknown }> };
    return (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
  }

  async complete(request: CompleterRequest): Promise<CompleterResult> {
    const signals = [request.signal, this.options.timeoutMs ? AbortSignal.timeout(this.options.timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    const body = {
      model: request.model,
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      stream: true,
      stream_options: { include_usage: true },
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
    };
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: this.headers(),
        body: JSON.stringify(body),
        ...(signals.length > 0 ? { signal: AbortSignal.any(signals) } : {}),
      });
    } catch (error) {
      request.signal?.throwIfAborted();
      throw new ServiceError("unavailable", `Cannot reach ${this.baseUrl}: ${(error as Error).message}`, { code: "upstream_unreachable", cause: error });
    }
    if (!response.ok || !response.body) throw await httpError(response, `${this.baseUrl}/v1/chat/completions`);

    const result: CompleterResult = { content: "", reasoning: "", finishReason: null, promptTokens: 0, completionTokens: 0, reasoningTokens: 0 };
    let failure: ServiceError | null = null;
    const parser = createParser({
      onEvent: (message: EventSourceMessage) => {
        if (message.data === "[DONE]") return;
        let chunk: StreamChunk;
        try {
          chunk = JSON.parse(message.data) as StreamChunk;
        } catch {
          return;
        }
        if (chunk.error) {
          failure = new ServiceError(kindOfCode(chunk.error.code), chunk.error.message ?? "The server ended the answer with an error.", { code: chunk.error.code ?? null });
          return;
        }
        const choice = chunk.choices?.[0];
        if (choice?.delta?.content) result.content += choice.delta.content;
        if (choice?.delta?.reasoning_content) result.reasoning += choice.delta.reasoning_content;
        if (choice?.finish_reason) result.finishReason = choice.finish_reason;
        if (chunk.usage) {
          result.promptTokens = chunk.usage.prompt_tokens ?? 0;
          result.completionTokens = chunk.usage.completion_tokens ?? 0;
          result.reasoningTokens = chunk.usage.completion_tokens_details?.reasoning_tokens ?? 0;
        }
      },
    });
    const decoder = new TextDecoder();
    try {
      for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(bytes, { stream: true }));
    } catch (error) {
      request.signal?.throwIfAborted();
      throw new ServiceError("unavailable", `The answer from ${this.baseUrl} broke off: ${(error as Error).message}`, { code: "upstream_interrupted", cause: error });
    }
    if (failure) throw failure;
    if (result.reasoning === "") Object.assign(result, splitInlineThinking(result.content));
    return result;
  }
}

interface StreamChunk {
  choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; completion_tokens_details?: { reasoning_tokens?: number } };
  error?: { message?: string; code?: string | null };
}

/** `<think>reasoning</think>answer` → its two parts; text without a leading think block is all answer. */
export function splitInlineThinking(content: string): { content: string; reasoning: string } {
  const match = /^\s*<think>([\s\S]*?)(?:<\/think>|$)([\s\S]*)$/.exec(content);
  if (!match) return { content, reasoning: "" };
  return { reasoning: match[1]!.trim(), content: match[2]!.trimStart() };
}

/** A non-2xx answer as a ServiceError of the matching kind (429 and 503 keep their Retry-After). */
async function httpError(response: Response, what: string): Promise<ServiceError> {
  let message = `${what} answered ${response.status}`;
  let code: string | null = null;
  try {
    const body = JSON.parse((await response.text()).slice(0, 64 * 1024)) as { error?: { message?: string; code?: string | null } };
    if (body.error?.message) message = `${message}: ${body.error.message}`;
    code = body.error?.code ?? null;
  } catch {
    // Not JSON: the status says enough.
  }
  const retryAfter = Number(response.headers.get("retry-after"));
  return new ServiceError(kindOfStatus(response.status), message, { code, ...(retryAfter > 0 ? { retryAfterS: retryAfter } : {}) });
}

function kindOfStatus(status: number): ErrorKind {
  if (status === 400) return "invalid_request";
  if (status === 401) return "unauthenticated";
  if (status === 402) return "insufficient_balance";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 429) return "rate_limited";
  if (status === 503) return "unavailable";
  return "upstream";
}

function kindOfCode(code: string | null | undefined): ErrorKind {
  return code === "shutting_down" || code === "settlement_failed" ? "unavailable" : "upstream";
}
