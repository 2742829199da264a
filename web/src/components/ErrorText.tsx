/**
 * A page's error line, in the server's own words (see describeError). role="alert" so that screen
 * readers announce it the moment it appears; nothing at all is rendered while there is no error,
 * so it can sit in any layout unconditionally.
 */
export function ErrorText({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <div className="error-text small" role="alert">
      {error}
    </div>
  );
}
