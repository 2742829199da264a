import assert from "node:assert/strict";
import { after, before } from "node:test";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import { startTestService, type TestService } from "../../test/support/service.ts";
import type { ModelRouter } from "../engines/router.ts";
import { MODEL_SCRIPTS } from "../gguf/catalog.ts";
import { ConversationReplies, replyGeneration, type ReplyEvent, type ReplyInput } from "./conversationReplies.ts";
import { titleFromExchange } from "../chat/conversationTitle.ts";
import { createConversation, findConversation, findMessage, insertMessage, listMessages, updateMessage, type Conversation } from "../chat/conversations.ts";
import { ServiceError } from "../errors.ts";
import { Serving } from "./completion.ts";
import type { UserActor } from "../auth/actor.ts";

// One real service (llama.cpp, generated scripted models) for the whole file; each test gets its own database.
let service: TestService;
let router: ModelRouter;
before(async () => {
  service = await startTestService({ models: ["scripted", "scripted-long"] });
  router = service.router;
});
after(() => service.stop());

function repliesFor(store: TestStore, flushIntervalMs = 500): ConversationReplies {
  const serving = new Serving({ router, db: store.db, describeError: (e) => ({ status: e instanceof ServiceError && e.kind === "invalid_request" ? 400 : 500, code: null }) });
  const replies = new ConversationReplies({ db: store.db, serving, dialect: store.dialect, flushIntervalMs });
  return replies;
}

async function send(replies: ConversationReplies, store: TestStore, conversation: Conversation, input: ReplyInput, model = "scripted", emit: (e: ReplyEvent) => void = () => {}) {
  const messages = await listMessages(store.db, conversation.id);
  const current = (await findConversation(store.db, conversation.id))!;
  const abort = new AbortController();
  const generation = replyGeneration(messages, input, { model, thinking: true, signal: abort.signal });
  return replies.reply({ conversation: current, messages, input, generation, emit });
}

forEachDatabase("a reply streams reasoning then content and is stored complete, naming the conversation", async (store) => {
  const replies = repliesFor(store);
  const conversation = await createConversation(store.db, { userId: "u1" });
  const events: ReplyEvent[] = [];
  const outcome = await send(replies, store, conversation, { kind: "send", content: "What is the answer?", parentId: null }, "scripted", (e) => events.push(e));

  const script = MODEL_SCRIPTS.scripted;
  const types = events.map((e) => e.type);
  assert.equal(types[0], "start");
  assert.ok(types.indexOf("reasoning") < types.indexOf("content"), types.join(","));
  assert.deepEqual(types.slice(-2), ["done", "title"]);
  const start = events[0] as Extract<ReplyEvent, { type: "start" }>;
  assert.equal(start.assistant_message.status, "streaming");
  assert.equal(start.user_message?.content, "What is the answer?");
  const streamed = (type: "reasoning" | "content") =>
    events.filter((e): e is Extract<ReplyEvent, { type: typeof type }> => e.type === type).map((e) => e.text).join("");
  assert.equal(streamed("reasoning"), script.reasoning);
  assert.equal(streamed("content"), script.answer);

  const stored = await findMessage(store.db, start.assistant_message.id);
  assert.equal(stored?.status, "complete");
  assert.equal(stored?.reasoning, script.reasoning);
  assert.equal(stored?.content, script.answer);
  assert.equal(stored?.model, "scripted");
  assert.ok((stored?.completion_tokens ?? 0) > 0 && (stored?.reasoning_tokens ?? 0) > 0);
  assert.ok(stored?.reasoning_ms !== null && stored?.ttft_ms !== null && stored?.total_ms !== null);
  assert.equal(outcome.status, 200);
  assert.equal(outcome.usage.completion_tokens, stored?.completion_tokens);

  const after1 = await findConversation(store.db, conversation.id);
  assert.equal(after1?.current_message_id, stored?.id);
  assert.equal(after1?.title, titleFromExchange("What is the answer?", script.answer));

  // A follow-up keeps the title and answers after the first answer.
  const next = await send(replies, store, after1!, { kind: "send", content: "And again?", parentId: stored!.id });
  assert.equal((await findConversation(store.db, conversation.id))?.title, after1?.title);
  const question = await findMessage(store.db, next.message.parent_id!);
  assert.equal(question?.parent_id, stored?.id);
});

forEachDatabase("stop keeps the partial answer, stored as stopped; partial text is written while streaming", async (store) => {
  const replies = repliesFor(store, 5);
  const conversation = await createConversation(store.db, { userId: "u1" });
  let assistantId = "";
  let sawStoredPartial: Promise<boolean> | null = null;
  let stopped: Promise<unknown> | null = null;
  const outcome = await send(replies, store, conversation, { kind: "send", content: "Think long", parentId: null }, "scripted-long", (e) => {
    if (e.type === "start") assistantId = e.assistant_message.id;
    if (e.type === "reasoning" && sawStoredPartial === null) {
      // Wait until the flusher has written some reasoning while the answer is still streaming, then stop.
      sawStoredPartial = (async () => {
        for (;;) {
          const row = await findMessage(store.db, assistantId);
          if (row?.status !== "streaming") return false;
          if (row.reasoning !== "") return true;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      stopped = sawStoredPartial.then(() => replies.stop(assistantId));
    }
  });
  assert.equal(await sawStoredPartial, true, "partial reasoning was written before the end");
  await stopped;
  const row = await findMessage(store.db, assistantId);
  assert.equal(row?.status, "stopped");
  assert.equal(outcome.status, 499);
  const script = MODEL_SCRIPTS["scripted-long"];
  assert.ok(row!.reasoning.length > 0 && row!.reasoning.length < script.reasoning.length, "a strict part of the reasoning");
  assert.ok(script.reasoning.startsWith(row!.reasoning));
  assert.equal(row?.content, "");
});

forEachDatabase("regenerating keeps the old answer as a sibling; retrying an empty failure reuses it", async (store) => {
  const replies = repliesFor(store);
  const conversation = await createConversation(store.db, { userId: "u1" });
  const first = await send(replies, store, conversation, { kind: "send", content: "Hi", parentId: null });
  const again = await send(replies, store, conversation, { kind: "regenerate", target: first.message });
  assert.notEqual(again.message.id, first.message.id);
  assert.equal(again.message.parent_id, first.message.parent_id);
  assert.equal((await findMessage(store.db, first.message.id))?.status, "complete");

  // An answer that failed before writing anything: its retry replaces it instead of branching.
  // A refusal (here: an unknown model) is thrown by the pipeline's admission, before anything is stored.
  const before = (await listMessages(store.db, conversation.id)).length;
  await assert.rejects(send(replies, store, conversation, { kind: "send", content: "Break", parentId: again.message.id }, "no-such-model"), /does not exist/);
  assert.equal((await listMessages(store.db, conversation.id)).length, before);
  // An answer that failed before writing anything (as an engine failure after admission leaves it).
  const question = await insertMessage(store.db, { conversationId: conversation.id, parentId: again.message.id, role: "user", content: "Break", status: "complete" });
  const empty = await insertMessage(store.db, { conversationId: conversation.id, parentId: question.id, role: "assistant", status: "streaming", now: question.created_at + 1 });
  await updateMessage(store.db, empty.id, { status: "error", error: "The engine failed." });
  const failed = { message: (await findMessage(store.db, empty.id))! };
  const retried = await send(replies, store, conversation, { kind: "regenerate", target: failed.message });
  assert.equal(retried.message.id, failed.message.id);
  assert.equal(retried.message.status, "complete");
  assert.equal((await findMessage(store.db, failed.message.id))?.content, MODEL_SCRIPTS.scripted.answer);
});

forEachDatabase("recover marks answers a dead process left streaming as interrupted", async (store) => {
  const conversation = await createConversation(store.db, { userId: "u1" });
  const q = await insertMessage(store.db, { conversationId: conversation.id, parentId: null, role: "user", content: "q", status: "complete" });
  const now = Date.now();
  const old = await insertMessage(store.db, { conversationId: conversation.id, parentId: q.id, role: "assistant", status: "streaming", now: now - 60_000 });
  const recent = await insertMessage(store.db, { conversationId: conversation.id, parentId: q.id, role: "assistant", status: "streaming", now });
  const replies = repliesFor(store);
  try {
    await replies.recover(now);
  } finally {
    await replies.close();
  }
  assert.equal((await findMessage(store.db, old.id))?.status, "interrupted");
  // SQLite has one serving process, so every leftover is dead; PostgreSQL replicas may still be writing fresh ones.
  assert.equal((await findMessage(store.db, recent.id))?.status, store.dialect === "sqlite" ? "interrupted" : "streaming");
});

forEachDatabase("the prompt is the branch's thread without earlier reasoning", async (store) => {
  const conversation = await createConversation(store.db, { userId: "u1" });
  const q1 = await insertMessage(store.db, { conversationId: conversation.id, parentId: null, role: "user", content: "one", status: "complete" });
  const a1 = await insertMessage(store.db, { conversationId: conversation.id, parentId: q1.id, role: "assistant", content: "ans", status: "complete" });
  const other = await insertMessage(store.db, { conversationId: conversation.id, parentId: q1.id, role: "assistant", content: "other branch", status: "complete" });
  const messages = (await listMessages(store.db, conversation.id)).map((m) => (m.id === a1.id ? { ...m, reasoning: "secret thoughts" } : m));
  const signal = new AbortController().signal;
  const generation = replyGeneration(messages, { kind: "send", content: "two", parentId: a1.id }, { model: "scripted", thinking: false, signal });
  assert.deepEqual(generation.messages, [
    { role: "user", content: "one" },
    { role: "assistant", content: "ans" },
    { role: "user", content: "two" },
  ]);
  assert.equal(generation.thinking, false);
  const regen = replyGeneration(messages, { kind: "regenerate", target: messages.find((m) => m.id === other.id)! }, { model: "scripted", thinking: true, signal });
  assert.deepEqual(regen.messages, [{ role: "user", content: "one" }]);
  assert.equal(regen.thinking, undefined);
});

/** Starts a reply nobody watches (as the web app's route does: no client signal) and runs it on its own. */
async function startDetached(replies: ConversationReplies, store: TestStore, conversation: Conversation, content: string, actor?: UserActor) {
  const messages = await listMessages(store.db, conversation.id);
  const input: ReplyInput = { kind: "send", content, parentId: null };
  const generation = replyGeneration(messages, input, { model: "scripted-long", thinking: true });
  const reply = await replies.start({ conversation, messages, input, generation, ...(actor ? { actor } : {}) });
  return { reply, finished: replies.launch(reply) };
}

/** Waits until the stored copy of a streaming answer holds some reasoning. */
async function storedPartial(store: TestStore, id: string) {
  for (;;) {
    const row = (await findMessage(store.db, id))!;
    if (row.status !== "streaming" || row.reasoning !== "") return row;
    await new Promise((r) => setTimeout(r, 2));
  }
}

forEachDatabase("an answer runs with nobody watching; a watcher attaching mid-answer gets the text so far, then the rest", async (store) => {
  const replies = repliesFor(store, 5);
  const conversation = await createConversation(store.db, { userId: "u1" });
  const { reply, finished } = await startDetached(replies, store, conversation, "Think long");
  const id = reply.assistant!.id;
  const partial = await storedPartial(store, id);
  assert.equal(partial.status, "streaming", "the answer went on with no watcher");
  assert.ok(partial.reasoning_ms !== null, "the reasoning time is stored as it grows (a crash keeps it)");
  assert.equal(replies.running(id), reply);

  const got: ReplyEvent[] = [];
  let ended = false;
  reply.channel.subscribe({ event: (e) => got.push(e.event), end: () => void (ended = true) });
  const outcome = await finished;
  assert.ok(ended);
  const script = MODEL_SCRIPTS["scripted-long"];
  const snapshot = got[0] as Extract<ReplyEvent, { type: "snapshot" }>;
  assert.equal(snapshot.type, "snapshot");
  assert.equal(snapshot.message.status, "streaming");
  assert.ok(snapshot.message.reasoning.length > 0 && snapshot.message.reasoning.length < script.reasoning.length, "attached mid-answer");
  const joined = (type: "reasoning" | "content") =>
    got.filter((e): e is Extract<ReplyEvent, { type: typeof type }> => e.type === type).map((e) => e.text).join("");
  assert.equal(snapshot.message.reasoning + joined("reasoning"), script.reasoning, "nothing lost or doubled");
  assert.equal(snapshot.message.content + joined("content"), script.answer);
  assert.deepEqual(got.slice(-2).map((e) => e.type), ["done", "title"]);
  assert.equal(outcome?.message.status, "complete");
  assert.equal(replies.running(id), undefined, "forgotten once stored");
});

forEachDatabase("shutdown stores a running answer as interrupted by the server, with its reasoning time and title, not as stopped", async (store) => {
  const replies = repliesFor(store, 5);
  const conversation = await createConversation(store.db, { userId: "u1" });
  const { reply, finished } = await startDetached(replies, store, conversation, "Shut down while I think");
  const events: ReplyEvent[] = [];
  reply.channel.subscribe({ event: (e) => events.push(e.event), end: () => undefined }, 0);
  await storedPartial(store, reply.assistant!.id);
  await replies.close(0);
  await finished;
  const row = (await findMessage(store.db, reply.assistant!.id))!;
  assert.equal(row.status, "interrupted");
  assert.match(row.error ?? "", /server restarted/i);
  assert.ok((row.reasoning_ms ?? 0) > 0, `the real reasoning time (${row.reasoning_ms} ms)`);
  assert.equal((await findConversation(store.db, conversation.id))?.title, titleFromExchange("Shut down while I think", row.content));
  const error = events.find((e) => e.type === "error") as Extract<ReplyEvent, { type: "error" }>;
  assert.equal(error.error.code, "server_restarting");
  assert.equal(error.message.status, "interrupted");
});

forEachDatabase("after a crash, recover titles conversations whose first answer was cut", async (store) => {
  const conversation = await createConversation(store.db, { userId: "u1" });
  const q = await insertMessage(store.db, { conversationId: conversation.id, parentId: null, role: "user", content: "Crash during my question", status: "complete" });
  const a = await insertMessage(store.db, { conversationId: conversation.id, parentId: q.id, role: "assistant", status: "streaming", now: Date.now() - 60_000 });
  await updateMessage(store.db, a.id, { reasoning: "half a thou", reasoning_ms: 12_000, updated_at: Date.now() - 60_000 });
  const replies = repliesFor(store);
  try {
    await replies.recover();
  } finally {
    await replies.close();
  }
  const row = (await findMessage(store.db, a.id))!;
  assert.equal(row.status, "interrupted");
  assert.equal(row.reasoning_ms, 12_000, "the stored reasoning time stays");
  assert.equal((await findConversation(store.db, conversation.id))?.title, titleFromExchange("Crash during my question", ""));
});

forEachDatabase("answers left streaming after the start (another replica's, a quick restart's) are marked and titled by the sweep", async (store) => {
  const serving = new Serving({ router, db: store.db, describeError: () => ({ status: 500, code: null }) });
  const staleStreamMs = 150;
  const replies = new ConversationReplies({ db: store.db, serving, dialect: store.dialect, staleStreamMs });
  const conversation = await createConversation(store.db, { userId: "u1" });
  try {
    await replies.recover();
    // Left by a process that died after this one started: fresh now, stale a moment later.
    const q = await insertMessage(store.db, { conversationId: conversation.id, parentId: null, role: "user", content: "Died mid-answer elsewhere", status: "complete" });
    const a = await insertMessage(store.db, { conversationId: conversation.id, parentId: q.id, role: "assistant", status: "streaming" });
    await updateMessage(store.db, a.id, { reasoning: "half", reasoning_ms: 3_000 });
    const deadline = Date.now() + 5_000;
    while ((await findConversation(store.db, conversation.id))?.title == null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await findMessage(store.db, a.id))?.status, "interrupted");
    assert.equal((await findConversation(store.db, conversation.id))?.title, titleFromExchange("Died mid-answer elsewhere", ""));
  } finally {
    await replies.close();
  }
});

forEachDatabase("a user may have at most maxRunningPerUser answers running, watched or not", async (store) => {
  const serving = new Serving({ router, db: store.db, credentialCheckMs: 0, describeError: () => ({ status: 500, code: null }) });
  const replies = new ConversationReplies({ db: store.db, serving, dialect: store.dialect, maxRunningPerUser: () => 1 });
  const actor: UserActor = { kind: "user", userId: "u1", role: "user", apiKeyId: null, sessionId: null, planId: null };
  const first = await startDetached(replies, store, await createConversation(store.db, { userId: "u1" }), "One", actor);
  await assert.rejects(startDetached(replies, store, await createConversation(store.db, { userId: "u1" }), "Two", actor), (error: unknown) => {
    assert.ok(error instanceof ServiceError);
    assert.equal(error.kind, "rate_limited");
    assert.equal(error.code, "too_many_answers");
    return true;
  });
  // Another account is not held back by u1's answers.
  const other = await startDetached(replies, store, await createConversation(store.db, { userId: "u2" }), "Mine", { ...actor, userId: "u2" });
  await Promise.all([first.finished, other.finished]);
  const again = await startDetached(replies, store, await createConversation(store.db, { userId: "u1" }), "Three", actor);
  assert.equal((await again.finished)?.message.status, "complete", "a place frees once an answer is stored");
});
