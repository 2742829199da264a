import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfig } from "../config/load.ts";
import { moderationConfigSchema } from "./config.ts";

test("policies take defaults, and both classifier forms parse", () => {
  const config = moderationConfigSchema.parse({
    policies: [
      { name: "words", blockWords: ["x"] },
      { name: "judge", classifier: { model: "guard" } },
      { name: "remote", applyTo: "input", action: "warn", classifier: { url: "http://guard.internal:8000/v1", categories: ["S1"] } },
    ],
  });
  assert.deepEqual(
    config.policies.map((p) => [p.name, p.applyTo, p.action, p.checkReasoning, p.failClosed]),
    [
      ["words", "both", "withhold", true, false],
      ["judge", "both", "withhold", true, false],
      ["remote", "input", "warn", true, false],
    ],
  );
  assert.ok(config.policies[2]!.classifier && "url" in config.policies[2]!.classifier);
  assert.deepEqual(moderationConfigSchema.parse(undefined), { policies: [] });
});

test("a policy with nothing to check, an unsafe pattern or a repeated name is refused at start", () => {
  const issues = (value: unknown) => {
    const result = moderationConfigSchema.safeParse(value);
    assert.equal(result.success, false);
    return result.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n");
  };
  assert.match(issues({ policies: [{ name: "empty" }] }), /needs blockWords, blockPatterns or a classifier/);
  assert.match(issues({ policies: [{ name: "slow", blockPatterns: ["(a+)+$"] }] }), /policies\.0\.blockPatterns\.0: pattern "\(a\+\)\+\$" refused: a repeated group must not repeat inside/);
  assert.match(issues({ policies: [{ name: "a", blockWords: ["x"] }, { name: "a", blockWords: ["y"] }] }), /used twice/);
  assert.match(issues({ policies: [{ name: "bad name!", blockWords: ["x"] }] }), /letters, digits/);
  assert.match(issues({ policies: [{ name: "u", classifier: { url: "ftp://x/v1" } }] }), /classifier/);
});

test("SPUTNIK_MODERATION is read as JSON into the config", () => {
  const config = loadConfig({ env: { SPUTNIK_MODERATION: JSON.stringify({ policies: [{ name: "env", blockWords: ["zanzibar"] }] }) }, flags: {} });
  assert.equal(config.moderation.policies[0]!.name, "env");
});
