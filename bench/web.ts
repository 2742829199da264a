/**
 * `npm run bench:web`: how fast the web app shows on a slow phone — first paint, first contentful
 * paint, the app ready to use, and the load event — in Debian's Chromium with DevTools' "Fast 3G"
 * profile (562.5 ms latency, 1.44 Mbit/s down, 675 kbit/s up) and a 4× slower CPU, against a real
 * `sputnik serve` process. Each run starts with an empty cache (a new browser context).
 *
 *   npm run bench:web -- [--runs 3] [--cpu 4]
 *
 * Two pages: the sign-in page (a first visit) and the chat of a signed-in user. Also printed: the
 * bytes that crossed the network and the uncompressed JavaScript. Figures are printed, never
 * asserted (the machine may be shared); the goal is first paint ≤ 2 s. Needs the built web app
 * (`npm run build:web`) and /usr/bin/chromium (tools/ensure-chromium.sh).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { chromium, type Browser, type Page } from "playwright-core";
import { ensureModel } from "../src/gguf/catalog.ts";
import { WEB_DIST_DIR } from "../src/http/webApp.ts";
import { AppClient } from "../test/support/appClient.ts";
import { SputnikProcess } from "./sputnikProcess.ts";

const { values: args } = parseArgs({ options: { runs: { type: "string", default: "3" }, cpu: { type: "string", default: "4" } } });
const runs = Number(args.runs);
const cpuSlowdown = Number(args.cpu);
if (!Number.isInteger(runs) || runs < 1 || !(cpuSlowdown >= 1)) throw new Error("--runs must be a positive whole number and --cpu at least 1");
if (!fs.existsSync(path.join(WEB_DIST_DIR, "index.html"))) throw new Error("the web app is not built: run `npm run build:web` first");

/** Chrome DevTools' "Fast 3G" preset (the throughput figures are bytes per second). */
const FAST_3G = { offline: false, latency: 562.5, downloadThroughput: (1.6 * 1000 * 1000 * 0.9) / 8, uploadThroughput: (750 * 1000 * 0.9) / 8 };
const USER = { username: "bench-user", password: "bench-password-1" };

interface Figures {
  firstPaint: number;
  firstContentfulPaint: number;
  ready: number;
  load: number;
  transferred: number;
  scriptBytes: number;
}

async function measure(browser: Browser, url: string, readySelector: string, cookies: Array<{ name: string; value: string }>): Promise<Figures> {
  const context = await browser.newContext({ viewport: { width: 412, height: 915 } });
  try {
    if (cookies.length > 0) await context.addCookies(cookies.map((c) => ({ ...c, url })));
    const page: Page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    await cdp.send("Network.emulateNetworkConditions", FAST_3G);
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: cpuSlowdown });
    let transferred = 0;
    let scriptBytes = 0;
    const scripts = new Set<string>();
    cdp.on("Network.responseReceived", (event: { requestId: string; type: string }) => {
      if (event.type === "Script") scripts.add(event.requestId);
    });
    cdp.on("Network.dataReceived", (event: { requestId: string; dataLength: number }) => {
      if (scripts.has(event.requestId)) scriptBytes += event.dataLength;
    });
    cdp.on("Network.loadingFinished", (event: { encodedDataLength: number }) => (transferred += event.encodedDataLength));

    await page.goto(url, { waitUntil: "load", timeout: 120_000 });
    await page.waitForSelector(readySelector, { timeout: 120_000 });
    const ready = (await page.evaluate("performance.now()")) as number;
    const timing = (await page.evaluate(`(() => {
      const paint = Object.fromEntries(performance.getEntriesByType("paint").map((e) => [e.name, e.startTime]));
      const nav = performance.getEntriesByType("navigation")[0];
      return { fp: paint["first-paint"] ?? NaN, fcp: paint["first-contentful-paint"] ?? NaN, load: nav ? nav.loadEventEnd : NaN };
    })()`)) as { fp: number; fcp: number; load: number };
    return { firstPaint: timing.fp, firstContentfulPaint: timing.fcp, ready, load: timing.load, transferred, scriptBytes };
  } finally {
    await context.close();
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "sputnik-webbench-"));
const server = new SputnikProcess({ models: [await ensureModel("scripted")], threads: 1, parallel: 1, pullDefaultModel: false }, dataDir);
let browser: Browser | undefined;
try {
  const url = await server.start();
  const client = new AppClient(url);
  const signup = await client.post("/api/auth/signup", USER);
  if (signup.status !== 201) throw new Error(`sign-up failed: ${signup.status} ${signup.text}`);
  const signedIn = [...client.cookies].map(([name, value]) => ({ name, value }));
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  console.log(`# web bench: Fast 3G (562.5 ms, 1.44 Mbit/s), CPU ${cpuSlowdown}× slower, ${runs} cold runs each, median; ${os.cpus().length} CPUs, load average ${os.loadavg().map((v) => v.toFixed(2)).join(" ")}`);
  const pages = [
    { name: "sign-in page (first visit)", cookies: [], ready: 'button[type="submit"]' },
    { name: "chat (signed in)", cookies: signedIn, ready: 'textarea[aria-label="Message"]' },
  ];
  for (const target of pages) {
    const results: Figures[] = [];
    for (let i = 0; i < runs; i++) results.push(await measure(browser, url, target.ready, target.cookies));
    const m = (key: keyof Figures) => median(results.map((r) => r[key]));
    console.log(
      `${target.name}: first paint ${seconds(m("firstPaint"))}, first contentful paint ${seconds(m("firstContentfulPaint"))}, ready ${seconds(m("ready"))}, load ${seconds(m("load"))}; ` +
        `${(m("transferred") / 1024).toFixed(0)} KiB over the network, ${(m("scriptBytes") / 1024).toFixed(0)} KiB of JavaScript uncompressed`,
    );
  }
} finally {
  await browser?.close();
  await server.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
