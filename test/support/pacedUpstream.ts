/**
 * An OpenAI-compatible upstream (served in the test's own process) that streams a fixed answer at
 * a fixed pace: reasoning words first (`reasoning_content`, as DeepSeek sends them), then answer
 * words, one every `tokenMs`, then `finish_reason` and usage. A remote model on it makes the
 * timing of a test independent of the machine's speed (a llama.cpp model writes hundreds of
 * tokens a second), and it costs no CPU while it waits:
 *
 *   const upstream = await startPacedUpstream({ paced: { reasoning: "Let me think …", answer: "42.", tokenMs: 40 } });
 *   after(() => upstream.close());
 *   config: { remoteModels: [{ id: "paced", baseUrl: upstream.url }] }
 *
 * `refuse`: a prompt whose last message matches gets the given status and error message instead
 * (as an upstream refuses a prompt beyond its context).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface PacedScript {
  reasoning: string;
  answer: string;
  tokenMs: number;
}

export interface PacedUpstream {
  /** The base URL to configure (`…/v1`). */
  url: string;
  /** Completion requests received. */
  requests: number;
  close(): Promise<void>;
}

export interface PacedOptions {
  refuse?: { match: RegExp; status: number; message: string };
}

/** Words with their following space kept, so the pieces join back into the text exactly. */
export function pieces(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [];
}

export async function startPacedUpstream(models: Record<string, PacedScript>, options: PacedOptions = {}): Promise<PacedUpstream> {
  const sockets = new Set<Socket>();
  const state: PacedUpstream = {
    url: "",
    requests: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server = createServer((request, response) => void answer(request, response).catch(() => response.destroy()));
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  async function answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method === "GET") {
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data: Object.keys(models).map((id) => ({ id, object: "model" })) }));
      return;
    }
    let raw = "";
    for await (const chunk of request) raw += chunk;
    state.requests++;
    const body = JSON.parse(raw) as { model: string; messages: Array<{ content: string }> };
    const script = models[body.model];
    const last = body.messages.at(-1)?.content ?? "";
    if (!script || (options.refuse && options.refuse.match.test(last))) {
      const status = script ? options.refuse!.status : 404;
      const message = script ? options.refuse!.message : `no model ${body.model}`;
      response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error: { message, type: "invalid_request_error" } }));
      return;
    }
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const chunk = (delta: object) =>
      `data: ${JSON.stringify({ id: "paced", object: "chat.completion.chunk", created: 0, model: body.model, choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    const steps = [...pieces(script.reasoning).map((text) => ({ reasoning_content: text })), ...pieces(script.answer).map((text) => ({ content: text }))];
    response.write(chunk({ role: "assistant", content: "" }));
    let n = 0;
    const timer = setInterval(() => {
      const step = steps[n++];
      if (step) {
        response.write(chunk(step));
        return;
      }
      clearInterval(timer);
      const usage = { prompt_tokens: 10, completion_tokens: steps.length, total_tokens: 10 + steps.length };
      response.write(`data: ${JSON.stringify({ id: "paced", object: "chat.completion.chunk", created: 0, model: body.model, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage })}\n\n`);
      response.end("data: [DONE]\n\n");
    }, script.tokenMs);
    response.on("close", () => clearInterval(timer));
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return state;
}
