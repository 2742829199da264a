import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceError } from "../errors.ts";
import { replyGeneration } from "../serving/conversationReplies.ts";
import { applySettingsPatch, DEFAULT_SETTINGS, parseSettings, settingsPatchSchema, withSettings } from "./conversationSettings.ts";

test("settings become the generation request: system message first, sampling and bounds set, defaults left out", () => {
  const request = { model: "m", messages: [{ role: "user" as const, content: "hi" }] };
  assert.deepEqual(withSettings(request, DEFAULT_SETTINGS), request);
  const set = withSettings(request, { system_prompt: "Be brief.", temperature: 0.3, max_tokens: 64, thinking_budget: 0 });
  assert.deepEqual(set, {
    model: "m",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "hi" },
    ],
    temperature: 0.3,
    maxTokens: 64,
    thinkingBudget: 0,
  });
  // The web chat's request carries them, after the thread and the new question.
  const reply = replyGeneration([], { kind: "send", content: "q", parentId: null }, { model: "m", thinking: true, settings: { ...DEFAULT_SETTINGS, system_prompt: "S", temperature: 1 } });
  assert.deepEqual(reply.messages, [
    { role: "system", content: "S" },
    { role: "user", content: "q" },
  ]);
  assert.equal(reply.temperature, 1);
});

test("a patch merges, null clears, blank prompts are none, and the plan's cap is enforced", () => {
  const first = applySettingsPatch(DEFAULT_SETTINGS, { temperature: 0.5, system_prompt: "   " }, { maxThinkingBudget: null });
  assert.deepEqual(first.settings, { ...DEFAULT_SETTINGS, temperature: 0.5 });
  assert.equal(first.stored, JSON.stringify(first.settings));
  assert.deepEqual(parseSettings(first.stored), first.settings);
  const cleared = applySettingsPatch(first.settings, { temperature: null }, { maxThinkingBudget: null });
  assert.equal(cleared.stored, null, "all defaults are stored as null");
  assert.throws(
    () => applySettingsPatch(DEFAULT_SETTINGS, { thinking_budget: 2000 }, { maxThinkingBudget: 1024 }),
    (e: unknown) => e instanceof ServiceError && e.kind === "invalid_request" && e.param === "settings.thinking_budget" && /at most 1,024/.test(e.message),
  );
  assert.equal(applySettingsPatch(DEFAULT_SETTINGS, { thinking_budget: 1024 }, { maxThinkingBudget: 1024 }).settings.thinking_budget, 1024);
  assert.equal(settingsPatchSchema.safeParse({ temperature: 2.01 }).success, false);
  assert.equal(settingsPatchSchema.safeParse({ extra: 1 }).success, false);
  // A stored value this version cannot read counts as the defaults rather than failing an answer.
  assert.deepEqual(parseSettings("{not json"), DEFAULT_SETTINGS);
  assert.deepEqual(parseSettings(JSON.stringify({ temperature: 9 })), DEFAULT_SETTINGS);
});
