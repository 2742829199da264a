import assert from "node:assert/strict";
import { test } from "node:test";
import { ReplyChannel, type ChannelEntry } from "./replyChannel.ts";

type E = { type: string; n?: number };

function recorder() {
  const got: ChannelEntry<E>[] = [];
  let ended = false;
  return { got, ended: () => ended, watcher: { event: (e: ChannelEntry<E>) => got.push(e), end: () => void (ended = true) } };
}

test("the window holds at most maxEvents events; a watcher resumes after one it holds", () => {
  const channel = new ReplyChannel<E>(() => ({ type: "snapshot" }), 4);
  for (let n = 1; n <= 10; n++) channel.publish({ type: "content", n });
  assert.equal(channel.buffered, 4, "older events are dropped");
  const r = recorder();
  channel.subscribe(r.watcher, 7);
  assert.deepEqual(r.got.map((e) => e.seq), [8, 9, 10]);
  channel.publish({ type: "content", n: 11 });
  assert.deepEqual(r.got.map((e) => e.event.n), [8, 9, 10, 11]);
});

test("a watcher that cannot resume (too old, or no position) gets the snapshot, then live events", () => {
  let snapshots = 0;
  const channel = new ReplyChannel<E>(() => ({ type: "snapshot", n: ++snapshots }), 4);
  for (let n = 1; n <= 10; n++) channel.publish({ type: "content", n });
  const old = recorder();
  channel.subscribe(old.watcher, 2);
  const fresh = recorder();
  channel.subscribe(fresh.watcher);
  for (const r of [old, fresh]) {
    assert.equal(r.got[0]!.event.type, "snapshot");
    assert.equal(r.got[0]!.seq, 10, "the snapshot stands for everything up to the last event");
    assert.equal(r.got.length, 1);
  }
  channel.publish({ type: "content", n: 11 });
  assert.deepEqual(fresh.got.at(-1)!.event, { type: "content", n: 11 });
});

test("the end: closing events are kept whole; watchers are told; late watchers get them and an end at once", () => {
  const channel = new ReplyChannel<E>(() => ({ type: "snapshot" }), 2);
  const early = recorder();
  channel.subscribe(early.watcher, 0);
  for (let n = 1; n <= 5; n++) channel.publish({ type: "content", n });
  channel.publish({ type: "done" }, true);
  channel.publish({ type: "title" }, true);
  channel.end();
  assert.ok(early.ended());
  assert.deepEqual(early.got.map((e) => e.event.type), ["content", "content", "content", "content", "content", "done", "title"]);
  assert.equal(channel.watching, 0);

  const late = recorder();
  channel.subscribe(late.watcher);
  assert.deepEqual(late.got.map((e) => e.event.type), ["snapshot", "done", "title"]);
  assert.ok(late.ended());
  channel.publish({ type: "content", n: 6 });
  assert.equal(late.got.length, 3, "nothing after the end");
});

test("a watcher that throws is dropped; the others go on", () => {
  const channel = new ReplyChannel<E>(() => ({ type: "snapshot" }));
  channel.subscribe({ event: () => { throw new Error("socket gone"); }, end: () => undefined }, 0);
  const ok = recorder();
  channel.subscribe(ok.watcher, 0);
  channel.publish({ type: "content", n: 1 });
  channel.publish({ type: "content", n: 2 });
  assert.equal(channel.watching, 1);
  assert.equal(ok.got.length, 2);
});
