/**
 * The accounts layer's CSRF rule (src/auth/cookies.ts): every state-changing request carries the
 * value of the `sputnik_csrf` cookie in the `X-Sputnik-CSRF` header. The cookie is readable by the
 * page on purpose; the session cookie itself is httpOnly and never touched here.
 */
const CSRF_COOKIE = "sputnik_csrf";
const CSRF_HEADER = "x-sputnik-csrf";

export function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function csrfHeaders(): Record<string, string> {
  const token = csrfToken();
  return token ? { [CSRF_HEADER]: token } : {};
}
