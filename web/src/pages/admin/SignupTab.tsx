import { useEffect, useState } from "react";
import { getSignupSettings, setAttackMode, setSignupMode, type SignupSettings } from "../../api/admin.ts";
import type { SignupMode } from "../../api/auth.ts";
import { describeError } from "../../api/http.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { SecondFactorRequirement } from "./SecondFactorRequirement.tsx";

const MODES: Array<{ value: SignupMode; label: string }> = [
  { value: "open", label: "Open: anyone can sign up" },
  { value: "code", label: "Access code required" },
  { value: "approval", label: "New accounts wait for approval" },
  { value: "closed", label: "Closed" },
];

export function SignupTab() {
  const [settings, setSettings] = useState<SignupSettings | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attackSignup, setAttackSignup] = useState<"code" | "closed">("code");

  useEffect(() => {
    getSignupSettings()
      .then((s) => {
        setSettings(s);
        setAttackSignup(s.attack_mode.signup_mode);
      })
      .catch((e) => setError(describeError(e)));
  }, []);

  const save = async (run: () => Promise<SignupSettings>) => {
    try {
      setSettings(await run());
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
  };

  if (!settings) return error ? <div className="error-text" role="alert">{error}</div> : <div className="muted">Loading…</div>;
  const attack = settings.attack_mode;
  return (
    <>
      {attack.enabled ? (
        <div className="attack-banner" role="status" data-testid="attack-banner">
          Attack mode is ON: sign-up is {settings.effective_signup_mode === "closed" ? "closed" : "by access code only"} and limits are tightened.
        </div>
      ) : null}
      <ErrorText error={error} />
      <section className="card">
        <h2>Sign-up mode</h2>
        <div className="form">
          <label>
            Mode
            <select value={settings.signup_mode} onChange={(e) => void save(() => setSignupMode(e.target.value as SignupMode))} aria-label="Sign-up mode">
              {MODES.map((m) => (
                <option key={m.value} value={m.value}>
                  {m.label}
                </option>
              ))}
            </select>
          </label>
          <p className="small muted">
            In force now: <strong data-testid="effective-mode">{settings.effective_signup_mode}</strong>
            {attack.enabled ? " (attack mode overrides the mode above)" : ""}
          </p>
        </div>
      </section>
      <section className="card">
        <h2>Attack mode</h2>
        <p className="small muted">One switch for when sign-ups or traffic are under attack: sign-up turns to access codes only (or closes) at once, and limits tighten.</p>
        <div className="row form">
          <label>
            Sign-up while on
            <select value={attackSignup} onChange={(e) => setAttackSignup(e.target.value as "code" | "closed")} aria-label="Sign-up during attack mode">
              <option value="code">access code only</option>
              <option value="closed">closed</option>
            </select>
          </label>
          <button
            type="button"
            className={attack.enabled ? "btn-secondary" : "btn-danger"}
            onClick={() => void save(() => setAttackMode(!attack.enabled, attackSignup))}
          >
            {attack.enabled ? "Turn attack mode off" : "Turn attack mode on"}
          </button>
        </div>
      </section>
      <SecondFactorRequirement />
    </>
  );
}
