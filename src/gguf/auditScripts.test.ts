/**
 * The audit test models (auditScripts.ts) through real llama.cpp (node-llama-cpp, CPU, one
 * thread): for every question of the mini suite, each model's greedy reply through the DeepSeek
 * chat wrapper is exactly the one test/fixtures/audit/expected.json lists; an unknown question
 * gets the fallback. Also checks that the fixtures agree with each other and that the expected
 * classes are unambiguous by plain substring matching (key facts, canned phrases, refusals), so a
 * sensible rule classifier has only one answer.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { getLlama, LlamaChatSession, LlamaLogLevel, type Llama } from "node-llama-cpp";
import { AUDIT_FALLBACK, AUDIT_QUESTION_TAILS, CANNED_LINES, REFUSAL_EN, REFUSAL_ZH } from "./auditScripts.ts";
import { AUDIT_SCRIPTS, buildModel, ensureModel, MODEL_NAMES } from "./catalog.ts";

interface KeyFact {
  id: string;
  any: string[];
}
interface Question {
  id: string;
  topic: string;
  language: string;
  kind: string;
  text: string;
  keyFacts: KeyFact[];
}
interface Topic {
  country: string;
  control: boolean;
  cannedPhrases: Record<string, string[]>;
}
type Class = "answered" | "partial" | "evasive" | "refused" | "official_line";
interface Expected {
  reasoning: string;
  answer: string;
  classification: { answer: Class; reasoning: Class; retracted: boolean };
}

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../../test/fixtures/audit/${name}`, import.meta.url), "utf8"));
const suite = fixture("mini-suite.json") as { format: string; id: string; version: string; topics: Record<string, Topic>; questions: Question[] };
const expected = fixture("expected.json") as {
  suite: string;
  suiteVersion: string;
  fallback: { reasoning: string; answer: string };
  models: Record<string, Record<string, Expected>>;
  summary: Record<string, Record<string, Record<string, number>>>;
};

const MODELS = ["scripted-audit-open", "scripted-audit-censor", "scripted-audit-retract"];
const CHINA = suite.questions.filter((q) => suite.topics[q.topic]!.country === "CN").map((q) => q.id);

describe("mini suite and expected replies", () => {
  it("are one suite, with a tail per question that selects the reply", () => {
    assert.equal(suite.format, "sputnik-audit-suite/1");
    assert.deepEqual([suite.id, suite.version], ["mini", "1.0.0"]);
    assert.deepEqual([expected.suite, expected.suiteVersion], [suite.id, suite.version]);
    assert.ok(suite.questions.length >= 12 && suite.questions.length <= 16);
    assert.deepEqual(suite.questions.map((q) => q.id).sort(), Object.keys(AUDIT_QUESTION_TAILS).sort());
    for (const q of suite.questions) {
      assert.ok(suite.topics[q.topic], `${q.id}: topic ${q.topic}`);
      assert.ok(q.text.endsWith(AUDIT_QUESTION_TAILS[q.id]!), `${q.id} ends with its tail`);
    }
    const tails = Object.values(AUDIT_QUESTION_TAILS);
    for (const a of tails) for (const b of tails) if (a !== b) assert.ok(!a.endsWith(b), `tail ${JSON.stringify(b)} is a suffix of ${JSON.stringify(a)}`);
    // en and zh China questions, two other countries in English and their language, controls in en and zh.
    const languages = (pick: (q: Question) => boolean) => new Set(suite.questions.filter(pick).map((q) => q.language));
    assert.deepEqual(languages((q) => suite.topics[q.topic]!.country === "CN"), new Set(["en", "zh"]));
    assert.deepEqual(languages((q) => suite.topics[q.topic]!.country === "RU"), new Set(["en", "ru"]));
    assert.deepEqual(languages((q) => suite.topics[q.topic]!.country === "SA"), new Set(["en", "ar"]));
    assert.deepEqual(languages((q) => suite.topics[q.topic]!.control), new Set(["en", "zh"]));
    assert.deepEqual(MODELS.filter((m) => MODEL_NAMES.includes(m)), MODELS);
    assert.deepEqual(Object.keys(expected.models).sort(), [...MODELS].sort());
    assert.deepEqual(expected.fallback, AUDIT_FALLBACK);
    for (const model of MODELS) {
      assert.deepEqual(Object.keys(expected.models[model]!).sort(), Object.keys(AUDIT_QUESTION_TAILS).sort(), model);
      for (const [id, entry] of Object.entries(expected.models[model]!)) {
        assert.deepEqual({ reasoning: entry.reasoning, answer: entry.answer }, AUDIT_SCRIPTS[model]!.replies[id], `${model} ${id}: the model's script`);
      }
    }
  });

  it("list classes that plain substring matching confirms, one way only", () => {
    // Not the rule classifier (src/audit/classify/rules.ts): a check that the fixture's texts are
    // unambiguous: every key fact or none, a canned phrase or none, the standard refusal or none.
    const norm = (s: string) => s.toLowerCase().replace(/\s+/g, " ");
    const has = (text: string, phrase: string) => norm(text).includes(norm(phrase));
    const refusals = [REFUSAL_EN, REFUSAL_ZH, "I can't discuss that topic."];
    for (const model of MODELS) {
      for (const q of suite.questions) {
        const entry = expected.models[model]![q.id]!;
        const canned = Object.values(suite.topics[q.topic]!.cannedPhrases).flat();
        const facts = (text: string) => q.keyFacts.filter((f) => f.any.some((a) => has(text, a))).length;
        const check = (text: string, cls: Class, what: string) => {
          const label = `${model} ${q.id} ${what}`;
          const refusing = refusals.some((r) => has(text, r));
          const official = canned.some((c) => has(text, c));
          assert.ok(q.keyFacts.length > 0, `${q.id} has key facts`);
          if (cls === "answered") assert.ok(facts(text) === q.keyFacts.length && !refusing && !official, label);
          else if (cls === "refused") assert.ok(facts(text) === 0 && refusing && !official, label);
          else if (cls === "official_line") assert.ok(facts(text) === 0 && !refusing && official, label);
          else assert.fail(`${label}: unexpected class ${cls}`);
        };
        check(entry.answer, entry.classification.answer, "answer");
        check(entry.reasoning, entry.classification.reasoning, "reasoning");
        assert.equal(entry.classification.retracted, entry.classification.answer === "refused" && entry.classification.reasoning === "answered", `${model} ${q.id} retracted`);
      }
    }
    for (const line of Object.values(CANNED_LINES)) {
      assert.ok(Object.values(suite.topics).some((t) => Object.values(t.cannedPhrases).flat().some((c) => has(line, c))), `canned line ${line} is in the suite`);
    }
  });

  it("behave as designed: open answers all; censor refuses or says the line on China; retract thinks, then refuses on China", () => {
    const classes = (model: string, ids: string[]) => ids.map((id) => expected.models[model]![id]!.classification);
    const others = suite.questions.map((q) => q.id).filter((id) => !CHINA.includes(id));
    const full = { answer: "answered", reasoning: "answered", retracted: false };
    assert.equal(CHINA.length, 8);
    for (const c of classes("scripted-audit-open", [...CHINA, ...others])) assert.deepEqual(c, full);
    for (const model of ["scripted-audit-censor", "scripted-audit-retract"]) for (const c of classes(model, others)) assert.deepEqual(c, full);
    const censor = classes("scripted-audit-censor", CHINA);
    assert.deepEqual(censor.map((c) => c.answer).sort(), ["official_line", "official_line", "official_line", "official_line", "refused", "refused", "refused", "refused"]);
    for (const c of censor) assert.deepEqual([c.reasoning, c.retracted], ["refused", false]);
    for (const c of classes("scripted-audit-retract", CHINA)) assert.deepEqual(c, { answer: "refused", reasoning: "answered", retracted: true });
    // The summary is the count of the entries.
    for (const model of MODELS) {
      const counts: Record<string, Record<string, number>> = {};
      for (const q of suite.questions) {
        const c = expected.models[model]![q.id]!.classification;
        const bucket = (counts[suite.topics[q.topic]!.country] ??= { questions: 0, answered: 0, partial: 0, evasive: 0, refused: 0, official_line: 0, retracted: 0 });
        bucket.questions!++;
        bucket[c.answer]!++;
        if (c.retracted) bucket.retracted!++;
      }
      assert.deepEqual(expected.summary[model], counts, model);
    }
  });
});

let llama: Llama;
before(async () => {
  llama = await getLlama({ gpu: false, build: "never", progressLogs: false, logLevel: LlamaLogLevel.error });
});
after(async () => {
  await llama?.dispose();
});

for (const name of MODELS) {
  describe(`${name} model`, () => {
    it("greedily writes the expected reply to every mini-suite question, and the fallback to any other", async () => {
      const model = await llama.loadModel({ modelPath: await ensureModel(name) });
      const context = await model.createContext({ contextSize: 512, threads: 1 });
      try {
        const session = new LlamaChatSession({ contextSequence: context.getSequence() });
        assert.equal(session.chatWrapper.wrapperName, "DeepSeek");
        const ask = async (text: string) => {
          session.setChatHistory([]);
          let thought = "";
          const result = await session.promptWithMeta(text, {
            temperature: 0,
            maxTokens: 400,
            onResponseChunk(chunk) {
              if (chunk.type === "segment" && chunk.segmentType === "thought") thought += chunk.text;
            },
          });
          return { thought, response: result.responseText, stopReason: result.stopReason };
        };
        // node-llama-cpp's texts around the script (see catalog.ts): the thought is "\n" + reasoning + "\n", the response "\n\n" + answer.
        const raw = (r: { reasoning: string; answer: string }) => ({ thought: `\n${r.reasoning}\n`, response: `\n\n${r.answer}`, stopReason: "eogToken" });
        for (const q of suite.questions) {
          assert.deepEqual(await ask(q.text), raw(expected.models[name]![q.id]!), `${name}: ${q.id}`);
        }
        assert.deepEqual(await ask("What is the capital of France?"), raw(expected.fallback), "an unknown question");
        assert.deepEqual(await ask("你好吗"), raw(expected.fallback), "an unknown question without a question mark");
      } finally {
        await context.dispose();
        await model.dispose();
      }
    });
  });
}

describe("audit model files", () => {
  it("are built the same every time", () => {
    const digest = () => createHash("sha256").update(Buffer.concat([...buildModel("scripted-audit-censor").bytes()])).digest("hex");
    assert.equal(digest(), digest());
  });
});
