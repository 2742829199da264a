import { CopyButton } from "./CopyButton.tsx";

/** A secret the server returns only once (API key, access code): shown with a copy button and a warning. */
export function ShownOnce({ label, secret, onDone }: { label: string; secret: string; onDone: () => void }) {
  return (
    <div className="secret" role="status" data-testid="shown-once">
      <strong>{label}</strong>
      <code data-testid="secret-value">{secret}</code>
      <CopyButton text={secret} />
      <span className="small">Copy it now: it will not be shown again.</span>
      <button type="button" className="btn-ghost btn-small" onClick={onDone}>
        Done
      </button>
    </div>
  );
}
