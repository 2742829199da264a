import { useLayoutEffect, useState } from "react";
import type { AuthState } from "../api/auth.ts";

/** What each `sso_error` the server redirects with means (src/http/app/sso.ts). */
const MESSAGES: Record<string, string> = {
  sso_unknown_provider: "That sign-in provider is not configured on this server.",
  sso_state_mismatch: "The sign-in could not be matched to this browser: it took too long, or was started in another tab. Please try again.",
  sso_denied: "The identity provider did not sign you in.",
  sso_invalid_response: "The identity provider's answer failed Sputnik's security checks, so you were not signed in.",
  sso_provider_unavailable: "The identity provider could not be reached. Please try again later.",
  sso_issuer_mismatch: "This sign-in provider's settings changed; an administrator needs to check them.",
  signup_closed: "This server is not creating new accounts right now.",
  signup_requires_code: "New accounts on this server need an access code, which single sign-on cannot carry. Ask an administrator for an account.",
  account_pending: "Your account is waiting for an administrator's approval.",
  account_disabled: "Your account has been disabled.",
};

/** The `?sso_error=` the page was opened with, as a sentence; dropped from the address bar so a reload does not repeat it. */
function useSsoError(): string | null {
  const [error] = useState(() => {
    const code = new URLSearchParams(window.location.search).get("sso_error");
    return code === null ? null : (MESSAGES[code] ?? "Single sign-on failed. Please try again.");
  });
  // A layout effect: done before the message is painted, so nothing can see the page with both.
  useLayoutEffect(() => {
    if (error !== null) window.history.replaceState(window.history.state, "", window.location.pathname);
  }, [error]);
  return error;
}

/**
 * "Sign in with <provider>" links (full-page navigations: the server redirects to the provider and
 * back) and the reason the last single sign-on failed, if it did.
 */
export function SsoButtons({ providers }: { providers: { id: string; name: string }[] }) {
  const error = useSsoError();
  if (providers.length === 0 && error === null) return null;
  return (
    <div className="form" data-testid="sso">
      {error ? (
        <div className="error-text small" role="alert">
          {error}
        </div>
      ) : null}
      {providers.map((p) => (
        <a key={p.id} className="btn-secondary" style={{ textAlign: "center", textDecoration: "none", color: "inherit", padding: 10 }} href={`/api/auth/sso/${encodeURIComponent(p.id)}/start`}>
          Sign in with {p.name}
        </a>
      ))}
    </div>
  );
}

/** The sign-in page when password sign-in is off (auth.passwordSignIn false): providers only. */
export function SsoOnlySignIn({ state }: { state: AuthState }) {
  return (
    <div className="auth-page">
      <div className="auth-card">
        <h1>Sign in to Sputnik</h1>
        {state.setup_required ? <p className="muted small">No account exists yet: the first person to sign in becomes the administrator.</p> : null}
        <SsoButtons providers={state.sso_providers ?? []} />
        {(state.sso_providers ?? []).length === 0 ? <p className="muted small">No sign-in method is configured on this server.</p> : null}
      </div>
    </div>
  );
}
