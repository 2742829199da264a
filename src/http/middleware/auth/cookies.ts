import { randomBytes } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { hmacHex, safeEqual } from "../../../auth/secrets.ts";
import { ServiceError } from "../../../errors.ts";

export const SESSION_COOKIE = "sputnik_session";
/** Readable by the page's JavaScript, which echoes it in the CSRF header. */
export const CSRF_COOKIE = "sputnik_csrf";
export const CSRF_HEADER = "x-sputnik-csrf";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export interface CookieOptions {
  /** The service's secret (CSRF tokens are keyed by it). */
  secret: string;
  /** Session cookie lifetime, in seconds. */
  maxAgeSeconds: number;
  /** publicUrl is https: cookies are Secure whatever the request looks like. */
  httpsPublicUrl: boolean;
  /** Origins besides the service's own allowed to send state-changing requests (the CORS list and publicUrl). */
  trustedOrigins: ReadonlySet<string>;
}

/**
 * The session cookie (httpOnly, SameSite=Lax, Secure behind https) and CSRF protection for
 * cookie-authenticated requests.
 *
 * CSRF: every state-changing request (not GET/HEAD/OPTIONS) that a cookie could authenticate must
 * carry the header `X-Sputnik-CSRF` with the value of the `sputnik_csrf` cookie. While signed in,
 * that value is an HMAC of the session id (so it cannot be planted without the server's secret);
 * before sign-in it is a random value the server sets. A cross-site page can neither read the
 * cookie nor send a custom header without a CORS preflight, which only allow-listed origins pass.
 * A request whose Origin header names a foreign site is refused outright.
 */
export class SessionCookies {
  /**
   * The CSRF token each reply has already set. A reply may pass through several places that
   * ensure the cookie (a route that returns the token in its body, then the onSend hook): the
   * first value set is the one the client keeps and was told, so later calls return it unchanged
   * instead of setting a second, different cookie.
   */
  private readonly csrfSent = new WeakMap<FastifyReply, string>();

  constructor(private readonly options: CookieOptions) {}

  csrfTokenFor(sessionId: string): string {
    return hmacHex(this.options.secret, `csrf:${sessionId}`);
  }

  /** Starts a signed-in browser session: the session cookie plus its CSRF token. */
  setSession(request: FastifyRequest, reply: FastifyReply, token: string, sessionId: string): string {
    reply.setCookie(SESSION_COOKIE, token, { ...this.base(request), httpOnly: true, maxAge: this.options.maxAgeSeconds });
    return this.setCsrf(request, reply, this.csrfTokenFor(sessionId), this.options.maxAgeSeconds);
  }

  /** Ends the browser session: no session cookie, a fresh anonymous CSRF token. */
  clearSession(request: FastifyRequest, reply: FastifyReply): string {
    reply.clearCookie(SESSION_COOKIE, { ...this.base(request), httpOnly: true });
    return this.setAnonymousCsrf(request, reply);
  }

  setAnonymousCsrf(request: FastifyRequest, reply: FastifyReply): string {
    return this.setCsrf(request, reply, randomBytes(32).toString("base64url"));
  }

  /**
   * The CSRF token the browser should now hold (`sessionId` null when signed out), setting the
   * cookie when it is missing or stale. When this reply already set one (sign-in, sign-out, an
   * earlier call), that one stands.
   */
  ensureCsrfCookie(request: FastifyRequest, reply: FastifyReply, sessionId: string | null): string {
    const sent = this.csrfSent.get(reply);
    if (sent !== undefined) return sent;
    const current = request.cookies[CSRF_COOKIE];
    if (sessionId) {
      const expected = this.csrfTokenFor(sessionId);
      if (current !== expected) this.setCsrf(request, reply, expected, this.options.maxAgeSeconds);
      return expected;
    }
    return current && current.length >= 32 ? current : this.setAnonymousCsrf(request, reply);
  }

  /** Throws ServiceError forbidden unless a state-changing request proves it comes from our own pages. */
  checkCsrf(request: FastifyRequest, sessionId: string | null): void {
    if (SAFE_METHODS.has(request.method)) return;
    const origin = request.headers.origin;
    if (origin !== undefined && !this.originAllowed(request, origin)) {
      throw new ServiceError("forbidden", "Cross-site request refused: the Origin is not allowed.", { code: "csrf_origin_mismatch" });
    }
    const header = request.headers[CSRF_HEADER];
    const sent = typeof header === "string" ? header : "";
    const expected = sessionId ? this.csrfTokenFor(sessionId) : (request.cookies[CSRF_COOKIE] ?? "");
    if (sent === "" || expected.length < 32 || !safeEqual(sent, expected)) {
      throw new ServiceError(
        "forbidden",
        `Missing or wrong CSRF token: send the value of the '${CSRF_COOKIE}' cookie in the '${CSRF_HEADER}' header.`,
        { code: "csrf_token_invalid" },
      );
    }
  }

  isSecure(request: FastifyRequest): boolean {
    return this.options.httpsPublicUrl || request.protocol === "https";
  }

  private originAllowed(request: FastifyRequest, origin: string): boolean {
    if (this.options.trustedOrigins.has(origin)) return true;
    try {
      const url = new URL(origin);
      // Same origin: the page was served by us. Host only, not scheme: behind a TLS-terminating
      // proxy without trustProxy the request looks like http while the page is https.
      return url.host === request.host;
    } catch {
      return false;
    }
  }

  private setCsrf(request: FastifyRequest, reply: FastifyReply, value: string, maxAge?: number): string {
    reply.setCookie(CSRF_COOKIE, value, { ...this.base(request), httpOnly: false, ...(maxAge !== undefined ? { maxAge } : {}) });
    this.csrfSent.set(reply, value);
    return value;
  }

  private base(request: FastifyRequest) {
    return { path: "/", sameSite: "lax" as const, secure: this.isSecure(request) };
  }
}

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method);
}
