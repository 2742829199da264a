import { useEffect, useState } from "react";
import { describeError } from "../../api/http.ts";
import { getSecondFactorRequirement, getSecurity, setSecondFactorRequirement } from "../../api/security.ts";
import { ErrorText } from "../../components/ErrorText.tsx";
import { Link } from "../../router.tsx";

/**
 * The "require two-step verification for administrators" switch (Sign-up tab). While on, an admin
 * without it keeps an ordinary user's rights until they set it up; the server refuses to turn it on
 * for an admin who has not set up their own.
 */
export function SecondFactorRequirement() {
  const [required, setRequired] = useState<boolean | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    getSecondFactorRequirement()
      .then((r) => setRequired(r.required_for_admins))
      .catch((e) => setError(describeError(e)));
  }, []);

  const toggle = async (value: boolean) => {
    try {
      setRequired((await setSecondFactorRequirement(value)).required_for_admins);
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
  };

  return (
    <section className="card" aria-labelledby="require-2fa-heading">
      <h2 id="require-2fa-heading">Two-step verification for administrators</h2>
      <p className="small muted">
        When required, an administrator without two-step verification can use the app as an ordinary user but not the admin area, until they set it up in
        Settings → Security. Set up your own first.
      </p>
      <label className="row">
        <input type="checkbox" checked={required ?? false} disabled={required === null} onChange={(e) => void toggle(e.target.checked)} />
        Require two-step verification for administrators
      </label>
      <ErrorText error={error} />
    </section>
  );
}

/** Above the admin tabs, for an admin held back by the requirement: what to do, and where. */
export function AdminSecondFactorNotice() {
  const [held, setHeld] = useState(false);
  useEffect(() => {
    getSecurity()
      .then((s) => setHeld(s.enrol_before_admin))
      .catch(() => setHeld(false));
  }, []);
  if (!held) return null;
  return (
    <div className="attack-banner" role="alert" data-testid="admin-needs-second-factor">
      This server requires two-step verification for administrators. <Link href="/settings">Set it up in Settings → Security</Link> to use the admin area.
    </div>
  );
}
