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
const files = roots.flatMap((r) => findTests(path.resolve(root, r))).sort();
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}

for (const step of prepareSteps()) {
  console.log(`# ${step.label}`);
  const result = spawnSync(step.command[0]!, step.command.slice(1), { stdio: "inherit" });
  if (result.status !== 0) {
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

function findTests(start: string): string[] {
  if (!fs.existsSync(start)) return [];
  if (fs.statSync(start).isFile()) return start.endsWith(".test.ts") ? [start] : [];
  return fs.readdirSync(start, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) return [];
    const full = path.join(start, entry.name);
    return entry.isDirectory() ? findTests(full) : entry.name.endsWith(".test.ts") ? [full] : [];
  });
}

function prepareSteps(): Array<{ label: string; command: string[] }> {
  const steps: Array<{ label: string; command: string[] }> = [
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
  return steps;
}
