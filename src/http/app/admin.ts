import type { FastifyInstance, FastifyRequest } from "fastify";
import { z } from "zod";
import { findAccessCode, listAccessCodes } from "../../auth/accessCodes.ts";
import { listAudit } from "../../auth/audit.ts";
import type { AuthServices } from "../middleware/auth/index.ts";
import { attackSignupModeSchema, getSignupSettings, signupModeSchema } from "../../auth/signupMode.ts";
import { emailSchema, findUserById, listUsers, usernameSchema } from "../../auth/users.ts";
import { issueAccessCode, withdrawAccessCode } from "../../commands/accessCodes.ts";
import { createUser } from "../../commands/createUser.ts";
import { approveUser, disableUser, enableUser, setUserRole, type AdminContext } from "../../commands/manageUsers.ts";
import { changeAttackMode, changeSignupMode } from "../../commands/signupSettings.ts";
import { authorize, requireUser } from "../../policies/index.ts";
import { presentAccessCode, presentCreatedAccessCode } from "../../presenters/accessCode.ts";
import { presentAuditEntry } from "../../presenters/audit.ts";
import { presentSignupSettings } from "../../presenters/signupSettings.ts";
import { presentUser } from "../../presenters/user.ts";
import { passwordSchema } from "./auth.ts";
import { expiryOf, futureTime, idParam, paged, pageQuery } from "./params.ts";

const roleSchema = z.enum(["admin", "user"]);

const usersQuery = z.object({
  q: z.string().trim().max(254).optional(),
  status: z.enum(["active", "pending", "disabled"]).optional(),
  role: roleSchema.optional(),
  ...pageQuery,
});
const createUserBody = z.object({
  username: usernameSchema,
  email: emailSchema.nullish(),
  password: passwordSchema,
  role: roleSchema.default("user"),
});
const roleBody = z.object({ role: roleSchema });
const signupModeBody = z.object({ mode: signupModeSchema });
const attackModeBody = z.object({ enabled: z.boolean(), signup_mode: attackSignupModeSchema.optional() });
const accessCodeBody = z.object({
  max_uses: z.number().int().min(1).max(1_000_000).default(1),
  expires_at: futureTime.nullish(),
  expires_in_days: z.number().int().min(1).max(3650).nullish(),
  plan_id: z.string().min(1).max(64).nullish(),
  credit_micros: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  note: z.string().trim().max(200).nullish(),
});
const auditQuery = z.object({ action: z.string().max(64).optional(), target_id: z.string().max(64).optional(), ...pageQuery });
const codesQuery = z.object({ ...pageQuery });

/** /api/admin/*: users, sign-up and attack mode, access codes, the audit log. Admins only (policies decide). */
export function registerAdminRoutes(app: FastifyInstance, auth: AuthServices): void {
  const db = auth.store.db;
  const adminOf = (request: FastifyRequest): AdminContext => ({ userId: requireUser(request.actor).userId, ip: request.ip });

  // Users
  app.get("/api/admin/users", async (request) => {
    authorize(request.actor, "user.list");
    const query = usersQuery.parse(request.query);
    const page = await paged(() => listUsers(db, { search: query.q, status: query.status, role: query.role, limit: query.limit, cursor: query.cursor }));
    return { data: page.items.map(presentUser), next_cursor: page.nextCursor };
  });

  app.post("/api/admin/users", async (request, reply) => {
    authorize(request.actor, "user.create");
    const body = createUserBody.parse(request.body);
    const by = adminOf(request);
    const user = await createUser(
      { db, hasher: auth.hasher },
      { username: body.username, email: body.email ?? null, password: body.password, role: body.role, by: by.userId, ip: by.ip },
    );
    return reply.status(201).send(presentUser(user));
  });

  app.get("/api/admin/users/:id", async (request) => {
    const user = await userOf(request);
    authorize(request.actor, "user.read", user);
    return presentUser(user);
  });

  app.patch("/api/admin/users/:id", async (request) => {
    const user = await userOf(request);
    authorize(request.actor, "user.setRole", user);
    const body = roleBody.parse(request.body);
    return presentUser(await setUserRole(db, adminOf(request), user.id, body.role));
  });

  const statusChanges = { approve: approveUser, disable: disableUser, enable: enableUser } as const;
  for (const [verb, change] of Object.entries(statusChanges) as Array<[keyof typeof statusChanges, (typeof statusChanges)[keyof typeof statusChanges]]>) {
    app.post(`/api/admin/users/:id/${verb}`, async (request) => {
      const user = await userOf(request);
      authorize(request.actor, `user.${verb}`, user);
      return presentUser(await change(db, adminOf(request), user.id));
    });
  }

  // Sign-up mode and attack mode
  app.get("/api/admin/signup-mode", async (request) => {
    authorize(request.actor, "settings.read");
    return presentSignupSettings(await getSignupSettings(db));
  });
  app.put("/api/admin/signup-mode", async (request) => {
    authorize(request.actor, "settings.update");
    const body = signupModeBody.parse(request.body);
    return presentSignupSettings(await changeSignupMode(db, adminOf(request), body.mode));
  });
  app.get("/api/admin/attack-mode", async (request) => {
    authorize(request.actor, "settings.read");
    return presentSignupSettings(await getSignupSettings(db));
  });
  app.put("/api/admin/attack-mode", async (request) => {
    authorize(request.actor, "settings.update");
    const body = attackModeBody.parse(request.body);
    return presentSignupSettings(await changeAttackMode(db, adminOf(request), { enabled: body.enabled, signupMode: body.signup_mode }));
  });

  // Access codes
  app.get("/api/admin/access-codes", async (request) => {
    authorize(request.actor, "accessCode.list");
    const query = codesQuery.parse(request.query);
    const page = await paged(() => listAccessCodes(db, { limit: query.limit, cursor: query.cursor }));
    const now = Date.now();
    return { data: page.items.map((c) => presentAccessCode(c, now)), next_cursor: page.nextCursor };
  });
  app.post("/api/admin/access-codes", async (request, reply) => {
    authorize(request.actor, "accessCode.create");
    const body = accessCodeBody.parse(request.body);
    const { code, row } = await issueAccessCode(db, adminOf(request), {
      maxUses: body.max_uses,
      expiresAt: expiryOf(body),
      planId: body.plan_id ?? null,
      creditMicros: body.credit_micros,
      note: body.note ?? null,
    });
    return reply.status(201).send(presentCreatedAccessCode(row, code));
  });
  app.get("/api/admin/access-codes/:id", async (request) => {
    const id = idParam(request);
    const code = id ? await findAccessCode(db, id) : undefined;
    authorize(request.actor, "accessCode.read", code);
    return presentAccessCode(code);
  });
  app.delete("/api/admin/access-codes/:id", async (request) => {
    const id = idParam(request);
    const code = id ? await findAccessCode(db, id) : undefined;
    authorize(request.actor, "accessCode.revoke", code);
    return presentAccessCode(await withdrawAccessCode(db, adminOf(request), code.id));
  });

  // Audit log
  app.get("/api/admin/audit", async (request) => {
    authorize(request.actor, "auditLog.list");
    const query = auditQuery.parse(request.query);
    const page = await paged(() => listAudit(db, { limit: query.limit, cursor: query.cursor, action: query.action, targetId: query.target_id }));
    return { data: page.items.map(presentAuditEntry), next_cursor: page.nextCursor };
  });

  async function userOf(request: FastifyRequest) {
    const id = idParam(request);
    return id ? findUserById(db, id) : undefined;
  }
}
