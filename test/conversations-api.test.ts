/**
 * The web app's conversations API over HTTP, on SQLite and PostgreSQL, with real llama.cpp models:
 * privacy (404 for what isn't yours), the SSE reply stream, refusals before streaming, stop, and
 * answers left streaming by a dead process coming back as interrupted.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { after, before } from "node:test";
import pino from "pino";
import { insertMessage, updateMessage } from "../src/chat/conversations.ts";
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
    // The engine's data dir: a PostgreSQL test store's own is the shared tmpdir, no place for a local key.
    flags: { host: "127.0.0.1", port: 0, dataDir: service.dataDir, logLevel: "silent", auth: { passwordHashing: TEST_PASSWORD_HASHING } },
  });
  // These tests sign several people up: open sign-up, as an admin would set it (the default is approval).
  await setSignupModeForTests(store.db, "open");
  const app = await buildServer({ router: service.router, logger: pino({ level: "silent" }), bodyLimit: config.bodyLimit, store, config });
  const url = await app.listen({ host: "127.0.0.1", port: 0 });
  let closed = false;
  const close = async () => {
    if (!closed) await app.close();
    closed = true;
  };
  t.after(close);
  const signUp = async (username: string) => {
    const client = new AppClient(url);
    const res = await client.post("/api/auth/signup", { username, password: TEST_PASSWORD });
    assert.equal(res.status, 201, res.text);
    return client;
  };
  return { url, signUp, close };
}

/** The JSON events of an SSE body. */
function events(text: string): Array<{ type: string; [k: string]: any }> {
  return text
    // One `data:` line per event (an `id:` line may come before it).
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice("data: ".length)));
}

forEachDatabase("conversations are private: another user gets 404 for every one of them, by path or body", async (store, t) => {
  const server = await startServer(t, store);
  const alice = await server.signUp("alice");
  const bob = await server.signUp("bob");
  const conv = (await alice.post("/api/conversations", { model: "scripted" })).body;
  const sent = events((await alice.post(`/api/conversations/${conv.id}/messages`, { content: "Hi", parent_id: null, model: "scripted" })).text);
  const answer = sent.find((e) => e.type === "done")!.message;

  const base = `/api/conversations/${conv.id}`;
  const attempts = [
    await bob.get(base),
    await bob.patch(base, { title: "mine now" }),
    await bob.delete(base),
    await bob.post(`${base}/messages`, { content: "hello", parent_id: answer.id, model: "scripted" }),
    await bob.post(`${base}/messages`, { regenerate: answer.id, model: "scripted" }),
    await bob.post(`${base}/messages/${answer.id}/stop`),
  ];
  for (const res of attempts) {
    assert.equal(res.status, 404, res.text);
    assert.equal(res.body.error.message, "Conversation not found");
  }
  assert.deepEqual((await bob.get("/api/conversations")).body.data, []);
  // Alice's message ids mean nothing in Bob's own conversation either.
  const own = (await bob.post("/api/conversations", {})).body;
  const byBody = await bob.post(`/api/conversations/${own.id}/messages`, { content: "x", parent_id: answer.id, model: "scripted" });
  assert.equal(byBody.status, 404);
  assert.equal(byBody.body.error.param, "parent_id");
  assert.equal((await bob.patch(`/api/conversations/${own.id}`, { current_message_id: answer.id })).status, 404);
  // Alice still has it all.
  assert.equal((await alice.get(base)).body.messages.length, 2);
  assert.equal((await new AppClient(server.url).get(base)).status, 401);
});

forEachDatabase("a reply streams over SSE and is stored; bad input is refused before streaming", async (store, t) => {
  const server = await startServer(t, store);
  const alice = await server.signUp("alice");
  const conv = (await alice.post("/api/conversations", { model: "scripted" })).body;
  const url = `/api/conversations/${conv.id}/messages`;

  const refusals: Array<[unknown, number, string | null]> = [
    [{ content: "   ", parent_id: null, model: "scripted" }, 400, "content"],
    [{ content: "a", regenerate: "x", model: "scripted" }, 400, null],
    [{ content: "a", parent_id: null, model: "no-such-model" }, 404, "model"],
    [{ regenerate: "missing", model: "scripted" }, 404, "regenerate"],
  ];
  for (const [body, status, param] of refusals) {
    const res = await alice.post(url, body);
    assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
    assert.match(String(res.headers["content-type"]), /application\/json/);
    if (param) assert.equal(res.body.error.param, param);
  }
  // Without the CSRF header a cookie cannot post.
  assert.equal((await alice.post(url, { content: "a", parent_id: null, model: "scripted" }, { csrf: false })).status, 403);

  const res = await alice.post(url, { content: "Hello there", parent_id: null, model: "scripted", thinking: true });
  assert.equal(res.status, 200);
  assert.match(String(res.headers["content-type"]), /text\/event-stream/);
  const list = events(res.text);
  assert.deepEqual([list[0]!.type, list.at(-2)!.type, list.at(-1)!.type], ["start", "done", "title"]);
  assert.equal(list.filter((e) => e.type === "reasoning").map((e) => e.text).join(""), MODEL_SCRIPTS.scripted.reasoning);
  assert.equal(list.filter((e) => e.type === "content").map((e) => e.text).join(""), MODEL_SCRIPTS.scripted.answer);
  const done = list.at(-2)!.message;
  assert.deepEqual([done.status, done.thinking, done.role, typeof done.created_at], ["complete", true, "assistant", "string"]);

  // A user message cannot follow a user message; an answer can.
  const question = list[0]!.user_message;
  const wrongParent = await alice.post(url, { content: "x", parent_id: question.id, model: "scripted" });
  assert.equal(wrongParent.status, 400);
  // DeepThink off: the model is asked not to reason.
  const quiet = events((await alice.post(url, { content: "Again", parent_id: done.id, model: "scripted", thinking: false })).text);
  const quietDone = quiet.find((e) => e.type === "done")!.message;
  assert.deepEqual([quietDone.thinking, quietDone.reasoning, quietDone.content], [false, "", MODEL_SCRIPTS.scripted.answer]);

  const stored = (await alice.get(`/api/conversations/${conv.id}`)).body;
  assert.equal(stored.conversation.title, "Hello there");
  assert.equal(stored.conversation.current_message_id, quietDone.id);
  assert.deepEqual(stored.messages.map((m: { role: string }) => m.role), ["user", "assistant", "user", "assistant"]);
  const renamed = await alice.patch(`/api/conversations/${conv.id}`, { title: "  Renamed  " });
  assert.equal(renamed.body.title, "Renamed");
  assert.equal((await alice.patch(`/api/conversations/${conv.id}`, {})).status, 400);
  assert.equal((await alice.get("/api/conversations?q=renam")).body.data.length, 1);
  assert.equal((await alice.get("/api/conversations?cursor=bogus")).status, 400);
  assert.equal((await alice.delete(`/api/conversations/${conv.id}`)).status, 204);
  assert.equal((await alice.get(`/api/conversations/${conv.id}`)).status, 404);
});

forEachDatabase("stop ends a streaming reply at once and keeps what was written", async (store, t) => {
  const server = await startServer(t, store);
  const alice = await server.signUp("alice");
  const conv = (await alice.post("/api/conversations", {})).body;
  const headers = {
    "content-type": "application/json",
    cookie: [...alice.cookies].map(([k, v]) => `${k}=${v}`).join("; "),
    "x-sputnik-csrf": alice.cookies.get("sputnik_csrf")!,
  };
  const response = await fetch(`${server.url}/api/conversations/${conv.id}/messages`, {
    method: "POST",
    headers,
    body: JSON.stringify({ content: "Think long", parent_id: null, model: "scripted-long" }),
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  let stop: Promise<Awaited<ReturnType<AppClient["post"]>>> | null = null;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += value;
    const seen = events(text.slice(0, text.lastIndexOf("\n\n") + 2));
    if (!stop && seen.some((e) => e.type === "reasoning")) {
      const id = seen[0]!.assistant_message.id;
      stop = alice.post(`/api/conversations/${conv.id}/messages/${id}/stop`);
    }
  }
  const stopped = await stop!;
  assert.equal(stopped.status, 200);
  assert.equal(stopped.body.status, "stopped");
  const final = events(text).find((e) => e.type === "done")!.message;
  assert.equal(final.status, "stopped");
  const full = MODEL_SCRIPTS["scripted-long"].reasoning;
  assert.ok(final.reasoning.length > 0 && final.reasoning.length < full.length && full.startsWith(final.reasoning));
  assert.deepEqual(stopped.body, final);
});

forEachDatabase("an answer left streaming by a dead process is interrupted after a restart, its text kept", async (store, t) => {
  const first = await startServer(t, store);
  const alice = await first.signUp("alice");
  const conv = (await alice.post("/api/conversations", {})).body;
  // What a crash mid-answer leaves behind: a streaming row with the text flushed so far.
  const long = Date.now() - 120_000;
  const q = await insertMessage(store.db, { conversationId: conv.id, parentId: null, role: "user", content: "q", status: "complete", now: long });
  const a = await insertMessage(store.db, { conversationId: conv.id, parentId: q.id, role: "assistant", model: "scripted", status: "streaming", now: long });
  await updateMessage(store.db, a.id, { reasoning: "half a thou", content: "", updated_at: long });
  await first.close();

  const second = await startServer(t, store);
  const again = new AppClient(second.url);
  assert.equal((await again.post("/api/auth/login", { login: "alice", password: TEST_PASSWORD })).status, 200);
  const stored = (await again.get(`/api/conversations/${conv.id}`)).body.messages.find((m: { id: string }) => m.id === a.id);
  assert.deepEqual([stored.status, stored.reasoning], ["interrupted", "half a thou"]);
  assert.match(stored.error, /stopped while this answer was being written/);
});

forEachDatabase("GET …/messages/:id/stream re-attaches: a stored answer comes as one snapshot; others' answers are 404", async (store, t) => {
  const server = await startServer(t, store);
  const alice = await server.signUp("alice");
  const bob = await server.signUp("bob");
  const conv = (await alice.post("/api/conversations", { model: "scripted" })).body;
  const sent = events((await alice.post(`/api/conversations/${conv.id}/messages`, { content: "Hi", parent_id: null, model: "scripted" })).text);
  const answer = sent.find((e) => e.type === "done")!.message;
  assert.ok(sent.every((e, i) => i === 0 || e.type !== "snapshot"), "a send's own stream starts with `start`, no snapshot");

  const attached = await alice.get(`/api/conversations/${conv.id}/messages/${answer.id}/stream`);
  assert.equal(attached.status, 200);
  assert.match(String(attached.headers["content-type"]), /^text\/event-stream/);
  const got = events(attached.text);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], { type: "snapshot", message: answer, queue: null, reasoning_ms: answer.reasoning_ms, reasoning_done: true });

  assert.equal((await bob.get(`/api/conversations/${conv.id}/messages/${answer.id}/stream`)).status, 404);
  assert.equal((await alice.get(`/api/conversations/${conv.id}/messages/no-such-id/stream`)).status, 404);
  const bad = await alice.get(`/api/conversations/${conv.id}/messages/${answer.id}/stream?after=-1`);
  assert.equal(bad.status, 400);
});
