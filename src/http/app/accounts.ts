import type { FastifyInstance } from "fastify";
import type { AuthServices } from "../middleware/auth/index.ts";
import { registerAdminRoutes } from "./admin.ts";
import { registerAuthRoutes } from "./auth.ts";
import { registerKeyRoutes } from "./keys.ts";
import { registerSecurityRoutes } from "./security.ts";
import { registerSsoRoutes } from "./sso.ts";

/** The accounts part of the app API: /api/auth/*, /api/keys, /api/admin/*. */
export function registerAccountRoutes(app: FastifyInstance, auth: AuthServices): void {
  registerAuthRoutes(app, auth);
  registerKeyRoutes(app, auth);
  registerAdminRoutes(app, auth);
  registerSecurityRoutes(app, auth);
  registerSsoRoutes(app, auth);
}
