import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelError } from "./errors.ts";
import { parseSource, urlFileName } from "./source.ts";

test("parses the supported source forms", () => {
  assert.deepEqual(parseSource("hf:bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M"), {
    kind: "hf",
    repo: "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF",
    quant: "Q4_K_M",
  });
  assert.deepEqual(parseSource("hf:user/repo"), { kind: "hf", repo: "user/repo", quant: null });
  assert.deepEqual(parseSource("hf:user/repo/sub/model.Q8_0.gguf"), { kind: "hf-file", repo: "user/repo", filePath: "sub/model.Q8_0.gguf" });
  const url = parseSource("https://example.com/models/a%20b.gguf?x=1");
  assert.equal(url.kind, "url");
  assert.equal(url.kind === "url" && urlFileName(url.url), "a b.gguf");
});

test("rejects malformed sources with a clear error", () => {
  for (const source of [
    "ftp://example.com/x.gguf",
    "model.gguf",
    "hf:justuser",
    "hf:user/../x.gguf",
    "hf:user/repo/../../etc/passwd.gguf",
    "hf:user/repo/readme.md",
    "hf:user/repo/x.gguf:Q4_K_M",
    "hf:user/repo:Q4 K",
    "hf:../repo:Q8_0",
  ]) {
    assert.throws(() => parseSource(source), (e: unknown) => e instanceof ModelError && e.code === "bad_source", source);
  }
});
