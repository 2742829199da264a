import type { PasswordResetRow } from "../auth/passwordResets.ts";
import { resetPathFor } from "../auth/passwordResets.ts";
import type { SecondFactorStatus } from "../auth/totp.ts";
import { isoTime } from "./time.ts";

/** The signed-in user's security overview: never a secret. */
export function presentSecurity(status: SecondFactorStatus, admin: { required: boolean; enrolBeforeAdmin: boolean }) {
  return {
    second_factor: {
      enabled: status.enabled,
      method: status.enabled ? ("totp" as const) : null,
      enabled_at: isoTime(status.confirmedAt),
      recovery_codes_left: status.recoveryCodesLeft,
    },
    /** The service requires a second factor for administrators. */
    required_for_admins: admin.required,
    /** This account is an admin without admin rights until it enrols. */
    enrol_before_admin: admin.enrolBeforeAdmin,
  };
}

/**
 * A started TOTP enrolment, shown once: the secret as text (typed into an app by hand), the
 * otpauth:// URI, and the same URI as a QR code image (an SVG data URL, rendered by the app as
 * an <img>, never as markup).
 */
export function presentTotpSetup(setup: { secret: string; uri: string; qrDataUrl: string }) {
  return { secret: setup.secret, otpauth_uri: setup.uri, qr_data_url: setup.qrDataUrl };
}

/** Recovery codes, shown once. */
export function presentRecoveryCodes(codes: string[]) {
  return { recovery_codes: codes };
}

/** A reset link just issued, shown once: `path` on this server (the token rides in the fragment), and the full `url` when `publicUrl` is set. */
export function presentPasswordReset(row: PasswordResetRow, token: string, publicUrl: string | null) {
  const path = resetPathFor(token);
  return {
    id: row.id,
    user_id: row.user_id,
    path,
    url: publicUrl ? new URL(path, publicUrl).toString() : null,
    expires_at: isoTime(row.expires_at),
  };
}

/** The password was right and a second factor is owed: what the sign-in form needs for its next step. */
export function presentSecondFactorChallenge(expiresAt: number) {
  return { second_factor_required: true as const, methods: ["totp", "recovery_code"] as const, expires_at: isoTime(expiresAt) };
}
