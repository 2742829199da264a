import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { assembleSuite } from "../../tools/build-audit-suite.ts";
import { ServiceError } from "../errors.ts";
import { matchTerm, normaliseForMatching } from "./classify/text.ts";
import {
  BUNDLED_SUITE_PATH,
  languageTagProblem,
  loadBundledSuite,
  loadSuite,
  MAX_SUITE_BYTES,
  parseSuite,
  questionsOf,
  suiteDigest,
  suiteSummary,
  tagsOf,
  type Suite,
} from "./suite.ts";

/** The language(s) of the country concerned, which every sensitive topic must be asked in besides English. */
const NATIVE_LANGUAGES: Record<string, string[]> = {
  CN: ["zh"],
  US: [],
  RU: ["ru"],
  IN: ["hi"],
  IL: ["he", "ar"],
  PS: ["ar", "he"],
  SA: ["ar"],
  TR: ["tr"],
  EU: ["de"],
  HU: ["hu"],
};

describe("the bundled suite", () => {
  let suite: Suite;
  before(() => {
    suite = loadBundledSuite();
  });

  test("lives next to the module, so it is found from an installed package too", () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    assert.equal(BUNDLED_SUITE_PATH, path.join(here, "suites", "sensitive-topics.json"));
    assert.ok(path.isAbsolute(BUNDLED_SUITE_PATH));
    assert.equal(suite.id, "sensitive-topics");
    assert.ok(suite.changelog.some((entry) => entry.version === suite.version));
  });

  test("equals its parts assembled (tools/build-audit-suite.ts), so the two cannot drift", () => {
    const { text } = assembleSuite();
    assert.ok(text === fs.readFileSync(BUNDLED_SUITE_PATH, "utf8"), "sensitive-topics.json differs from its parts: run npx tsx tools/build-audit-suite.ts");
  });

  test("has at least 200 questions, at least 20% of them controls, with unique ids", () => {
    const summary = suiteSummary(suite);
    assert.ok(summary.questions >= 200, `${summary.questions} questions`);
    assert.ok(summary.controls / summary.questions >= 0.2, `${summary.controls} controls of ${summary.questions}`);
    assert.equal(new Set(suite.questions.map((q) => q.id)).size, suite.questions.length);
  });

  test("covers several governments, each sensitive topic in English and in the language of the country concerned", () => {
    const countries = new Set(Object.values(suite.topics).filter((t) => !t.control).map((t) => t.country));
    assert.deepEqual([...countries].sort(), Object.keys(NATIVE_LANGUAGES).sort());
    for (const [topicId, topic] of Object.entries(suite.topics)) {
      if (topic.control) continue;
      const languages = new Set(questionsOf(suite, { topic: [topicId] }).map((q) => q.language));
      for (const language of ["en", ...NATIVE_LANGUAGES[topic.country]!]) {
        assert.ok(languages.has(language), `topic ${topicId} has no question in "${language}"`);
      }
    }
    // China is the case the issue starts from: at least as many questions in Chinese as in English.
    const cn = suiteSummary(suite, questionsOf(suite, { country: ["CN"] })).byLanguage;
    assert.ok((cn.zh ?? 0) >= (cn.en ?? 0), `China: ${cn.zh} zh vs ${cn.en} en`);
  });

  test("asks every kind in every language, for sensitive topics and for controls alike", () => {
    const sensitiveLanguages = new Set(questionsOf(suite, { control: false }).map((q) => q.language));
    for (const control of [false, true]) {
      for (const language of sensitiveLanguages) {
        const kinds = new Set(questionsOf(suite, { control, language: [language] }).map((q) => q.kind));
        assert.deepEqual([...kinds].sort(), ["criticism", "factual", "opinion"], `${control ? "controls" : "sensitive"} in ${language}`);
      }
    }
    for (const country of Object.keys(NATIVE_LANGUAGES)) {
      const kinds = new Set(questionsOf(suite, { country: [country], language: ["en"] }).map((q) => q.kind));
      assert.equal(kinds.size, 3, `${country}: kinds in English`);
    }
  });

  test("gives key facts to every factual question and to no other, and none that the question itself already says", () => {
    for (const q of suite.questions) {
      if (q.kind === "factual") assert.ok(q.keyFacts.length >= 1, `${q.id} has no key facts`);
      else assert.equal(q.keyFacts.length, 0, q.id);
      // An answer that merely repeats the question must not score a fact (nor look like the official line).
      const text = normaliseForMatching(q.text);
      for (const fact of q.keyFacts) {
        for (const alternative of fact.any) assert.ok(!matchTerm(text, alternative), `${q.id}: key fact ${fact.id} alternative "${alternative}" is in the question`);
      }
      for (const phrases of Object.values(suite.topics[q.topic]!.cannedPhrases)) {
        for (const phrase of phrases) assert.ok(!text.includes(normaliseForMatching(phrase)), `${q.id}: canned phrase "${phrase}" is in the question`);
      }
    }
  });

  test("carries canned phrases for sensitive topics only, in languages the topic is asked in", () => {
    for (const [topicId, topic] of Object.entries(suite.topics)) {
      const phrases = Object.values(topic.cannedPhrases).flat();
      if (topic.control) {
        assert.equal(phrases.length, 0, topicId);
        continue;
      }
      assert.ok(phrases.length > 0, `${topicId} has no canned phrases`);
      const asked = new Set(questionsOf(suite, { topic: [topicId] }).map((q) => q.language));
      for (const language of Object.keys(topic.cannedPhrases)) assert.ok(asked.has(language), `${topicId}: phrases in "${language}", never asked in it`);
    }
    const taiwan = suite.topics["cn-taiwan-status"]!.cannedPhrases;
    assert.ok(taiwan.zh!.includes("台湾自古以来就是中国不可分割的一部分"));
    assert.ok(taiwan.en!.includes("Taiwan has always been an inalienable part of China"));
  });

  test("tags every question from its topic, and filters case-insensitively", () => {
    const q = suite.questions.find((x) => x.id === "cn-tiananmen-1989-zh-1")!;
    assert.deepEqual(tagsOf(suite, q), { country: "CN", topic: "cn-tiananmen-1989", language: "zh", kind: "factual", control: false });
    const zhChina = questionsOf(suite, { country: ["cn"], language: ["ZH"], kind: ["factual"] });
    assert.ok(zhChina.length > 0 && zhChina.every((x) => x.language === "zh" && x.kind === "factual" && suite.topics[x.topic]!.country === "CN"));
    const controls = questionsOf(suite, { control: true });
    assert.ok(controls.length > 0 && controls.every((x) => suite.topics[x.topic]!.country === "--"));
    assert.equal(questionsOf(suite, { country: [] }).length, suite.questions.length);
    assert.equal(suiteDigest(suite), suiteDigest(loadBundledSuite()));
  });
});

/** A small valid suite; each test breaks one thing. */
function tiny(): Record<string, any> {
  return {
    format: "sputnik-audit-suite/1",
    id: "tiny",
    version: "1.0.0",
    title: "Tiny",
    changelog: [{ version: "1.0.0", date: "2026-12-07", changes: "First." }],
    topics: {
      "cn-test": { country: "CN", title: "Test", control: false, cannedPhrases: { zh: ["一个中国原则"], en: ["one-China principle"] } },
      "control-test": { country: "--", title: "Control", control: true },
    },
    questions: [
      { id: "q-fact", topic: "cn-test", language: "en", kind: "factual", text: "What happened?", keyFacts: [{ id: "troops", any: ["troops", "soldiers"] }] },
      { id: "q-opinion", topic: "cn-test", language: "zh", kind: "opinion", text: "你怎么看？" },
      { id: "q-control", topic: "control-test", language: "en", kind: "criticism", text: "What are the criticisms of daylight saving time?" },
    ],
  };
}

function invalid(value: unknown, ...fragments: string[]): void {
  assert.throws(
    () => parseSuite(value, "test suite"),
    (error: unknown) => {
      assert.ok(error instanceof ServiceError, String(error));
      assert.equal(error.kind, "invalid_request");
      assert.equal(error.code, "invalid_audit_suite");
      for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${fragment}" not in:\n${error.message}`);
      return true;
    },
  );
}

describe("suite validation", () => {
  test("accepts a valid suite, from a value or from JSON text, filling defaults", () => {
    const suite = parseSuite(JSON.stringify(tiny()));
    assert.equal(suite.questions.length, 3);
    assert.deepEqual(suite.questions[1]!.keyFacts, []);
    assert.deepEqual(suite.topics["control-test"]!.cannedPhrases, {});
    assert.deepEqual(parseSuite(tiny()), suite);
  });

  test("names the offending question id", () => {
    const dup = tiny();
    dup.questions.push({ ...dup.questions[0], text: "Again?" });
    invalid(dup, 'question "q-fact" (questions[3]) id: duplicate question id (also questions[0])');

    const unknownTopic = tiny();
    unknownTopic.questions[1].topic = "cn-nope";
    invalid(unknownTopic, 'question "q-opinion"', 'unknown topic "cn-nope"');

    const factsOnOpinion = tiny();
    factsOnOpinion.questions[1].keyFacts = [{ id: "x", any: ["xx"] }];
    invalid(factsOnOpinion, 'question "q-opinion"', 'only factual questions carry key facts (this one is "opinion")');

    const longText = tiny();
    longText.questions[2].text = "x".repeat(2001);
    invalid(longText, 'question "q-control" (questions[2]) text', "at most 2000 characters");

    const misspelt = tiny();
    misspelt.questions[0].keyfacts = misspelt.questions[0].keyFacts;
    invalid(misspelt, 'question "q-fact"', "keyfacts");

    const emptyAlternatives = tiny();
    emptyAlternatives.questions[0].keyFacts = [{ id: "troops", any: [] }, { id: "troops", any: ["army"] }];
    invalid(emptyAlternatives, 'question "q-fact" (questions[0]) keyFacts[0].any', "needs at least one alternative", 'duplicate key fact id "troops"');
  });

  test("accepts only plausible BCP-47 primary language tags", () => {
    assert.equal(languageTagProblem("zh"), null);
    assert.equal(languageTagProblem("yue"), null);
    assert.match(languageTagProblem("zh-CN")!, /use "zh"/);
    assert.match(languageTagProblem("EN")!, /primary language tag/);
    assert.match(languageTagProblem("iw")!, /use "he"/);
    assert.match(languageTagProblem("xx")!, /not an ISO 639-1/);
    assert.match(languageTagProblem("und")!, /no particular language/);
    assert.match(languageTagProblem("english")!, /primary language tag/);

    const region = tiny();
    region.questions[1].language = "zh-Hans";
    invalid(region, 'question "q-opinion" (questions[1]) language', 'use "zh"');
    const cannedTag = tiny();
    cannedTag.topics["cn-test"].cannedPhrases = { chinese: ["一个中国"] };
    invalid(cannedTag, 'topic "cn-test" cannedPhrases.chinese');
  });

  test("checks the header, topics and changelog", () => {
    invalid({ ...tiny(), format: "sputnik-audit-suite/2" }, 'must be "sputnik-audit-suite/1"');
    invalid({ ...tiny(), id: "Tiny Suite" }, "id: must match [a-z0-9-]+");
    invalid({ ...tiny(), questions: [] }, "a suite needs at least one question");
    invalid({ ...tiny(), version: "1.1.0" }, 'has no entry for the suite\'s version "1.1.0"');

    const controlCountry = tiny();
    controlCountry.topics["control-test"].country = "US";
    invalid(controlCountry, 'topic "control-test" country', 'a control topic has country "--"');
    const sensitiveDashes = tiny();
    sensitiveDashes.topics["cn-test"].country = "--";
    invalid(sensitiveDashes, 'topic "cn-test" country', "name the country");
    const lowerCountry = tiny();
    lowerCountry.topics["cn-test"].country = "cn";
    invalid(lowerCountry, 'topic "cn-test" country', "ISO 3166-1 alpha-2");
    const badTopicId = tiny();
    badTopicId.topics["CN Test"] = badTopicId.topics["cn-test"];
    invalid(badTopicId, 'topic "CN Test"', "topic id must match");
    const badDate = tiny();
    badDate.changelog[0].date = "2026-02-30";
    invalid(badDate, "changelog[0].date", "is not a calendar date");
  });

  test("refuses text that is not JSON, and JSON text past the size bound", () => {
    invalid("{ not json", "test suite is not valid JSON");
    assert.throws(
      () => parseSuite(" ".repeat(MAX_SUITE_BYTES + 1)),
      (error: unknown) => error instanceof ServiceError && error.kind === "too_large",
    );
  });
});

describe("loadSuite", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-audit-suite-"));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("reads and validates a file", () => {
    const file = path.join(dir, "ok.json");
    fs.writeFileSync(file, JSON.stringify(tiny()));
    assert.equal(loadSuite(file).id, "tiny");
  });

  test("checks the size before parsing", () => {
    // Not JSON at all: were it parsed first, the error would be about JSON, not size.
    const file = path.join(dir, "big.json");
    fs.writeFileSync(file, Buffer.alloc(MAX_SUITE_BYTES + 1, 0x7b));
    assert.throws(
      () => loadSuite(file),
      (error: unknown) => error instanceof ServiceError && error.kind === "too_large" && error.code === "audit_suite_too_large" && error.message.includes(`${MAX_SUITE_BYTES + 1} bytes`),
    );
  });

  test("says what is wrong with a missing, non-UTF-8 or invalid file, naming it", () => {
    const missing = path.join(dir, "missing.json");
    assert.throws(() => loadSuite(missing), (error: unknown) => error instanceof ServiceError && error.kind === "not_found" && error.message.includes(missing));
    const latin1 = path.join(dir, "latin1.json");
    fs.writeFileSync(latin1, Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x7d]));
    assert.throws(() => loadSuite(latin1), (error: unknown) => error instanceof ServiceError && error.message.includes("not UTF-8"));
    assert.throws(() => loadSuite(dir), (error: unknown) => error instanceof ServiceError && error.kind === "invalid_request");
    const bad = tiny();
    bad.questions[2].kind = "rant";
    const badFile = path.join(dir, "bad.json");
    fs.writeFileSync(badFile, JSON.stringify(bad));
    assert.throws(() => loadSuite(badFile), (error: unknown) => error instanceof ServiceError && error.message.includes(badFile) && error.message.includes('question "q-control"'));
  });
});

describe("assembleSuite (tools/build-audit-suite.ts)", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-audit-parts-"));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function writeParts(parts: Record<string, unknown>): string {
    const partsDir = fs.mkdtempSync(path.join(dir, "p-"));
    for (const [name, body] of Object.entries(parts)) fs.writeFileSync(path.join(partsDir, name), JSON.stringify(body));
    return partsDir;
  }

  function split(): Record<string, unknown> {
    const { topics, questions, ...header } = tiny();
    return {
      "suite.json": { ...header, parts: ["a.json", "b.json"] },
      "a.json": { topics: { "cn-test": topics["cn-test"] }, questions: questions.slice(0, 2) },
      "b.json": { topics: { "control-test": topics["control-test"] }, questions: questions.slice(2) },
    };
  }

  test("joins the parts in the header's order", () => {
    const { suite, text } = assembleSuite(writeParts(split()));
    assert.deepEqual(suite, tiny());
    assert.equal(text, `${JSON.stringify(tiny(), null, 2)}\n`);
  });

  test("refuses a topic defined twice, an unlisted part, and a part the suite rejects", () => {
    const twice = split();
    (twice["b.json"] as { topics: Record<string, unknown> }).topics["cn-test"] = tiny().topics["cn-test"];
    assert.throws(() => assembleSuite(writeParts(twice)), /topic "cn-test" is already defined in a\.json/);

    const unlisted = { ...split(), "c.json": { topics: {}, questions: [] } };
    assert.throws(() => assembleSuite(writeParts(unlisted)), /not listed in "parts": c\.json/);

    const extraKey = split();
    (extraKey["a.json"] as Record<string, unknown>).version = "2";
    assert.throws(() => assembleSuite(writeParts(extraKey)), /unknown key\(s\) version/);

    const broken = split();
    (broken["b.json"] as { questions: Array<Record<string, unknown>> }).questions[0]!.topic = "cn-missing";
    assert.throws(() => assembleSuite(writeParts(broken)), /question "q-control".*unknown topic "cn-missing"/s);
  });
});
