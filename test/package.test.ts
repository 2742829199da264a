/**
 * The installable package, as an operator gets it: `npm pack` (its prepack builds the web app),
 * `npm install -g` of the tarball into an empty prefix, then `<prefix>/bin/sputnik serve`, which
 * must serve the web app and answer a chat completion with nothing but the package and its runtime
 * dependencies (no dev dependency, no file of this repository).
 *
 * Two deliberate differences from a bare `npm pack` in the repository:
 * - It packs a copy of the working tree (without web/dist) that borrows the repository's
 *   node_modules, because the prepack rebuilds web/dist, and browser tests running beside this file
 *   serve the repository's web/dist: rebuilding it under them would empty it for a moment. Starting
 *   without web/dist also proves the tarball's web app was built at pack time.
 * - better-sqlite3's install script (prebuild-install) is handed the binary that `npm ci` already
 *   built for this Node version, through prebuild-install's documented local-prebuilds setting. An
 *   operator's install downloads the same kind of prebuilt file from GitHub; offline, the script
 *   compiles SQLite from source instead, which takes minutes on this machine.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { readLocalKey } from "../src/auth/localMode.ts";
import { MODEL_SCRIPTS } from "../src/gguf/catalog.ts";

const execFileAsync = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));
const rootPackage = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { name: string; version: string };

// Build outputs, caches and local state: never part of a package, and web/dist must come from the prepack.
const NOT_COPIED = new Set(["node_modules", ".git", ".cache", "data", "dist", "artifacts", path.join("web", "dist")]);

let work: string;
let prefix: string;
let packageDir: string;
let tarballEntries: string[];
const timings: Record<string, number> = {};

/** Runs a command to completion; a failure carries its output. */
async function run(label: string, file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  const started = Date.now();
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { ...options, maxBuffer: 64 * 1024 * 1024 });
    return stdout + stderr;
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${label} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
  } finally {
    timings[label] = Date.now() - started;
  }
}

/**
 * The environment of a plain shell: `npm test` exports its own config and package fields as npm_*
 * variables (the repository's allowScripts, its prefix…), which must not steer the inner npm.
 * The cache location stays, so the install reads the cache `npm ci` just filled.
 */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) && !/^npm_config_(cache|userconfig|globalconfig|registry)$/i.test(key)) continue;
    env[key] = value;
  }
  // The installed `sputnik` is a `#!/usr/bin/env node` script: make that the Node running this test.
  env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`;
  delete env.NODE_OPTIONS;
  delete env.NODE_PATH;
  return { ...env, ...extra };
}

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), "sputnik-package-"));
  const stage = path.join(work, "stage");
  const packDir = path.join(work, "pack");
  prefix = path.join(work, "prefix");
  await mkdir(packDir);

  let started = Date.now();
  await cp(root, stage, { recursive: true, filter: (source) => !NOT_COPIED.has(path.relative(root, source)) });
  await symlink(path.join(root, "node_modules"), path.join(stage, "node_modules"), "dir");
  timings["copy working tree"] = Date.now() - started;
  assert.ok(!fs.existsSync(path.join(stage, "web", "dist")), "the copy starts without a built web app");

  await run("npm pack (prepack builds the web app)", "npm", ["pack", "--pack-destination", packDir], { cwd: stage, env: plainEnv() });
  const tarballs = (await readdir(packDir)).filter((f) => f.endsWith(".tgz"));
  assert.deepEqual(tarballs, [`${rootPackage.name}-${rootPackage.version}.tgz`]);
  const tarball = path.join(packDir, tarballs[0]!);
  tarballEntries = (await run("list tarball", "tar", ["-tzf", tarball], { cwd: work }))
    .split("\n")
    .filter((line) => line.endsWith("/") === false && line.length > 0)
    .map((line) => line.replace(/^package\//, ""));
  timings["tarball bytes"] = fs.statSync(tarball).size;

  // better-sqlite3's prebuilt binary, named as prebuild-install looks for it (see the header).
  const sqliteDir = path.join(root, "node_modules", "better-sqlite3");
  const sqliteVersion = (JSON.parse(fs.readFileSync(path.join(sqliteDir, "package.json"), "utf8")) as { version: string }).version;
  const prebuilds = path.join(work, "prebuilds");
  await mkdir(prebuilds);
  const prebuilt = `better-sqlite3-v${sqliteVersion}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run("prebuilt better-sqlite3", "tar", ["-czf", path.join(prebuilds, prebuilt), "-C", sqliteDir, "build/Release/better_sqlite3.node"], { cwd: work });

  started = Date.now();
  const installLog = await run(
    "npm install -g",
    "npm",
    ["install", "--global", "--prefix", prefix, tarball, "--prefer-offline", "--no-audit", "--no-fund"],
    { cwd: work, env: plainEnv({ npm_config_better_sqlite3_local_prebuilds: prebuilds }) },
  );
  timings["npm install -g"] = Date.now() - started;
  packageDir = path.join(prefix, "lib", "node_modules", rootPackage.name);
  assert.ok(fs.existsSync(packageDir), `installed into ${packageDir}:\n${installLog}`);
  // Not an error, only minutes: the prebuilt above did not match what prebuild-install looked for.
  if (fs.existsSync(path.join(packageDir, "node_modules", "better-sqlite3", "build", "Release", "obj.target"))) {
    console.log("# package test: better-sqlite3 was compiled from source during the install (no matching prebuilt)");
  }
  // node-llama-cpp's postinstall found a prebuilt llama.cpp that works: it built nothing.
  assert.ok(!fs.existsSync(path.join(packageDir, "node_modules", "node-llama-cpp", "llama", "localBuilds")), `llama.cpp was built from source:\n${installLog}`);
});

after(async () => {
  console.log(`# package test timings (ms, bytes): ${JSON.stringify(timings)}`);
  if (work) await rm(work, { recursive: true, force: true });
});

test("the tarball holds the CLI, the sources and the built web app, and no tests, tools or caches", () => {
  for (const needed of ["package.json", "README.md", "bin/sputnik.js", "bin/package.json", "src/cli/main.ts", "src/engines/local/grammarWorker.mjs", "web/dist/index.html"]) {
    assert.ok(tarballEntries.includes(needed), `${needed} is packed`);
  }
  assert.ok(tarballEntries.some((f) => /^web\/dist\/assets\/index-[\w-]+\.js$/.test(f)), "the web app's entry chunk is packed");
  const unwanted = tarballEntries.filter((f) => /\.test\.ts$|\/testdata\/|^(test|bench|tools|docs|web\/src|web\/dist\/\.vite|node_modules|\.cache|data|artifacts)\//.test(f) || f === "package-lock.json");
  assert.deepEqual(unwanted, []);
  assert.ok(timings["tarball bytes"]! < 10 * 1024 * 1024, `the tarball is ${timings["tarball bytes"]} bytes`);
});

test("the installed `sputnik serve` serves the web app and answers, writing only to its data dir", async () => {
  const dataDir = path.join(work, "data");
  // Somewhere that is neither the repository nor the package: the service must not need either as its directory.
  const cwd = await mkdtemp(path.join(work, "cwd-"));
  const started = Date.now();
  const child: ChildProcess = spawn(
    path.join(prefix, "bin", "sputnik"),
    ["--data-dir", dataDir, "serve", "--port", "0", "-m", "demo", "-t", "1", "--parallel", "1", "--no-pull"],
    { cwd, env: plainEnv({ SPUTNIK_GPU: "off" }), stdio: ["ignore", "pipe", "pipe"] },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let output = "";
  try {
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout!.on("data", (d: Buffer) => {
        output += d.toString();
        const found = /listening on (http:\/\/\S+?)"/.exec(output)?.[1];
        if (found) resolve(found);
      });
      child.once("exit", (code) => reject(new Error(`the installed sputnik exited with ${code} before listening:\n${output}`)));
    });
    timings["serve start"] = Date.now() - started;

    assert.equal((await fetch(`${url}/health`)).status, 200, output);

    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const html = await page.text();
    assert.equal(html, await readFile(path.join(packageDir, "web", "dist", "index.html"), "utf8"), "GET / is the packed web app");
    const entry = /<script[^>]+src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(entry, "index.html loads a script");
    const script = await fetch(`${url}${entry}`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type") ?? "", /javascript/);

    const reply = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      // Local single-user mode: the data dir's key is the API key.
      headers: { "content-type": "application/json", authorization: `Bearer ${await readLocalKey(dataDir)}` },
      body: JSON.stringify({ model: "sputnik-demo", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(reply.status, 200, output);
    const body = (await reply.json()) as { choices: Array<{ message: { content: string; reasoning_content?: string } }> };
    assert.equal(body.choices[0]!.message.content, MODEL_SCRIPTS.demo!.answer);
    assert.equal(body.choices[0]!.message.reasoning_content, MODEL_SCRIPTS.demo!.reasoning);

    // The generated demo model went to the data dir; the package dir holds exactly what was packed.
    assert.ok(fs.existsSync(path.join(dataDir, "builtin", "demo.gguf")), "the demo model is generated into the data dir");
    assert.deepEqual(filesOutsideNodeModules(packageDir), [...tarballEntries].sort(), "nothing was written into the installed package");
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    throw error;
  }
  child.kill("SIGTERM");
  assert.equal(await exited, 0, `sputnik stops cleanly on SIGTERM:\n${output.slice(-4000)}`);
  timings["serve total"] = Date.now() - started;
});

/** The package's own files (relative, sorted, `/`-separated), its node_modules left out. */
function filesOutsideNodeModules(dir: string, relative = ""): string[] {
  return fs
    .readdirSync(path.join(dir, relative), { withFileTypes: true })
    .flatMap((entry) => {
      const name = relative ? `${relative}/${entry.name}` : entry.name;
      if (name === "node_modules") return [];
      return entry.isDirectory() ? filesOutsideNodeModules(dir, name) : [name];
    })
    .sort();
}
