import type { SecondFactorChallenge, Session, User } from "./auth.ts";
import { api } from "./http.ts";

/*
 * The calls only the sign-in, sign-up and settings pages make: a module of its own so that they
 * travel in those pages' lazy chunks, not in the first-paint script (test/web-budget.test.ts).
 */
export const login = (loginName: string, password: string) => api<{ user: User } | SecondFactorChallenge>("POST", "/api/auth/login", { login: loginName, password });
/** 201 with a session for an active account; 202 for one waiting for approval (no session). */
export const signup = (input: { username: string; email: string | null; password: string; access_code: string | null }) =>
  api<{ user: User }>("POST", "/api/auth/signup", input);
export const listSessions = () => api<{ data: Session[] }>("GET", "/api/auth/sessions");
export const endSession = (id: string) => api<void>("DELETE", `/api/auth/sessions/${encodeURIComponent(id)}`);
