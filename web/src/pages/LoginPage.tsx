import { useState } from "react";
import { login, type AuthState, type User } from "../api/auth.ts";
import { AuthForm } from "../components/AuthForm.tsx";
import { LabelledInput } from "../components/LabelledInput.tsx";
import { useSubmit } from "../components/useSubmit.ts";
import { Link } from "../router.tsx";

export function LoginPage({ state, onSignedIn }: { state: AuthState; onSignedIn: (user: User) => void }) {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const form = useSubmit(async () => {
    const { user } = await login(name, password);
    onSignedIn(user);
  });

  return (
    <AuthForm
      title="Sign in to Sputnik"
      submitLabel="Sign in"
      busyLabel="Signing in…"
      {...form}
      footer={
        state.signup_mode !== "closed" || state.setup_required ? (
          <p className="small muted">
            No account? <Link href="/signup">Sign up</Link>
          </p>
        ) : null
      }
    >
      {state.setup_required ? (
        <p className="muted small">
          No account exists yet. <Link href="/signup">Create the first one</Link>: it becomes the administrator.
        </p>
      ) : null}
      <LabelledInput label="User name or e-mail" value={name} onValue={setName} autoComplete="username" required autoFocus />
      <LabelledInput label="Password" type="password" value={password} onValue={setPassword} autoComplete="current-password" required />
    </AuthForm>
  );
}
