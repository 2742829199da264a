import { isIP } from "node:net";
import type { FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Database } from "../store/schema.ts";
import { anyUserExists } from "./users.ts";

/**
 * Loopback single-user mode (as Ollama does): a fresh install on a laptop should answer
 * `curl localhost:8080/v1/...` without keys. It applies to a request only when all hold:
 * 1. the config allows it (`auth.localMode`, default true);
 * 2. the server listens on a loopback address only (`host` is 127.x.x.x, ::1 or localhost);
 * 3. no account exists yet (the first account ends the mode, at once and for good);
 * 4. the connection itself comes from loopback, and carries no proxy headers (Forwarded,
 *    X-Forwarded-For, X-Real-IP): a reverse proxy on the same machine means the real client is
 *    elsewhere, so the mode never opens a proxied service to the world;
 * 5. the Host header (and Origin, when sent) names loopback: a web page whose DNS name was
 *    rebound to 127.0.0.1 sends its own name, and gets nothing.
 * Requests that bring credentials are judged by them instead.
 */
export class LocalMode {
  private accountsSeen = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly enabled: boolean,
  ) {}

  async appliesTo(request: FastifyRequest): Promise<boolean> {
    if (!this.enabled || this.accountsSeen) return false;
    if (!isLoopbackAddress(request.socket.remoteAddress)) return false;
    const h = request.headers;
    if (h.forwarded !== undefined || h["x-forwarded-for"] !== undefined || h["x-real-ip"] !== undefined) return false;
    if (!isLoopbackHost(hostnameOf(h.host))) return false;
    if (h.origin !== undefined && !isLoopbackHost(hostnameOf(originHost(h.origin)))) return false;
    // Accounts never disappear, so once seen the answer is final and costs nothing.
    if (await anyUserExists(this.db)) {
      this.accountsSeen = true;
      return false;
    }
    return true;
  }
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

/** Builds the LocalMode for a server listening on `host`; the mode is off unless it is loopback. */
export function localModeFor(db: Kysely<Database>, host: string, allowed: boolean): LocalMode {
  return new LocalMode(db, allowed && isLoopbackHost(host));
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
