import { useLayoutEffect, useState, type FormEvent } from "react";
import { describeError } from "../../api/http.ts";
import { resetPasswordWithLink } from "../../api/security.ts";
import { AuthForm } from "../../components/AuthForm.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";

/**
 * What an admin's one-time reset link opens (/reset-password#<token>): the token rides in the URL
 * fragment, which the browser never sends to any server, and is taken out of the address bar (and
 * history) as soon as the page has read it. Setting the password ends every session of the
 * account; the page then sends its owner to sign in.
 */
export function ResetPasswordPage({ onDone }: { onDone: () => void }) {
  const [token] = useState(() => decodeURIComponent(window.location.hash.slice(1)));
  // A layout effect: the token leaves the address bar before the page is first painted.
  useLayoutEffect(() => {
    if (window.location.hash) history.replaceState(null, "", window.location.pathname);
  }, []);
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    if (done) {
      onDone();
      return;
    }
    setError(null);
    if (password !== repeat) {
      setError("The passwords do not match.");
      return;
    }
    setBusy(true);
    try {
      await resetPasswordWithLink(token, password);
      setDone(true);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  if (done) {
    return (
      <AuthForm title="Password set" submitLabel="Go to sign in" busyLabel="…" onSubmit={onSubmit} busy={false} error={null}>
        <p role="status" data-testid="reset-done">
          Your new password is set, and every session of your account was signed out. Sign in with the new password.
        </p>
      </AuthForm>
    );
  }
  return (
    <AuthForm title="Set a new password" submitLabel="Set password" busyLabel="Setting…" onSubmit={onSubmit} busy={busy || !token} error={token ? error : "This link is incomplete. Ask your administrator for a new one."}>
      <p className="small muted">This link works once and expires an hour after it was made.</p>
      <LabelledInput label="New password" type="password" value={password} onValue={setPassword} autoComplete="new-password" minLength={8} required autoFocus />
      <LabelledInput label="Repeat new password" type="password" value={repeat} onValue={setRepeat} autoComplete="new-password" minLength={8} required />
    </AuthForm>
  );
}
