import { useState } from "react";
import { signup } from "../api/account.ts";
import type { AuthState, User } from "../api/auth.ts";
import { AuthForm } from "../components/AuthForm.tsx";
import { LabelledInput } from "../components/LabelledInput.tsx";
import { useSubmit } from "../components/useSubmit.ts";
import { Link } from "../router.tsx";

/** Sign-up as the server's mode allows: open, with an access code, or waiting for approval. */
export function SignupPage({ state, onSignedUp, onPending }: { state: AuthState; onSignedUp: (user: User) => void; onPending: (user: User) => void }) {
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const mode = state.setup_required ? "open" : state.signup_mode;
  const form = useSubmit(async () => {
    const { user } = await signup({
      username: username.trim(),
      email: email.trim() || null,
      password,
      access_code: mode === "code" ? code.trim() : null,
    });
    if (user.status === "active") onSignedUp(user);
    else onPending(user);
  });

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
    <AuthForm
      title="Create your account"
      submitLabel="Sign up"
      busyLabel="Creating…"
      {...form}
      footer={
        <p className="small muted">
          Have an account? <Link href="/login">Sign in</Link>
        </p>
      }
    >
      {state.setup_required ? <p className="muted small">This is the first account: it becomes the administrator.</p> : null}
      {mode === "approval" ? <p className="muted small">An administrator approves new accounts before they can sign in.</p> : null}
      <LabelledInput label="User name" value={username} onValue={setUsername} autoComplete="username" required autoFocus />
      <LabelledInput label="E-mail (optional)" type="email" value={email} onValue={setEmail} autoComplete="email" />
      <LabelledInput label="Password" type="password" value={password} onValue={setPassword} autoComplete="new-password" required minLength={8} />
      {mode === "code" ? (
        <LabelledInput label="Access code" value={code} onValue={setCode} autoComplete="off" required spellCheck={false} />
      ) : null}
    </AuthForm>
  );
}
