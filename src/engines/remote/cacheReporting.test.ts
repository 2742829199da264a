import assert from "node:assert/strict";
import { test } from "node:test";
import { CacheReportTracker } from "./cacheReporting.ts";
import { reportsCache } from "./upstream.ts";

test("a usage report tells about the cache when any cache field is a number, zero included; null or absent does not", () => {
  assert.equal(reportsCache({ prompt_tokens: 10 }), false);
  assert.equal(reportsCache({ prompt_tokens: 10, prompt_tokens_details: null }), false, "vLLM without --enable-prompt-tokens-details");
  assert.equal(reportsCache({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: null } }), false);
  assert.equal(reportsCache({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 0 } }), true);
  assert.equal(reportsCache({ prompt_tokens: 10, prompt_cache_hit_tokens: 4 }), true, "DeepSeek, Sputnik");
  assert.equal(reportsCache({ prompt_tokens: 10, cached_tokens: 4 }), true, "SGLang");
  assert.equal(reportsCache({ prompt_tokens: 10 }, { timings: { cache_n: 0 } }), true, "llama-server");
});

test("the tracker: unknown before any answer, then reported, none or partial", () => {
  const t = new CacheReportTracker();
  assert.equal(t.state, undefined);
  t.note(false);
  assert.equal(t.state, "none");
  t.note(true);
  assert.equal(t.state, "partial");
  const r = new CacheReportTracker();
  r.note(true);
  assert.equal(r.state, "reported");
});
