import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildVocabulary, BYTE_TO_CHAR, encode, preTokenize, SPECIAL, tokenBytes, TokenType, VocabularyError, wordPieces, type Vocabulary } from "./tokenizer.ts";

function assertConsistent(vocab: Vocabulary): void {
  assert.equal(new Set(vocab.tokens).size, vocab.tokens.length, "no duplicate token texts");
  assert.equal(vocab.types.length, vocab.tokens.length);
  assert.equal(new Set(vocab.merges).size, vocab.merges.length, "no duplicate merges");
  for (const merge of vocab.merges) {
    const [left, right, ...rest] = merge.split(" ");
    assert.equal(rest.length, 0, `merge ${merge} has two parts`);
    assert.ok(vocab.ids.has(left) && vocab.ids.has(right) && vocab.ids.has(left + right), `merge ${merge} uses and makes tokens`);
  }
}

describe("buildVocabulary", () => {
  const text = 'The user asks a question. I will answer the question: {"city":"Paris"} — 你好 🚀';
  const vocab = buildVocabulary({ words: wordPieces(text) });

  it("has the 256 byte tokens, merged words, then the R1 special tokens with their types", () => {
    assertConsistent(vocab);
    assert.deepEqual(new Set(vocab.tokens.slice(0, 256)), new Set(BYTE_TO_CHAR), "the first 256 tokens are the bytes");
    assert.equal(vocab.ids.get("Ġquestion")! < vocab.normalCount, true);
    assert.equal(vocab.types[vocab.special.bos], TokenType.CONTROL);
    assert.equal(vocab.types[vocab.special.eos], TokenType.CONTROL);
    assert.equal(vocab.types[vocab.special.pad], TokenType.CONTROL);
    for (const role of ["user", "assistant", "think", "endThink"] as const) {
      assert.equal(vocab.types[vocab.special[role]], TokenType.USER_DEFINED, role);
      assert.equal(vocab.tokens[vocab.special[role]], SPECIAL[role]);
    }
    assert.equal(vocab.tokens[vocab.special.user], "<\u{FF5C}User\u{FF5C}>", "full-width bars");
    assert.equal(vocab.tokens[vocab.special.bos], "<\u{FF5C}begin\u{2581}of\u{2581}sentence\u{FF5C}>");
  });

  it("merges words (with and without a leading space) into single tokens", () => {
    const ids = encode(vocab, "The user asks a question");
    assert.deepEqual(ids.map((id) => vocab.tokens[id]), ["The", "Ġuser", "Ġasks", "Ġa", "Ġquestion"]);
    assert.deepEqual(encode(vocab, "question").map((id) => vocab.tokens[id]), ["question"]);
  });

  it("keeps punctuation, digits and non-ASCII characters out of merges", () => {
    const tokens = encode(vocab, '{"city":"Paris","answer":42}').map((id) => vocab.tokens[id]);
    assert.deepEqual(tokens, ["{", '"', "city", '"', ":", '"', "Paris", '"', ",", '"', "answer", '"', ":", "4", "2", "}"]);
    assert.equal(encode(vocab, "你").length, 3, "a CJK character is three byte tokens");
    assert.equal(encode(vocab, "🚀").length, 4, "an emoji is four byte tokens");
  });

  it("round-trips any text through its byte tokens", () => {
    for (const sample of [text, "  two  spaces\n\n\ttab", "emoji 👋🏽 and é, ü, 中文", "line\r\nbreaks\n\n\n", "$\\frac{1$ <script>"]) {
      const bytes = Buffer.concat(encode(vocab, sample).map((id) => tokenBytes(vocab, id)));
      assert.equal(bytes.toString("utf8"), sample);
    }
  });

  it("pre-tokenizes like the Qwen2 regex", () => {
    assert.deepEqual(preTokenize("Hello, world! It's 42.\n\nOk"), ["Hello", ",", " world", "!", " It", "'s", " ", "4", "2", ".\n\n", "Ok"]);
  });

  it("refuses a word that would duplicate a special token", () => {
    assert.throws(() => buildVocabulary({ words: ["<think>"] }), VocabularyError);
  });

  it("builds the benchmark's 151,936-token vocabulary with unique texts and consistent merges", () => {
    const big = buildVocabulary({ normalSize: 151_643, totalSize: 151_936 });
    assert.equal(big.tokens.length, 151_936);
    assert.equal(big.normalCount, 151_643);
    assert.equal(big.special.eos, 151_643, "EOS id as in the R1-Distill-Qwen GGUFs");
    assert.equal(big.special.bos, 151_646, "BOS id as in the R1-Distill-Qwen GGUFs");
    assert.equal(big.types[151_935], TokenType.UNUSED);
    assertConsistent(big);
  });
});
