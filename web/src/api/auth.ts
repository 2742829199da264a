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
  /** Single sign-on providers: one "Sign in with <name>" button each (pages/SsoButtons.tsx). */
  sso_providers?: { id: string; name: string }[];
  /** false: password sign-in (and sign-up) is off; only single sign-on signs in. */
  password_sign_in?: boolean;
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
/** The password was right and the account has a second factor: its code comes next (src/presenters/security.ts). */
export interface SecondFactorChallenge {
  second_factor_required: true;
  methods: Array<"totp" | "recovery_code">;
  expires_at: string;
}

export const logout = () => api<void>("POST", "/api/auth/logout");
