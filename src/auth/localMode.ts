import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { randomString, safeEqual } from "./secrets.ts";
import { anyUserExists } from "./users.ts";

/**
 * What local mode needs to know about a request, as plain values (the HTTP layer builds it:
 * src/http/middleware/auth).
 */
export interface LocalRequestInfo {
  /** The address the connection itself comes from (the socket's, never a forwarded one). */
  remoteAddress: string | undefined;
  /** The Host header. */
  host: string | undefined;
  /** The Origin header, when sent. */
  origin: string | undefined;
  /** Any proxy header is present (Forwarded, X-Forwarded-*, X-Real-IP, Via). */
  forwarded: boolean;
  /** The token of `Authorization: Bearer <token>`, when sent. */
  bearerToken: string | null;
}

/**
 * Loopback single-user mode: a fresh install on a laptop answers /v1 without creating an account,
 * with the local key the first run wrote to `<dataDir>/local-key` (mode 0600). It applies to a
 * request only when all hold:
 * 1. the config allows it (`auth.localMode`, default true);
 * 2. the server listens on a loopback address only (`host` is 127.x.x.x, ::1 or localhost);
 * 3. no account exists yet (the first account ends the mode, at once and for good);
 * 4. the request carries `Authorization: Bearer <local key>` (compared in constant time). Being on
 *    this machine is not enough: a reverse proxy on the same machine (nginx's default proxy_pass
 *    sends a loopback Host and no forwarding headers) would otherwise open the mode to the world,
 *    and so would any other local program that relays requests. Reading a 0600 file in the data
 *    directory proves the caller is the user who runs Sputnik; `sputnik chat` reads it itself;
 * 5. the connection itself comes from loopback, and carries no proxy headers (Forwarded,
 *    X-Forwarded-*, X-Real-IP, Via): belt and braces, should the key ever reach a proxy's config;
 * 6. the Host header (and Origin, when sent) names loopback: a web page whose DNS name was
 *    rebound to 127.0.0.1 sends its own name, and gets nothing.
 * Requests with a real API key or session are judged by them instead.
 */
export class LocalMode {
  private accountsSeen = false;

  /** `key` null: the mode is off (not allowed by the config, or not on loopback). */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly key: string | null,
  ) {}

  get enabled(): boolean {
    return this.key !== null && !this.accountsSeen;
  }

  async appliesTo(request: LocalRequestInfo): Promise<boolean> {
    if (this.key === null || this.accountsSeen) return false;
    if (request.bearerToken === null || !safeEqual(request.bearerToken, this.key)) return false;
    if (!isLoopbackAddress(request.remoteAddress)) return false;
    if (request.forwarded) return false;
    if (!isLoopbackHost(hostnameOf(request.host))) return false;
    if (request.origin !== undefined && !isLoopbackHost(hostnameOf(originHost(request.origin)))) return false;
    // Accounts never disappear, so once seen the answer is final and costs nothing.
    if (await anyUserExists(this.db)) {
      this.accountsSeen = true;
      return false;
    }
    return true;
  }
}

export const LOCAL_KEY_FILE = "local-key";
const LOCAL_KEY_PREFIX = "sk-local-";
const MIN_LOCAL_KEY_LENGTH = 32;

export function localKeyPath(dataDir: string): string {
  return join(dataDir, LOCAL_KEY_FILE);
}

/** The local key in `dataDir`, or null when there is none (no first run there yet, or unreadable). */
export async function readLocalKey(dataDir: string): Promise<string | null> {
  try {
    const key = (await readFile(localKeyPath(dataDir), "utf8")).trim();
    return key.length >= MIN_LOCAL_KEY_LENGTH ? key : null;
  } catch {
    return null;
  }
}

/**
 * The local key of `dataDir`, made on first use: 256 random bits in a file only its owner may read
 * (0600; a looser mode found on an existing file is tightened). Replicas or processes starting
 * together agree on one key: the file is created exclusively, and a loser reads the winner's.
 */
export async function ensureLocalKey(dataDir: string): Promise<string> {
  const file = localKeyPath(dataDir);
  await mkdir(dataDir, { recursive: true });
  const fresh = `${LOCAL_KEY_PREFIX}${randomString(43)}`;
  try {
    await writeFile(file, `${fresh}\n`, { mode: 0o600, flag: "wx" });
    return fresh;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
  if (((await stat(file)).mode & 0o077) !== 0) await chmod(file, 0o600);
  const key = (await readFile(file, "utf8")).trim();
  if (key.length < MIN_LOCAL_KEY_LENGTH) {
    throw new Error(`${file} holds a local key shorter than ${MIN_LOCAL_KEY_LENGTH} characters; delete the file and Sputnik makes a new one.`);
  }
  return key;
}

/** "localhost:8080" → "localhost", "[::1]:8080" → "[::1]". */
function hostnameOf(host: string | undefined): string {
  if (!host) return "";
  const bracketed = /^\[[^\]]*\]/.exec(host);
  return bracketed ? bracketed[0] : host.replace(/:\d*$/, "");
}

function originHost(origin: string): string {
  try {
    return new URL(origin).host;
  } catch {
    return "";
  }
}

/**
 * Builds the LocalMode for a server with this config: off unless allowed and listening on loopback
 * only, and off for good once an account exists; otherwise with the data directory's local key
 * (made now on a first run).
 */
export async function localModeFor(db: Kysely<Database>, config: { host: string; dataDir: string; auth: { localMode: boolean } }): Promise<LocalMode> {
  if (!config.auth.localMode || !isLoopbackHost(config.host) || (await anyUserExists(db))) return new LocalMode(db, null);
  return new LocalMode(db, await ensureLocalKey(config.dataDir));
}

/**
 * The line `sputnik serve` logs while local mode is on: where the web app is (to create the admin
 * account) and how to reach /v1 with the local key. It names the key's file, never the key, so the
 * secret stays out of logs.
 */
export async function localModeHint(
  db: Kysely<Database>,
  config: { host: string; dataDir: string; auth: { localMode: boolean } },
  url: string,
): Promise<string | null> {
  if (!config.auth.localMode || !isLoopbackHost(config.host) || (await anyUserExists(db))) return null;
  return (
    `No account yet: open ${url} to create the admin account. Until then /v1 answers this machine's user with the local key: ` +
    `curl -H "Authorization: Bearer $(cat ${localKeyPath(config.dataDir)})" ${url}/v1/models (sputnik chat --url ${url}/v1 reads it by itself).`
  );
}

export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  return isLoopbackAddress(h);
}

export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase().replace(/^::ffff:/, "");
  if (isIP(a) === 4) return a.startsWith("127.");
  return a === "::1" || a === "0:0:0:0:0:0:0:1";
}

/**
 * Refuses to serve the network with no way to tell users apart: listening on a non-loopback
 * address requires an account to exist already (create the first admin with
 * `sputnik admin create-user --admin`). Otherwise the first stranger to sign up would become admin.
 */
export async function assertSafeBinding(db: Kysely<Database>, host: string): Promise<void> {
  if (isLoopbackHost(host)) return;
  if (await anyUserExists(db)) return;
  throw new Error(
    `Refusing to listen on ${host}: no account exists yet, so anyone who can reach this address could use the API and make ` +
      `themselves admin. Create the first admin account (it uses the same data directory or database):\n` +
      `  sputnik admin create-user --admin --username <name>\n` +
      `or listen on loopback only (--host 127.0.0.1) to use Sputnik on this machine without accounts.`,
  );
}
