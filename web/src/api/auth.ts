import { api } from "./http.ts";

/** src/presenters/user.ts */
export interface User {
  id: string;
  username: string;
  email: string | null;
  role: "admin" | "user";
  status: "active" | "pending" | "disabled";
  plan_id: string | null;
  created_at: string;
  last_login_at: string | null;
}

export type SignupMode = "open" | "approval" | "code" | "closed";

export interface AuthState {
  user: User | null;
  csrf_token: string;
  /** The mode in force (attack mode included), so the form knows whether to ask for a code. */
  signup_mode: SignupMode;
  /** No account yet: the first one becomes admin. */
  setup_required: boolean;
}

export interface Session {
  id: string;
  current: boolean;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  user_agent: string | null;
  ip: string | null;
}

export const authState = () => api<AuthState>("GET", "/api/auth/state");
export const login = (loginName: string, password: string) => api<{ user: User }>("POST", "/api/auth/login", { login: loginName, password });
export const logout = () => api<void>("POST", "/api/auth/logout");
/** 201 with a session for an active account; 202 for one waiting for approval (no session). */
export const signup = (input: { username: string; email: string | null; password: string; access_code: string | null }) =>
  api<{ user: User }>("POST", "/api/auth/signup", input);
export const listSessions = () => api<{ data: Session[] }>("GET", "/api/auth/sessions");
export const endSession = (id: string) => api<void>("DELETE", `/api/auth/sessions/${encodeURIComponent(id)}`);
