import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords.ts";
import { DEVICE_COOKIE, DEVICE_COOKIE_PATH, DEVICE_TOKEN_DAYS, rememberedDevicesFor } from "../../auth/rememberedDevices.ts";
import type { AuthServices } from "../middleware/auth/index.ts";
import { createSession, findSession, listLiveSessions, revokeSession } from "../../auth/sessions.ts";
import { getSignupMode } from "../../auth/signupMode.ts";
import { anyUserExists, emailSchema, findUserById, usernameSchema, type UserRow } from "../../auth/users.ts";
import { PENDING_LOGIN_MS } from "../../auth/pendingLogins.ts";
import { completeSecondFactor, logIn } from "../../commands/logIn.ts";
import { endSession } from "../../commands/sessions.ts";
import { signUp } from "../../commands/signUp.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentSecondFactorChallenge } from "../../presenters/security.ts";
import { presentSession } from "../../presenters/session.ts";
import { presentUser } from "../../presenters/user.ts";
import { ServiceError } from "../../errors.ts";
import { ApiError } from "../errors.ts";
import { idParam } from "./params.ts";

export const passwordSchema = z.string().min(MIN_PASSWORD_LENGTH, `at least ${MIN_PASSWORD_LENGTH} characters`).max(MAX_PASSWORD_LENGTH);

// Only these fields exist for sign-up: anything else a client sends (role, plan, credit…) is dropped.
const signupBody = z.object({
  username: usernameSchema,
  email: emailSchema.nullish(),
  password: passwordSchema,
  access_code: z.string().trim().min(1).max(64).nullish(),
});

const loginBody = z.object({
  /** User name or e-mail address. */
  login: z.string().trim().min(1).max(254),
  password: z.string().min(1).max(MAX_PASSWORD_LENGTH),
});

// The second step of a two-step sign-in: exactly one of a TOTP code or a recovery code.
const secondFactorBody = z
  .object({
    code: z.string().trim().min(1).max(16).optional(),
    recovery_code: z.string().trim().min(1).max(64).optional(),
  })
  .refine((b) => (b.code === undefined) !== (b.recovery_code === undefined), { message: "send either code or recovery_code", path: ["code"] });

/**
 * The pending sign-in between password and second factor (src/auth/pendingLogins.ts): httpOnly, so
 * the page never holds it; SameSite=Strict and sent only to the sign-in routes.
 */
const PENDING_COOKIE = "sputnik_login";
const PENDING_COOKIE_PATH = "/api/auth/login";

// Signing in must keep working while attack mode closes the API to anonymous callers.
const PUBLIC = { config: { access: "public" as const, openInAttackMode: true } };
// Attempts that guess secrets (passwords, access codes) also count against the per-IP sign-in rate.
const ATTEMPT = { config: { access: "public" as const, openInAttackMode: true, ipRateLimit: "auth" as const } };

/** /api/auth/*: sign-up, sign-in, sign-out, who am I, my sessions. */
export function registerAuthRoutes(app: FastifyInstance, auth: AuthServices): void {
  const db = auth.store.db;

  app.get("/api/auth/state", PUBLIC, async (request, reply) => {
    const actor = request.actor;
    const user = actor.kind === "user" ? await findUserById(db, actor.userId) : undefined;
    return {
      user: user ? presentUser(user) : null,
      csrf_token: auth.cookies.ensureCsrfCookie(request, reply, actor.kind === "user" ? actor.sessionId : null),
      signup_mode: await getSignupMode(db),
      setup_required: !(await anyUserExists(db)),
      // Single sign-on buttons, and whether the password form is shown at all.
      sso_providers: auth.sso.list(),
      password_sign_in: auth.passwordSignIn,
    };
  });

  app.post("/api/auth/signup", ATTEMPT, async (request, reply) => {
    if (!auth.passwordSignIn) throw passwordSignInOff("Sign-up with a password is turned off on this server: use single sign-on, which creates your account.");
    const body = signupBody.parse(request.body);
    const { user } = await signUp(
      { db, hasher: auth.hasher },
      { username: body.username, email: body.email ?? null, password: body.password, accessCode: body.access_code ?? null, ip: request.ip },
    );
    if (user.status !== "active") {
      return reply.status(202).send({ user: presentUser(user), csrf_token: auth.cookies.ensureCsrfCookie(request, reply, null) });
    }
    const csrf = await startSession(request, reply, user);
    await rememberDevice(request, reply, user.id);
    return reply.status(201).send({ user: presentUser(user), csrf_token: csrf });
  });

  app.post("/api/auth/login", ATTEMPT, async (request, reply) => {
    if (!auth.passwordSignIn) throw passwordSignInOff("Password sign-in is turned off on this server: sign in with single sign-on.");
    const body = loginBody.parse(request.body);
    const result = await logIn(
      { db, hasher: auth.hasher, lifetime: auth.lifetime, devices: await rememberedDevicesFor(db) },
      {
        login: body.login,
        password: body.password,
        ip: request.ip,
        userAgent: request.headers["user-agent"] ?? null,
        previousSessionId: currentSessionId(request),
        deviceCookie: request.cookies[DEVICE_COOKIE] ?? null,
      },
    );
    if (result.kind === "second_factor") {
      // No session yet: the password opened a pending sign-in, finished at /api/auth/login/second-factor.
      reply.setCookie(PENDING_COOKIE, result.pendingToken, pendingCookieOptions(request, Math.floor(PENDING_LOGIN_MS / 1000)));
      return presentSecondFactorChallenge(result.expiresAt);
    }
    const csrf = auth.cookies.setSession(request, reply, result.token, result.session.id);
    await rememberDevice(request, reply, result.user.id);
    return { user: presentUser(result.user), csrf_token: csrf };
  });

  app.post("/api/auth/login/second-factor", ATTEMPT, async (request, reply) => {
    const body = secondFactorBody.parse(request.body);
    const result = await completeSecondFactor(
      { db, hasher: auth.hasher, lifetime: auth.lifetime, devices: await rememberedDevicesFor(db) },
      {
        pendingToken: request.cookies[PENDING_COOKIE] ?? null,
        code: body.code ?? null,
        recoveryCode: body.recovery_code ?? null,
        ip: request.ip,
        userAgent: request.headers["user-agent"] ?? null,
        previousSessionId: currentSessionId(request),
        deviceCookie: request.cookies[DEVICE_COOKIE] ?? null,
      },
    );
    reply.clearCookie(PENDING_COOKIE, pendingCookieOptions(request));
    const csrf = auth.cookies.setSession(request, reply, result.token, result.session.id);
    // Remembered only now: a device that knew the password but not the code is no device of the owner's.
    await rememberDevice(request, reply, result.user.id);
    return { user: presentUser(result.user), csrf_token: csrf, recovery_codes_left: result.recoveryCodesLeft };
  });

  app.post("/api/auth/logout", PUBLIC, async (request, reply) => {
    const sessionId = currentSessionId(request);
    if (sessionId) await revokeSession(db, sessionId);
    auth.cookies.clearSession(request, reply);
    return reply.status(204).send();
  });

  app.get("/api/auth/me", async (request, reply) => {
    const actor = requireUser(request.actor);
    const user = await findUserById(db, actor.userId);
    if (!user) throw new ApiError(401, "You are not signed in.", "unauthenticated");
    return { user: presentUser(user), csrf_token: auth.cookies.ensureCsrfCookie(request, reply, actor.sessionId) };
  });

  app.get("/api/auth/sessions", async (request) => {
    authorize(request.actor, "session.list");
    const actor = requireUser(request.actor);
    const sessions = await listLiveSessions(db, actor.userId, auth.lifetime);
    return { data: sessions.map((s) => presentSession(s, actor.sessionId)) };
  });

  app.delete("/api/auth/sessions/:id", async (request, reply) => {
    const id = idParam(request);
    const found = id ? await findSession(db, id) : undefined;
    // An ended session is gone, as far as anyone can tell.
    const session = found?.revoked_at === null ? found : undefined;
    authorize(request.actor, "session.delete", session);
    await endSession(db, { userId: requireUser(request.actor).userId, ip: request.ip }, session);
    if (session.id === currentSessionId(request)) auth.cookies.clearSession(request, reply);
    return reply.status(204).send();
  });

  /**
   * The remembered-device cookie (src/auth/rememberedDevices.ts), after the password was proven:
   * httpOnly, sent back only to the sign-in route, kept for a year.
   */
  async function rememberDevice(request: FastifyRequest, reply: FastifyReply, userId: string): Promise<void> {
    const devices = await rememberedDevicesFor(db);
    const value = devices.add(request.cookies[DEVICE_COOKIE], devices.issue(userId), userId);
    reply.setCookie(DEVICE_COOKIE, value, {
      path: DEVICE_COOKIE_PATH,
      httpOnly: true,
      sameSite: "strict",
      secure: auth.cookies.isSecure(request),
      maxAge: DEVICE_TOKEN_DAYS * 86_400,
    });
  }

  function pendingCookieOptions(request: FastifyRequest, maxAge?: number) {
    return { path: PENDING_COOKIE_PATH, httpOnly: true, sameSite: "strict" as const, secure: auth.cookies.isSecure(request), ...(maxAge !== undefined ? { maxAge } : {}) };
  }

  async function startSession(request: FastifyRequest, reply: FastifyReply, user: UserRow): Promise<string> {
    const previous = currentSessionId(request);
    if (previous) await revokeSession(db, previous);
    const { token, session } = await createSession(db, { userId: user.id, userAgent: request.headers["user-agent"] ?? null, ip: request.ip, lifetime: auth.lifetime });
    return auth.cookies.setSession(request, reply, token, session.id);
  }
}

function currentSessionId(request: FastifyRequest): string | null {
  const actor = request.actor;
  return actor.kind === "user" ? actor.sessionId : null;
}

/** auth.passwordSignIn is false: accounts sign in through their identity provider only. */
function passwordSignInOff(message: string): ServiceError {
  return new ServiceError("forbidden", message, { code: "password_sign_in_disabled" });
}
