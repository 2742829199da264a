/**
 * Moderation through the real service and real scripted models: operator policies on the input and
 * on the streamed output, never silent. Every answer is the scripted model's fixed text, so where a
 * policy trips is known exactly:
 *
 *   scripted          reasoning "The user asks a question. I will …", answer "Hello! I am the scripted
 *                     test model. The answer is 42." — `no-42` trips on the answer's third window,
 *                     after the reasoning and two sentences were shown;
 *   scripted-unicode  reasoning "The user wants some unicode. …" — `no-unicode` trips on the very
 *                     first window: nothing is shown but the notice;
 *   scripted-json     judged by `judge`, a classifier policy whose classifier is a served model
 *                     (`scripted-verdict`, which answers "flagged"): warnings, the answer shown whole;
 *   any model         `sea-guard` asks a second Sputnik's /v1/moderations (its own word policy
 *                     flags "kraken"): the upstream classifier path, for real.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { startTestService, type TestService } from "./support/service.ts";

const scripted = MODEL_SCRIPTS.scripted!;
const SHOWN = "Hello! I am the scripted test model.";
const NO_42 = "Withheld by this server's policy 'no-42': No answers about 42.";

let upstream: TestService;
let service: TestService;
let client: OpenAI;
let admin: AppClient;

before(async () => {
  upstream = await startTestService({
    models: ["scripted"],
    config: { moderation: { policies: [{ name: "kraken-watch", blockWords: ["kraken"], reason: "No sea monsters." }] } },
  });
  service = await startTestService({
    models: ["scripted", "scripted-unicode", "scripted-json", "scripted-verdict"],
    config: {
      auth: { passwordHashing: TEST_PASSWORD_HASHING },
      moderation: {
        policies: [
          { name: "no-zanzibar", applyTo: "input", blockWords: ["zanzibar"], reason: "Zanzibar is off-topic here." },
          { name: "no-42", applyTo: "output", models: ["scripted"], blockWords: ["42"], reason: "No answers about 42." },
          { name: "no-unicode", applyTo: "output", models: ["scripted-unicode"], blockPatterns: ["\\buni\\w*code\\b"], reason: "Not today." },
          { name: "judge", applyTo: "both", action: "warn", models: ["scripted-json"], classifier: { model: "scripted-verdict" }, reason: "The judge model flagged it." },
          { name: "sea-guard", applyTo: "input", classifier: { url: `${upstream.url}/v1`, apiKey: upstream.localKey!, categories: ["kraken-watch"] } },
        ],
      },
    },
  });
  admin = new AppClient(service.url);
  assert.equal((await admin.post("/api/auth/signup", { username: "root-admin", password: "admin-password-1" })).status, 201);
  const key = await admin.post("/api/keys", { name: "tests" });
  client = new OpenAI({ baseURL: `${service.url}/v1`, apiKey: key.body.key as string, maxRetries: 0 });
});
after(async () => {
  await service?.stop();
  await upstream?.stop();
});

type Message = OpenAI.Chat.Completions.ChatCompletionMessage & { reasoning_content?: string; moderation?: Moderation };
interface Moderation {
  withheld: boolean;
  interventions: Array<{ policy: string; action: string; stage: string; channel: string | null; offset: number; reason: string; notice: string }>;
}

const ask = (model: string, content: string) => ({ model, messages: [{ role: "user" as const, content }] });

/** A streamed completion's chunks, joined. */
async function streamed(model: string, content: string) {
  const stream = await client.chat.completions.create({ ...ask(model, content), stream: true, stream_options: { include_usage: true } });
  const chunks: Array<OpenAI.Chat.Completions.ChatCompletionChunk> = [];
  for await (const chunk of stream) chunks.push(chunk);
  const deltas = chunks.flatMap((c) => c.choices.map((choice) => choice.delta as { content?: string | null; reasoning_content?: string | null; moderation?: Moderation }));
  return {
    chunks,
    content: deltas.map((d) => d.content ?? "").join(""),
    reasoning: deltas.map((d) => d.reasoning_content ?? "").join(""),
    moderation: deltas.filter((d) => d.moderation).map((d) => d.moderation!),
    finish: chunks.flatMap((c) => c.choices.map((choice) => choice.finish_reason)).filter((f) => f !== null),
  };
}

test("input: a blocked word refuses with 400 moderation_blocked naming the policy and its reason, streamed or not", async () => {
  for (const stream of [false, true]) {
    await assert.rejects(client.chat.completions.create({ ...ask("scripted", "Plan a trip to Zanzibar"), stream }), (error: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(error.status, 400);
      assert.equal(error.code, "moderation_blocked");
      assert.equal(error.param, "messages");
      assert.equal(error.message, "400 Withheld by this server's policy 'no-zanzibar': Zanzibar is off-topic here.");
      return true;
    });
  }
  // A raw completion's prompt is input too.
  await assert.rejects(client.completions.create({ model: "scripted", prompt: "zanzibar" }), { status: 400, code: "moderation_blocked", param: "prompt" });
});

test("output: a withhold before any text shows only the notice (content_filter), streamed and not", async () => {
  const expected: Moderation = {
    withheld: true,
    interventions: [
      { policy: "no-unicode", action: "withhold", stage: "output", channel: "reasoning", offset: 0, reason: "Not today.", notice: "Withheld by this server's policy 'no-unicode': Not today." },
    ],
  };
  const completion = await client.chat.completions.create(ask("scripted-unicode", "Greet me"));
  const message = completion.choices[0]!.message as Message;
  assert.equal(message.content, "");
  assert.equal(message.reasoning_content, "");
  assert.equal(completion.choices[0]!.finish_reason, "content_filter");
  assert.deepEqual(message.moderation, expected);
  assert.ok(completion.usage!.completion_tokens > 0, "what was generated is on the books");

  const s = await streamed("scripted-unicode", "Greet me");
  assert.equal(s.content, "");
  assert.equal(s.reasoning, "");
  assert.deepEqual(s.moderation, [expected]);
  assert.deepEqual(s.finish, ["content_filter"]);
});

test("output: a trip after text was shown keeps that text and ends with the notice, streamed and not", async () => {
  const completion = await client.chat.completions.create(ask("scripted", "What is the answer?"));
  const message = completion.choices[0]!.message as Message;
  assert.equal(message.reasoning_content, scripted.reasoning);
  assert.equal(message.content, SHOWN);
  assert.equal(completion.choices[0]!.finish_reason, "content_filter");
  assert.deepEqual(message.moderation, {
    withheld: true,
    interventions: [{ policy: "no-42", action: "withhold", stage: "output", channel: "content", offset: SHOWN.length, reason: "No answers about 42.", notice: NO_42 }],
  });

  const s = await streamed("scripted", "What is the answer?");
  assert.equal(s.reasoning, scripted.reasoning);
  assert.equal(s.content, SHOWN, "exactly what was shown before the trip, nothing after it");
  assert.equal(s.moderation.length, 1);
  assert.equal(s.moderation[0]!.interventions[0]!.notice, NO_42);
  // The moderation chunk comes right before the finish chunk, then the usage chunk.
  const last = s.chunks.slice(-3);
  assert.ok((last[0]!.choices[0]!.delta as { moderation?: unknown }).moderation);
  assert.equal(last[1]!.choices[0]!.finish_reason, "content_filter");
  assert.ok(last[2]!.usage);
});

test("a classifier policy on a served model warns on the input and on the output; the answer is shown whole", async () => {
  const completion = await client.chat.completions.create(ask("scripted-json", "Where?"));
  const message = completion.choices[0]!.message as Message;
  assert.equal(message.content, MODEL_SCRIPTS["scripted-json"]!.answer);
  assert.equal(completion.choices[0]!.finish_reason, "stop");
  assert.equal(message.moderation!.withheld, false);
  assert.deepEqual(
    message.moderation!.interventions.map((i) => [i.policy, i.action, i.stage, i.channel, i.notice]),
    [
      ["judge", "warn", "input", null, "Flagged by this server's policy 'judge': The judge model flagged it."],
      ["judge", "warn", "output", "reasoning", "Flagged by this server's policy 'judge': The judge model flagged it."],
    ],
  );
});

test("an upstream /v1/moderations (a second Sputnik) as a classifier", async () => {
  await assert.rejects(client.chat.completions.create(ask("scripted", "Is the kraken real?")), (error: InstanceType<typeof OpenAI.APIError>) => {
    assert.equal(error.code, "moderation_blocked");
    assert.equal(error.message, "400 Withheld by this server's policy 'sea-guard': the moderation classifier flagged it (kraken-watch)");
    return true;
  });
  const ok = await client.chat.completions.create(ask("scripted-json", "Is the sea deep?"));
  assert.equal(ok.choices[0]!.message.content, MODEL_SCRIPTS["scripted-json"]!.answer, "the upstream lets other texts through");
});

test("POST /v1/moderations in OpenAI's shape, through the openai SDK", async () => {
  const answer = await client.moderations.create({ model: "scripted", input: ["What is 42?", "A trip to Zanzibar", "the kraken", "hello"] });
  assert.match(answer.id, /^modr-/);
  assert.equal(answer.model, "scripted");
  assert.deepEqual(
    answer.results.map((r) => [r.flagged, r.categories]),
    [
      [true, { "no-zanzibar": false, "no-42": true, "sea-guard": false }],
      [true, { "no-zanzibar": true, "no-42": false, "sea-guard": false }],
      [true, { "no-zanzibar": false, "no-42": false, "sea-guard": true }],
      [false, { "no-zanzibar": false, "no-42": false, "sea-guard": false }],
    ],
  );
  assert.equal((answer.results[0]!.category_scores as unknown as Record<string, number>)["no-42"], 1);
  // No served model named: every policy, the served-model classifier included.
  const all = await client.moderations.create({ input: "hello" });
  assert.equal(all.model, "sputnik-moderation");
  assert.deepEqual(Object.keys(all.results[0]!.categories).sort(), ["judge", "no-42", "no-unicode", "no-zanzibar", "sea-guard"]);
  assert.equal((all.results[0]!.categories as unknown as Record<string, boolean>).judge, true);
  await assert.rejects(client.moderations.create({ input: [] as string[] }), { status: 400 });
});

test("Anthropic's surface shows the notice as a text block of its own, stop_reason refusal", async () => {
  const key = (await admin.post("/api/keys", { name: "anthropic" })).body.key as string;
  const anthropic = new Anthropic({ baseURL: `${service.url}/anthropic`, apiKey: key, maxRetries: 0 });
  const message = await anthropic.messages.create({ model: "scripted", max_tokens: 200, messages: [{ role: "user", content: "What is the answer?" }] });
  assert.equal(message.stop_reason, "refusal");
  const texts = message.content.filter((b) => b.type === "text").map((b) => (b as { text: string }).text);
  assert.deepEqual(texts, [SHOWN, NO_42]);
  const stream = anthropic.messages.stream({ model: "scripted", max_tokens: 200, messages: [{ role: "user", content: "What is the answer?" }] });
  const final = await stream.finalMessage();
  assert.deepEqual(final.content.filter((b) => b.type === "text").map((b) => (b as { text: string }).text), [SHOWN, NO_42]);
  assert.equal(final.stop_reason, "refusal");
});

test("the web app stores the notice with the answer, keeps the text shown, and admins see every intervention", async () => {
  const conversation = (await admin.post("/api/conversations", { model: "scripted" })).body;
  const sent = await admin.post(`/api/conversations/${conversation.id}/messages`, { content: "What is the answer?", model: "scripted" }, { headers: { accept: "text/event-stream" } });
  assert.equal(sent.status, 200, sent.text);
  const events = sent.text
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice(6)));
  const streamedText = events.filter((e) => e.type === "content").map((e) => e.text).join("");
  assert.equal(streamedText, SHOWN);
  const done = events.find((e) => e.type === "done");
  assert.equal(done.message.content, SHOWN, "what was shown is stored");
  assert.equal(done.message.status, "complete");
  assert.equal(done.message.moderation.withheld, true);
  assert.equal(done.message.moderation.interventions[0].notice, NO_42);
  // After a reload: the same text, the same notice.
  const stored = (await admin.get(`/api/conversations/${conversation.id}`)).body;
  const answer = (stored.messages as Array<{ id: string; role: string; content: string; moderation: Moderation | null }>).find((m) => m.role === "assistant")!;
  assert.equal(answer.content, SHOWN);
  assert.deepEqual(answer.moderation, done.message.moderation);

  // A refused question is not stored in the conversation, and says why.
  const refused = await admin.post(`/api/conversations/${conversation.id}/messages`, { content: "zanzibar", model: "scripted" });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, "moderation_blocked");

  const listed = await admin.get("/api/admin/moderation?limit=200");
  assert.equal(listed.status, 200, listed.text);
  assert.deepEqual(
    listed.body.policies.map((p: { name: string; action: string; classifier: string | null }) => [p.name, p.action, p.classifier]),
    [
      ["no-zanzibar", "withhold", null],
      ["no-42", "withhold", null],
      ["no-unicode", "withhold", null],
      ["judge", "warn", "model scripted-verdict"],
      ["sea-guard", "withhold", `${upstream.url}/v1/moderations`],
    ],
  );
  const web = listed.body.data.find((e: { message_id: string | null }) => e.message_id === answer.id);
  assert.deepEqual([web.policy, web.action, web.stage, web.channel, web.offset, web.matched, web.conversation_id], ["no-42", "withhold", "output", "content", SHOWN.length, "42", conversation.id]);
  const byPolicy = (name: string) => listed.body.data.filter((e: { policy: string }) => e.policy === name).length;
  assert.ok(byPolicy("no-zanzibar") >= 4, "refused questions are listed (API and web)");
  assert.ok(byPolicy("sea-guard") >= 1);
  assert.equal((await admin.get("/api/admin/moderation?policy=judge")).body.data.length, 4, "input and output warnings of two answers");

  // The picker lists the policies that check each model.
  const models = (await admin.get("/api/models")).body.data as Array<{ id: string; moderation_policies: string[] }>;
  assert.deepEqual(models.find((m) => m.id === "scripted")!.moderation_policies, ["no-zanzibar", "no-42", "sea-guard"]);
  assert.deepEqual(models.find((m) => m.id === "scripted-json")!.moderation_policies, ["no-zanzibar", "judge", "sea-guard"]);

  // Interventions name users and may quote withheld text: admins only.
  const user = new AppClient(service.url);
  assert.equal((await user.post("/api/auth/signup", { username: "plain-user", password: "user-password-1" })).status, 201);
  assert.equal((await user.get("/api/admin/moderation")).status, 403);
});

test("/metrics counts interventions by policy, action and stage", async () => {
  const metrics = await (await fetch(`${service.url}/metrics`)).text();
  const count = (labels: string) => Number(new RegExp(`^sputnik_moderation_interventions_total\\{${labels}\\} (\\d+)`, "m").exec(metrics)?.[1] ?? 0);
  assert.ok(count('policy="no-42",action="withhold",stage="output"') >= 5);
  assert.ok(count('policy="no-unicode",action="withhold",stage="output"') >= 2);
  assert.ok(count('policy="no-zanzibar",action="withhold",stage="input"') >= 4);
  assert.equal(count('policy="judge",action="warn",stage="input"'), 2, "two chats with scripted-json; /v1/moderations answers, it does not intervene");
});
