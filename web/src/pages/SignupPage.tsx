import { useState, type FormEvent } from "react";
import { signup, type AuthState, type User } from "../api/auth.ts";
import { describeError } from "../api/http.ts";
import { Link } from "../router.tsx";

/** Sign-up as the server's mode allows: open, with an access code, or waiting for approval. */
export function SignupPage({ state, onSignedUp, onPending }: { state: AuthState; onSignedUp: (user: User) => void; onPending: (user: User) => void }) {
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const mode = state.setup_required ? "open" : state.signup_mode;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { user } = await signup({
        username: username.trim(),
        email: email.trim() || null,
        password,
        access_code: mode === "code" ? code.trim() : null,
      });
      if (user.status === "active") onSignedUp(user);
      else onPending(user);
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };

  if (mode === "closed") {
    return (
      <div className="auth-page">
        <div className="auth-card">
          <h1>Sign-up is closed</h1>
          <p className="muted">This server is not taking new accounts right now.</p>
          <Link href="/login">Back to sign in</Link>
        </div>
      </div>
    );
  }

  return (
    <div className="auth-page">
      <form className="auth-card form" onSubmit={submit}>
        <h1>Create your account</h1>
        {state.setup_required ? <p className="muted small">This is the first account: it becomes the administrator.</p> : null}
        {mode === "approval" ? <p className="muted small">An administrator approves new accounts before they can sign in.</p> : null}
        <label>
          User name
          <input value={username} onChange={(e) => setUsername(e.target.value)} autoComplete="username" required autoFocus />
        </label>
        <label>
          E-mail (optional)
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} autoComplete="email" />
        </label>
        <label>
          Password
          <input type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="new-password" required minLength={8} />
        </label>
        {mode === "code" ? (
          <label>
            Access code
            <input value={code} onChange={(e) => setCode(e.target.value)} autoComplete="off" required spellCheck={false} />
          </label>
        ) : null}
        {error ? (
          <div className="error-text small" role="alert">
            {error}
          </div>
        ) : null}
        <button type="submit" className="btn-primary" disabled={busy}>
          {busy ? "Creating…" : "Sign up"}
        </button>
        <p className="small muted">
          Have an account? <Link href="/login">Sign in</Link>
        </p>
      </form>
    </div>
  );
}
