/**
 * What every browser test file shares: one real Sputnik service (generated scripted models, the
 * built web app) and one Chromium per file, plus watchers that fail a test on any dialog or any
 * request that leaves the service's origin.
 *
 * Chromium is Debian's (/usr/bin/chromium, installed by tools/ensure-chromium.sh, which `npm test`
 * runs first); the web app must be built (`npm run build:web`, also run by `npm test`).
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { TEST_PASSWORD_HASHING } from "../support/accountsServer.ts";
import { AppClient } from "../support/appClient.ts";
import { startTestService, type TestService, type TestServiceOptions } from "../support/service.ts";

export const CHROMIUM = "/usr/bin/chromium";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ARTIFACTS_DIR = path.join(root, "artifacts");

export interface E2E {
  service: TestService;
  browser: Browser;
  url: string;
  /** The first account (the administrator), signed in through the API. */
  admin: AppClient;
  close(): Promise<void>;
}

export const ADMIN = { username: "root-admin", password: "admin-password-1" };

/** Starts the service with `models` (and any other `config`, and startService's own `start` options), creates the admin account, launches Chromium. */
export async function startE2E(models: string[], config: TestServiceOptions["config"] = {}, start?: TestServiceOptions["start"]): Promise<E2E> {
  // Browser tests sign in many times from 127.0.0.1: the per-IP sign-in guard (20 a minute) is for
  // attackers and has its own test (test/auth-rate-limit.test.ts); a file that runs fast would trip it.
  const service = await startTestService({ models, config: { auth: { passwordHashing: TEST_PASSWORD_HASHING }, ...config, limits: { authPerIpPerMinute: 10_000, ...(config.limits as object | undefined) } }, ...(start ? { start } : {}) });
  let browser: Browser | undefined;
  try {
    const admin = new AppClient(service.url);
    const signup = await admin.post("/api/auth/signup", ADMIN);
    if (signup.status !== 201) throw new Error(`admin sign-up failed: ${signup.status} ${signup.text}`);
    browser = await launchChromium();
    const launched = browser;
    return {
      service,
      browser: launched,
      url: service.url,
      admin,
      close: async () => {
        await launched.close();
        await service.stop();
      },
    };
  } catch (error) {
    await browser?.close();
    await service.stop();
    throw error;
  }
}

/** Debian's Chromium, quiet: no sandbox (containers), no GPU, nothing fetched on its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export interface Watch {
  dialogs: string[];
  /** Requests to any origin but the service's. */
  foreign: string[];
  /** Uncaught page errors and console errors. */
  errors: string[];
}

/** Records what must never happen: dialogs (dismissed at once), requests elsewhere, page errors. */
export function watch(page: Page, origin: string): Watch {
  const seen: Watch = { dialogs: [], foreign: [], errors: [] };
  page.on("dialog", (dialog) => {
    seen.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (url.protocol === "data:" || url.protocol === "blob:") return;
    if (url.origin !== origin) seen.foreign.push(request.url());
  });
  page.on("pageerror", (error) => seen.errors.push(error.message));
  return seen;
}

export async function newPage(e2e: E2E, options: { width?: number; height?: number } = {}): Promise<{ context: BrowserContext; page: Page; seen: Watch }> {
  const context = await e2e.browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  return { context, page, seen: watch(page, new URL(e2e.url).origin) };
}

/** Creates an access code through the admin API (switching sign-up to codes) and returns its text. */
export async function accessCodeFor(e2e: E2E): Promise<string> {
  const mode = await e2e.admin.put("/api/admin/signup-mode", { mode: "code" });
  if (mode.status !== 200) throw new Error(`setting sign-up mode failed: ${mode.status} ${mode.text}`);
  const created = await e2e.admin.post("/api/admin/access-codes", { max_uses: 5, note: "e2e" });
  if (created.status !== 201) throw new Error(`creating a code failed: ${created.status} ${created.text}`);
  return created.body.code as string;
}

/** Signs up through the web app's form; resolves once the chat is showing. */
export async function signUpInBrowser(page: Page, url: string, user: { username: string; password: string; code?: string }): Promise<void> {
  await page.goto(`${url}/signup`);
  await page.getByLabel("User name").fill(user.username);
  await page.getByLabel("Password").fill(user.password);
  if (user.code !== undefined) await page.getByLabel("Access code").fill(user.code);
  await page.getByRole("button", { name: "Sign up" }).click();
}

/** Picks a model in the composer and sends a message with Enter. */
export async function sendMessage(page: Page, model: string, text: string): Promise<void> {
  await page.getByLabel("Model", { exact: true }).selectOption(model);
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const file = path.join(ARTIFACTS_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
