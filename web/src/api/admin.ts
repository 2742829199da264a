import type { SignupMode, User } from "./auth.ts";
import { api } from "./http.ts";

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** src/presenters/signupSettings.ts */
export interface SignupSettings {
  signup_mode: SignupMode;
  effective_signup_mode: SignupMode;
  attack_mode: { enabled: boolean; signup_mode: "code" | "closed"; updated_at: string | null; updated_by: string | null };
}

/** src/presenters/accessCode.ts */
export interface AccessCode {
  id: string;
  prefix: string;
  note: string | null;
  status: "active" | "revoked" | "expired" | "used_up";
  max_uses: number;
  uses: number;
  plan_id: string | null;
  credit_micros: number;
  expires_at: string | null;
  created_by: string | null;
  created_at: string;
  revoked_at: string | null;
}

/** src/presenters/audit.ts */
export interface AuditEntry {
  id: string;
  created_at: string;
  actor_user_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  details: unknown;
  ip: string | null;
}

const query = (params: Record<string, string | undefined>) => {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) search.set(k, v);
  const text = search.toString();
  return text ? `?${text}` : "";
};

export const listUsers = (params: { q?: string; status?: string; cursor?: string }) => api<Page<User>>("GET", `/api/admin/users${query(params)}`);
export const changeUser = (id: string, action: "approve" | "disable" | "enable") =>
  api<User>("POST", `/api/admin/users/${encodeURIComponent(id)}/${action}`);
export const setRole = (id: string, role: "admin" | "user") => api<User>("PATCH", `/api/admin/users/${encodeURIComponent(id)}`, { role });

export const getSignupSettings = () => api<SignupSettings>("GET", "/api/admin/signup-mode");
export const setSignupMode = (mode: SignupMode) => api<SignupSettings>("PUT", "/api/admin/signup-mode", { mode });
export const setAttackMode = (enabled: boolean, signupMode: "code" | "closed") =>
  api<SignupSettings>("PUT", "/api/admin/attack-mode", { enabled, signup_mode: signupMode });

export const listAccessCodes = (cursor?: string) => api<Page<AccessCode>>("GET", `/api/admin/access-codes${query({ cursor })}`);
export const createAccessCode = (input: { max_uses: number; expires_in_days: number | null; plan_id: string | null; credit_micros: number; note: string | null }) =>
  api<AccessCode & { code: string }>("POST", "/api/admin/access-codes", input);
export const revokeAccessCode = (id: string) => api<AccessCode>("DELETE", `/api/admin/access-codes/${encodeURIComponent(id)}`);

export const listAudit = (cursor?: string) => api<Page<AuditEntry>>("GET", `/api/admin/audit${query({ cursor })}`);
