import assert from "node:assert/strict";
import { test } from "node:test";
import { forEachDatabase, type TestStore } from "../../test/support/databases.ts";
import { createConversation, deleteConversation, insertMessage, listConversations, updateConversation, updateMessage } from "./conversations.ts";
import { MAX_TERMS, parseQuery, toFts5, toWebsearch } from "../store/fullTextQuery.ts";
import { searchConversations, snippetOf } from "./search.ts";

test("a query parses like websearch_to_tsquery and is spelled for FTS5 with every word quoted", () => {
  const q = parseQuery('Rust "borrow checker" lifetimes or generics -unsafe');
  assert.deepEqual(q, { clauses: [[["rust"]], [["borrow", "checker"]], [["lifetimes"], ["generics"]]], excluded: [["unsafe"]] });
  assert.equal(toFts5(q), '("rust" AND "borrow checker" AND ("lifetimes" OR "generics")) NOT "unsafe"');
  assert.equal(toWebsearch(q), '"rust" "borrow checker" "lifetimes" or "generics" -"unsafe"');
  // Operators of either engine are words (or nothing) here; quotes never survive into a term.
  for (const hostile of ['a" OR "b', "NEAR(a b)", "content: x*", "^start", "a AND b NOT c", '"unclosed', '""', "-", "or", "*", "a ) ( b", "col:x", "a\u0000b"]) {
    const fts = toFts5(parseQuery(hostile));
    if (fts === null) continue;
    // Outside the quoted words only our own operators and parentheses remain.
    assert.match(fts.replace(/"[^"]*"/g, ""), /^[\s()]*(?:(?:AND|OR|NOT)?[\s()]*)*$/, `${hostile} → ${fts}`);
  }
  assert.equal(toFts5(parseQuery("-only -exclusions")), null, "a query of only exclusions finds nothing");
  assert.equal(toFts5(parseQuery("!!! ... ---")), null, "punctuation is no word");
  assert.equal(parseQuery(Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ")).clauses.length, MAX_TERMS);
});

test("a snippet is plain text around the first match, with the words' places", () => {
  const long = `${"lorem ipsum ".repeat(20)}The answer is 42. ${"dolor sit ".repeat(30)}`;
  const { snippet, highlights } = snippetOf(long, ["answer", "42"]);
  assert.ok(snippet.startsWith("…") && snippet.endsWith("…"), snippet);
  assert.ok(snippet.length <= 162);
  assert.deepEqual(
    highlights.map(([s, e]) => snippet.slice(s, e)),
    ["answer", "42"],
  );
  assert.deepEqual(snippetOf("<b>bold</b> text", ["bold"]).highlights, [[3, 7]]);
});

async function seed(store: TestStore) {
  const { db } = store;
  const rust = await createConversation(db, { userId: "u1", title: "Systems talk", now: 1000 });
  const q1 = await insertMessage(db, { conversationId: rust.id, parentId: null, role: "user", content: "Tell me about Rust's borrow checker.", status: "complete", now: 1000 });
  await insertMessage(db, { conversationId: rust.id, parentId: q1.id, role: "assistant", content: "The BORROW checker enforces lifetimes; unsafe code opts out.", status: "complete", now: 1001 });
  const cooking = await createConversation(db, { userId: "u1", title: "Kitchen", now: 2000 });
  const q2 = await insertMessage(db, { conversationId: cooking.id, parentId: null, role: "user", content: "How long do I boil an egg?", status: "complete", now: 2000 });
  await insertMessage(db, { conversationId: cooking.id, parentId: q2.id, role: "assistant", content: "Nine minutes for a hard-boiled egg. Café au lait while you wait.", status: "complete", now: 2001 });
  const titled = await createConversation(db, { userId: "u1", title: "Rust generics", now: 3000 });
  // Someone else's words never show.
  const other = await createConversation(db, { userId: "u2", title: "theirs", now: 4000 });
  await insertMessage(db, { conversationId: other.id, parentId: null, role: "user", content: "borrow checker secrets", status: "complete", now: 4000 });
  await updateConversation(db, rust.id, { updated_at: 1001 });
  await updateConversation(db, cooking.id, { updated_at: 2001 });
  return { rust, cooking, titled, other };
}

forEachDatabase("full-text search finds message words with the same semantics on both databases", async (store) => {
  const { db, dialect } = store;
  const { rust, cooking, titled } = await seed(store);
  const ids = async (query: string) => (await searchConversations(db, dialect, { userId: "u1", query, limit: 20 })).map((r) => r.conversation.id);

  assert.deepEqual(await ids("borrow"), [rust.id], "a word, case folded, only the user's own");
  assert.deepEqual(await ids("BORROW lifetimes"), [rust.id], "every word, any order, across one message");
  assert.deepEqual(await ids('"borrow checker"'), [rust.id], "a phrase");
  assert.deepEqual(await ids('"checker borrow"'), [], "a phrase keeps its order");
  assert.deepEqual(await ids("egg or lifetimes"), [cooking.id, rust.id], "or");
  assert.deepEqual(await ids("lifetimes -unsafe"), [], "an excluded word in the matching message");
  assert.deepEqual(await ids("checker -unsafe"), [rust.id], "each message on its own: the question matches");
  assert.deepEqual(await ids("egg -unsafe"), [cooking.id]);
  assert.deepEqual(await ids("bor"), [], "whole words only");
  assert.deepEqual(await ids("café"), [cooking.id], "letters beyond ASCII");
  assert.deepEqual(await ids("hard-boiled"), [cooking.id], "a hyphenated word");
  assert.deepEqual(await ids("rust"), [titled.id, rust.id], "a title substring, or a word in a message");
  assert.deepEqual(await ids("Systems"), [rust.id], "a title match has no message match");

  const [hit] = await searchConversations(db, dialect, { userId: "u1", query: "lifetimes", limit: 20 });
  assert.equal(hit?.match?.role, "assistant");
  assert.equal(hit?.match?.snippet, "The BORROW checker enforces lifetimes; unsafe code opts out.");
  assert.deepEqual(hit?.match?.highlights.map(([s, e]) => hit.match!.snippet.slice(s, e)), ["lifetimes"]);
  const [titleOnly] = await searchConversations(db, dialect, { userId: "u1", query: "Systems", limit: 20 });
  assert.equal(titleOnly?.match, null);

  // What a user types never reaches either engine as syntax: no error, no operator.
  for (const hostile of ['a" OR "b', "NEAR(borrow checker)", "content: borrow*", "^borrow", "borrow AND NOT", '"unclosed borrow', "-", "*", "()", "borrow)", "'; drop table messages; --", "x".repeat(200)]) {
    await assert.doesNotReject(searchConversations(db, dialect, { userId: "u1", query: hostile, limit: 20 }), hostile);
  }
  assert.deepEqual(await ids("NEAR(borrow checker)"), [], "NEAR is a word, and no message has it");
  assert.deepEqual(await ids("(borrow checker)"), [rust.id], "parentheses are punctuation");
  assert.deepEqual(await ids("borrow*"), [rust.id], "* is not a prefix operator");
  assert.deepEqual(await ids('a" OR "egg'), [], "a quote cannot open an OR");
});

forEachDatabase("the search index follows messages as they are written, rewritten and deleted", async (store) => {
  const { db, dialect } = store;
  const conv = await createConversation(db, { userId: "u1", title: "t" });
  const q = await insertMessage(db, { conversationId: conv.id, parentId: null, role: "user", content: "question", status: "complete" });
  const answer = await insertMessage(db, { conversationId: conv.id, parentId: q.id, role: "assistant", status: "streaming" });
  const found = async (query: string) => (await searchConversations(db, dialect, { userId: "u1", query, limit: 20 })).length;

  await updateMessage(db, answer.id, { content: "zebra partial" });
  assert.equal(await found("zebra"), 0, "an answer being written is not indexed yet");
  await updateMessage(db, answer.id, { content: "zebra crossing", status: "complete" });
  assert.equal(await found("crossing"), 1, "indexed once it ends");
  await updateMessage(db, answer.id, { content: "giraffe only" });
  assert.equal(await found("zebra"), 0, "old words leave the index");
  assert.equal(await found("giraffe"), 1);
  await deleteConversation(db, conv.id);
  assert.equal(await found("giraffe"), 0, "deleted with the conversation");
  assert.equal(await found("question"), 0);
});

forEachDatabase("pinned conversations list first, all on the first page", async (store) => {
  const { db } = store;
  const a = await createConversation(db, { userId: "u1", title: "a", now: 1000 });
  const b = await createConversation(db, { userId: "u1", title: "b", now: 2000 });
  const c = await createConversation(db, { userId: "u1", title: "c", now: 3000 });
  await updateConversation(db, a.id, { pinned_at: 5000 });
  const page1 = await listConversations(db, { userId: "u1", limit: 1 });
  assert.deepEqual(page1.items.map((x) => x.title), ["a", "c"]);
  const page2 = await listConversations(db, { userId: "u1", limit: 1, cursor: page1.nextCursor! });
  assert.deepEqual(page2.items.map((x) => x.id), [b.id], "the pin is not listed again");
  assert.equal(page2.nextCursor, null);
  assert.ok(c);
});
