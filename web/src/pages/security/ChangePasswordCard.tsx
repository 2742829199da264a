import { useState, type FormEvent } from "react";
import { describeError } from "../../api/http.ts";
import { changePassword } from "../../api/security.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";

/** A new password needs the current one; every other browser is signed out, this one stays. */
export function ChangePasswordCard({ onSessionsChanged }: { onSessionsChanged: () => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setDone(null);
    if (next !== repeat) {
      setError("The new passwords do not match.");
      return;
    }
    setBusy(true);
    try {
      const { ended_sessions } = await changePassword(current, next);
      setDone(`Password changed.${ended_sessions > 0 ? ` ${ended_sessions} other ${ended_sessions === 1 ? "session was" : "sessions were"} signed out.` : ""}`);
      setCurrent("");
      setNext("");
      setRepeat("");
      onSessionsChanged();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <form className="form" onSubmit={onSubmit}>
        <LabelledInput label="Current password" type="password" value={current} onValue={setCurrent} autoComplete="current-password" required />
        <div className="row">
          <LabelledInput label="New password" type="password" value={next} onValue={setNext} autoComplete="new-password" minLength={8} required />
          <LabelledInput label="Repeat new password" type="password" value={repeat} onValue={setRepeat} autoComplete="new-password" minLength={8} required />
        </div>
        <ErrorText error={error} />
        {done ? (
          <p className="small" role="status" data-testid="password-changed">
            {done}
          </p>
        ) : null}
        <div>
          <button type="submit" className="btn-primary" disabled={busy}>
            {busy ? "Changing…" : "Change password"}
          </button>
        </div>
      </form>
      <p className="small muted">Changing your password signs out every other browser and device; this one stays signed in.</p>
    </section>
  );
}
