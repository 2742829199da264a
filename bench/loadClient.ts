import http from "node:http";

/** What one streamed request did, timed on the client. */
export interface Outcome {
  /** HTTP status; 0 when the connection failed before a response. */
  status: number;
  startedAt: number;
  /** Until the response headers (for a refusal: until the answer). */
  headersMs: number | null;
  /** Until the first reasoning or content text: queue wait, prompt and first token. */
  ttftMs: number | null;
  totalMs: number;
  retryAfter: string | null;
  /** SSE comments received (keep-alives while waiting in line). */
  keepAlives: number;
  /** The estimated wait the first keep-alive announced, in seconds. */
  firstEstimateS: number | null;
  /** The stream ended with [DONE]. */
  done: boolean;
  /** The code of an error event inside the stream. */
  streamError: string | null;
  /** The error code of a refusal (a JSON answer instead of a stream). */
  refusal: string | null;
  /** A 200 stream that ended without [DONE], though the bench did not cut it. */
  dropped: boolean;
  /** Cut by the bench (time ran out). */
  abandoned: boolean;
  completionTokens: number;
}

interface Chunk {
  choices?: Array<{ delta?: { content?: string | null; reasoning_content?: string | null } }>;
  usage?: { completion_tokens?: number };
  error?: { code?: string | null; message?: string };
}

/**
 * One streamed chat completion over `agent` (which fixes the client's source address). Resolves
 * once the response ended, however it ended; never rejects.
 */
export function streamOnce(baseUrl: string, body: object, agent: http.Agent, cut: AbortSignal, apiKey: string | null = null): Promise<Outcome> {
  const url = new URL("/v1/chat/completions", baseUrl);
  const payload = JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } });
  const startedAt = performance.now();
  const outcome: Outcome = {
    status: 0,
    startedAt,
    headersMs: null,
    ttftMs: null,
    totalMs: 0,
    retryAfter: null,
    keepAlives: 0,
    firstEstimateS: null,
    done: false,
    streamError: null,
    refusal: null,
    dropped: false,
    abandoned: false,
    completionTokens: 0,
  };
  return new Promise((resolve) => {
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      cut.removeEventListener("abort", onCut);
      outcome.totalMs = performance.now() - startedAt;
      outcome.dropped = outcome.status === 200 && !outcome.done && !outcome.abandoned;
      resolve(outcome);
    };
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload), ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
      },
      (response) => {
        outcome.status = response.statusCode ?? 0;
        outcome.headersMs = performance.now() - startedAt;
        const retryAfter = response.headers["retry-after"];
        outcome.retryAfter = typeof retryAfter === "string" ? retryAfter : null;
        response.setEncoding("utf8");
        let buffer = "";
        response.on("data", (text: string) => {
          buffer += text;
          let end: number;
          if (outcome.status !== 200) return;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (block.startsWith(":")) {
              outcome.keepAlives++;
              const estimate = /estimated_wait_s=(\d+)/.exec(block);
              if (estimate && outcome.firstEstimateS === null) outcome.firstEstimateS = Number(estimate[1]);
            } else if (block.startsWith("data: ")) onData(block.slice(6));
          }
        });
        response.on("error", finish);
        response.on("close", () => {
          if (outcome.status !== 200) outcome.refusal = /"code":"([^"]*)"/.exec(buffer)?.[1] ?? null;
          finish();
        });
      },
    );
    const onData = (data: string) => {
      if (data === "[DONE]") {
        outcome.done = true;
        return;
      }
      let chunk: Chunk;
      try {
        chunk = JSON.parse(data) as Chunk;
      } catch {
        return;
      }
      if (chunk.error) outcome.streamError = chunk.error.code ?? "error";
      if (chunk.usage?.completion_tokens !== undefined) outcome.completionTokens = chunk.usage.completion_tokens;
      const delta = chunk.choices?.[0]?.delta;
      if (outcome.ttftMs === null && (delta?.content || delta?.reasoning_content)) outcome.ttftMs = performance.now() - startedAt;
    };
    const onCut = () => {
      outcome.abandoned = true;
      request.destroy();
    };
    if (cut.aborted) onCut();
    cut.addEventListener("abort", onCut, { once: true });
    request.on("error", finish);
    request.on("close", () => {
      // A request closed before any response (refused connection, cut while connecting).
      if (outcome.headersMs === null) finish();
    });
    request.end(payload);
  });
}

/** The p-th percentile (0–100) of `values`, nearest rank; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
