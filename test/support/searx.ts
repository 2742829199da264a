/**
 * Debian's `searx` (1.1.0, installed by tools/ensure-searx.sh, which `npm test` runs) as a real
 * search server process on loopback, for the web search tests. Its one engine is searx's own
 * `json_engine` pointed at a local site's JSON endpoint, so the result URLs are whatever the test's
 * site lists, passed through SearXNG's real merging and JSON output (`/search?format=json`).
 *
 *   const searx = await searxOrSkip(t, { engineUrl: `${site}/api?q={query}` });
 *   if (!searx) return;
 *   t.after(() => searx.stop());
 *
 * Missing searx skips loudly, or fails when SPUTNIK_REQUIRE_SERVICES=1 (as for PostgreSQL/Redis).
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

/** Debian's interpreter: the package installs searx into its dist-packages, not a pyenv's. */
export const SEARX_PYTHON = "/usr/bin/python3";
const SEARX_SHARE = "/usr/share/python3-searx";
const START_TIMEOUT_MS = 30_000;
/** find_spec of the top package, not an import: importing searx reads its settings file, which only startSearx writes. */
const FIND_SEARX =
  'import importlib.util, os, sys; s = importlib.util.find_spec("searx"); ' +
  'sys.exit(0 if s and s.submodule_search_locations and os.path.isfile(os.path.join(list(s.submodule_search_locations)[0], "webapp.py")) else 1)';

export interface SearxProcess {
  /** The instance root, e.g. http://127.0.0.1:41234 (JSON at `${url}/search?q=…&format=json`). */
  url: string;
  output(): string;
  /** Stops it by its PID (TERM, then KILL) and removes its settings. */
  stop(): Promise<void>;
}

/** Null when searx can be started here; otherwise why not. */
export function searxMissing(): string | null {
  return (missingMemo ??= { why: probeSearx() }).why;
}
let missingMemo: { why: string | null } | undefined;

function probeSearx(): string | null {
  const probe = spawnSync(SEARX_PYTHON, ["-c", FIND_SEARX], {
    encoding: "utf8",
    timeout: 20_000,
  });
  if (probe.error) return `${SEARX_PYTHON}: ${probe.error.message}`;
  if (probe.status !== 0) return `searx is not installed for ${SEARX_PYTHON} (run tools/ensure-searx.sh)`;
  return null;
}

export async function searxOrSkip(t: TestContext, options: { engineUrl: string }): Promise<SearxProcess | undefined> {
  return searxMissing() === null ? startSearx(options) : skipWithoutSearx(t);
}

/** For suites that start searx once in `before` (when searxMissing() is null) and skip each test otherwise. */
export function skipWithoutSearx(t: TestContext): undefined {
  const missing = searxMissing() ?? "searx did not start";
  if (process.env.SPUTNIK_REQUIRE_SERVICES === "1") throw new Error(`searx is needed and SPUTNIK_REQUIRE_SERVICES=1: ${missing}`);
  process.stderr.write(`!!! SKIPPED: ${missing} — these tests did not run: ${t.name}\n`);
  t.skip("searx is not installed");
  return undefined;
}

export async function startSearx(options: { engineUrl: string }): Promise<SearxProcess> {
  const dir = await mkdtemp(join(tmpdir(), "sputnik-searx-"));
  const port = await freePort();
  const settingsPath = join(dir, "settings.yml");
  await writeFile(settingsPath, settings(port, options.engineUrl));
  const child = spawn(SEARX_PYTHON, ["-m", "searx.webapp"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, SEARX_SETTINGS_PATH: settingsPath, PYTHONUNBUFFERED: "1", LANG: "C.UTF-8" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilServing(url, exited);
  } catch (error) {
    await stop();
    throw new Error(`searx did not start: ${(error as Error).message}\n${output.slice(-4000)}`);
  }
  return { url, output: () => output, stop };
}

async function waitUntilServing(url: string, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (gone) throw new Error("the process exited");
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`not serving after ${START_TIMEOUT_MS} ms`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A complete settings file (Debian ships no default one to merge with): JSON output on, no
 * engine bans after errors (tests provoke errors), one `json_engine` over plain http to loopback.
 */
function settings(port: number, engineUrl: string): string {
  const quoted = JSON.stringify(engineUrl); // a JSON string is a YAML string
  return `general:
  debug: false
  instance_name: "sputnik-test"
  contact_url: false
  enable_stats: false
search:
  safe_search: 0
  autocomplete: ""
  default_lang: ""
  ban_time_on_fail: 0
  max_ban_time_on_fail: 0
  formats: [html, json]
server:
  port: ${port}
  bind_address: "127.0.0.1"
  secret_key: "${randomBytes(16).toString("hex")}"
  base_url: false
  image_proxy: false
  http_protocol_version: "1.0"
  method: "GET"
  default_http_headers: {}
ui:
  static_path: "${SEARX_SHARE}/static"
  templates_path: "${SEARX_SHARE}/templates"
  default_theme: oscar
  default_locale: ""
  theme_args:
    oscar_style: logicodev
outgoing:
  request_timeout: 5.0
  pool_connections: 10
  pool_maxsize: 4
engines:
  - name: localsite
    engine: json_engine
    shortcut: ls
    categories: general
    search_url: ${quoted}
    results_query: results
    url_query: url
    title_query: title
    content_query: content
    timeout: 5.0
    enable_http: true
locales:
  en: English
doi_resolvers:
  oadoi.org: "https://oadoi.org/"
default_doi_resolver: "oadoi.org"
`;
}
