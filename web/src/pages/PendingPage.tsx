import type { User } from "../api/auth.ts";

export function PendingPage({ user, onBack }: { user: User; onBack: () => void }) {
  return (
    <div className="auth-page">
      <div className="auth-card" data-testid="pending">
        <h1>Waiting for approval</h1>
        <p>
          Thanks, <strong>{user.username}</strong>. Your account was created and is waiting for an administrator to approve it. You can sign in
          once it is approved.
        </p>
        <button type="button" className="btn-secondary" onClick={onBack}>
          Back to sign in
        </button>
      </div>
    </div>
  );
}
