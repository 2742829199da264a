/**
 * Assembles the bundled audit suite, src/audit/suites/sensitive-topics.json, from its parts in
 * src/audit/suites/parts/ (one file per country or topic group, small enough to review and edit).
 *
 *   npx tsx tools/build-audit-suite.ts           rewrites the bundled file from the parts
 *   npx tsx tools/build-audit-suite.ts --check   exits 1 when the bundled file differs from the parts
 *
 * parts/suite.json holds the header (format, id, version, title, changelog) and `parts`, the part
 * files in the order their topics and questions appear; every other part holds only `topics` and
 * `questions`. The assembled file is committed and is what the service loads (an installed package
 * has no build step); src/audit/suite.test.ts checks it equals the parts assembled, so the two
 * cannot drift. Editing a question: edit its part, bump `version` and add a changelog entry in
 * parts/suite.json and src/audit/suites/CHANGELOG.md, then run this script.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BUNDLED_SUITE_PATH, parseSuite } from "../src/audit/suite.ts";

export const PARTS_DIR = fileURLToPath(new URL("../src/audit/suites/parts/", import.meta.url));
export const HEADER_FILE = "suite.json";
const HEADER_KEYS = ["format", "id", "version", "title", "changelog", "parts"] as const;
const PART_KEYS = ["topics", "questions"] as const;

export interface AssembledSuite {
  /** The suite as written: header fields, then every part's topics and questions in `parts` order. */
  suite: Record<string, unknown>;
  /** The file's exact text (two-space JSON and a final newline). */
  text: string;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function checkKeys(file: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(value).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new Error(`${file}: unknown key(s) ${unknown.join(", ")} (allowed: ${allowed.join(", ")})`);
}

/**
 * Reads the parts and returns the assembled suite, validated as the service will validate it.
 * Throws on a malformed part, a part missing from or unknown to the header, a topic defined in two
 * parts, or anything parseSuite refuses (its message names the offending question or topic id).
 */
export function assembleSuite(partsDir: string = PARTS_DIR): AssembledSuite {
  const headerPath = path.join(partsDir, HEADER_FILE);
  const header = readJson(headerPath);
  if (!isObject(header)) throw new Error(`${headerPath}: not a JSON object`);
  checkKeys(headerPath, header, HEADER_KEYS);
  const parts = header.parts;
  if (!Array.isArray(parts) || parts.length === 0 || !parts.every((p): p is string => typeof p === "string" && /^[a-z0-9-]+\.json$/.test(p))) {
    throw new Error(`${headerPath}: "parts" must be a non-empty list of file names such as "cn-1.json"`);
  }
  const listed = new Set<string>();
  for (const part of parts) {
    if (listed.has(part) || part === HEADER_FILE) throw new Error(`${headerPath}: "${part}" is listed twice or is the header`);
    listed.add(part);
  }
  // A part file nobody listed would silently drop its questions from the suite.
  const unlisted = fs
    .readdirSync(partsDir)
    .filter((f) => f.endsWith(".json") && f !== HEADER_FILE && !listed.has(f))
    .sort();
  if (unlisted.length > 0) throw new Error(`${headerPath}: part file(s) not listed in "parts": ${unlisted.join(", ")}`);

  const topics: Record<string, unknown> = {};
  const definedIn = new Map<string, string>();
  const questions: unknown[] = [];
  for (const part of parts) {
    const file = path.join(partsDir, part);
    const body = readJson(file);
    if (!isObject(body)) throw new Error(`${file}: not a JSON object`);
    checkKeys(file, body, PART_KEYS);
    if (!isObject(body.topics)) throw new Error(`${file}: "topics" must be an object (may be empty)`);
    if (!Array.isArray(body.questions)) throw new Error(`${file}: "questions" must be a list (may be empty)`);
    for (const [id, topic] of Object.entries(body.topics)) {
      const other = definedIn.get(id);
      if (other !== undefined) throw new Error(`${file}: topic "${id}" is already defined in ${other}`);
      definedIn.set(id, part);
      topics[id] = topic;
    }
    questions.push(...body.questions);
  }

  const suite: Record<string, unknown> = {
    format: header.format,
    id: header.id,
    version: header.version,
    title: header.title,
    changelog: header.changelog,
    topics,
    questions,
  };
  parseSuite(suite, `audit suite assembled from ${partsDir}`);
  return { suite, text: `${JSON.stringify(suite, null, 2)}\n` };
}

function main(argv: string[]): number {
  const check = argv.includes("--check");
  const unknown = argv.filter((a) => a !== "--check");
  if (unknown.length > 0) {
    console.error(`unknown argument(s): ${unknown.join(" ")}\nusage: npx tsx tools/build-audit-suite.ts [--check]`);
    return 2;
  }
  let assembled: AssembledSuite;
  try {
    assembled = assembleSuite();
  } catch (error) {
    console.error((error as Error).message);
    return 1;
  }
  const current = fs.existsSync(BUNDLED_SUITE_PATH) ? fs.readFileSync(BUNDLED_SUITE_PATH, "utf8") : null;
  const questions = (assembled.suite.questions as unknown[]).length;
  if (check) {
    if (current === assembled.text) {
      console.log(`${BUNDLED_SUITE_PATH} is up to date (${questions} questions)`);
      return 0;
    }
    console.error(`${BUNDLED_SUITE_PATH} differs from its parts: run npx tsx tools/build-audit-suite.ts`);
    return 1;
  }
  if (current === assembled.text) {
    console.log(`${BUNDLED_SUITE_PATH} unchanged (${questions} questions)`);
    return 0;
  }
  fs.writeFileSync(BUNDLED_SUITE_PATH, assembled.text);
  console.log(`wrote ${BUNDLED_SUITE_PATH} (${questions} questions, ${Buffer.byteLength(assembled.text)} bytes)`);
  return 0;
}

// Run only as a script: the unit test imports assembleSuite.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
