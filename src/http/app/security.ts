import type { FastifyInstance, FastifyRequest } from "fastify";
import QRCode from "qrcode";
import { z } from "zod";
import { MAX_PASSWORD_LENGTH } from "../../auth/passwords.ts";
import { isAdminSecondFactorRequired } from "../../auth/secondFactorSetting.ts";
import { findUserById } from "../../auth/users.ts";
import { changePassword, issuePasswordReset, resetPassword } from "../../commands/passwords.ts";
import {
  confirmTotpEnrolment,
  disableSecondFactor,
  regenerateRecoveryCodes,
  secondFactorStatus,
  setAdminSecondFactorRequired,
  startTotpEnrolment,
} from "../../commands/secondFactor.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentPasswordReset, presentRecoveryCodes, presentSecurity, presentTotpSetup } from "../../presenters/security.ts";
import type { AuthServices } from "../middleware/auth/index.ts";
import { passwordSchema } from "./auth.ts";
import { idParam } from "./params.ts";

const currentPassword = z.string().min(1).max(MAX_PASSWORD_LENGTH);
const changePasswordBody = z.object({ current_password: currentPassword, new_password: passwordSchema });
const reauthBody = z.object({ current_password: currentPassword });
// Apps show "123 456"; the command accepts spaces and refuses anything else with its own words.
const confirmBody = z.object({ code: z.string().trim().min(1).max(16) });
const resetBody = z.object({ token: z.string().min(1).max(128), new_password: passwordSchema });
const requirementBody = z.object({ required_for_admins: z.boolean() });

// Using a reset link happens signed out, also while attack mode is on, and guesses a secret.
const ATTEMPT = { config: { access: "public" as const, openInAttackMode: true, ipRateLimit: "auth" as const } };

/**
 * /api/security/*: the signed-in user's password, second factor (TOTP) and recovery codes;
 * /api/admin/users/:id/password-reset and /api/admin/second-factor for admins; and the public
 * /api/auth/password-reset that a reset link's page posts to. Sessions are listed and ended under
 * /api/auth/sessions (src/http/app/auth.ts).
 */
export function registerSecurityRoutes(app: FastifyInstance, auth: AuthServices): void {
  const db = auth.store.db;
  const deps = { db, hasher: auth.hasher };

  /** The signed-in account, as the subject of the `security` policy. */
  async function me(request: FastifyRequest, action: "security.read" | "security.update") {
    const actor = requireUser(request.actor);
    const user = await findUserById(db, actor.userId);
    authorize(actor, action, user);
    return { actor, user };
  }

  app.get("/api/security", async (request) => {
    const { actor, user } = await me(request, "security.read");
    const status = await secondFactorStatus(db, user.id);
    return presentSecurity(status, { required: await isAdminSecondFactorRequired(db), enrolBeforeAdmin: actor.secondFactorRequired === true });
  });

  app.post("/api/security/password", async (request) => {
    const { actor, user } = await me(request, "security.update");
    const body = changePasswordBody.parse(request.body);
    const { endedSessions } = await changePassword(deps, {
      userId: user.id,
      sessionId: actor.sessionId,
      currentPassword: body.current_password,
      newPassword: body.new_password,
      ip: request.ip,
    });
    return { ended_sessions: endedSessions };
  });

  app.post("/api/security/totp/setup", async (request) => {
    const { user } = await me(request, "security.update");
    const body = reauthBody.parse(request.body);
    const { secret, uri } = await startTotpEnrolment(deps, { userId: user.id, currentPassword: body.current_password, ip: request.ip });
    // Drawn here, not in the browser: the app's bundle carries no QR encoder, and the image is data.
    const svg = await QRCode.toString(uri, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
    return presentTotpSetup({ secret, uri, qrDataUrl: `data:image/svg+xml;base64,${Buffer.from(svg, "utf8").toString("base64")}` });
  });

  app.post("/api/security/totp/confirm", async (request) => {
    const { actor, user } = await me(request, "security.update");
    const body = confirmBody.parse(request.body);
    const { recoveryCodes, endedSessions } = await confirmTotpEnrolment(db, { userId: user.id, sessionId: actor.sessionId, code: body.code, ip: request.ip });
    return { ...presentRecoveryCodes(recoveryCodes), ended_sessions: endedSessions };
  });

  app.post("/api/security/totp/disable", async (request, reply) => {
    const { user } = await me(request, "security.update");
    const body = reauthBody.parse(request.body);
    await disableSecondFactor(deps, { userId: user.id, currentPassword: body.current_password, ip: request.ip });
    return reply.status(204).send();
  });

  app.post("/api/security/recovery-codes", async (request) => {
    const { user } = await me(request, "security.update");
    const body = reauthBody.parse(request.body);
    return presentRecoveryCodes(await regenerateRecoveryCodes(deps, { userId: user.id, currentPassword: body.current_password, ip: request.ip }));
  });

  // Admins: one-time reset links, and the second-factor requirement.
  app.post("/api/admin/users/:id/password-reset", async (request, reply) => {
    const id = idParam(request);
    const user = id ? await findUserById(db, id) : undefined;
    authorize(request.actor, "passwordReset.issue", user);
    const { token, row } = await issuePasswordReset(db, { userId: requireUser(request.actor).userId, ip: request.ip }, user.id);
    return reply.status(201).send(presentPasswordReset(row, token, auth.publicUrl));
  });

  app.get("/api/admin/second-factor", async (request) => {
    authorize(request.actor, "settings.read");
    return { required_for_admins: await isAdminSecondFactorRequired(db) };
  });

  app.put("/api/admin/second-factor", async (request) => {
    authorize(request.actor, "settings.update");
    const body = requirementBody.parse(request.body);
    const required = await setAdminSecondFactorRequired(db, { userId: requireUser(request.actor).userId, ip: request.ip }, body.required_for_admins);
    return { required_for_admins: required };
  });

  // The page a reset link opens posts here; every session of the account ends.
  app.post("/api/auth/password-reset", ATTEMPT, async (request, reply) => {
    const body = resetBody.parse(request.body);
    const user = await resetPassword(deps, { token: body.token, newPassword: body.new_password, ip: request.ip });
    // This browser's session was the account's (now ended): forget its cookie. Anyone else's stays.
    if (request.actor.kind === "user" && request.actor.userId === user.id) auth.cookies.clearSession(request, reply);
    return reply.status(204).send();
  });
}
