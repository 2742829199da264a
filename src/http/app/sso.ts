import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { openFlow, sealFlow, SSO_FLOW_TTL_MS } from "../../auth/oidc/flow.ts";
import { serviceSecret } from "../../auth/secrets.ts";
import { ssoSignIn } from "../../commands/ssoSignIn.ts";
import { ServiceError } from "../../errors.ts";
import type { AuthServices } from "../middleware/auth/index.ts";

/** The sign-in in progress (src/auth/oidc/flow.ts): signed, httpOnly, sent only to these routes. */
const FLOW_COOKIE = "sputnik_sso";
const FLOW_COOKIE_PATH = "/api/auth/sso/";

// Browser navigations, not API calls: no session needed (deny-by-default otherwise), open in
// attack mode like the password sign-in, and counted against the per-IP sign-in rate.
const SIGN_IN = { config: { access: "public" as const, openInAttackMode: true, ipRateLimit: "auth" as const } };

/** Failures the sign-in page explains by code; anything else shows as `sso_failed`. */
const EXPLAINED = new Set([
  "sso_unknown_provider",
  "sso_state_mismatch",
  "sso_denied",
  "sso_invalid_response",
  "sso_provider_unavailable",
  "sso_issuer_mismatch",
  "signup_closed",
  "signup_requires_code",
  "account_pending",
  "account_disabled",
]);

/**
 * /api/auth/sso/:provider/start and /callback: single sign-on with OpenID Connect. Both are page
 * navigations, so they answer with redirects: to the provider, then to `/` signed in, or to
 * `/login?sso_error=<code>`, which the sign-in page turns into a sentence.
 */
export function registerSsoRoutes(app: FastifyInstance, auth: AuthServices): void {
  const db = auth.store.db;
  let secret: Promise<string> | null = null;
  const flowSecret = () => {
    secret ??= serviceSecret(db);
    secret.catch(() => (secret = null));
    return secret;
  };

  app.get("/api/auth/sso/:provider/start", SIGN_IN, async (request, reply) => {
    try {
      const providerId = providerParam(request);
      const origin = `${request.protocol}://${request.host}`;
      const { url, flow } = await auth.sso.begin(providerId, auth.sso.redirectUri(providerId, origin));
      reply.setCookie(FLOW_COOKIE, sealFlow(await flowSecret(), flow), { ...flowCookieOptions(request), maxAge: Math.floor(SSO_FLOW_TTL_MS / 1000) });
      return reply.redirect(url.href, 302);
    } catch (error) {
      return failed(request, reply, error);
    }
  });

  app.get("/api/auth/sso/:provider/callback", SIGN_IN, async (request, reply) => {
    // A flow is used once, whatever happens now.
    const sealed = request.cookies[FLOW_COOKIE];
    reply.clearCookie(FLOW_COOKIE, flowCookieOptions(request));
    try {
      const providerId = providerParam(request);
      const provider = auth.sso.get(providerId);
      if (!provider) throw new ServiceError("not_found", "There is no such sign-in provider.", { code: "sso_unknown_provider" });
      const flow = openFlow(await flowSecret(), sealed);
      if (!flow || flow.providerId !== providerId) {
        throw new ServiceError("unauthenticated", "No sign-in was started in this browser, or it took too long.", { code: "sso_state_mismatch" });
      }
      const raw = request.raw.url ?? "";
      const query = raw.includes("?") ? raw.slice(raw.indexOf("?") + 1) : "";
      const identity = await auth.sso.finish(flow, query);
      const result = await ssoSignIn(
        { db, hasher: auth.hasher, lifetime: auth.lifetime },
        {
          provider,
          identity,
          ip: request.ip,
          userAgent: request.headers["user-agent"] ?? null,
          previousSessionId: request.actor.kind === "user" ? request.actor.sessionId : null,
        },
      );
      for (const warning of result.warnings) request.log.warn({ provider: providerId }, warning);
      auth.cookies.setSession(request, reply, result.token, result.session.id);
      return reply.redirect("/", 302);
    } catch (error) {
      return failed(request, reply, error);
    }
  });

  function flowCookieOptions(request: FastifyRequest) {
    // Lax, not Strict: the callback is a cross-site navigation from the provider.
    return { path: FLOW_COOKIE_PATH, httpOnly: true, sameSite: "lax" as const, secure: auth.cookies.isSecure(request) };
  }
}

function providerParam(request: FastifyRequest): string {
  const id = (request.params as { provider?: unknown }).provider;
  if (typeof id !== "string" || !/^[a-z0-9][a-z0-9_-]{0,31}$/.test(id)) {
    throw new ServiceError("not_found", "There is no such sign-in provider.", { code: "sso_unknown_provider" });
  }
  return id;
}

/** Back to the sign-in page with a code it explains; the details go to the log, not the browser. */
function failed(request: FastifyRequest, reply: FastifyReply, error: unknown) {
  const code = error instanceof ServiceError && error.code && EXPLAINED.has(error.code) ? error.code : "sso_failed";
  const expected = code !== "sso_failed" && code !== "sso_provider_unavailable" && code !== "sso_issuer_mismatch";
  request.log[expected ? "info" : "error"]({ err: error, code }, "single sign-on refused");
  return reply.redirect(`/login?sso_error=${encodeURIComponent(code)}`, 302);
}
