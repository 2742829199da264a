import type { FormEvent, ReactNode } from "react";
import { ErrorText } from "./ErrorText.tsx";

interface AuthFormProps {
  title: string;
  /** From useSubmit. */
  onSubmit: (event: FormEvent) => void;
  busy: boolean;
  error: string | null;
  submitLabel: string;
  /** The button's text while the request is out. */
  busyLabel: string;
  /** Notes and fields, between the title and the error line. */
  children: ReactNode;
  /** Under the button: the way to the other auth page. */
  footer?: ReactNode;
}

/** The card the signed-out pages (sign in, sign up) share: title, fields, error line, one wide submit button. */
export function AuthForm({ title, onSubmit, busy, error, submitLabel, busyLabel, children, footer }: AuthFormProps) {
  return (
    <div className="auth-page">
      <form className="auth-card form" onSubmit={onSubmit}>
        <h1>{title}</h1>
        {children}
        <ErrorText error={error} />
        <button type="submit" className="btn-primary" disabled={busy}>
          {busy ? busyLabel : submitLabel}
        </button>
        {footer}
      </form>
    </div>
  );
}
