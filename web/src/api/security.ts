/**
 * The second factor, password lifecycle and reset links (src/http/app/security.ts). Imported only
 * by lazily loaded pages (sign-in's code step, settings, admin), never by the first paint.
 */
import type { User } from "./auth.ts";
import { api } from "./http.ts";

/** src/presenters/security.ts presentSecurity */
export interface SecurityState {
  second_factor: { enabled: boolean; method: "totp" | null; enabled_at: string | null; recovery_codes_left: number };
  required_for_admins: boolean;
  /** This admin has no admin rights until they set up a second factor. */
  enrol_before_admin: boolean;
}

/** src/presenters/security.ts presentTotpSetup */
export interface TotpSetup {
  secret: string;
  otpauth_uri: string;
  /** An SVG image as a data: URL; shown with <img>, never inserted as markup. */
  qr_data_url: string;
}

/** src/presenters/security.ts presentPasswordReset */
export interface PasswordResetLink {
  id: string;
  user_id: string;
  path: string;
  url: string | null;
  expires_at: string;
}

export const getSecurity = () => api<SecurityState>("GET", "/api/security");
export const changePassword = (current_password: string, new_password: string) =>
  api<{ ended_sessions: number }>("POST", "/api/security/password", { current_password, new_password });
export const startTotpSetup = (current_password: string) => api<TotpSetup>("POST", "/api/security/totp/setup", { current_password });
export const confirmTotp = (code: string) => api<{ recovery_codes: string[]; ended_sessions: number }>("POST", "/api/security/totp/confirm", { code });
export const disableTotp = (current_password: string) => api<void>("POST", "/api/security/totp/disable", { current_password });
export const newRecoveryCodes = (current_password: string) => api<{ recovery_codes: string[] }>("POST", "/api/security/recovery-codes", { current_password });

/** The sign-in's second step: the pending sign-in rides in an httpOnly cookie the page never sees. */
export const secondFactorSignIn = (proof: { code: string } | { recovery_code: string }) =>
  api<{ user: User; recovery_codes_left: number | null }>("POST", "/api/auth/login/second-factor", proof);
export const resetPasswordWithLink = (token: string, new_password: string) => api<void>("POST", "/api/auth/password-reset", { token, new_password });

export const issuePasswordReset = (userId: string) => api<PasswordResetLink>("POST", `/api/admin/users/${encodeURIComponent(userId)}/password-reset`);
export const getSecondFactorRequirement = () => api<{ required_for_admins: boolean }>("GET", "/api/admin/second-factor");
export const setSecondFactorRequirement = (required_for_admins: boolean) => api<{ required_for_admins: boolean }>("PUT", "/api/admin/second-factor", { required_for_admins });
