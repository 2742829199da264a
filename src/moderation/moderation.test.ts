import assert from "node:assert/strict";
import { test } from "node:test";
import { ModelRouter } from "../engines/router.ts";
import type { EngineEvent } from "../engines/types.ts";
import { ServiceError } from "../errors.ts";
import { moderationConfigSchema } from "./config.ts";
import { Moderation } from "./moderation.ts";
import { Policy } from "./policy.ts";
import { parseVerdict } from "./servedClassifier.ts";
import type { Intervention } from "./types.ts";
import { verdictOf } from "./upstreamClassifier.ts";

function moderation(policies: unknown[]) {
  const seen: Intervention[] = [];
  const m = new Moderation(moderationConfigSchema.parse({ policies }), { router: new ModelRouter([]), onIntervention: (i) => seen.push(i) });
  return { m, seen };
}

const ask = (content: string, earlier: string[] = []) => ({
  model: "m",
  messages: [...earlier.map((c) => ({ role: "user" as const, content: c })), { role: "assistant" as const, content: "an earlier answer about zanzibar" }, { role: "user" as const, content }],
});

test("an input withhold refuses with moderation_blocked naming the policy and its reason", async () => {
  const { m, seen } = moderation([{ name: "no-zanzibar", applyTo: "input", blockWords: ["zanzibar"], reason: "Zanzibar is off-topic here." }]);
  const session = m.session("m")!;
  await assert.rejects(session.checkInput(ask("Tell me about Zanzibar")), (e: ServiceError) => {
    assert.equal(e.kind, "invalid_request");
    assert.equal(e.code, "moderation_blocked");
    assert.equal(e.param, "messages");
    assert.equal(e.message, "Withheld by this server's policy 'no-zanzibar': Zanzibar is off-topic here.");
    return true;
  });
  assert.deepEqual(seen.map((i) => [i.policy, i.action, i.stage, i.source, i.matched]), [["no-zanzibar", "withhold", "input", "words", "Zanzibar"]]);
  assert.equal(session.report()?.withheld, true);
  // Earlier user turns are read too; the model's own earlier answers are not.
  await assert.rejects(m.session("m")!.checkInput(ask("hello", ["zanzibar?"])));
  await m.session("m")!.checkInput(ask("hello"));
});

test("an input warning lets the answer run and rides on its report; scoped policies apply to their models only", async () => {
  const { m } = moderation([
    { name: "careful", applyTo: "input", action: "warn", blockWords: ["medicine"] },
    { name: "only-x", models: ["x"], blockWords: ["hello"] },
  ]);
  const session = m.session("m")!;
  await session.checkInput(ask("Which medicine helps?"));
  assert.deepEqual(session.report(), {
    withheld: false,
    interventions: [
      {
        policy: "careful",
        action: "warn",
        stage: "input",
        channel: null,
        offset: 0,
        reason: "the text contains a blocked word",
        notice: "Flagged by this server's policy 'careful': the text contains a blocked word",
        source: "words",
        matched: "medicine",
      },
    ],
  });
  assert.deepEqual(m.policyNames("m"), ["careful"]);
  assert.deepEqual(m.policyNames("x"), ["careful", "only-x"]);
  assert.equal(moderation([{ name: "o", models: ["x"], blockWords: ["a"] }]).m.session("m"), null, "no policy: no session");
});

test("the output stage warns once per policy and withholds at the window that trips", async () => {
  const { m } = moderation([
    { name: "note", applyTo: "output", action: "warn", blockWords: ["scripted"] },
    { name: "no-42", applyTo: "output", blockWords: ["42"], reason: "No answers about 42." },
  ]);
  const session = m.session("m")!;
  async function* engine(): AsyncGenerator<EngineEvent> {
    for (const text of ["Hello! I am the scripted", " test model, scripted. The answer", " is 42. More"]) yield { type: "content", text };
    yield { type: "done", finishReason: "stop" };
  }
  let stopped = false;
  let content = "";
  for await (const e of session.output(engine(), () => (stopped = true))) if (e.type === "content") content += e.text;
  assert.equal(content, "Hello! I am the scripted test model, scripted.");
  assert.equal(stopped, true);
  const report = session.report()!;
  assert.equal(report.withheld, true);
  assert.deepEqual(report.interventions.map((i) => [i.policy, i.action, i.stage, i.channel, i.offset]), [
    ["note", "warn", "output", "content", 6],
    ["no-42", "withhold", "output", "content", 46],
  ]);
  assert.equal(report.interventions[1]!.notice, "Withheld by this server's policy 'no-42': No answers about 42.");
});

test("/v1/moderations: a category per policy, whatever its stage", async () => {
  const { m } = moderation([
    { name: "no-zanzibar", applyTo: "input", blockWords: ["zanzibar"] },
    { name: "no-42", applyTo: "output", blockWords: ["42"] },
  ]);
  const results = await m.classify(["zanzibar and 42", "hello"]);
  assert.deepEqual(results, [
    { flagged: true, categories: { "no-zanzibar": true, "no-42": true }, scores: { "no-zanzibar": 1, "no-42": 1 } },
    { flagged: false, categories: { "no-zanzibar": false, "no-42": false }, scores: { "no-zanzibar": 0, "no-42": 0 } },
  ]);
});

test("a policy never checks the output of its own classifier model (it would wait for itself)", () => {
  const config = moderationConfigSchema.parse({ policies: [{ name: "judge", classifier: { model: "guard" } }] });
  const policy = new Policy(config.policies[0]!, new ModelRouter([]));
  assert.equal(policy.appliesTo("guard", "input"), true);
  assert.equal(policy.appliesTo("guard", "output", "content"), false);
  assert.equal(policy.appliesTo("chat", "output", "content"), true);
});

test("a served classifier model that is not served stops the start", () => {
  assert.throws(() => moderation([{ name: "judge", classifier: { model: "nowhere" } }]), /classifier model 'nowhere' is not served/);
});

test("verdicts: a classifier model's first word, Llama Guard's categories; an upstream's result, narrowed to chosen categories", () => {
  assert.deepEqual(parseVerdict("flagged"), { flagged: true, categories: [], score: 1 });
  assert.deepEqual(parseVerdict("unsafe\nS1,S10"), { flagged: true, categories: ["S1", "S10"], score: 1 });
  assert.deepEqual(parseVerdict(" Safe."), { flagged: false, categories: [], score: 0 });
  assert.equal(parseVerdict("I think this is fine"), null);
  assert.equal(parseVerdict(""), null);
  const result = { flagged: true, categories: { violence: true, hate: false, S1: null }, category_scores: { violence: 0.9, hate: 0.2 } };
  assert.deepEqual(verdictOf(result, undefined), { flagged: true, categories: ["violence"], score: 0.9 });
  assert.deepEqual(verdictOf(result, ["hate"]), { flagged: false, categories: [], score: 0.2 });
});
