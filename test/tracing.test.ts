/**
 * OpenTelemetry traces, end to end: a real Sputnik (scripted model in llama.cpp) exports over
 * OTLP/HTTP to a receiver in this test (a plain node:http server). Each request must arrive as one
 * trace — the HTTP server span with its stages (auth, admit, queue wait, reserve, the GenAI
 * generation span, settle) as children — with the GenAI attributes EQUAL to the usage the client
 * was answered with, no message text anywhere, and a client's W3C `traceparent` as the parent.
 * With tracing off, no SDK module is even loaded.
 */
import assert from "node:assert/strict";
import http, { type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { trace } from "@opentelemetry/api";
import { tracingConfigSchema } from "../src/tracing/config.ts";
import { flushTracing, startTracing } from "../src/tracing/setup.ts";
import { NO_STAGE, startStage, tracingOn } from "../src/tracing/spans.ts";
import { TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

const require = createRequire(import.meta.url);

/** OpenTelemetry packages in the module cache (the SDK's are CommonJS, so they show up there). */
function loadedOtelPackages(): string[] {
  const names = Object.keys(require.cache)
    .map((file) => /@opentelemetry[\\/]([^\\/]+)/.exec(file)?.[1])
    .filter((name): name is string => name !== undefined);
  return [...new Set(names)].sort();
}

// ── the OTLP/HTTP receiver ──────────────────────────────────────────────────────────────────────

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP's enum: 1 internal, 2 server. */
  kind: number;
  start: bigint;
  end: bigint;
  attributes: Record<string, unknown>;
  /** OTLP's enum: 0 unset, 1 ok, 2 error. */
  status: number;
  events: string[];
}

type OtlpValue = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: OtlpValue[] } };
type OtlpAttribute = { key: string; value: OtlpValue };

function decodeValue(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(decodeValue);
  return undefined;
}

const decodeAttributes = (list: OtlpAttribute[] = []) => Object.fromEntries(list.map((a) => [a.key, decodeValue(a.value)]));

class Receiver {
  readonly spans: ReceivedSpan[] = [];
  readonly bodies: string[] = [];
  readonly headers: IncomingHttpHeaders[] = [];
  readonly resources: Array<Record<string, unknown>> = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks).toString("utf8");
      this.bodies.push(body);
      this.headers.push(req.headers);
      this.take(JSON.parse(body));
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private take(request: { resourceSpans?: Array<{ resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: Array<{ spans?: any[] }> }> }): void {
    for (const rs of request.resourceSpans ?? []) {
      this.resources.push(decodeAttributes(rs.resource?.attributes));
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          this.spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            name: s.name,
            kind: s.kind,
            start: BigInt(s.startTimeUnixNano),
            end: BigInt(s.endTimeUnixNano),
            attributes: decodeAttributes(s.attributes),
            status: s.status?.code ?? 0,
            events: (s.events ?? []).map((e: { name: string }) => e.name),
          });
        }
      }
    }
  }
}

// ── one service for the file ────────────────────────────────────────────────────────────────────

const receiver = new Receiver();
let service: TestService;
let key: string;
let user: AppClient;
/** What the process looked like with tracing off, before the traced service started. */
let whileOff: { enabled: boolean; on: boolean; packages: string[]; recording: boolean; noStage: boolean };

/** Answers the clients were given: none may appear in an exported byte either. */
const answers: string[] = [];

/** Words in every prompt: if they appear in any exported byte, message content leaked. */
const CANARY = "canary-7f3a9c-do-not-trace";

before(async () => {
  const off = await startTracing(tracingConfigSchema.parse({}));
  whileOff = {
    enabled: off.enabled,
    on: tracingOn(),
    packages: loadedOtelPackages(),
    recording: trace.getTracer("probe").startSpan("probe").isRecording(),
    noStage: startStage("probe") === NO_STAGE,
  };
  const endpoint = await receiver.listen();
  service = await startTestService({
    models: ["scripted"],
    config: {
      tracing: { otlpEndpoint: endpoint, otlpHeaders: { "x-collector-token": "t0ken-for-tests" }, serviceName: "sputnik-under-test" },
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
    },
  });
  user = new AppClient(service.url);
  const signedUp = await user.post("/api/auth/signup", { username: "tracer", password: "correct horse battery staple" });
  assert.equal(signedUp.status, 201, signedUp.text);
  const created = await user.post("/api/keys", { name: "traced" });
  assert.equal(created.status, 201, created.text);
  key = created.body.key;
});
after(async () => {
  await service?.stop();
  await receiver.close();
});

/** Flushes until the trace holds a finished server span (it ends when the response closes, a moment after the client has read it). */
async function traceOf(traceId: string): Promise<ReceivedSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    await flushTracing();
    const spans = receiver.spans.filter((s) => s.traceId === traceId);
    if (spans.some((s) => s.kind === 2)) return spans;
    if (Date.now() > deadline) throw new Error(`no server span for trace ${traceId}; received: ${receiver.spans.map((s) => s.name).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The trace of the first span `pick` accepts, once that trace's server span arrived too. */
async function traceWhere(pick: (span: ReceivedSpan) => boolean): Promise<ReceivedSpan[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    await flushTracing();
    const span = receiver.spans.find(pick);
    if (span) return traceOf(span.traceId);
    if (Date.now() > deadline) throw new Error(`no such span; received: ${receiver.spans.map((s) => s.name).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const hex = (bytes: number) => [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * `a` no later than `b`. A request's spans all read one clock, anchored to the wall clock when the
 * request starts (src/tracing/spans.ts), so a clock step mid-request cannot reorder them; the
 * slack covers only the rounding of times to nanoseconds.
 */
const notAfter = (a: bigint, b: bigint) => a <= b + 1_000n;

/** The stages of one completion under its server span; asserts the structure on the way. */
function stagesOf(spans: ReceivedSpan[], generationName: string) {
  const server = spans.find((s) => s.kind === 2);
  assert.ok(server, "a server span");
  const byName = (name: string) => {
    const found = spans.filter((s) => s.name === name);
    assert.equal(found.length, 1, `one ${name} span in ${spans.map((s) => s.name).join(", ")}`);
    return found[0]!;
  };
  const stages = {
    server,
    auth: byName("sputnik.auth"),
    admit: byName("sputnik.admit"),
    queueWait: byName("sputnik.queue_wait"),
    reserve: byName("sputnik.reserve"),
    generation: byName(generationName),
    settle: byName("sputnik.settle"),
  };
  for (const [name, span] of Object.entries(stages)) {
    if (span === server) continue;
    assert.equal(span.parentSpanId, server.spanId, `${name} is a child of the request's span`);
    assert.equal(span.kind, 1, `${name} is an internal span`);
    assert.ok(notAfter(server.start, span.start) && notAfter(span.end, server.end), `${name} lies within the request: ${name} ${span.start}–${span.end}, request ${server.start}–${server.end} (ns)`);
  }
  // The pipeline's order: auth → admit → reserve → generation → settle.
  assert.ok(notAfter(stages.auth.end, stages.admit.start), "auth, then admit");
  assert.ok(notAfter(stages.admit.end, stages.reserve.start), "admit, then reserve");
  assert.ok(notAfter(stages.queueWait.end, stages.generation.start), "the turn came, then the generation");
  assert.ok(notAfter(stages.generation.end, stages.settle.start), "the generation, then its settlement");
  return stages;
}

interface ApiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_cache_hit_tokens: number;
  completion_tokens_details: { reasoning_tokens: number };
}

/** GenAI attributes must equal what the client was told. */
function assertUsage(generation: ReceivedSpan, answer: { model: string; finishReason: string; usage: ApiUsage }): void {
  const a = generation.attributes;
  assert.equal(a["gen_ai.operation.name"], "chat");
  assert.equal(a["gen_ai.provider.name"], "sputnik");
  assert.equal(a["gen_ai.request.model"], answer.model);
  assert.equal(a["gen_ai.response.model"], answer.model);
  assert.deepEqual(a["gen_ai.response.finish_reasons"], [answer.finishReason]);
  assert.equal(a["gen_ai.usage.input_tokens"], answer.usage.prompt_tokens);
  assert.equal(a["gen_ai.usage.output_tokens"], answer.usage.completion_tokens);
  assert.equal(a["gen_ai.usage.cache_read.input_tokens"], answer.usage.prompt_cache_hit_tokens);
  assert.equal(a["gen_ai.usage.reasoning.output_tokens"], answer.usage.completion_tokens_details.reasoning_tokens);
  assert.equal(a["sputnik.engine"], "local");
}

test("with tracing off, no SDK module is loaded and the tracer is the no-op one", () => {
  assert.equal(whileOff.enabled, false);
  assert.equal(whileOff.on, false);
  assert.deepEqual(whileOff.packages, ["api"], "only @opentelemetry/api (whose default tracer is a no-op) is loaded");
  assert.equal(whileOff.recording, false);
  assert.equal(whileOff.noStage, true, "stage helpers hand out the shared no-op stage");
  // And now that the traced service runs, the SDK is in.
  assert.equal(tracingOn(), true);
  assert.ok(loadedOtelPackages().includes("sdk-trace-node"));
});

const messages = [{ role: "user", content: `What is the answer? (${CANARY})` }];

test("a JSON chat completion: one trace under the client's traceparent, GenAI usage equal to the response's", async () => {
  const traceId = hex(16);
  const parentId = hex(8);
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}`, traceparent: `00-${traceId}-${parentId}-01` },
    body: JSON.stringify({ model: "scripted", messages, max_tokens: 200, temperature: 0 }),
  });
  assert.equal(response.status, 200);
  const body = (await response.json()) as { model: string; usage: ApiUsage; choices: Array<{ finish_reason: string; message: { content: string } }> };

  answers.push(body.choices[0]!.message.content);
  const spans = await traceOf(traceId);
  const stages = stagesOf(spans, "chat scripted");
  assert.equal(stages.server.parentSpanId, parentId, "the client's span is the parent");
  assert.equal(stages.server.name, "POST /v1/chat/completions");
  assert.equal(stages.server.attributes["http.route"], "/v1/chat/completions");
  assert.equal(stages.server.attributes["http.request.method"], "POST");
  assert.equal(stages.server.attributes["http.response.status_code"], 200);
  assert.equal(stages.auth.attributes["sputnik.actor.kind"], "user");
  assert.equal(stages.queueWait.attributes["sputnik.queue.queued"], false);
  assert.equal(stages.settle.attributes["sputnik.outcome.status"], 200);
  assert.ok(spans.every((s) => s.status !== 2), "nothing failed");
  assertUsage(stages.generation, { model: body.model, finishReason: body.choices[0]!.finish_reason, usage: body.usage });
  assert.equal(stages.generation.attributes["gen_ai.request.stream"], false);
  assert.equal(stages.generation.attributes["gen_ai.request.temperature"], 0);
  assert.equal(stages.generation.attributes["gen_ai.request.max_tokens"], 200);
  assert.ok(body.usage.completion_tokens > 0 && body.usage.completion_tokens_details.reasoning_tokens > 0, "a real answer with reasoning");
  assert.equal(stages.generation.attributes["gen_ai.conversation.id"], undefined, "/v1 has no conversation");

  // Where traces go: the configured service name, and the operator's headers with every export.
  assert.ok(receiver.resources.every((r) => r["service.name"] === "sputnik-under-test"));
  assert.ok(receiver.headers.every((h) => h["x-collector-token"] === "t0ken-for-tests" && h["content-type"] === "application/json"));
});

test("a streamed chat completion: its own trace, usage (cache hits included) equal to the stream's usage chunk", async () => {
  const response = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "scripted", messages, stream: true, stream_options: { include_usage: true } }),
  });
  assert.equal(response.status, 200);
  const chunks = (await response.text())
    .split("\n")
    .filter((l) => l.startsWith("data: {"))
    .map((l) => JSON.parse(l.slice(6)) as { id: string; model: string; usage?: ApiUsage | null; choices: Array<{ finish_reason: string | null }> });
  const usage = chunks.find((c) => c.usage)?.usage;
  const finishReason = chunks.flatMap((c) => c.choices).find((c) => c.finish_reason)?.finish_reason;
  assert.ok(usage && finishReason);
  assert.ok(usage.prompt_cache_hit_tokens > 0, "the same prompt again reuses its cached prefix");

  // No traceparent: a new trace, with no parent.
  const spans = await traceWhere((s) => s.attributes["gen_ai.request.stream"] === true);
  const stages = stagesOf(spans, "chat scripted");
  assert.equal(stages.server.parentSpanId, "");
  assert.equal(stages.generation.attributes["gen_ai.request.stream"], true);
  assert.ok(typeof stages.generation.attributes["gen_ai.response.time_to_first_chunk"] === "number");
  assertUsage(stages.generation, { model: chunks[0]!.model, finishReason, usage });
});

test("a web app reply: gen_ai.conversation.id is the conversation's id", async () => {
  const conversation = await user.post("/api/conversations", { model: "scripted" });
  assert.equal(conversation.status, 201, conversation.text);
  const sent = await user.post(`/api/conversations/${conversation.body.id}/messages`, { content: `Hello (${CANARY})`, parent_id: null, model: "scripted" });
  assert.equal(sent.status, 200, sent.text);
  const done = sent.text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => JSON.parse(l.slice(6)) as { type: string; message?: { prompt_tokens: number; completion_tokens: number; reasoning_tokens: number } })
    .find((e) => e.type === "done")?.message;
  assert.ok(done, sent.text);

  const spans = await traceWhere((s) => s.attributes["http.route"] === "/api/conversations/:id/messages");
  const server = spans.find((s) => s.kind === 2)!;
  const generation = spans.find((s) => s.name === "chat scripted");
  assert.ok(generation, spans.map((s) => s.name).join(", "));
  assert.equal(generation.parentSpanId, server.spanId, "the reply, though it runs on its own, belongs to the request that started it");
  assert.equal(generation.attributes["gen_ai.conversation.id"], conversation.body.id);
  assert.equal(generation.attributes["gen_ai.usage.input_tokens"], done.prompt_tokens);
  assert.equal(generation.attributes["gen_ai.usage.output_tokens"], done.completion_tokens);
  assert.equal(generation.attributes["gen_ai.usage.reasoning.output_tokens"], done.reasoning_tokens);
});

test("no message content in any exported span; a refusal is traced; stopping the service flushes and unregisters", async () => {
  // A wrong key: the auth span records the refusal; the request's span is a 401, which is the client's error, not ours.
  const refused = await fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer sk-not-a-real-key-000000000000" },
    body: JSON.stringify({ model: "scripted", messages }),
  });
  assert.equal(refused.status, 401);
  await refused.text();
  const before = receiver.spans.length;
  // No flush here: stopping the service must export what is left.
  await service.stop();
  assert.ok(receiver.spans.length > before, "the last spans arrived at shutdown");
  const server = receiver.spans.find((s) => s.kind === 2 && s.attributes["http.response.status_code"] === 401);
  assert.ok(server, "the refused request's span");
  assert.equal(server.status, 0, "a 4xx leaves the server span's status unset");
  const auth = receiver.spans.find((s) => s.traceId === server.traceId && s.name === "sputnik.auth");
  assert.ok(auth);
  assert.equal(auth.status, 2);
  assert.ok(auth.events.includes("exception"));
  assert.equal(auth.attributes["error.type"], "invalid_api_key");

  assert.ok(answers.length > 0 && answers.every((a) => a.length >= 8), "answers long enough to search for");
  for (const body of receiver.bodies) {
    assert.ok(!body.includes(CANARY), "no prompt text was exported");
    for (const answer of answers) assert.ok(!body.includes(JSON.stringify(answer).slice(1, -1)), "no answer text was exported");
  }
  for (const span of receiver.spans) {
    for (const name of ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"]) {
      assert.ok(!(name in span.attributes), `${span.name} carries no ${name}`);
    }
  }
  assert.equal(tracingOn(), false);
  assert.equal(trace.getTracer("probe").startSpan("probe").isRecording(), false, "the global tracer is the no-op one again");
});
