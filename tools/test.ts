/**
 * The whole test suite: prepares what the tests need (generated models, the web app build,
 * Chromium for browser tests), then runs every *.test.ts file with node's test runner.
 * Usage: npm test [-- file-or-folder …]
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);

const args = process.argv.slice(2);
const roots = args.length > 0 ? args : ["src", "test", "tools"];
/**
 * The files that take longest (measured on the 2-core CI machine), started first: with two files at
 * a time, a long one started last would run alone at the end while the other slot sits idle
 * (longest-processing-time-first scheduling). The rest keep alphabetical order. A file missing
 * from this list only costs some balance, never correctness.
 */
const SLOW_FIRST = [
  "test/fleet-topology.test.ts",
  "test/package.test.ts",
  "test/launcher-threadpool.test.ts",
  "test/audit.test.ts",
  "test/fleet-signals.test.ts",
  "test/tool-clients.test.ts",
  "test/limits-cluster.test.ts",
  "test/billing-crash.test.ts",
  "test/tools-local.test.ts",
  "test/remote-tools.test.ts",
  "test/openai-api.test.ts",
  "test/fleet-engine.test.ts",
  "test/fleet-redis.test.ts",
  "test/e2e/sso.test.ts",
  "test/e2e/security.test.ts",
  "test/backup.test.ts",
  "test/moderation-api.test.ts",
  "test/conversation-features.test.ts",
  "test/e2e/crashRestart.test.ts",
  "test/e2e/conversations.test.ts",
];

const files = slowestFirst(roots.flatMap((r) => findTests(path.resolve(root, r))).sort());
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}

for (const step of prepareSteps()) {
  console.log(`# ${step.label}`);
  const result = spawnSync(step.command[0]!, step.command.slice(1), { stdio: "inherit" });
  if (result.status !== 0) {
    if (step.optional) {
      console.error(`!!! preparation step failed, going on without it: ${step.label}`);
      continue;
    }
    console.error(`preparation failed: ${step.label}`);
    process.exit(result.status ?? 1);
  }
}

// Two files at a time: the machine has two cores and each llama.cpp test context uses one thread.
const concurrency = process.env.SPUTNIK_TEST_CONCURRENCY ?? "2";
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...files],
  { stdio: "inherit", env: { ...process.env, SPUTNIK_GPU: "off" } },
);
process.exit(result.status ?? 1);

function slowestFirst(found: string[]): string[] {
  const rank = new Map(SLOW_FIRST.map((file, i) => [path.resolve(root, file), i]));
  const slow = found.filter((f) => rank.has(f)).sort((a, b) => rank.get(a)! - rank.get(b)!);
  return [...slow, ...found.filter((f) => !rank.has(f))];
}

function findTests(start: string): string[] {
  if (!fs.existsSync(start)) return [];
  if (fs.statSync(start).isFile()) return start.endsWith(".test.ts") ? [start] : [];
  return fs.readdirSync(start, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) return [];
    const full = path.join(start, entry.name);
    return entry.isDirectory() ? findTests(full) : entry.name.endsWith(".test.ts") ? [full] : [];
  });
}

function prepareSteps(): Array<{ label: string; command: string[]; optional?: boolean }> {
  const steps: Array<{ label: string; command: string[]; optional?: boolean }> = [
    {
      // Scripted models only (chat, feature and tool-calling ones: milliseconds each); tests that need the big bench model generate it themselves.
      label: "generating test models",
      command: [
        process.execPath,
        "--import",
        "tsx",
        "-e",
        'const m = await import("./src/gguf/catalog.ts"); for (const name of m.MODEL_NAMES) if (name !== "bench") await m.ensureModel(name);',
      ],
    },
  ];
  if (fs.existsSync(path.join(root, "web", "package.json")) || fs.existsSync(path.join(root, "web", "index.html"))) {
    steps.push({ label: "building the web app", command: ["npm", "run", "build:web", "--silent"] });
  }
  if (fs.existsSync(path.join(root, "tools", "ensure-chromium.sh"))) {
    steps.push({ label: "checking Chromium", command: ["bash", "tools/ensure-chromium.sh"] });
  }
  if (fs.existsSync(path.join(root, "tools", "ensure-searx.sh"))) {
    // Optional where it cannot be installed: the web search tests then skip loudly (and fail under
    // SPUTNIK_REQUIRE_SERVICES=1, as CI sets), like those needing PostgreSQL or Redis.
    steps.push({ label: "checking searx", command: ["bash", "tools/ensure-searx.sh"], optional: true });
  }
  return steps;
}
