/**
 * The chat's conversation features over HTTP, on SQLite and PostgreSQL, with real llama.cpp
 * models: per-conversation settings (validated, and really applied to the answers), pins,
 * full-text search of answers, Markdown/JSON export, and read-only share links (snapshot,
 * nothing of the account, revoke → 404 at once, audit rows).
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { after, before } from "node:test";
import pino from "pino";
import { getPlan, savePlan } from "../src/billing/plans.ts";
import { loadConfig } from "../src/config/load.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";
import { buildServer } from "../src/http/server.ts";
import { TEST_PASSWORD, TEST_PASSWORD_HASHING } from "./support/accountsServer.ts";
import { AppClient } from "./support/appClient.ts";
import { forEachDatabase, type TestStore } from "./support/databases.ts";
import { startTestService, type TestService } from "./support/service.ts";
import { setSignupModeForTests } from "./support/signupMode.ts";

// One engine (real models) for the file; every test gets its own database and HTTP server.
let service: TestService;
before(async () => {
  service = await startTestService({ models: ["scripted", "scripted-long"] });
});
after(() => service.stop());

async function startServer(t: TestContext, store: TestStore) {
  const config = loadConfig({
    env: {},
    flags: { host: "127.0.0.1", port: 0, dataDir: service.dataDir, logLevel: "silent", auth: { passwordHashing: TEST_PASSWORD_HASHING } },
  });
  await setSignupModeForTests(store.db, "open");
  const app = await buildServer({ router: service.router, logger: pino({ level: "silent" }), bodyLimit: config.bodyLimit, store, config });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => app.close());
  const signUp = async (username: string) => {
    const client = new AppClient(url);
    const res = await client.post("/api/auth/signup", { username, password: TEST_PASSWORD });
    assert.equal(res.status, 201, res.text);
    return client;
  };
  return { url, signUp };
}

function events(text: string): Array<{ type: string; [k: string]: any }> {
  return text
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice("data: ".length)));
}

/** Sends `content` after `parentId` and returns the stored answer. */
async function ask(client: AppClient, conversationId: string, content: string, parentId: string | null, extra: Record<string, unknown> = {}) {
  const res = await client.post(`/api/conversations/${conversationId}/messages`, { content, parent_id: parentId, model: "scripted", ...extra });
  assert.equal(res.status, 200, res.text);
  const done = events(res.text).find((e) => e.type === "done");
  assert.ok(done, res.text);
  return done.message as { id: string; content: string; reasoning: string; prompt_tokens: number; completion_tokens: number; reasoning_tokens: number; status: string };
}

forEachDatabase("settings are validated with clear errors, stored with the conversation, and reach the model", async (store, t) => {
  const server = await startServer(t, store);
  const alice = await server.signUp("alice");
  const bob = await server.signUp("bob");
  const conv = (await alice.post("/api/conversations", { model: "scripted" })).body;
  const base = `/api/conversations/${conv.id}`;
  assert.deepEqual(conv.settings, { system_prompt: null, temperature: null, max_tokens: null, thinking_budget: null });

  // The plan caps the thinking budget.
  const free = (await getPlan(store.db, "free"))!;
  await savePlan(store.db, { ...free, maxThinkingBudget: 500 });
  const settings = await alice.get(`${base}/settings`);
  assert.equal(settings.status, 200);
  assert.equal(settings.body.limits.max_thinking_budget, 500);

  const refusals: Array<[unknown, string, RegExp]> = [
    [{ temperature: 3 }, "settings.temperature", /temperature must be from 0 to 2/],
    [{ temperature: "hot" }, "settings.temperature", /temperature must be a number/],
    [{ max_tokens: 0 }, "settings.max_tokens", /at least 1 token/],
    [{ max_tokens: 2.5 }, "settings.max_tokens", /whole number/],
    [{ thinking_budget: -1 }, "settings.thinking_budget", /cannot be negative/],
    [{ thinking_budget: 501 }, "settings.thinking_budget", /plan allows a thinking budget of at most 500 tokens/],
    [{ system_prompt: "x".repeat(20_001) }, "settings.system_prompt", /too long: at most 20,000 characters/],
    [{ top_k: 3 }, "settings", /top_k/],
  ];
  for (const [patch, param, message] of refusals) {
    const res = await alice.patch(base, { settings: patch });
    assert.equal(res.status, 400, `${JSON.stringify(patch)}: ${res.text}`);
    assert.equal(res.body.error.param, param, res.text);
    assert.match(res.body.error.message, message);
  }
  assert.equal((await bob.patch(base, { settings: { temperature: 1 } })).status, 404, "only the owner");
  assert.equal((await bob.get(`${base}/settings`)).status, 404);

  // Without settings: the baseline prompt.
  const plain = await ask(alice, conv.id, "What is the answer?", null, { thinking: false });
  assert.equal(plain.content, MODEL_SCRIPTS.scripted.answer);

  const saved = await alice.patch(base, { settings: { system_prompt: "You are a terse assistant who answers in one line.", temperature: 0.2 } });
  assert.equal(saved.status, 200, saved.text);
  assert.deepEqual(saved.body.settings, { system_prompt: "You are a terse assistant who answers in one line.", temperature: 0.2, max_tokens: null, thinking_budget: null });
  assert.equal((await alice.get(base)).body.conversation.settings.temperature, 0.2, "stored");
  // Regenerating the same question with the system prompt: the prompt grew by it.
  const regenerated = events((await alice.post(`${base}/messages`, { regenerate: plain.id, model: "scripted", thinking: false })).text).find((e) => e.type === "done")!.message;
  assert.ok(regenerated.prompt_tokens > plain.prompt_tokens + 8, `the system prompt reached the model: ${plain.prompt_tokens} → ${regenerated.prompt_tokens} tokens`);

  // The answer length and the thinking budget bound the generation.
  assert.equal((await alice.patch(base, { settings: { max_tokens: 3, system_prompt: null } })).status, 200);
  const short = await ask(alice, conv.id, "Once more", regenerated.id, { thinking: false });
  assert.ok(short.completion_tokens <= 3, `max_tokens 3: ${short.completion_tokens} tokens`);
  assert.ok(MODEL_SCRIPTS.scripted.answer.startsWith(short.content) && short.content.length < MODEL_SCRIPTS.scripted.answer.length, short.content);

  const thinker = (await alice.post("/api/conversations", {})).body;
  assert.equal((await alice.patch(`/api/conversations/${thinker.id}`, { settings: { thinking_budget: 3 } })).status, 200);
  const res = await alice.post(`/api/conversations/${thinker.id}/messages`, { content: "Think", parent_id: null, model: "scripted-long" });
  const budgeted = events(res.text).find((e) => e.type === "done")!.message;
  assert.ok(budgeted.reasoning_tokens <= 3, `thinking budget 3: ${budgeted.reasoning_tokens} reasoning tokens`);
  assert.equal(budgeted.content, MODEL_SCRIPTS["scripted-long"].answer);

  // null clears one; all cleared is the defaults again.
  const cleared = await alice.patch(base, { settings: { max_tokens: null, temperature: null } });
  assert.deepEqual(cleared.body.settings, { system_prompt: null, temperature: null, max_tokens: null, thinking_budget: null });
});

forEachDatabase("pins, full-text search of answers, and export as Markdown and JSON", async (store, t) => {
  const server = await startServer(t, store);
  const alice = await server.signUp("alice");
  const bob = await server.signUp("bob");
  const first = (await alice.post("/api/conversations", {})).body;
  const answer = await ask(alice, first.id, "Tell me something", null);
  const second = (await alice.post("/api/conversations", {})).body;
  await ask(alice, second.id, "Another question", null);

  // Pinned first, even when older; unpinning puts it back in its place.
  assert.equal((await alice.patch(`/api/conversations/${first.id}`, { pinned: true })).body.pinned_at !== null, true);
  let list = (await alice.get("/api/conversations")).body.data;
  assert.deepEqual(list.map((c: { id: string }) => c.id), [first.id, second.id]);
  assert.equal((await bob.patch(`/api/conversations/${first.id}`, { pinned: true })).status, 404);
  await alice.patch(`/api/conversations/${first.id}`, { pinned: false });
  list = (await alice.get("/api/conversations")).body.data;
  assert.deepEqual(list.map((c: { id: string }) => c.id), [second.id, first.id]);

  // A word of the answers (not of any title): both conversations, with the answer's snippet.
  const found = await alice.get("/api/conversations?q=scripted");
  assert.equal(found.status, 200);
  assert.deepEqual(found.body.data.map((c: { id: string }) => c.id).sort(), [first.id, second.id].sort());
  const hit = found.body.data.find((c: { id: string }) => c.id === first.id);
  assert.equal(hit.match.message_id, answer.id);
  assert.equal(hit.match.role, "assistant");
  assert.equal(hit.match.snippet, MODEL_SCRIPTS.scripted.answer);
  assert.deepEqual(hit.match.highlights.map(([s, e]: [number, number]) => hit.match.snippet.slice(s, e)), ["scripted"]);
  assert.deepEqual((await alice.get("/api/conversations?q=something")).body.data.map((c: { id: string }) => c.id), [first.id], "the question matches too");
  assert.deepEqual((await bob.get("/api/conversations?q=scripted")).body.data, [], "only one's own");
  const tooLong = await alice.get(`/api/conversations?q=${"x".repeat(201)}`);
  assert.equal(tooLong.status, 400);
  assert.match(tooLong.body.error.message, /search is too long/);
  assert.equal((await alice.get(`/api/conversations?q=${encodeURIComponent('"unclosed NEAR( * ^')}`)).status, 200);

  // Export: the current branch, reasoning only when asked.
  const json = await alice.get(`/api/conversations/${first.id}/export?format=json`);
  assert.equal(json.status, 200);
  assert.match(String(json.headers["content-disposition"]), /^attachment; filename="tell-me-something\.json"/);
  const doc = JSON.parse(json.text);
  assert.equal(doc.format, "sputnik-conversation/1");
  assert.equal(doc.conversation.title, "Tell me something");
  assert.deepEqual(doc.messages.map((m: { role: string }) => m.role), ["user", "assistant"]);
  assert.equal(doc.messages[1].content, MODEL_SCRIPTS.scripted.answer);
  assert.ok(!("reasoning" in doc.messages[1]));
  const withReasoning = JSON.parse((await alice.get(`/api/conversations/${first.id}/export?format=json&reasoning=true`)).text);
  assert.equal(withReasoning.messages[1].reasoning, MODEL_SCRIPTS.scripted.reasoning);
  const md = await alice.get(`/api/conversations/${first.id}/export?format=md&reasoning=1`);
  assert.match(String(md.headers["content-type"]), /^text\/markdown/);
  assert.match(md.text, /^# Tell me something\n/);
  assert.match(md.text, /\n## User\n\nTell me something\n/);
  assert.match(md.text, /\n## Assistant\n/);
  assert.ok(md.text.includes(MODEL_SCRIPTS.scripted.answer));
  assert.ok(md.text.includes(`> ${MODEL_SCRIPTS.scripted.reasoning.split("\n")[0]}`));
  assert.ok(!(await alice.get(`/api/conversations/${first.id}/export?format=md`)).text.includes("Reasoning"));
  assert.equal((await alice.get(`/api/conversations/${first.id}/export?format=pdf`)).status, 400);
  assert.equal((await bob.get(`/api/conversations/${first.id}/export?format=json`)).status, 404);
});

forEachDatabase("a share link shows a snapshot of the branch to anyone, nothing of the account, and 404 once revoked", async (store, t) => {
  const server = await startServer(t, store);
  const alice = await server.signUp("alice");
  const bob = await server.signUp("bob");
  const anyone = new AppClient(server.url);
  const conv = (await alice.post("/api/conversations", {})).body;
  const base = `/api/conversations/${conv.id}`;
  assert.equal((await alice.post(`${base}/shares`, {})).status, 409, "nothing to share before the first answer");
  const first = await ask(alice, conv.id, "Share this", null);

  const created = await alice.post(`${base}/shares`, {});
  assert.equal(created.status, 201, created.text);
  const path: string = created.body.path;
  assert.match(path, /^\/s\/[0-9A-Za-z]{43}$/);
  const token = path.slice(3);
  const shown = await anyone.get(`/api/shared/${token}`);
  assert.equal(shown.status, 200, shown.text);
  assert.equal(shown.headers["cache-control"], "no-store");
  assert.equal(shown.body.title, "Share this");
  assert.equal(shown.body.author, null);
  assert.deepEqual(shown.body.messages.map((m: { role: string; content: string }) => [m.role, m.content]), [
    ["user", "Share this"],
    ["assistant", MODEL_SCRIPTS.scripted.answer],
  ]);
  assert.ok(!("reasoning" in shown.body.messages[1]), "no reasoning unless chosen");
  // Nothing that leads elsewhere: no conversation, message or user id, no user name, no token hash.
  const userId = (await alice.get("/api/auth/state")).body.user.id as string;
  for (const secret of [conv.id, first.id, userId, "alice", created.body.id]) assert.ok(!shown.text.includes(secret), `the shared page leaks ${secret}`);
  assert.ok(!JSON.stringify(await store.db.selectFrom("conversation_shares").selectAll().execute()).includes(token), "only the token's hash is stored");

  // A snapshot: what is said after sharing is not shared.
  await ask(alice, conv.id, "A private follow-up", first.id);
  assert.equal((await anyone.get(`/api/shared/${token}`)).body.messages.length, 2);

  // With reasoning and the owner's name, when chosen.
  const open = await alice.post(`${base}/shares`, { include_reasoning: true, show_author: true });
  const full = (await anyone.get(`/api/shared/${open.body.path.slice(3)}`)).body;
  assert.equal(full.author, "alice");
  assert.equal(full.messages.length, 4);
  assert.equal(full.messages[1].reasoning, MODEL_SCRIPTS.scripted.reasoning);
  assert.equal((await alice.post(`${base}/shares`, { include_reasoning: "yes" })).status, 400);

  // Only the owner lists and revokes; the list never shows a token again.
  const listed = await alice.get(`${base}/shares`);
  assert.deepEqual(listed.body.data.map((s: { id: string }) => s.id), [open.body.id, created.body.id]);
  assert.ok(listed.body.data.every((s: object) => !("path" in s)));
  assert.equal((await bob.get(`${base}/shares`)).status, 404);
  assert.equal((await bob.delete(`${base}/shares/${created.body.id}`)).status, 404);
  assert.equal((await anyone.delete(`${base}/shares/${created.body.id}`)).status, 401);

  assert.equal((await alice.delete(`${base}/shares/${created.body.id}`)).status, 204);
  const gone = await anyone.get(`/api/shared/${token}`);
  assert.equal(gone.status, 404, "revoked: 404 at once");
  assert.equal(gone.body.error.code, "not_found");
  assert.equal((await alice.delete(`${base}/shares/${created.body.id}`)).status, 404, "already revoked");
  assert.equal((await anyone.get("/api/shared/not-a-token")).status, 404);
  assert.equal((await anyone.get(`/api/shared/${"A".repeat(43)}`)).status, 404);

  const audit = await store.db.selectFrom("audit_log").select(["action", "target_id"]).where("action", "like", "conversation_share.%").orderBy("created_at").orderBy("id").execute();
  assert.deepEqual(audit.map((a) => a.action), ["conversation_share.create", "conversation_share.create", "conversation_share.revoke"]);
  assert.equal(audit[2]!.target_id, created.body.id);

  // Deleting the conversation ends its links too.
  assert.equal((await alice.delete(base)).status, 204);
  assert.equal((await anyone.get(`/api/shared/${open.body.path.slice(3)}`)).status, 404);
});
