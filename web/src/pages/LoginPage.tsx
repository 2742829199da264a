import { useState, type FormEvent } from "react";
import { login, type AuthState, type User } from "../api/auth.ts";
import { describeError } from "../api/http.ts";
import { Link } from "../router.tsx";

export function LoginPage({ state, onSignedIn }: { state: AuthState; onSignedIn: (user: User) => void }) {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { user } = await login(name, password);
      onSignedIn(user);
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };

  return (
    <div className="auth-page">
      <form className="auth-card form" onSubmit={submit}>
        <h1>Sign in to Sputnik</h1>
        {state.setup_required ? (
          <p className="muted small">
            No account exists yet. <Link href="/signup">Create the first one</Link>: it becomes the administrator.
          </p>
        ) : null}
        <label>
          User name or e-mail
          <input value={name} onChange={(e) => setName(e.target.value)} autoComplete="username" required autoFocus />
        </label>
        <label>
          Password
          <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" required />
        </label>
        {error ? (
          <div className="error-text small" role="alert">
            {error}
          </div>
        ) : null}
        <button type="submit" className="btn-primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {state.signup_mode !== "closed" || state.setup_required ? (
          <p className="small muted">
            No account? <Link href="/signup">Sign up</Link>
          </p>
        ) : null}
      </form>
    </div>
  );
}
