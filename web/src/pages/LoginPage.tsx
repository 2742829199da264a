import { useState } from "react";
import { login } from "../api/account.ts";
import type { AuthState, User } from "../api/auth.ts";
import { AuthForm } from "../components/AuthForm.tsx";
import { LabelledInput } from "../components/LabelledInput.tsx";
import { useSubmit } from "../components/useSubmit.ts";
import { SecondFactorStep } from "./SecondFactorStep.tsx";
import { ResetPasswordPage } from "./security/ResetPasswordPage.tsx";
import { Link } from "../router.tsx";
import { SsoButtons, SsoOnlySignIn } from "./SsoButtons.tsx";

export function LoginPage({ state, onSignedIn }: { state: AuthState; onSignedIn: (user: User) => void }) {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  // The password was right and the account has a second factor: the code step replaces the form.
  const [secondFactor, setSecondFactor] = useState(false);
  const form = useSubmit(async () => {
    const result = await login(name, password);
    if ("second_factor_required" in result) setSecondFactor(true);
    else onSignedIn(result.user);
  });

  if (secondFactor) return <SecondFactorStep onSignedIn={onSignedIn} />;
  // An admin's one-time reset link (App sends /reset-password here); afterwards a fresh page signs in.
  if (location.pathname === "/reset-password") return <ResetPasswordPage onDone={() => window.location.assign("/")} />;
  // Password sign-in off (auth.passwordSignIn): no form, no sign-up link; providers only.
  if (state.password_sign_in === false) return <SsoOnlySignIn state={state} />;
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
      <SsoButtons providers={state.sso_providers ?? []} />
      <LabelledInput label="User name or e-mail" value={name} onValue={setName} autoComplete="username" required autoFocus />
      <LabelledInput label="Password" type="password" value={password} onValue={setPassword} autoComplete="current-password" required />
    </AuthForm>
  );
}
