import assert from "node:assert/strict";
import { test } from "node:test";
import { PageCache } from "./pageCache.ts";

const page = (url: string, text: string) => ({ url, finalUrl: url, title: null, text });

test("entries expire after the TTL", () => {
  let now = 1000;
  const cache = new PageCache({ ttlMs: 500, maxEntries: 10, maxChars: 1000 }, () => now);
  cache.set("u", page("u", "hello"));
  now += 499;
  assert.equal(cache.get("u")?.text, "hello");
  now += 1;
  assert.equal(cache.get("u"), undefined);
  assert.deepEqual(cache.stats, { entries: 0, chars: 0 });
});

test("bounded by entries and by characters, oldest out first; oversized pages are not kept", () => {
  const cache = new PageCache({ ttlMs: 60_000, maxEntries: 2, maxChars: 10 });
  cache.set("a", page("a", "aaa"));
  cache.set("b", page("b", "bbb"));
  cache.set("c", page("c", "ccc"));
  assert.equal(cache.get("a"), undefined);
  assert.deepEqual(cache.stats, { entries: 2, chars: 6 });
  cache.set("d", page("d", "dddddddd")); // 8 chars: b and c must go to stay within 10
  assert.equal(cache.get("b"), undefined);
  assert.equal(cache.get("c"), undefined);
  assert.equal(cache.get("d")?.text, "dddddddd");
  cache.set("e", page("e", "x".repeat(11)));
  assert.equal(cache.get("e"), undefined);
  assert.equal(cache.get("d")?.text, "dddddddd");
});

test("a TTL of 0 turns the cache off", () => {
  const cache = new PageCache({ ttlMs: 0, maxEntries: 10, maxChars: 1000 });
  cache.set("u", page("u", "hello"));
  assert.equal(cache.get("u"), undefined);
});
