import cookie from "@fastify/cookie";
import cors from "@fastify/cors";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/schema.ts";
import { ApiError } from "../http/errors.ts";
import { authorize } from "../policies/index.ts";
import type { Store } from "../store/database.ts";
import { ANONYMOUS, LOCAL, type Actor } from "./actor.ts";
import { keyModels, looksLikeApiKey, resolveApiKey } from "./apiKeys.ts";
import { CSRF_HEADER, SESSION_COOKIE, SessionCookies } from "./cookies.ts";
import { startAuthHousekeeping } from "./housekeeping.ts";
import { localModeFor, type LocalMode } from "./localMode.ts";
import { PasswordHasher } from "./passwords.ts";
import { serviceSecret } from "./secrets.ts";
import { resolveSession, type SessionLifetime } from "./sessions.ts";

/**
 * Who may reach a route, declared in its options: `app.get(url, { config: { access: "public" } }, …)`.
 * - `public`: anyone (sign-in pages, /health, static files);
 * - `user`: a signed-in account — the default for every route that doesn't say otherwise;
 * - `user-or-local`: a signed-in account, or the loopback single-user actor — the default for /v1.
 * Deny by default: a new route is closed until it says it is public. The decision uses the route the
 * router matched (its pattern), never the raw URL, so no spelling of a path (case, duplicate
 * slashes, %2f, dots, query strings) can reach a route under another route's rules.
 */
export type RouteAccess = "public" | "user" | "user-or-local";

declare module "fastify" {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** What the app API routes need from the auth layer. */
export interface AuthServices {
  store: Store;
  hasher: PasswordHasher;
  lifetime: SessionLifetime;
  cookies: SessionCookies;
  localMode: LocalMode;
}

/**
 * Installs authentication on `app` (call before registering routes): cookies, CORS, the hook that
 * sets `request.actor` on every request and enforces each route's access, CSRF checks, and API-key
 * model scopes. Returns the services the account routes use.
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
  const localMode = localModeFor(db, config.host, config.auth.localMode);
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
    const authorization = request.headers.authorization;
    if (authorization !== undefined && access !== "public") {
      if (appApi) throw new ApiError(401, "API keys work on /v1 only; the app API needs a signed-in session.", "api_key_not_accepted");
      try {
        request.actor = await actorFromApiKey(store, authorization);
      } catch (error) {
        // Local mode means no account, hence no key, exists: clients that insist on sending some
        // key (the OpenAI SDK does) get the local actor, as with Ollama.
        if (access !== "user-or-local" || !(await localMode.appliesTo(request))) throw error;
        request.actor = LOCAL;
      }
    } else {
      const token = request.cookies[SESSION_COOKIE];
      if (token !== undefined) {
        const found = await resolveSession(db, token, lifetime);
        if (found) {
          sessionId = found.session.id;
          request.actor = {
            kind: "user",
            userId: found.user.id,
            role: found.user.role,
            apiKeyId: null,
            sessionId,
            planId: found.user.plan_id,
          };
        } else {
          // Expired, revoked, or the account was disabled: forget the dead cookie.
          cookies.clearSession(request, reply);
        }
      }
    }
    if (request.actor.kind === "anonymous" && access === "user-or-local" && (await localMode.appliesTo(request))) {
      request.actor = LOCAL;
    }
    if (access !== "public" && request.actor.kind === "anonymous") throw missingCredentials(appApi);
    // Cookies ride along on cross-site requests; keys and the local actor don't.
    if (sessionId !== null || (appApi && request.actor.kind === "anonymous")) cookies.checkCsrf(request, sessionId);
  });

  // An API key limited to some models: the others don't exist for it.
  app.addHook("preHandler", async (request) => {
    const actor = request.actor;
    if (actor.kind !== "user" || actor.modelScope == null) return;
    const body = request.body as { model?: unknown } | undefined;
    if (body && typeof body === "object" && typeof body.model === "string") authorize(actor, "model.use", body.model);
    const params = request.params as { id?: unknown } | undefined;
    if (request.routeOptions.url === "/v1/models/:id" && typeof params?.id === "string") authorize(actor, "model.read", params.id);
  });
  app.addHook("preSerialization", async (request: FastifyRequest, _reply: FastifyReply, payload: unknown) => {
    const actor = request.actor;
    if (request.routeOptions.url !== "/v1/models" || actor?.kind !== "user" || actor.modelScope == null) return payload;
    const list = payload as { data?: Array<{ id: string }> };
    if (!Array.isArray(list.data)) return payload;
    return { ...list, data: list.data.filter((m) => actor.modelScope!.includes(m.id)) };
  });

  // Browsers get their CSRF token as a cookie with any app response.
  app.addHook("onSend", async (request, reply, payload) => {
    // Not for API clients, nor for replies sent before the cookie parser ran (router errors).
    if (request.routeOptions.url?.startsWith("/v1/") || request.cookies == null) return payload;
    const actor = request.actor;
    cookies.ensureCsrfCookie(request, reply, actor?.kind === "user" ? actor.sessionId : null);
    return payload;
  });

  return { store, hasher, lifetime, cookies, localMode };
}

function defaultAccess(routeUrl: string): RouteAccess {
  return routeUrl.startsWith("/v1/") ? "user-or-local" : "user";
}

async function actorFromApiKey(store: Store, authorization: string): Promise<Actor> {
  // Checked for shape first: anything that can't be a key is refused without touching the database.
  const match = /^Bearer ([^\s]+)$/i.exec(authorization);
  const token = match?.[1];
  if (!token || !looksLikeApiKey(token)) throw invalidApiKey();
  const found = await resolveApiKey(store.db, token);
  if (!found) throw invalidApiKey();
  return {
    kind: "user",
    userId: found.user.id,
    role: found.user.role,
    apiKeyId: found.key.id,
    sessionId: null,
    planId: found.user.plan_id,
    modelScope: keyModels(found.key),
  };
}

function invalidApiKey(): ApiError {
  return new ApiError(401, "Incorrect API key provided. Create a key in your account settings.", "invalid_api_key");
}

function missingCredentials(appApi: boolean): ApiError {
  return appApi
    ? new ApiError(401, "You are not signed in.", "unauthenticated")
    : new ApiError(401, "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer YOUR_KEY'.", "missing_api_key");
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
