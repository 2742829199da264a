import cookie from "@fastify/cookie";
import cors from "@fastify/cors";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { LOCAL, ANONYMOUS } from "../../../auth/actor.ts";
import { actorFromApiKey, actorFromSession, bearerToken } from "../../../auth/authenticate.ts";
import { startAuthHousekeeping } from "../../../auth/housekeeping.ts";
import { localModeFor, type LocalMode, type LocalRequestInfo } from "../../../auth/localMode.ts";
import { SsoProviders } from "../../../auth/oidc/providers.ts";
import { PasswordHasher } from "../../../auth/passwords.ts";
import { serviceSecret } from "../../../auth/secrets.ts";
import { sessionOfDisabledAccount, type SessionLifetime } from "../../../auth/sessions.ts";
import type { Config } from "../../../config/schema.ts";
import { ServiceError } from "../../../errors.ts";
import type { Store } from "../../../store/database.ts";
import type { RouteAccess } from "../types.ts";
import { CSRF_HEADER, SESSION_COOKIE, SessionCookies } from "./cookies.ts";

export type { RouteAccess } from "../types.ts";
export { CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, SessionCookies } from "./cookies.ts";

/** What the app API routes need from the auth layer. */
export interface AuthServices {
  store: Store;
  hasher: PasswordHasher;
  lifetime: SessionLifetime;
  cookies: SessionCookies;
  localMode: LocalMode;
  /** `publicUrl` from the config, when set: links the app hands out (password-reset links) start with it. */
  publicUrl: string | null;
  /** Single sign-on providers (auth.oidcProviders), discovered on first use. */
  sso: SsoProviders;
  /** auth.passwordSignIn: false refuses password sign-in and sign-up. */
  passwordSignIn: boolean;
}

/**
 * Installs authentication on `app` (call before registering routes): cookies, CORS, the hook that
 * sets `request.actor` on every request and enforces each route's access (RouteAccess), and CSRF
 * checks. Who an API key or a session token belongs to is decided in src/auth/authenticate.ts;
 * what an actor may do (a key's model scope included) by src/policies. Returns the services the
 * account routes use.
 */
export async function registerAuth(app: FastifyInstance, deps: { store: Store; config: Config }): Promise<AuthServices> {
  const { store, config } = deps;
  const db = store.db;
  const lifetime: SessionLifetime = {
    maxAgeMs: config.auth.sessionMaxAgeHours * 3_600_000,
    idleMs: config.auth.sessionIdleHours * 3_600_000,
  };
  const trustedOrigins = new Set(config.corsOrigins);
  if (config.publicUrl) trustedOrigins.add(new URL(config.publicUrl).origin);
  const cookies = new SessionCookies({
    secret: await serviceSecret(db),
    maxAgeSeconds: Math.floor(lifetime.maxAgeMs / 1000),
    httpsPublicUrl: config.publicUrl?.startsWith("https://") ?? false,
    trustedOrigins,
  });
  const localMode = await localModeFor(db, config);
  const hasher = new PasswordHasher(config.auth.passwordHashing);

  await app.register(cookie);
  if (config.corsOrigins.length > 0) {
    // Exact allow-list with credentials; preflights are answered in CORS's own onRequest hook,
    // which runs before ours (browsers send no credentials on a preflight).
    await app.register(cors, {
      origin: (origin, callback) => callback(null, origin !== undefined && trustedOrigins.has(origin)),
      credentials: true,
      methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
      allowedHeaders: ["content-type", "authorization", CSRF_HEADER],
      exposedHeaders: ["retry-after", "x-request-id"],
      maxAge: 600,
    });
  }
  // Declared up front (null) so every request object keeps one shape; the hook fills it in.
  app.decorateRequest("actor", null as never);
  const stopHousekeeping = startAuthHousekeeping(db, app.log);
  app.addHook("onClose", async () => stopHousekeeping());

  app.addHook("onRequest", async (request, reply) => {
    request.actor = ANONYMOUS;
    // No route matched: the 404 answer reveals nothing, and SPA fallbacks must work signed out.
    if (request.is404) return;
    const routeUrl = request.routeOptions.url ?? "";
    const access = request.routeOptions.config.access ?? defaultAccess(routeUrl);
    const appApi = routeUrl.startsWith("/api/");

    let sessionId: string | null = null;
    /** The session cookie belonged to an account now disabled (the app says so rather than "not signed in"). */
    let disabled = false;
    const key = presentedKey(request);
    if (key !== undefined && access !== "public") {
      if (appApi) {
        throw new ServiceError("unauthenticated", "API keys work on /v1 only; the app API needs a signed-in session.", { code: "api_key_not_accepted" });
      }
      try {
        request.actor = await actorFromApiKey(db, key);
      } catch (error) {
        // Local mode means no account, hence no key, exists: clients that insist on sending some
        // key (the OpenAI SDK does) get the local actor, as with Ollama.
        if (access !== "user-or-local" || !(await localMode.appliesTo(localRequestInfo(request)))) throw error;
        request.actor = LOCAL;
      }
    } else {
      const token = request.cookies[SESSION_COOKIE];
      if (token !== undefined) {
        const actor = await actorFromSession(db, token, lifetime);
        if (actor) {
          sessionId = actor.sessionId;
          request.actor = actor;
        } else if (await sessionOfDisabledAccount(db, token)) {
          // The account was disabled: the dead cookie stays (until the session row is pruned), so
          // the open page's next app request can tell it why it was signed out — also after a
          // request for a script chunk or another public route came first.
          disabled = true;
        } else {
          // Expired or revoked: forget the dead cookie.
          cookies.clearSession(request, reply);
        }
      }
    }
    if (request.actor.kind === "anonymous" && access === "user-or-local" && (await localMode.appliesTo(localRequestInfo(request)))) {
      request.actor = LOCAL;
    }
    if (access !== "public" && request.actor.kind === "anonymous") {
      if (disabled) throw new ServiceError("unauthenticated", "Your account was disabled by an administrator.", { code: "account_disabled" });
      throw missingCredentials(appApi, isAnthropicRoute(routeUrl));
    }
    // Cookies ride along on cross-site requests; keys and the local actor don't.
    if (sessionId !== null || (appApi && request.actor.kind === "anonymous")) cookies.checkCsrf(request, sessionId);
  });

  // Browsers get their CSRF token as a cookie with any app response.
  app.addHook("onSend", async (request, reply, payload) => {
    // Not for API clients, nor for replies sent before the cookie parser ran (router errors).
    const routeUrl = request.routeOptions.url ?? "";
    if (routeUrl.startsWith("/v1/") || isAnthropicRoute(routeUrl) || request.cookies == null) return payload;
    const actor = request.actor;
    // A no-op when the route already set the cookie (and told the client its value).
    cookies.ensureCsrfCookie(request, reply, actor?.kind === "user" ? actor.sessionId : null);
    return payload;
  });

  const sso = new SsoProviders(config.auth.oidcProviders, { allowPrivateNetwork: config.allowPrivateNetwork, publicUrl: config.publicUrl });
  return { store, hasher, lifetime, cookies, localMode, publicUrl: config.publicUrl ?? null, sso, passwordSignIn: config.auth.passwordSignIn };
}

/** What local mode judges a request by (src/auth/localMode.ts), from the raw connection and headers. */
export function localRequestInfo(request: FastifyRequest): LocalRequestInfo {
  const headers = request.headers;
  const forwarded = Object.keys(headers).some(
    (name) => name === "forwarded" || name === "x-real-ip" || name === "via" || name.startsWith("x-forwarded-"),
  );
  return {
    // The socket's address, never request.ip: with trustProxy that would be a forwarded one.
    remoteAddress: request.socket.remoteAddress,
    host: headers.host,
    origin: headers.origin,
    forwarded,
    bearerToken: presentedKey(request) ?? null,
  };
}

/** Anthropic's API (src/http/anthropic): an API surface like /v1, where its SDK sends the key as `x-api-key`. */
function isAnthropicRoute(routeUrl: string): boolean {
  return routeUrl.startsWith("/anthropic/");
}

/**
 * The API key a request presents: `Authorization: Bearer <key>`, or on the Anthropic surface also
 * `x-api-key: <key>` (what Anthropic's SDK sends). undefined: none presented; null: a header of
 * the wrong shape.
 */
function presentedKey(request: FastifyRequest): string | null | undefined {
  const { authorization } = request.headers;
  if (authorization !== undefined) return bearerToken(authorization);
  if (!isAnthropicRoute(request.routeOptions.url ?? "")) return undefined;
  const apiKey = request.headers["x-api-key"];
  if (apiKey === undefined) return undefined;
  return typeof apiKey === "string" && apiKey !== "" ? apiKey : null;
}

function defaultAccess(routeUrl: string): RouteAccess {
  return routeUrl.startsWith("/v1/") || isAnthropicRoute(routeUrl) ? "user-or-local" : "user";
}

function missingCredentials(appApi: boolean, anthropic: boolean): ServiceError {
  if (appApi) return new ServiceError("unauthenticated", "You are not signed in.", { code: "unauthenticated" });
  const how = anthropic ? "in the 'x-api-key' header or as 'Authorization: Bearer YOUR_KEY'" : "in the Authorization header: 'Authorization: Bearer YOUR_KEY'";
  return new ServiceError("unauthenticated", `You didn't provide an API key. Send it ${how}.`, { code: "missing_api_key" });
}

/**
 * Marks every route registered in `instance` (an encapsulated plugin context) as public, for
 * routes other plugins create, such as @fastify/static's:
 *
 *   app.register(async (scope) => { markRoutesPublic(scope); await scope.register(fastifyStatic, {...}); });
 */
export function markRoutesPublic(instance: FastifyInstance): void {
  instance.addHook("onRoute", (route) => {
    route.config = { ...(route.config ?? {}), access: "public" };
  });
}
