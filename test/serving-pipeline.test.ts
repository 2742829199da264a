/**
 * The serving pipeline seen from both surfaces (/v1 with an API key, the web app's reply stream
 * with a session): each request is tokenized once, settled once, and its books (ledger entry,
 * request log row, and for the web app the stored answer) are committed before the client is told
 * the answer is complete (`[DONE]`, the app's `done`).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Meter } from "../src/billing/meter.ts";
import { AppClient } from "./support/appClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

let service: TestService;
let user: AppClient;
let key: string;
let settlements = 0;

before(async () => {
  service = await startTestService({ models: ["scripted"] });
  // Counts every settlement the pipeline makes (the real Meter does the work).
  const meter = service.serving.deps.meter as Meter;
  const settle = meter.settle.bind(meter);
  meter.settle = (async (...args: Parameters<Meter["settle"]>) => {
    settlements++;
    return settle(...args);
  }) as Meter["settle"];
  user = new AppClient(service.url);
  const signedUp = await user.post("/api/auth/signup", { username: "pipeline", password: "correct horse battery staple" });
  assert.equal(signedUp.status, 201, signedUp.text);
  const created = await user.post("/api/keys", { name: "tests" });
  assert.equal(created.status, 201, created.text);
  key = created.body.key;
});
after(() => service.stop());

function tokenizations(): number {
  return service.router.stats().find((s) => s.model === "scripted")!.promptTokenizations;
}

async function counts() {
  const db = service.store.db;
  const log = await db.selectFrom("request_log").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
  const ledger = await db.selectFrom("usage_ledger").select((eb) => eb.fn.countAll<number>().as("n")).where("status", "!=", "open").executeTakeFirstOrThrow();
  return { log: Number(log.n), ledger: Number(ledger.n), settlements, tokenizations: tokenizations() };
}

async function completion(body: Record<string, unknown>) {
  return fetch(`${service.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: "scripted", messages: [{ role: "user", content: "What is the answer?" }], ...body }),
  });
}

test("/v1: one tokenization and one settlement per request, streamed or not; refusals tokenize nothing", async () => {
  const start = await counts();
  const plain = await completion({});
  assert.equal(plain.status, 200, await plain.clone().text());
  await plain.json();
  const afterPlain = await counts();
  assert.deepEqual(
    [afterPlain.tokenizations - start.tokenizations, afterPlain.settlements - start.settlements, afterPlain.log - start.log, afterPlain.ledger - start.ledger],
    [1, 1, 1, 1],
  );

  const streamed = await completion({ stream: true });
  assert.equal(streamed.status, 200);
  assert.match(await streamed.text(), /data: \[DONE\]/);
  const afterStream = await counts();
  assert.deepEqual(
    [afterStream.tokenizations - afterPlain.tokenizations, afterStream.settlements - afterPlain.settlements, afterStream.log - afterPlain.log],
    [1, 1, 1],
  );

  // A bad request is refused before the engine tokenizes anything (and logged once, unbilled).
  const refused = await completion({ model: "no-such-model" });
  assert.equal(refused.status, 404);
  const afterRefusal = await counts();
  assert.equal(afterRefusal.tokenizations, afterStream.tokenizations);
  assert.equal(afterRefusal.settlements, afterStream.settlements, "no charge was opened, so none is settled");
  assert.equal(afterRefusal.log - afterStream.log, 1);
});

test("/v1: a prompt too long for the context is refused from its size alone, without tokenizing", async () => {
  const start = await counts();
  const response = await completion({ messages: [{ role: "user", content: "word ".repeat(60_000) }] });
  assert.equal(response.status, 400);
  const body = (await response.json()) as { error: { code: string; param: string; message: string } };
  assert.deepEqual([body.error.code, body.error.param], ["context_length_exceeded", "messages"]);
  assert.match(body.error.message, /at least \d+ tokens/);
  assert.equal((await counts()).tokenizations, start.tokenizations);
});

test("/v1 stream: the request log row and the settled ledger entry exist when [DONE] arrives", async () => {
  const response = await completion({ stream: true, stream_options: { include_usage: true } });
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (text.includes("data: [DONE]")) break;
  }
  // Read the books the moment [DONE] is seen, before the response has even ended.
  const id = /"id":"([^"]+)"/.exec(text)?.[1];
  assert.ok(id);
  const rows = await service.store.db.selectFrom("request_log").selectAll().orderBy("created_at", "desc").limit(1).execute();
  const ledger = await service.store.db.selectFrom("usage_ledger").selectAll().where("id", "=", rows[0]!.id).executeTakeFirst();
  assert.equal(rows[0]?.status, 200);
  assert.equal(ledger?.status, "completed");
  const usage = JSON.parse(text.split("\n").filter((l) => l.startsWith("data: {") && l.includes('"usage"')).at(-1)!.slice(6)).usage;
  assert.equal(rows[0]!.completion_tokens, usage.completion_tokens);
  await reader.cancel().catch(() => undefined);
});

test("web app: one tokenization and one settlement per reply; the answer, ledger and log are stored before `done`", async () => {
  const conversation = await user.post("/api/conversations", { model: "scripted" });
  assert.equal(conversation.status, 201, conversation.text);
  const start = await counts();
  const sent = await user.post(`/api/conversations/${conversation.body.id}/messages`, { content: "What is the answer?", parent_id: null, model: "scripted" });
  assert.equal(sent.status, 200, sent.text);
  const events = sent.text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => JSON.parse(l.slice(6)) as { type: string; message?: { id: string; status: string; completion_tokens: number } });
  const done = events.find((e) => e.type === "done");
  assert.ok(done?.message, sent.text);
  assert.equal(done.message.status, "complete");
  const end = await counts();
  assert.deepEqual([end.tokenizations - start.tokenizations, end.settlements - start.settlements, end.log - start.log, end.ledger - start.ledger], [1, 1, 1, 1]);
  const stored = await service.store.db.selectFrom("messages").selectAll().where("id", "=", done.message.id).executeTakeFirstOrThrow();
  assert.equal(stored.status, "complete");
  assert.equal(stored.completion_tokens, done.message.completion_tokens);

  // A refused reply (unknown model) answers with its status and stores nothing.
  const before = (await service.store.db.selectFrom("messages").select("id").execute()).length;
  const refused = await user.post(`/api/conversations/${conversation.body.id}/messages`, { content: "Again", parent_id: done.message.id, model: "nope" });
  assert.equal(refused.status, 404, refused.text);
  assert.equal((await service.store.db.selectFrom("messages").select("id").execute()).length, before);
});

test("web app: a conversation remembers only a model the caller may use", async () => {
  const bad = await user.post("/api/conversations", { model: "<script>" });
  assert.equal(bad.status, 404, bad.text);
  assert.equal(bad.body.error.param, "model");
  const good = await user.post("/api/conversations", { model: "scripted" });
  assert.equal(good.status, 201);
});
