import { createParser } from "eventsource-parser";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface StreamResult {
  /** Milliseconds from sending the request to the first generated text (or the end, if none). */
  ttftMs: number;
  /** Milliseconds from sending the request to the chunk that carried finish_reason. */
  endMs: number;
  promptTokens: number | null;
  completionTokens: number | null;
  cacheHitTokens: number | null;
  content: string;
  reasoning: string;
  finishReason: string | null;
}

interface Chunk {
  choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_cache_hit_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } };
  error?: { message?: string };
}

/**
 * One streamed chat completion against any OpenAI-compatible server, timed on the client side
 * the same way for every server: greedy sampling so that servers given the same file produce the
 * same tokens, usage requested so token counts come from the server itself.
 */
export async function streamChat(
  baseUrl: string,
  body: { model: string; messages: ChatMessage[]; max_tokens: number },
  apiKey = "bench",
): Promise<StreamResult> {
  const send = () =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ ...body, stream: true, temperature: 0, stream_options: { include_usage: true } }),
    });
  let started = performance.now();
  let response: Response;
  try {
    response = await send();
  } catch (error) {
    // A pooled keep-alive connection the server closed just as it was reused (llama-server closes
    // idle ones after 5 s): nothing reached the server, so sending again is safe. Timed afresh.
    if ((error as { cause?: { code?: string } }).cause?.code !== "UND_ERR_SOCKET") throw error;
    started = performance.now();
    response = await send();
  }
  if (!response.ok || !response.body) {
    throw new Error(`${baseUrl} answered ${response.status}: ${(await response.text()).slice(0, 500)}`);
  }
  const result: StreamResult = {
    ttftMs: Number.NaN,
    endMs: Number.NaN,
    promptTokens: null,
    completionTokens: null,
    cacheHitTokens: null,
    content: "",
    reasoning: "",
    finishReason: null,
  };
  let failure: string | null = null;
  const parser = createParser({
    onEvent(event) {
      if (event.data === "[DONE]") return;
      const chunk = JSON.parse(event.data) as Chunk;
      if (chunk.error) failure = chunk.error.message ?? "error event";
      const now = performance.now() - started;
      for (const choice of chunk.choices ?? []) {
        const text = (choice.delta?.content ?? "") + (choice.delta?.reasoning_content ?? "");
        result.content += choice.delta?.content ?? "";
        result.reasoning += choice.delta?.reasoning_content ?? "";
        if ((text.length > 0 || choice.finish_reason) && Number.isNaN(result.ttftMs)) result.ttftMs = now;
        if (choice.finish_reason) {
          result.finishReason = choice.finish_reason;
          result.endMs = now;
        }
      }
      if (chunk.usage) {
        result.promptTokens = chunk.usage.prompt_tokens ?? null;
        result.completionTokens = chunk.usage.completion_tokens ?? null;
        result.cacheHitTokens = chunk.usage.prompt_cache_hit_tokens ?? chunk.usage.prompt_tokens_details?.cached_tokens ?? null;
      }
    },
  });
  const decoder = new TextDecoder();
  for await (const bytes of response.body) parser.feed(decoder.decode(bytes as Uint8Array, { stream: true }));
  if (failure) throw new Error(`${baseUrl} streamed an error: ${failure}`);
  if (Number.isNaN(result.endMs)) result.endMs = performance.now() - started;
  if (Number.isNaN(result.ttftMs)) result.ttftMs = result.endMs;
  return result;
}
