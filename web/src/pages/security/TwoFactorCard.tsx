import { useCallback, useEffect, useState, type FormEvent } from "react";
import { describeError } from "../../api/http.ts";
import { confirmTotp, disableTotp, getSecurity, newRecoveryCodes, startTotpSetup, type SecurityState, type TotpSetup } from "../../api/security.ts";
import { CopyButton } from "../../components/CopyButton.tsx";
import { ErrorText } from "../../components/ErrorText.tsx";
import { LabelledInput } from "../../components/LabelledInput.tsx";
import { formatTime } from "../../components/time.ts";

/** What needs the current password first: each is a security change a stolen session must not make. */
type Guarded = "setup" | "disable" | "codes";

type Phase =
  | { kind: "idle" }
  | { kind: "password"; action: Guarded }
  | { kind: "scan"; setup: TotpSetup }
  | { kind: "codes"; codes: string[]; note: string };

const ACTION_LABEL: Record<Guarded, string> = { setup: "Continue", disable: "Turn off", codes: "Make new codes" };

/**
 * Two-step verification with an authenticator app (TOTP): set up by scanning a QR code (or typing
 * the key), switched on only once a first code proves the app has it, then ten recovery codes shown
 * once. Turning it off or making new recovery codes asks for the password again.
 */
export function TwoFactorCard({ onSessionsChanged }: { onSessionsChanged: () => void }) {
  const [state, setState] = useState<SecurityState | null>(null);
  const [phase, setPhase] = useState<Phase>({ kind: "idle" });
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(() => {
    getSecurity()
      .then(setState)
      .catch((e) => setError(describeError(e)));
  }, []);
  useEffect(load, [load]);

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  const submitPassword = (action: Guarded) => (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      if (action === "setup") {
        setPhase({ kind: "scan", setup: await startTotpSetup(password) });
      } else if (action === "disable") {
        await disableTotp(password);
        setPhase({ kind: "idle" });
        load();
      } else {
        const { recovery_codes } = await newRecoveryCodes(password);
        setPhase({ kind: "codes", codes: recovery_codes, note: "Your old recovery codes no longer work." });
        load();
      }
      setPassword("");
    });
  };

  const submitCode = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      const { recovery_codes, ended_sessions } = await confirmTotp(code);
      setCode("");
      const others = ended_sessions > 0 ? ` ${ended_sessions} other ${ended_sessions === 1 ? "session was" : "sessions were"} signed out.` : "";
      setPhase({ kind: "codes", codes: recovery_codes, note: `Two-step verification is on.${others}` });
      onSessionsChanged();
      load();
    });
  };

  const cancel = () => {
    setPhase({ kind: "idle" });
    setPassword("");
    setCode("");
    setError(null);
  };

  const factor = state?.second_factor;
  return (
    <section className="card" aria-labelledby="two-factor-heading" data-testid="two-factor">
      <h2 id="two-factor-heading">Two-step verification</h2>
      {state?.enrol_before_admin ? (
        <p className="attack-banner" role="status" data-testid="enrol-before-admin">
          Administrators must use two-step verification on this server: set it up to use the admin area.
        </p>
      ) : null}
      {!state && !error ? <div className="muted">Loading…</div> : null}
      {factor && phase.kind === "idle" ? (
        factor.enabled ? (
          <>
            <p data-testid="two-factor-status">
              <span className="badge badge-ok">on</span> Since {formatTime(factor.enabled_at)}. {factor.recovery_codes_left} recovery{" "}
              {factor.recovery_codes_left === 1 ? "code" : "codes"} left.
            </p>
            <div className="row">
              <button type="button" className="btn-secondary" onClick={() => setPhase({ kind: "password", action: "codes" })}>
                New recovery codes
              </button>
              <button type="button" className="btn-ghost" onClick={() => setPhase({ kind: "password", action: "disable" })}>
                Turn off two-step verification
              </button>
            </div>
          </>
        ) : (
          <>
            <p className="small muted" data-testid="two-factor-status">
              Off. With it on, signing in needs a code from an authenticator app on your phone as well as your password.
            </p>
            <div>
              <button type="button" className="btn-primary" onClick={() => setPhase({ kind: "password", action: "setup" })}>
                Set up two-step verification
              </button>
            </div>
          </>
        )
      ) : null}

      {phase.kind === "password" ? (
        <form className="form" onSubmit={submitPassword(phase.action)}>
          <LabelledInput label="Confirm with your password" type="password" value={password} onValue={setPassword} autoComplete="current-password" required autoFocus />
          <div className="row">
            <button type="submit" className={phase.action === "disable" ? "btn-danger" : "btn-primary"} disabled={busy}>
              {ACTION_LABEL[phase.action]}
            </button>
            <button type="button" className="btn-ghost" onClick={cancel}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}

      {phase.kind === "scan" ? (
        <form className="form" onSubmit={submitCode}>
          <p className="small">Scan this QR code with your authenticator app (Google Authenticator, Aegis, 1Password, …), then enter the code it shows.</p>
          {/* An image of the otpauth:// link drawn by the server: data, never markup. */}
          <img src={phase.setup.qr_data_url} alt="QR code for your authenticator app" width={200} height={200} data-testid="totp-qr" />
          <div className="small">
            Or type this key into the app:{" "}
            <code data-testid="totp-secret">{phase.setup.secret.match(/.{1,4}/g)?.join(" ")}</code> <CopyButton text={phase.setup.secret} />
          </div>
          <LabelledInput label="Code from the app" value={code} onValue={setCode} inputMode="numeric" autoComplete="one-time-code" maxLength={7} required autoFocus />
          <div className="row">
            <button type="submit" className="btn-primary" disabled={busy}>
              Turn on
            </button>
            <button type="button" className="btn-ghost" onClick={cancel}>
              Cancel
            </button>
          </div>
        </form>
      ) : null}

      {phase.kind === "codes" ? (
        <div className="secret" role="status" data-testid="recovery-codes">
          <strong>{phase.note} Save these recovery codes:</strong>
          <span className="small">Each one signs you in once if you lose your phone. They will not be shown again.</span>
          <ul style={{ columns: 2, margin: 0, paddingLeft: 18, width: "100%" }}>
            {phase.codes.map((c) => (
              <li key={c}>
                <code>{c}</code>
              </li>
            ))}
          </ul>
          <CopyButton text={phase.codes.join("\n")} label="Copy all" />
          <button type="button" className="btn-ghost btn-small" onClick={cancel}>
            I saved them
          </button>
        </div>
      ) : null}
      <ErrorText error={error} />
    </section>
  );
}
