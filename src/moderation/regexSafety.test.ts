import assert from "node:assert/strict";
import { test } from "node:test";
import { compileSafePattern, MAX_UNBOUNDED, UnsafePatternError } from "./regexSafety.ts";

test("ordinary patterns compile, case-insensitive and Unicode", () => {
  for (const source of ["\\bsk-[a-z0-9]{20,}", "\\d{3}-\\d{4}", "(?:foo|bar)baz", "\\bkill(?:ed|ing)?\\b", "[^\\s@]+@example\\.com", "(?<=a)b", "(?<name>x)y", "\\p{Script=Han}{2}"]) {
    const regex = compileSafePattern(source);
    assert.ok(regex.flags.includes("i") && regex.flags.includes("u"), source);
  }
  assert.ok(compileSafePattern("taiwan").test("TAIWAN"));
});

test("exponential shapes are refused with the reason", () => {
  const refused: Array<[string, RegExp]> = [
    ["(a+)+$", /repeat inside/],
    ["(a*)*b", /repeat inside/],
    ["(?:\\w+\\s?)+$", /repeat inside/],
    ["(a|ab)*c", /must not branch/],
    ["(?:x|y){2,}", /must not branch/],
    ["(a)\\1", /backreferences/],
    ["(?<w>a)\\k<w>", /backreferences/],
  ];
  for (const [source, reason] of refused) assert.throws(() => compileSafePattern(source), (e: Error) => e instanceof UnsafePatternError && reason.test(e.message), source);
});

test("too many unbounded repetitions, empty matches and invalid syntax are refused", () => {
  assert.throws(() => compileSafePattern("a.*b.*c.*d.*e"), new RegExp(`more than ${MAX_UNBOUNDED}`));
  assert.doesNotThrow(() => compileSafePattern("a.*b.*c.*d"));
  assert.doesNotThrow(() => compileSafePattern("a{2,100}b"), "a large but bounded count is fine");
  assert.throws(() => compileSafePattern("a*"), /empty text/);
  assert.throws(() => compileSafePattern("(unclosed"), SyntaxError);
  assert.throws(() => compileSafePattern("x".repeat(501)), /longer than/);
});

test("escapes, classes and braces inside them are not read as structure", () => {
  assert.doesNotThrow(() => compileSafePattern("[(+*]+x"), "specials inside a class");
  assert.doesNotThrow(() => compileSafePattern("\\(a\\)+"), "an escaped paren is an atom");
  assert.doesNotThrow(() => compileSafePattern("\\u{1F600}+x"));
  assert.throws(() => compileSafePattern("(\\p{L}+)+"), /repeat inside/);
});
