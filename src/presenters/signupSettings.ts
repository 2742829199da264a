import type { SignupSettings } from "../auth/signupMode.ts";
import { isoTime } from "./time.ts";

export function presentSignupSettings(settings: SignupSettings) {
  return {
    signup_mode: settings.mode,
    effective_signup_mode: settings.effective,
    attack_mode: {
      enabled: settings.attack.enabled,
      signup_mode: settings.attack.signupMode,
      updated_at: isoTime(settings.attack.updatedAt),
      updated_by: settings.attack.updatedBy,
    },
  };
}
