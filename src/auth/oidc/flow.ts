/**
 * What a sign-in started at the provider must find again when the browser comes back: the state,
 * nonce and PKCE verifier made for it, the provider and the redirect URI used.
 *
 * Kept in the browser, in a short-lived httpOnly cookie signed with the service's secret, rather
 * than on the server: any replica can finish a flow another one started, nothing is written for
 * visitors who never come back, and the cookie ties the callback to the browser that started the
 * flow (an attacker's authorization code pasted into a victim's browser meets no matching state).
 * The cookie carries nothing that works elsewhere: the verifier only completes this one code,
 * which the provider hands out once, to this browser.
 */
import { hmacHex, safeEqual } from "../secrets.ts";

export interface SsoFlow {
  providerId: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  expiresAt: number;
}

/** Long enough to sign in at the provider (a password, a second factor), short enough to go stale. */
export const SSO_FLOW_TTL_MS = 10 * 60_000;

export function sealFlow(secret: string, flow: SsoFlow): string {
  const payload = Buffer.from(
    JSON.stringify({ p: flow.providerId, s: flow.state, n: flow.nonce, v: flow.codeVerifier, r: flow.redirectUri, e: flow.expiresAt }),
    "utf8",
  ).toString("base64url");
  return `${payload}.${mac(secret, payload)}`;
}

/** The flow in `value`, or null when it is missing, forged, altered or expired. */
export function openFlow(secret: string, value: string | undefined, now: number = Date.now()): SsoFlow | null {
  if (!value || value.length > 4096) return null;
  const dot = value.indexOf(".");
  if (dot <= 0) return null;
  const payload = value.slice(0, dot);
  if (!safeEqual(value.slice(dot + 1), mac(secret, payload))) return null;
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  const d = data as Record<string, unknown>;
  const strings = [d.p, d.s, d.n, d.v, d.r];
  if (!strings.every((x) => typeof x === "string" && x !== "") || typeof d.e !== "number") return null;
  if (d.e <= now) return null;
  return { providerId: d.p as string, state: d.s as string, nonce: d.n as string, codeVerifier: d.v as string, redirectUri: d.r as string, expiresAt: d.e };
}

function mac(secret: string, payload: string): string {
  // Its own label: a CSRF token (also an HMAC of the service secret) can never pass for a flow.
  return hmacHex(secret, `sso-flow:${payload}`);
}
