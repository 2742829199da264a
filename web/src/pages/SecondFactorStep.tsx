import { useState, type FormEvent } from "react";
import type { User } from "../api/auth.ts";
import { ApiError, describeError } from "../api/http.ts";
import { secondFactorSignIn } from "../api/security.ts";
import { AuthForm } from "../components/AuthForm.tsx";
import { LabelledInput } from "../components/LabelledInput.tsx";

/**
 * The sign-in's second step, after a right password for an account with a second factor: a code
 * from the authenticator app, or one of the recovery codes. The half-done sign-in lives in an
 * httpOnly cookie; when it has ended (five minutes, or too many wrong codes), the page starts over
 * at the password.
 */
export function SecondFactorStep({ onSignedIn }: { onSignedIn: (user: User) => void }) {
  const [recovery, setRecovery] = useState(false);
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [expired, setExpired] = useState(false);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { user } = await secondFactorSignIn(recovery ? { recovery_code: value } : { code: value });
      onSignedIn(user);
    } catch (e) {
      setError(describeError(e));
      setExpired(e instanceof ApiError && e.code === "login_expired");
      setValue("");
      setBusy(false);
    }
  };
  // A fresh page: the password form with nothing left over from this attempt.
  const startOver = () => window.location.assign("/");

  return (
    <AuthForm
      title="Two-step verification"
      submitLabel="Verify"
      busyLabel="Verifying…"
      onSubmit={onSubmit}
      busy={busy || expired}
      error={error}
      footer={
        <p className="small muted">
          {expired ? null : (
            <>
              <button type="button" className="btn-ghost btn-small" onClick={() => { setRecovery(!recovery); setValue(""); setError(null); }}>
                {recovery ? "Use the authenticator app instead" : "Use a recovery code instead"}
              </button>{" "}
            </>
          )}
          <button type="button" className="btn-ghost btn-small" onClick={startOver}>
            {expired ? "Sign in again" : "Start over"}
          </button>
        </p>
      }
    >
      {recovery ? (
        <>
          <p className="small muted">Enter one of the recovery codes you saved when you set up two-step verification. Each code works once.</p>
          <LabelledInput label="Recovery code" value={value} onValue={setValue} autoComplete="off" spellCheck={false} required autoFocus key="recovery" />
        </>
      ) : (
        <>
          <p className="small muted">Enter the 6-digit code from your authenticator app.</p>
          <LabelledInput
            label="Authentication code"
            value={value}
            onValue={setValue}
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9 ]{6,7}"
            maxLength={7}
            required
            autoFocus
            key="totp"
          />
        </>
      )}
    </AuthForm>
  );
}
