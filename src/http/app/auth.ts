import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords.ts";
import { DEVICE_COOKIE, DEVICE_COOKIE_PATH, DEVICE_TOKEN_DAYS, rememberedDevicesFor } from "../../auth/rememberedDevices.ts";
import type { AuthServices } from "../middleware/auth/index.ts";
import { createSession, findSession, listLiveSessions, revokeSession } from "../../auth/sessions.ts";
import { getSignupMode } from "../../auth/signupMode.ts";
import { anyUserExists, emailSchema, findUserById, usernameSchema, type UserRow } from "../../auth/users.ts";
import { logIn } from "../../commands/logIn.ts";
import { signUp } from "../../commands/signUp.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentSession } from "../../presenters/session.ts";
import { presentUser } from "../../presenters/user.ts";
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
    };
  });

  app.post("/api/auth/signup", ATTEMPT, async (request, reply) => {
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
    const body = loginBody.parse(request.body);
    const { user, token, session } = await logIn(
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
    const csrf = auth.cookies.setSession(request, reply, token, session.id);
    await rememberDevice(request, reply, user.id);
    return { user: presentUser(user), csrf_token: csrf };
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
    await revokeSession(db, session.id);
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
